"""The shared Langevin sampler against exact answers.

Every chain is independent, so the final states of n chains are n
independent draws once the chains have forgotten their start: a mean has
standard error sqrt(var / n), a variance var sqrt(2 / n), a covariance
sqrt((v1 v2 + c^2) / n). The tolerances are 5 of those (seeds are fixed, so
the tests are deterministic; 5 standard errors keep them meaningful).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras_gen.sampling import langevin

N = 10_000


def run(energy, x0, steps, step, seed=0, **kwargs):
    fn = tf.function(
        lambda x: langevin.langevin(energy, x, steps, step, seed=tf.constant([seed, 7]), **kwargs), jit_compile=True
    )
    result = fn(tf.constant(x0, tf.float32))
    return result.x.numpy().astype(np.float64), result


def overdispersed(n, dim, scale=3.0, seed=0):
    return scale * np.random.default_rng(seed).standard_normal((n, dim))


def assert_moments(x, mean, cov, n_se=5.0):
    n = len(x)
    mean, cov = np.asarray(mean), np.asarray(cov)
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) < n_se * se_mean), (x.mean(0), mean, se_mean)
    v = np.diag(cov)
    se_cov = np.sqrt((np.outer(v, v) + cov**2) / n)
    assert np.all(np.abs(np.cov(x.T) - cov) < n_se * se_cov), (np.cov(x.T), cov, se_cov)


def test_mala_samples_a_correlated_gaussian_exactly():
    """MALA leaves N(0, C) exactly invariant: with a step at which ULA is visibly biased
    (step 0.3 against a smallest variance of 0.2), the moments match C."""
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    x, result = run(langevin.quadratic_energy(np.linalg.inv(cov)), overdispersed(N, 2), 300, 0.3, method="mala")
    assert_moments(x, [0.0, 0.0], cov)
    rate = float(result.acceptance_rate)
    assert 0.4 < rate < 0.9, rate


def test_mala_mixes_a_two_mode_mixture_from_either_side():
    """A 30/70 mixture of N(-+1, 0.6^2 I) in 2-D, chains started all at (-3, 0) or all at
    (3, 0): both halves must end with the exact weight on x > 0 and the exact mean,
    so the answer does not depend on where the chains began (they mix)."""
    energy = langevin.gaussian_mixture_energy([[-1.0, 0.0], [1.0, 0.0]], [0.6, 0.6], [0.3, 0.7])
    half = N // 2
    starts = np.concatenate([np.tile([-3.0, 0.0], (half, 1)), np.tile([3.0, 0.0], (half, 1))])
    x, result = run(energy, starts, 500, 0.2, seed=1, method="mala")
    p_right = 0.7 * stats.norm.cdf(1 / 0.6) + 0.3 * stats.norm.sf(1 / 0.6)
    mean_x = 0.7 - 0.3
    var_x = 0.36 + 1.0 - mean_x**2
    for part in (x[:half], x[half:]):
        assert abs((part[:, 0] > 0).mean() - p_right) < 5 * np.sqrt(p_right * (1 - p_right) / half)
        assert abs(part[:, 0].mean() - mean_x) < 5 * np.sqrt(var_x / half)
        assert abs(part[:, 1].mean()) < 5 * np.sqrt(0.36 / half)
    assert 0.5 < float(result.acceptance_rate) <= 1.0


def test_clamped_mala_samples_the_exact_conditional():
    """Inpainting's maths: with x_3 clamped at 1.5, MALA on N(m, C) in 3-D must sample
    p(x_1, x_2 | x_3 = 1.5) = N(m_a + C_ab (1.5 - m_b) / C_bb, C_aa - C_ab C_ba / C_bb),
    and the clamped coordinate must not move at all, whatever the chains start from."""
    cov = np.array([[1.0, 0.5, 0.6], [0.5, 1.0, 0.2], [0.6, 0.2, 1.0]])
    mean = np.array([0.3, -0.2, 0.1])
    given = 1.5
    cond_mean = mean[:2] + cov[:2, 2] * (given - mean[2]) / cov[2, 2]
    cond_cov = cov[:2, :2] - np.outer(cov[:2, 2], cov[2, :2]) / cov[2, 2]
    values = np.zeros((N, 3))
    values[:, 2] = given
    known = np.zeros((N, 3), bool)
    known[:, 2] = True
    energy = langevin.quadratic_energy(np.linalg.inv(cov), mean)
    x, result = run(energy, overdispersed(N, 3), 300, 0.2, method="mala", clamp=(values, known))
    assert np.all(x[:, 2] == np.float32(given))
    assert_moments(x[:, :2], cond_mean, cond_cov)
    assert 0.4 < float(result.acceptance_rate) < 0.95
    # ULA's noisy descent keeps the clamp too, with a mask that broadcasts over the batch.
    x, _ = run(energy, overdispersed(100, 3), 20, 0.1, gradient_clip=0.5, clamp=(values[:100], [False, False, True]))
    assert np.all(x[:, 2] == np.float32(given))


@pytest.mark.parametrize("step, noise", [(0.1, None), (0.5, None), (0.2, 0.3)])
def test_ula_has_its_closed_form_step_size_bias(step, noise):
    """ULA on N(0, diag(1, 0.5)) converges to N(0, diag(v')), v' = noise^2 / (1 - (1 - step/v)^2):
    the measured variances match v' and, at the larger steps, are clearly not v."""
    variances = np.array([1.0, 0.5])
    energy = langevin.quadratic_energy(np.diag(1 / variances))
    x, result = run(energy, overdispersed(N, 2), 200, step, noise_scale=noise)
    expected = langevin.ula_gaussian_variance(variances, step, noise)
    measured = x.var(0)
    se = expected * np.sqrt(2.0 / N)
    assert np.all(np.abs(measured - expected) < 5 * se), (measured, expected)
    assert np.all(np.abs(x.mean(0)) < 5 * np.sqrt(expected / N))
    if step >= 0.5:  # the bias is 33% and 100% here: far beyond the noise
        assert np.all(np.abs(measured - variances) > 10 * se)
    assert float(result.acceptance_rate) == 1.0


@pytest.mark.slow  # the samplers' exact tests (ULA bias, MALA moments) stay in the default selection
def test_schedules_clipping_and_bounds():
    """Per-step schedules are followed; a clipped gradient bounds each move; a box holds."""
    energy = langevin.quadratic_energy(np.eye(3) * 100.0)
    x0 = np.full((4, 3), 2.0)
    # No noise and a clipped gradient: each step moves exactly step * clip towards 0.
    x, _ = run(energy, x0, 5, 0.1, noise_scale=0.0, gradient_clip=1.0)
    np.testing.assert_allclose(x, 2.0 - 5 * 0.1, rtol=1e-5)
    schedule = langevin.geometric_schedule(0.4, 0.1, 3)
    x, _ = run(energy, x0, 3, schedule, noise_scale=0.0, gradient_clip=1.0)
    np.testing.assert_allclose(x, 2.0 - schedule.sum(), rtol=1e-5)
    x, _ = run(langevin.quadratic_energy(np.eye(2) * 1e-3), overdispersed(500, 2), 50, 1.0, bounds=(-0.5, 0.5))
    assert x.min() >= -0.5 and x.max() <= 0.5
    x, result = run(langevin.quadratic_energy(np.eye(2)), np.zeros((2000, 2)), 100, 0.5, method="mala", bounds=(0, 1))
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert float(result.acceptance_rate) < 0.9  # proposals leaving the box were rejected


def test_refuses_inconsistent_settings():
    energy = langevin.quadratic_energy(np.eye(2))
    with pytest.raises(ValueError, match="method"):
        langevin.langevin(energy, np.zeros((1, 2)), 1, 0.1, method="hmc")
    with pytest.raises(ValueError, match="MALA"):
        langevin.langevin(energy, np.zeros((1, 2)), 1, 0.1, method="mala", noise_scale=0.1)
    with pytest.raises(ValueError, match="diverges"):
        langevin.ula_gaussian_variance([1.0], 2.5)
