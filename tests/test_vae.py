"""The VAE family against what can be computed exactly, and its Keras contract."""

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import Interrupt

from keras_gen import runs
from keras_gen.core.validation import DataError
from keras_gen.models.vae import VAE, Sampling, make_vae


def tiny_vae(seed=0, latent_dim=2, dim=12, likelihood="bernoulli"):
    return make_vae(
        "dense",
        (dim,),
        latent_dim=latent_dim,
        likelihood=likelihood,
        seed=seed,
        encoder_kwargs={"hidden": [16]},
        decoder_kwargs={"hidden": [16]},
        name="tiny_vae",
    )


def binary_data(n=256, dim=12, seed=0):
    """Two prototypes with 10% bit flips: structure a tiny VAE can learn."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((2, dim)) < 0.5
    x = prototypes[rng.integers(0, 2, n)] ^ (rng.random((n, dim)) < 0.1)
    return x.astype(np.float32)


# ------------------------------------------------------------------ maths
def test_sampling_layer_has_the_requested_moments():
    mean = np.array([[1.5, -2.0]], np.float32).repeat(40_000, 0)
    log_var = np.log(np.array([[0.25, 4.0]], np.float32)).repeat(40_000, 0)
    z = keras.ops.convert_to_numpy(Sampling(seed=3)([mean, log_var]))
    n = len(z)
    std = np.array([0.5, 2.0])
    # Sample mean within 4 standard errors; sample std within 4 of its standard errors.
    assert np.all(np.abs(z.mean(0) - mean[0]) < 4 * std / math.sqrt(n))
    assert np.all(np.abs(z.std(0) - std) < 4 * std / math.sqrt(2 * n))


def test_kl_closed_form_matches_monte_carlo():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=(3, 4)).astype(np.float32)
    log_var = rng.normal(scale=0.7, size=(3, 4)).astype(np.float32)
    closed = keras.ops.convert_to_numpy(VAE.kl_divergence(mean, log_var))
    n = 200_000
    std = np.exp(0.5 * log_var)
    z = mean[None] + std[None] * rng.standard_normal((n, *mean.shape))
    log_q = -0.5 * (((z - mean) / std) ** 2 + log_var + math.log(2 * math.pi)).sum(-1)
    log_p = -0.5 * (z**2 + math.log(2 * math.pi)).sum(-1)
    terms = log_q - log_p
    mc, sem = terms.mean(0), terms.std(0) / math.sqrt(n)
    assert np.all(np.abs(mc - closed) < 4 * sem), (mc, closed, sem)


def exact_log_likelihood_1d_latent(model, x, grid=4001, bound=9.0):
    """log p(x) = log ∫ p(x|z) N(z; 0, 1) dz by quadrature, for a 1-D latent."""
    z = np.linspace(-bound, bound, grid, dtype=np.float32)[:, None]
    logits = keras.ops.convert_to_numpy(model.decoder(z))  # (grid, D)
    log_px_z = x @ logits.T - np.logaddexp(0, logits).sum(1)[None]  # (N, grid)
    log_prior = -0.5 * z[:, 0] ** 2 - 0.5 * math.log(2 * math.pi)
    dz = z[1, 0] - z[0, 0]
    from scipy.special import logsumexp

    return logsumexp(log_px_z + log_prior[None], axis=1) + math.log(dz)


@pytest.mark.slow
def test_iwae_bound_is_below_exact_likelihood_and_tightens_with_k():
    keras.utils.set_random_seed(0)
    x = binary_data(512, dim=8)
    model = tiny_vae(seed=0, latent_dim=1, dim=8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, batch_size=64, epochs=15, verbose=0, shuffle=False)
    xe = x[:64]
    exact = exact_log_likelihood_1d_latent(model, xe)
    bounds = {k: model.importance_weighted_log_likelihood(xe, k=k, batch_size=64, seed=5) for k in (1, 10, 100, 2000)}
    means = {k: float(v.mean()) for k, v in bounds.items()}
    # Monotone in k (in expectation; the gaps here are far above the Monte Carlo noise).
    assert means[1] < means[10] < means[100] <= means[2000] + 1e-3, means
    # A lower bound in expectation, and converging to the exact value: averaged over
    # 64 examples, k = 2000 lands within a few hundredths of a nat below it. (One
    # example's estimate may exceed log p(x) by Monte Carlo noise; the mean may not.)
    gap = exact.mean() - means[2000]
    assert -0.01 < gap < 0.05, (means, exact.mean())
    # The k = 1 bound is the ELBO: it matches the model's test loss in expectation.
    elbo = -model.evaluate(xe, batch_size=64, verbose=0, return_dict=True)["loss"]
    assert abs(means[1] - elbo) < 3 * bounds[1].std() / math.sqrt(len(xe)) + 0.05


def test_gaussian_likelihood_is_a_normalised_density():
    model = tiny_vae(seed=0, dim=2, likelihood="gaussian")
    x = np.zeros((1, 2), np.float32)
    mean = np.array([[0.5, -0.5]], np.float32)
    model.decoder_log_scale.assign(np.log([0.5, 2.0]).astype(np.float32))
    got = float(keras.ops.convert_to_numpy(model.log_likelihood_given_z(x, mean))[0])
    from scipy.stats import norm

    want = norm.logpdf(0, 0.5, 0.5) + norm.logpdf(0, -0.5, 2.0)
    assert abs(got - want) < 1e-5


# ------------------------------------------------------------------ training contract
@pytest.mark.slow
def test_fit_learns_and_reports_the_three_metrics():
    keras.utils.set_random_seed(0)
    x = binary_data(512)
    model = tiny_vae(seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    assert model.jit_compile is True  # XLA by default, also on CPU
    history = model.fit(x, batch_size=64, epochs=6, verbose=0, validation_data=x[:128])
    h = history.history
    assert {"loss", "reconstruction_loss", "kl_loss", "val_loss"} <= set(h)
    np.testing.assert_allclose(
        np.array(h["loss"]), np.array(h["reconstruction_loss"]) + np.array(h["kl_loss"]), rtol=1e-5
    )
    # 12 fair coins cost 12 log 2 = 8.3 nats; the two-prototype structure is far cheaper.
    assert h["loss"][0] > h["loss"][-1]
    assert h["val_loss"][-1] < 0.8 * 12 * math.log(2)


@pytest.mark.slow
def test_keras_round_trip_gives_identical_outputs_and_identical_continued_training(tmp_path):
    keras.utils.set_random_seed(0)
    x = binary_data(256)
    model = tiny_vae(seed=7)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, batch_size=64, epochs=2, verbose=0, shuffle=False)
    path = str(tmp_path / "vae.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)

    assert isinstance(loaded, VAE) and loaded.likelihood == "bernoulli"
    for a, b in [
        (model.reconstruct(x[:8]), loaded.reconstruct(x[:8])),
        (model.encode(x[:8])[1], loaded.encode(x[:8])[1]),
        (model.sample(5, seed=3), loaded.sample(5, seed=3)),
    ]:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    # The optimizer state (Adam moments, iteration) and the seed state came along:
    # one more epoch on both gives the same weights, bit for bit.
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy())
    np.testing.assert_array_equal(loaded.seed_state.numpy(), model.seed_state.numpy())
    model.fit(x, batch_size=64, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, batch_size=64, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def _train_in(out_dir, x, epochs, interrupt_at=None):
    keras.utils.set_random_seed(0)
    model = tiny_vae(seed=11)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    callbacks = [Interrupt(interrupt_at)] if interrupt_at else []
    runs.fit_with_artifacts(
        model,
        tf.data.Dataset.from_tensor_slices(x).batch(64),
        out_dir,
        epochs=epochs,
        n_samples=16,
        callbacks=callbacks,
        verbose=0,
    )
    return model


@pytest.mark.slow
def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    x = binary_data(256)
    straight = _train_in(str(tmp_path / "straight"), x, epochs=4)
    with pytest.raises(KeyboardInterrupt):
        _train_in(str(tmp_path / "resumed"), x, epochs=4, interrupt_at=2)
    # The interruption came from a callback at the end of epoch 2, before its
    # checkpoint and backup: epoch 2 is not marked done and is trained again.
    assert sorted(os.listdir(tmp_path / "resumed" / "checkpoints")) == ["epoch_001.keras"]
    resumed = _train_in(str(tmp_path / "resumed"), x, epochs=4)
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7, err_msg=a.path)
    history = runs.read_history(str(tmp_path / "resumed" / "history.csv"))
    assert len(history["loss"]) == 4
    for name in ("loss_curves.png", "model.keras", "samples/training.gif", "checkpoints/epoch_004.keras"):
        assert (tmp_path / "resumed" / name).exists(), name


def test_xla_by_default_except_convolutions_on_cpu():
    if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
        pytest.skip("the CPU-only default")
    conv = make_vae("conv", (28, 28, 1), latent_dim=2, seed=0)
    conv.compile(optimizer="adam")
    assert conv.jit_compile is False  # oneDNN convolutions beat XLA's on a CPU
    conv.compile(optimizer="adam", jit_compile=True)
    assert conv.jit_compile is True
    dense = tiny_vae(seed=0)
    dense.compile(optimizer="adam")
    assert dense.jit_compile is True


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((8, 11), np.float32), "shape"),
        (np.full((8, 12), np.nan, np.float32), "NaN"),
        (np.full((8, 12), 3.0, np.float32), r"\[0, 1\]"),
        (np.array([["a"] * 12] * 8), "numeric"),
    ],
)
def test_bad_input_is_refused_before_any_work(tmp_path, bad, message):
    model = tiny_vae(seed=0)
    model.compile(optimizer="adam")
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(DataError, match=message):
        runs.fit_with_artifacts(model, bad, str(tmp_path / "run"), epochs=1, verbose=0)
    assert not (tmp_path / "run").exists()  # nothing written
    with pytest.raises(DataError, match=message):
        model.fit(bad, epochs=1, verbose=0)
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b.numpy())
    assert int(model.optimizer.iterations.numpy()) == 0


def test_bad_dataset_is_refused_from_its_spec():
    model = tiny_vae(seed=0)
    model.compile(optimizer="adam")
    ds = tf.data.Dataset.from_tensor_slices(np.zeros((8, 3, 4), np.float32)).batch(4)
    with pytest.raises(DataError, match="batch, 12"):
        model.fit(ds, epochs=1, verbose=0)


# ------------------------------------------------------------------ the conv VAE
def test_conv_vae_is_the_keras_io_architecture():
    model = make_vae("conv", (28, 28, 1), latent_dim=2, seed=0)
    # keras.io: Conv(32) Conv(64) Dense(16) -> (2, 2); Dense(7*7*64) ConvT(64) ConvT(32) ConvT(1).
    assert model.encoder.count_params() == 69_076
    assert model.decoder.count_params() == 65_089
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    assert model.reconstruct(x).shape == (3, 28, 28, 1)
    assert model.sample(4, seed=0).shape == (4, 28, 28, 1)
