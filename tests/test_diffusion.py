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
import warnings

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


@pytest.mark.slow
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


# ---------------------------------------------------------------- the family
def tiny_model(**kwargs):
    from keras_gen.models.diffusion import make_diffusion

    options = dict(steps=100, ema_momentum=0.9, seed=0, network_kwargs={"hidden": [32, 32]}, name="tiny_ddpm")
    options.update(kwargs)
    return make_diffusion("mlp", (2,), **options)


def gaussian_points(n=2048, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 2)) @ np.linalg.cholesky(COV).T + MEAN).astype("float32")


@pytest.mark.slow
def test_training_learns_the_optimal_denoiser_direction():
    """After training on Gaussian data the network's eps prediction correlates with
    the exact optimal denoiser's far better than at initialisation (zero output)."""
    import keras

    keras.utils.set_random_seed(0)
    model = tiny_model(prediction="epsilon")
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(gaussian_points(), epochs=15, batch_size=128, verbose=0).history
    assert history["loss"][-1] < 0.8 * history["loss"][0], history["loss"]
    exact = diffusion.gaussian_denoiser(MEAN, COV, model.schedule)
    x_t = tf.random.stateless_normal((512, 2), seed=[1, 2])
    for t in (20, 60):
        learned = model.denoise(x_t, tf.fill([512], t), network=model.network).numpy()
        target = exact(x_t, tf.constant(t)).numpy()
        residual = np.mean((learned - target) ** 2) / np.mean(target**2)
        assert residual < 0.15, (t, residual)


@pytest.mark.slow
def test_ema_is_the_moving_average_and_samples():
    import keras

    keras.utils.set_random_seed(0)
    model = tiny_model(ema_momentum=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    x = gaussian_points(64)
    average = [w.numpy().copy() for w in model.network.weights]
    for step in range(3):
        model.fit(x, epochs=1, batch_size=64, verbose=0, shuffle=False)
        m = min(0.5, (1 + step + 1) / (10 + step + 1))  # the warm-up rule of core.ema, after the update's step
        average = [m * a + (1 - m) * w.numpy() for a, w in zip(average, model.network.weights)]
    for a, w in zip(average, model.ema_network.weights):
        np.testing.assert_allclose(w.numpy(), a, rtol=1e-5, atol=1e-6)
    assert model.sampling_network is model.ema_network


@pytest.mark.slow
def test_save_load_and_seeded_sampling(tmp_path):
    import keras

    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(gaussian_points(256), epochs=1, batch_size=64, verbose=0)
    first = model.sample(16, seed=4, steps=10)
    np.testing.assert_array_equal(first, model.sample(16, seed=4, steps=10))
    assert not np.array_equal(first, model.sample(16, seed=5, steps=10))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.sample(16, seed=4, steps=10), first, atol=1e-6)
    for a, b in zip(model.ema_network.weights, loaded.ema_network.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert loaded.get_config()["schedule"] == "cosine" and loaded.schedule.steps == 100


@pytest.mark.slow
def test_class_conditional_training_and_guidance():
    import keras

    keras.utils.set_random_seed(0)
    model = tiny_model(num_classes=2, label_dropout=0.2)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2048).astype("int32")
    centres = np.array([[-2.0, 0.0], [2.0, 0.0]], np.float32)
    x = centres[labels] + 0.1 * rng.standard_normal((2048, 2)).astype("float32")
    model.fit(x, labels, epochs=25, batch_size=128, verbose=0)
    for label in (0, 1):
        samples = model.sample(400, seed=1, steps=50, label=label, guidance=1.0)
        # Most samples of a class lie on its side.
        assert np.mean(np.sign(samples[:, 0]) == (1 if label else -1)) > 0.9
    # One label per sample, and labels drawn uniformly from the seed.
    wanted = np.arange(400) % 2
    samples = model.sample(400, seed=2, steps=50, label=wanted, guidance=1.0)
    assert np.mean(np.sign(samples[:, 0]) == 2 * wanted - 1) > 0.9
    drawn = np.mean(model.sample(400, seed=3, steps=50, label="random", guidance=1.0)[:, 0] > 0)
    assert abs(drawn - 0.5) < 0.12  # binomial sd 0.025, plus the few misplaced samples
    # Guidance 0 skips the null-label pass; the result is the formula's at w -> 0,
    # and a guided run differs (the null-label pass is used when it counts).
    unguided = model.sample(64, seed=5, steps=20, label=wanted[:64], guidance=0.0)
    np.testing.assert_array_equal(unguided, model.sample(64, seed=5, steps=20, label=wanted[:64], guidance=1e-30))
    assert np.abs(unguided - model.sample(64, seed=5, steps=20, label=wanted[:64], guidance=1.0)).max() > 1e-3
    for bad, message in (([0, 1], "400 classes"), (2, r"\[0, 2\)"), ("all", "random"), (0.5, "integers")):
        with pytest.raises(ValueError, match=message):
            model.sample(400, seed=3, steps=5, label=bad)
    with pytest.raises(ValueError, match="pairs"):
        model.fit(x, epochs=1, verbose=0)


