"""The energy-based family: exact densities on a grid, the replay buffer as state,
sampling against a known energy, the divergence guard, export."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.callbacks import EnergyDivergenceGuard, TrainingDiverged
from keras_gen.evaluation.likelihood import grid_log_likelihood, grid_log_partition, grid_samples
from keras_gen.models import ebm
from keras_gen.sampling import langevin


def blob(n=256, seed=0, centre=(1.0, 1.0), std=0.3):
    return (np.array(centre) + std * np.random.default_rng(seed).standard_normal((n, 2))).astype("float32")


def tiny_model(**kwargs):
    options = dict(
        sample_range=(-3.0, 3.0), buffer_size=96, langevin_steps=10, step_size=0.01, noise_scale=None,
        gradient_clip=None, sample_steps=50, seed=3, network_kwargs={"hidden": [32, 32]},
    )  # fmt: skip
    options.update(kwargs)
    model = ebm.make_ebm("mlp", (2,), **options)
    model.compile(optimizer=keras.optimizers.Adam(3e-3, beta_1=0.0))
    return model


def test_grid_log_partition_is_exact_for_gaussians_and_mixtures():
    """The midpoint rule on 400^2 cells against log(2 pi s1 s2) and a normalised mixture (log Z = 0)."""
    stds = np.array([0.3, 0.5])
    energy = langevin.quadratic_energy(np.diag(1 / stds**2), mean=[0.2, -0.1])
    log_z = grid_log_partition(lambda x: energy(x).numpy(), -4.0, 4.0, points=400)
    assert abs(log_z - np.log(2 * np.pi * stds.prod())) < 1e-5
    mixture = langevin.gaussian_mixture_energy([[-1.0, 0.0], [1.5, 1.0]], [0.2, 0.4], [0.3, 0.7])
    x = blob(50, centre=(1.5, 1.0), std=0.4)
    log_p, log_z = grid_log_likelihood(lambda v: mixture(v).numpy(), x, -4.0, 4.0, points=400)
    assert abs(log_z) < 1e-5
    np.testing.assert_allclose(log_p, -mixture(x).numpy(), atol=1e-5)


@pytest.mark.slow
def test_replay_buffer_is_written_cyclically_and_chains_start_from_it():
    model = tiny_model(buffer_size=96)
    initial = model.replay_buffer.numpy().copy()
    low, high = model.sample_range
    assert initial.min() >= low and initial.max() <= high and initial.std() > 1.0  # uniform noise
    model.fit(blob(32), epochs=1, batch_size=32, verbose=0)
    after = model.replay_buffer.numpy()
    assert int(model.buffer_position.numpy()) == 32
    np.testing.assert_array_equal(after[32:], initial[32:])  # only the next rows were written
    assert not np.allclose(after[:32], initial[:32])
    model.fit(blob(64), epochs=1, batch_size=32, verbose=0)
    assert int(model.buffer_position.numpy()) == 0  # 96 rows written: back to the start

    seed = tf.constant([1, 2])
    model.fresh_fraction = 0.0
    starts = model.chain_starts(500, seed).numpy()
    rows = {tuple(r) for r in model.replay_buffer.numpy()}
    assert all(tuple(s) in rows for s in starts)
    model.fresh_fraction = 1.0
    assert not any(tuple(s) in rows for s in model.chain_starts(500, seed).numpy())


@pytest.mark.slow
def test_buffer_and_seed_are_saved_and_training_resumes_exactly(tmp_path):
    keras.utils.set_random_seed(0)
    model = tiny_model()
    x = blob(128)
    model.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    model.save(tmp_path / "ebm.keras")
    loaded = keras.saving.load_model(tmp_path / "ebm.keras")
    np.testing.assert_array_equal(loaded.replay_buffer.numpy(), model.replay_buffer.numpy())
    assert int(loaded.buffer_position.numpy()) == int(model.buffer_position.numpy())
    for m in (model, loaded):
        m.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)
    np.testing.assert_array_equal(model.sample(8, seed=2), loaded.sample(8, seed=2))


@pytest.mark.slow
def test_training_lowers_the_energy_of_data_and_samples_find_it():
    keras.utils.set_random_seed(0)
    model = tiny_model(buffer_size=512, langevin_steps=20, step_size=0.005)
    x = blob(2048)
    history = model.fit(x, epochs=6, batch_size=128, verbose=0).history
    assert set(history) >= {"loss", "energy_data", "energy_samples", "energy_gap", "sampler_gradient_norm"}
    far = np.random.default_rng(1).uniform(-3, 3, (2048, 2)).astype("float32")
    far = far[np.linalg.norm(far - 1.0, axis=1) > 1.5]
    assert model.energy(x).numpy().mean() < model.energy(far).numpy().mean() - 1.0
    # Chains from uniform noise gather where the data are (a uniform point is within 0.6
    # of the centre 3.5% of the time; the data 86%).
    samples = model.sample(1000, seed=0, steps=300, method="mala", step_size=0.01)
    assert np.linalg.norm(samples.mean(0) - 1.0) < 0.3, samples.mean(0)
    assert (np.linalg.norm(samples - 1.0, axis=1) < 0.6).mean() > 0.3
    np.testing.assert_allclose(model.log_density(x[:5]), -model.energy(x[:5]))


def quadratic_model(stds=None, weights=None):
    """An EnergyModel whose energy network is exactly |x W|^2 / 2 (a Dense layer of fixed
    weights W, squared; W = diag(1/s) by default), a Gaussian of precision W W^T, so its
    samples have known moments."""
    x_in = keras.Input((2,))
    scaled = keras.layers.Dense(2, use_bias=False, trainable=False)
    h = scaled(x_in)
    energy = keras.layers.Dense(1, use_bias=False, trainable=False)(h * h)
    network = keras.Model(x_in, keras.layers.Reshape(())(energy))
    scaled.set_weights([(np.diag(1 / stds) if weights is None else weights).astype("float32")])
    network.layers[-2].set_weights([np.full((2, 1), 0.5, "float32")])
    return ebm.EnergyModel(
        network, sample_range=(-8.0, 8.0), buffer_size=8, gradient_clip=None, data_domain="real", seed=0
    )


def test_model_samples_its_energy_exactly_with_mala_and_with_known_bias_by_ula():
    stds = np.array([0.5, 1.0])
    model = quadratic_model(stds)
    n = 8000
    exact = model.sample(n, seed=1, steps=400, step_size=0.1, method="mala")
    se = stds**2 * np.sqrt(2.0 / n)
    assert np.all(np.abs(exact.var(0) - stds**2) < 5 * se), exact.var(0)
    biased = model.sample(n, seed=1, steps=400, step_size=0.1)
    expected = langevin.ula_gaussian_variance(stds**2, 0.1)
    assert np.all(np.abs(biased.var(0) - expected) < 5 * expected * np.sqrt(2.0 / n)), (biased.var(0), expected)
    score = model.score(exact[:4]).numpy()
    np.testing.assert_allclose(score, -exact[:4] / stds**2, rtol=1e-4, atol=1e-5)


def test_inpainting_samples_the_exact_conditional_and_denoising_starts_from_the_input():
    """With x_2 known, `inpaint` (MALA) must sample p(x_1 | x_2) of the model's Gaussian:
    mean -P_12 x_2 / P_11, variance 1 / P_11, P = W W^T; the known value never moves."""
    weights = np.array([[1.5, 0.0], [0.9, 0.8]])
    precision = weights @ weights.T
    model = quadratic_model(weights=weights)
    n, given = 8000, 1.2
    x = np.zeros((n, 2), "float32")
    x[:, 1] = given
    filled = model.inpaint(x, [False, True], steps=300, step_size=0.2, seed=4, method="mala")
    assert np.all(filled[:, 1] == np.float32(given))
    mean, var = -precision[0, 1] * given / precision[0, 0], 1.0 / precision[0, 0]
    assert abs(filled[:, 0].mean() - mean) < 5 * np.sqrt(var / n), (filled[:, 0].mean(), mean)
    assert abs(filled[:, 0].var() - var) < 5 * var * np.sqrt(2.0 / n), (filled[:, 0].var(), var)
    # A chain of no steps returns its start: denoising moves the corrupted input, not noise.
    np.testing.assert_array_equal(model.denoise(x[:3], steps=0), x[:3])
    assert np.abs(model.denoise(x[:3], steps=50, step_size=0.05, noise_scale=0.0)).max() < given
    with pytest.raises(ValueError, match="known.*shape"):
        model.inpaint(x, [True, False, True])
    with pytest.raises(ValueError, match="booleans or 0/1"):
        model.inpaint(x, [0.5, 1.0])


def test_divergence_guard_restores_and_names_epoch_and_step():
    keras.utils.set_random_seed(0)
    model = tiny_model()
    x = blob(256)
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    healthy = [w.numpy().copy() for w in model.weights]
    # Any real step trips a guard this strict: it must put back the weights fit began with.
    guard = EnergyDivergenceGuard(max_energy=1e-6)
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 1, step 1: \|energy_"):
        model.fit(x, epochs=2, batch_size=32, verbose=0, callbacks=[guard])
    for w, a in zip(model.weights, healthy):
        if not w.path.startswith("seed_generator"):
            np.testing.assert_array_equal(w.numpy(), a, err_msg=w.path)
    default = EnergyDivergenceGuard()
    assert default.problem({"energy_data": np.nan}) == "non-finite energy_data"
    assert "max_gap" in default.problem({"energy_data": 0.0, "energy_samples": 0.0, "energy_gap": 60.0})
    assert default.problem({"energy_data": -3.0, "energy_samples": 2.0, "energy_gap": 5.0, "loss": 0.1}) is None


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="sample_range"):
        ebm.make_ebm("mlp", (2,))
    with pytest.raises(ValueError, match="fresh_fraction"):
        ebm.make_ebm("mlp", (2,), sample_range=(-1, 1), fresh_fraction=1.5)
    with pytest.raises(ValueError, match="low < high"):
        ebm.make_ebm("mlp", (2,), sample_range=(1, -1))
    with pytest.raises(ValueError, match="architecture"):
        ebm.make_ebm("transformer")


def test_sampling_takes_step_and_noise_schedules_one_value_per_step():
    model = tiny_model()
    h, noise = 0.01, 0.05
    scalar = model.sample(8, seed=2, steps=10, step_size=h, noise_scale=noise)
    constant = model.sample(8, seed=2, steps=10, step_size=np.full(10, h), noise_scale=np.full(10, noise))
    np.testing.assert_array_equal(constant, scalar)
    # Step i takes entry i: ten more steps that do not move leave the chains where they were.
    halted = model.sample(8, seed=2, steps=20, step_size=[h] * 10 + [0.0] * 10, noise_scale=[noise] * 10 + [0.0] * 10)
    np.testing.assert_allclose(halted, scalar, atol=1e-6)
    with pytest.raises(ValueError, match="one value per step"):
        model.sample(8, seed=2, steps=10, step_size=np.full(9, h))
    with pytest.raises(ValueError, match="noise_scale must be finite and non-negative"):
        model.sample(8, seed=2, steps=10, noise_scale=[noise] * 9 + [np.nan])


@pytest.mark.slow
def test_export_serves_energy_score_and_samples_without_keras_gen(tmp_path, serve_without_keras_gen):
    model = tiny_model()
    model.fit(blob(64), epochs=1, batch_size=32, verbose=0)
    model.export_saved_model(str(tmp_path / "export"))
    x = blob(5, seed=4)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "energy.npy", model.energy(x).numpy())
    np.save(tmp_path / "score.npy", model.score(x).numpy())
    np.save(tmp_path / "sample.npy", model.sample(6, seed=3, steps=20, step_size=0.01))
    np.save(tmp_path / "from.npy", model.sample(5, seed=3, steps=20, step_size=0.01, x0=x))
    output = serve_without_keras_gen(
        """
        x = tf.constant(np.load(os.path.join(d, "x.npy")))
        chain = dict(steps=tf.constant(20), step_size=tf.constant(0.01), noise_scale=tf.constant(0.01 * 2) ** 0.5,
                     seed=tf.constant(3))
        e = served.signatures["energy"](x=x)["energy"].numpy()
        s = served.signatures["score"](x=x)["score"].numpy()
        smp = served.signatures["sample"](n=tf.constant(6), **chain)["x"].numpy()
        frm = served.signatures["sample_from"](x0=x, **chain)["x"].numpy()
        for got, name in ((e, "energy"), (s, "score"), (smp, "sample"), (frm, "from")):
            np.testing.assert_allclose(got, np.load(os.path.join(d, name + ".npy")), rtol=1e-5, atol=1e-5)
        print("served", e.shape, s.shape, smp.shape, frm.shape)
        """,
        tmp_path,
    )
    assert "served (5,) (5, 2) (6, 2) (5, 2)" in output


def test_grid_samples_are_exact_samples_of_the_density():
    stds = np.array([0.3, 0.5])
    energy = langevin.quadratic_energy(np.diag(1 / stds**2), mean=[0.2, -0.1])
    x = grid_samples(lambda v: energy(v).numpy(), -4.0, 4.0, points=400, n=20_000, seed=1)
    se = stds / np.sqrt(len(x))
    assert np.all(np.abs(x.mean(0) - [0.2, -0.1]) < 5 * se)
    assert np.all(np.abs(x.std(0) - stds) < 5 * stds / np.sqrt(2 * len(x)))


@pytest.mark.slow
def test_cli_trains_and_samples_an_energy_model(tmp_path, monkeypatch, capsys):
    from keras_gen import cli

    monkeypatch.chdir(tmp_path)
    cli.main(
        ["train", "ebm", "--epochs", "1", "--steps-per-epoch", "4", "--hidden", "16", "--k", "5", "--verbose", "0"]
        + ["--out", "run"]
    )
    assert (tmp_path / "run" / "model.keras").exists()
    capsys.readouterr()
    cli.main(["sample", "run/model.keras", "-n", "32", "--steps", "20", "--method", "mala", "--step-size", "1e-4"]
             + ["--npy", "s.npy", "--out", "s.png"])  # fmt: skip
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (32, 2) and np.isfinite(samples).all() and np.abs(samples).max() <= 3.0
    with pytest.raises(SystemExit, match="--eta do not apply"):
        cli.main(["sample", "run/model.keras", "-n", "4", "--eta", "1.0"])


def test_cli_samples_a_zoo_entry_as_its_card_says(tmp_path, monkeypatch):
    """`keras-gen sample ebm_ring8` draws with the card's sampler (6,000 MALA steps
    of size 0.002), not the model's own default; a flag overrides one setting."""
    from keras_gen import cli, zoo

    monkeypatch.chdir(tmp_path)
    model = zoo.load("ebm_ring8")
    card = model.zoo_card["sample_kwargs"]
    assert card["steps"] != model.sample_steps  # or the check below could not fail
    cli.main(["sample", "ebm_ring8", "-n", "16", "--npy", "card.npy", "--out", "card.png"])
    drawn = np.load("card.npy")
    np.testing.assert_allclose(drawn, model.sample(16, seed=0, **card), rtol=1e-5, atol=1e-5)
    assert np.abs(drawn - model.sample(16, seed=0)).max() > 0.1
    cli.main(["sample", "ebm_ring8", "-n", "16", "--steps", "40", "--npy", "flag.npy", "--out", "flag.png"])
    shortened = model.sample(16, seed=0, **{**card, "steps": 40})
    np.testing.assert_allclose(np.load("flag.npy"), shortened, rtol=1e-5, atol=1e-5)
