"""Diffusion: schedules, the forward process and the samplers against exact answers.

For Gaussian data the optimal denoiser is known in closed form and every
reverse step is affine plus Gaussian noise, so the moments of each sampler's
output follow exactly (`gaussian_sample_moments`). The compiled samplers must
reproduce those moments within statistical error, and the moments must
reach the data's as the number of steps grows: DDPM (eta = 1, all steps) and
DDIM (eta = 0) at 1,000 steps within 1%, DDIM at 10 steps off by its known
discretisation error, which the compiled sampler shows too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_gen.sampling import diffusion

MEAN = np.array([1.0, -0.5])
COV = np.array([[0.5, 0.3], [0.3, 0.4]])
N = 20_000


def test_linear_schedule_is_ho_et_al():
    s = diffusion.NoiseSchedule("linear", 1000)
    assert s.betas[0] == pytest.approx(1e-4) and s.betas[-1] == pytest.approx(0.02)
    np.testing.assert_allclose(s.alpha_bars, np.cumprod(1 - np.linspace(1e-4, 0.02, 1000)))
    assert s.alpha_bars[-1] < 1e-4  # x_T is noise
    # Fewer steps add the same total noise (betas stretched by 1000 / T).
    assert diffusion.NoiseSchedule("linear", 100).betas[-1] == pytest.approx(0.2)


def test_cosine_schedule_is_nichol_and_dhariwal():
    s = diffusion.NoiseSchedule("cosine", 1000)

    def f(t):
        return math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2

    for t in (0, 10, 500, 900):
        assert s.alpha_bars[t] == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert np.all(np.diff(s.alpha_bars) < 0) and s.betas.max() <= 0.999


def test_forward_process_moments():
    s = diffusion.NoiseSchedule("cosine", 100)
    x0 = np.tile(np.array([[0.7, -1.2]], np.float32), (200_000, 1))
    for t in (0, 37, 99):
        noise = tf.random.stateless_normal(x0.shape, seed=[t, 1])
        x_t = s.diffuse(x0, tf.fill([len(x0)], t), noise).numpy()
        a, sd = math.sqrt(s.alpha_bars[t]), math.sqrt(1 - s.alpha_bars[t])
        se = sd / math.sqrt(len(x0))
        np.testing.assert_allclose(x_t.mean(0), a * x0[0], atol=5 * se + 1e-6)
        np.testing.assert_allclose(x_t.std(0), sd, rtol=5 / math.sqrt(2 * len(x0)) + 1e-6)


def _moment_errors(samples, mean, cov):
    """(mean error / its SE, covariance error / its SE), worst entry of each."""
    n = len(samples)
    m_z = np.abs(samples.mean(0) - mean) / np.sqrt(np.diag(cov) / n)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    c_z = np.abs(np.cov(samples.T) - cov) / se_cov
    return m_z.max(), c_z.max()


def _run(schedule, steps, eta, prediction="epsilon", seed=3):
    denoise = diffusion.gaussian_denoiser(MEAN, COV, schedule, prediction)
    x_T = tf.random.stateless_normal((N, 2), seed=[seed, 0])

    @tf.function
    def run(x):
        return diffusion.sample(denoise, x, schedule, steps, eta=eta, seed=seed, prediction=prediction)

    return run(x_T).numpy()


@pytest.mark.parametrize("steps, eta", [(1000, 1.0), (1000, 0.0), (10, 0.0), (10, 1.0), (50, 0.5)])
def test_sampler_reproduces_its_exact_moments(steps, eta):
    schedule = diffusion.NoiseSchedule("linear", 1000)
    mean, cov = diffusion.gaussian_sample_moments(MEAN, COV, schedule, steps, eta)
    samples = _run(schedule, steps, eta)
    m_z, c_z = _moment_errors(samples, mean, cov)
    # 6 moment entries per run: 4.5 standard errors leaves a false alarm well under 1e-4.
    assert m_z < 4.5 and c_z < 4.5, (steps, eta, m_z, c_z, mean, cov)


def test_many_steps_reach_the_data_and_few_show_their_discretisation_error():
    schedule = diffusion.NoiseSchedule("linear", 1000)
    ddpm = diffusion.gaussian_sample_moments(MEAN, COV, schedule, 1000, eta=1.0)
    ddim = diffusion.gaussian_sample_moments(MEAN, COV, schedule, 1000, eta=0.0)
    for mean, cov in (ddpm, ddim):
        np.testing.assert_allclose(mean, MEAN, atol=0.01)
        np.testing.assert_allclose(cov, COV, atol=0.01)
    few_mean, few_cov = diffusion.gaussian_sample_moments(MEAN, COV, schedule, 10, eta=0.0)
    error = np.abs(few_cov - COV).max()
    se = np.sqrt((np.outer(np.diag(COV), np.diag(COV)) + COV**2) / N).max()
    assert error > 8 * se, (error, se)  # large enough that the samples show it
    samples = _run(schedule, 10, 0.0)
    assert np.abs(np.cov(samples.T) - COV).max() > 4 * se


def test_v_prediction_samples_as_epsilon_prediction():
    schedule = diffusion.NoiseSchedule("cosine", 200)
    eps = _run(schedule, 20, 0.0, "epsilon")
    v = _run(schedule, 20, 0.0, "v")
    np.testing.assert_allclose(v, eps, atol=2e-4)


def test_ddim_inversion_round_trips_with_first_order_error():
    schedule = diffusion.NoiseSchedule("linear", 1000)
    denoise = diffusion.gaussian_denoiser(MEAN, COV, schedule)
    x0 = tf.random.stateless_normal((500, 2), seed=[5, 0]) @ np.linalg.cholesky(COV).T.astype(np.float32) + MEAN
    x0 = tf.cast(x0, tf.float32)
    errors = {}
    for steps in (200, 1000):
        latents = diffusion.invert(denoise, x0, schedule, steps)
        back = diffusion.sample(denoise, latents, schedule, steps, eta=0.0)
        errors[steps] = float(tf.reduce_max(tf.abs(back - x0)))
    # Inversion reuses the previous point's prediction: an O(1/steps) error
    # (measured: 0.053 at 200 steps, 0.011 at 1,000).
    assert errors[1000] < 0.02 and errors[200] > 2.5 * errors[1000], errors
    # The latents are standard normal, the prior the sampler starts from.
    assert abs(float(tf.math.reduce_std(latents)) - 1.0) < 0.1


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="schedule must be one of"):
        diffusion.NoiseSchedule("quadratic", 10)
    with pytest.raises(ValueError, match="sampling steps"):
        diffusion.NoiseSchedule("linear", 10).timesteps(11)