@pytest.mark.slow
def test_export_serves_sample_and_denoise_without_keras_gen(tmp_path, serve_without_keras_gen):
    import keras

    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(gaussian_points(256), epochs=1, batch_size=64, verbose=0)
    model.export_saved_model(str(tmp_path / "export"))
    np.save(tmp_path / "sample.npy", model.sample(8, seed=3, steps=20, eta=0.5))
    x_t = gaussian_points(5, seed=9)
    np.save(tmp_path / "x_t.npy", x_t)
    np.save(tmp_path / "denoise.npy", model.denoise(x_t, tf.fill([5], 30), network=model.sampling_network).numpy())
    output = serve_without_keras_gen(
        """
        smp = served.signatures["sample"](n=tf.constant(8), steps=tf.constant(20), eta=tf.constant(0.5),
                                          seed=tf.constant(3))["x"].numpy()
        den = served.signatures["denoise"](x_t=tf.constant(np.load(os.path.join(d, "x_t.npy"))),
                                           t=tf.fill([5], 30))["prediction"].numpy()
        np.testing.assert_allclose(smp, np.load(os.path.join(d, "sample.npy")), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(den, np.load(os.path.join(d, "denoise.npy")), atol=1e-6)
        print("served", smp.shape, den.shape)
        """,
        tmp_path,
    )
    assert "served (8, 2) (5, 2)" in output


@pytest.mark.slow
def test_cli_trains_and_samples_a_diffusion_model(tmp_path, monkeypatch, capsys):
    from keras_gen import cli

    monkeypatch.chdir(tmp_path)
    cli.main(["train", "diffusion", "--epochs", "1", "--hidden", "32", "--verbose", "0", "--out", "run"])
    assert (tmp_path / "run" / "model.keras").exists()
    capsys.readouterr()
    cli.main(
        ["sample", "run/model.keras", "-n", "64", "--steps", "10", "--eta", "1.0", "--npy", "s.npy", "--out", "s.png"]
    )
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (64, 2) and np.isfinite(samples).all()
    with pytest.raises(SystemExit, match="class-conditional"):
        cli.main(["sample", "run/model.keras", "-n", "4", "--label", "3"])  # unconditional: no labels


def test_stop_after_gives_the_points_of_one_trajectory():
    """A deterministic run stopped after k steps, continued over the remaining steps from there,
    is the full run: stop_after returns points of the same trajectory."""
    model = tiny_model()
    x_T = gaussian_points(8, seed=2)
    full = model.sample(8, seed=1, steps=10, x_T=x_T)
    start = model.sample(8, seed=1, steps=10, x_T=x_T, stop_after=0)
    np.testing.assert_array_equal(start, x_T)
    middle = model.sample(8, seed=1, steps=10, x_T=x_T, stop_after=4)
    assert not np.allclose(middle, full) and not np.allclose(middle, x_T)
    np.testing.assert_allclose(model.sample(8, seed=1, steps=10, x_T=x_T, stop_after=10), full, atol=1e-6)


@pytest.mark.slow
def test_a_bfloat16_unet_trains_saves_and_predicts_like_float32(tmp_path):
    import keras

    from keras_gen.core import hardware
    from keras_gen.models.diffusion import build_unet, make_diffusion

    shape = dict(image_shape=(8, 8, 1), widths=(8, 16), block_depth=1, attention=True, groups=4, num_classes=2)
    kwargs = {k: v for k, v in shape.items() if k not in ("image_shape", "num_classes")}
    # A CPU without bfloat16 instructions is told that it emulates them (and only such a CPU).
    emulated = hardware.bfloat16_is_emulated()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = make_diffusion(
            "unet", (8, 8, 1), steps=50, prediction="v", num_classes=2, seed=0,
            network_kwargs={**kwargs, "dtype_policy": "mixed_bfloat16"},
        )  # fmt: skip
    slow = [w for w in caught if issubclass(w.category, hardware.SlowPrecisionWarning)]
    assert len(slow) == int(emulated), [str(w.message) for w in caught]
    policies = {layer.dtype_policy.name for layer in model.network.layers if layer.weights}
    assert policies == {"mixed_bfloat16", "float32"}  # float32: the output layer
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    assert all(w.dtype == "float32" for w in model.network.weights)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 8, 8, 1)).astype("float32")
    labels = rng.integers(0, 2, 64).astype("int32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    loss = model.fit(x, labels, epochs=1, batch_size=32, verbose=0).history["loss"][-1]
    assert np.isfinite(loss)
    # The same weights computing in float32 predict within bfloat16's precision (8 bits).
    reference = build_unet(**shape)
    reference.set_weights(model.network.get_weights())
    t = rng.integers(0, 50, 64).astype("int32")
    mixed = model.denoise(x, t, labels).numpy()
    exact = model.denoise(x, t, labels, network=reference).numpy()
    assert mixed.dtype == np.float32
    assert np.abs(mixed - exact).max() < 0.05 * np.abs(exact).max() + 1e-3
    # A saved model computes as it was trained.
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert {layer.dtype_policy.name for layer in loaded.network.layers if layer.weights} == policies
    np.testing.assert_array_equal(loaded.sample(4, seed=1, steps=5), model.sample(4, seed=1, steps=5))


def test_bfloat16_emulation_is_read_from_the_cpu_flags(tmp_path, monkeypatch):
    """The flags line of /proc/cpuinfo decides; an unreadable file decides nothing."""
    from keras_gen.core import hardware

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 f16c\n")
    assert hardware.cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "avx", "avx2", "f16c"}
    assert hardware.cpu_flags(str(tmp_path / "missing")) is None
    monkeypatch.setattr(hardware, "bfloat16_is_emulated", lambda: True)
    with pytest.warns(hardware.SlowPrecisionWarning, match="owner: dtype policy 'mixed_bfloat16'.*10x slower"):
        hardware.warn_if_slow_policy("mixed_bfloat16", "owner")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hardware.warn_if_slow_policy("float32", "owner")  # float32 is never slow
        hardware.warn_if_slow_policy(None, "owner")
