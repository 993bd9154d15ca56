"""The GAN family against what can be computed exactly, and its Keras contract."""

import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import Interrupt
from scipy import stats

from keras_gen import callbacks, runs
from keras_gen.core.validation import DataError
from keras_gen.models import gan, gan_networks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def symmetric_data(n=256, dim=12, seed=0):
    """Two ±1 prototypes with 10% sign flips: a distribution in [-1, 1]."""
    rng = np.random.default_rng(seed)
    prototypes = np.where(rng.random((2, dim)) < 0.5, -1.0, 1.0)
    flips = np.where(rng.random((n, dim)) < 0.1, -1.0, 1.0)
    return (prototypes[rng.integers(0, 2, n)] * flips).astype(np.float32)


def state(model):
    return {f"{i:03d} {v.path}": np.array(v.numpy()) for i, v in enumerate(model.variables)}


# ------------------------------------------------------------------ the maths
def test_losses_are_the_games_of_the_notes():
    logits = np.linspace(-6, 6, 25).astype(np.float32)
    d_real, d_fake = 1 / (1 + np.exp(-logits)), 1 / (1 + np.exp(-logits[::-1]))
    got = keras.ops.convert_to_numpy(gan.discriminator_loss("non_saturating", logits, logits[::-1]))
    np.testing.assert_allclose(got, -np.log(d_real) - np.log(1 - d_fake), rtol=1e-5)
    # Same discriminator for the minimax game.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(gan.discriminator_loss("minimax", logits, logits[::-1])), got, rtol=1e-6
    )
    fake_p = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(gan.generator_loss("minimax", logits)), np.log(1 - fake_p), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(gan.generator_loss("non_saturating", logits)), -np.log(fake_p), rtol=1e-5, atol=1e-6
    )
    # Wasserstein: critic values, no sigmoid anywhere.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(gan.discriminator_loss("wasserstein", logits, 2 * logits)), logits, rtol=1e-6
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gan.generator_loss("wasserstein", logits)), -logits)
    # At the equilibrium D = 1/2 the discriminator loss is 2 log 2 and the generator's log 2.
    zero = np.zeros(1, np.float32)
    assert abs(float(gan.discriminator_loss("non_saturating", zero, zero)[0]) - 2 * math.log(2)) < 1e-6
    assert abs(float(gan.generator_loss("non_saturating", zero)[0]) - math.log(2)) < 1e-6


@keras.saving.register_keras_serializable(package="tests")
class HalfSquaredNorm(keras.layers.Layer):
    """D(x) = |x|^2 / 2, whose gradient at x is x itself."""

    def call(self, x):
        return 0.5 * keras.ops.sum(keras.ops.square(x), axis=-1, keepdims=True)


def test_gradient_penalty_is_exact_and_its_coefficient_uniform():
    dim, n = 3, 4000
    x = keras.Input((dim,))
    critic = keras.Model(x, HalfSquaredNorm()(x))
    generator = gan_networks.build_mlp_generator(2, (dim,), hidden=[4])
    model = gan.GAN(generator, critic, seed=0)
    # Real points on the unit sphere, fake points at the origin: the penalty
    # point is eps * real, the critic's gradient there has norm eps, so the
    # penalty is (1 - eps)^2 exactly and reveals each coefficient eps.
    rng = np.random.default_rng(1)
    real = rng.standard_normal((n, dim)).astype(np.float32)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    penalty = model.gradient_penalty(tf.constant(real), tf.zeros((n, dim)), tf.constant([5, 6])).numpy()
    assert penalty.shape == (n,)
    assert np.all((penalty >= 0) & (penalty <= 1 + 1e-6)), "eps outside [0, 1] (a normal draw, not uniform?)"
    eps = 1 - np.sqrt(penalty)
    assert stats.kstest(eps, "uniform").pvalue > 1e-3
    # E[(1 - U)^2] = 1/3; s.e. sqrt(4/45 / n) = 0.0047.
    assert abs(penalty.mean() - 1 / 3) < 5 * math.sqrt(4 / 45 / n)
    # And a linear critic has gradient norm |w| everywhere: penalty (|w| - 1)^2.
    linear = keras.Model(x, keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(0.8))(x))
    model = gan.GAN(generator, linear, seed=0)
    penalty = model.gradient_penalty(tf.constant(real), tf.constant(-real), tf.constant([1, 2])).numpy()
    np.testing.assert_allclose(penalty, (0.8 * math.sqrt(dim) - 1) ** 2, rtol=1e-5)


def test_counter_dropout_keeps_the_expected_fraction_and_scales_inverted():
    layer = gan_networks.CounterDropout(0.3, seed=4)
    x = tf.ones((200, 500))
    y = layer(x, training=True).numpy()
    kept = y > 0
    # 100,000 Bernoulli(0.7) draws: s.e. of the fraction 0.00145.
    assert abs(kept.mean() - 0.7) < 5 * math.sqrt(0.21 / kept.size)
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert not np.array_equal(layer(x, training=True).numpy(), y)  # a fresh mask per call
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())


# ------------------------------------------------------------- the game's sides
@pytest.mark.slow
def test_each_player_moves_its_own_way():
    """Discriminator alone: it learns to tell the data (+1s) from G(z) (near 0).
    Generator alone, against a fixed D: D(G(z)) rises, for every loss."""
    x = np.ones((256, 12), np.float32)
    keras.utils.set_random_seed(0)
    model = gan.tiny_gan_for_tests(seed=0, dropout=0.0)
    model.compile(
        d_optimizer=keras.optimizers.Adam(1e-2),
        g_optimizer=keras.optimizers.SGD(0.0),
        run_eagerly=True,
        jit_compile=False,
    )
    h = model.fit(x, batch_size=64, epochs=8, verbose=0, shuffle=False).history
    assert set(h) == {"d_loss", "g_loss", "d_x", "d_g_z"}
    assert h["d_x"][-1] > 0.9 and h["d_g_z"][-1] < 0.1, h
    with pytest.raises(TypeError, match="objective="):
        gan.tiny_gan_for_tests(seed=0).compile(optimizer="adam", loss="wasserstein")
    for loss in gan.OBJECTIVES:
        keras.utils.set_random_seed(0)
        model = gan.tiny_gan_for_tests(seed=0, dropout=0.0)
        model.compile(
            d_optimizer=keras.optimizers.SGD(0.0),
            g_optimizer=keras.optimizers.Adam(1e-2),
            objective=loss,
            run_eagerly=True,
            jit_compile=False,
        )
        h = model.fit(x, batch_size=64, epochs=4, verbose=0, shuffle=False).history
        assert h["d_g_z"][-1] > h["d_g_z"][0] + 0.01, (loss, h["d_g_z"])
        # The critic did not move: n_critic and the optimizers did what they were told.
        assert int(model.d_optimizer.iterations.numpy()) == 16 and int(model.optimizer.iterations.numpy()) == 16


class _GeneratorWeights(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.steps = [[v.numpy().astype(np.float64) for v in self.model.generator.weights]]

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([v.numpy().astype(np.float64) for v in self.model.generator.weights])


@pytest.mark.slow
@pytest.mark.parametrize("simultaneous", [False, True])
def test_generator_ema_is_the_moving_average_of_every_step(simultaneous):
    """average_t = m_t average_{t-1} + (1 - m_t) G_t with m_t = min(m, (1 + t)/(10 + t)),
    recomputed in float64 from the generator's weights after every step; sampling,
    generate and the latent views use the average, the game the live generator."""
    x = symmetric_data(256)
    keras.utils.set_random_seed(0)
    model = gan.tiny_gan_for_tests(seed=4, ema_momentum=0.8)
    kwargs = {"simultaneous": True} if simultaneous else {"n_critic": 2}
    model.compile(d_optimizer=keras.optimizers.Adam(1e-2), g_optimizer=keras.optimizers.Adam(1e-2), **kwargs)
    record = _GeneratorWeights()
    model.fit(x, batch_size=32 if simultaneous else 64, epochs=2, verbose=0, shuffle=False, callbacks=[record])
    average = record.steps[0]  # the copy made at construction
    for t, weights in enumerate(record.steps[1:], start=1):
        m = min(0.8, (1 + t) / (10 + t))
        average = [m * a + (1 - m) * w for a, w in zip(average, weights)]
    assert len(record.steps) - 1 == int(model.optimizer.iterations.numpy()) == (16 if simultaneous else 8)
    for v, expected in zip(model.average_generator.weights, average):
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-5, atol=1e-6, err_msg=v.path)
    moved = max(float(np.abs(a - w).max()) for a, w in zip(average, record.steps[-1]))
    assert moved > 1e-3  # the average lags the generator: the test can tell them apart
    z = model.draw_latent(5, 3)
    np.testing.assert_allclose(model.sample(5, seed=3), model.average_generator(z).numpy(), rtol=1e-6)
    np.testing.assert_allclose(model.generate(z).numpy(), model.average_generator(z).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="ema_momentum is the momentum"):
        gan.tiny_gan_for_tests(seed=0, ema_momentum=1.0)


@pytest.mark.slow
@pytest.mark.parametrize("game", ["standard", "wgan_gp"])
def test_mixed_bfloat16_trains_with_float32_losses(game):
    """Under the mixed_bfloat16 policy (layers compute in bfloat16) the losses, the
    gradient penalty and the metrics stay float32 and D still learns the data from G(z)."""
    x = np.ones((256, 12), np.float32)
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = gan.tiny_gan_for_tests(seed=0, dropout=0.0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.discriminator.layers[-1].compute_dtype == "bfloat16"
    kwargs = {"objective": "wasserstein", "gradient_penalty": 10.0, "n_critic": 2} if game == "wgan_gp" else {}
    model.compile(d_optimizer=keras.optimizers.Adam(1e-2), g_optimizer=keras.optimizers.SGD(0.0), **kwargs)
    h = model.fit(x, batch_size=64, epochs=8, verbose=0, shuffle=False).history
    assert all(np.isfinite(v).all() for v in h.values()), h
    assert model.critic_output(x[:4]).dtype == "float32"
    if game == "standard":
        assert h["d_x"][-1] > 0.9 and h["d_g_z"][-1] < 0.1, h
    else:  # the critic separates the two: its value on the data exceeds its value on G(z)
        assert h["d_x"][-1] - h["d_g_z"][-1] > h["d_x"][0] - h["d_g_z"][0] + 0.5, h


def test_n_critic_steps_split_the_batch_and_count_updates():
    x = symmetric_data(120)
    model = gan.tiny_gan_for_tests(seed=1)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        objective="wasserstein",
        n_critic=3,
        clip_value=0.05,
        run_eagerly=True,
        jit_compile=False,
    )
    model.fit(x, batch_size=60, epochs=1, verbose=0)
    assert int(model.d_optimizer.iterations.numpy()) == 6 and int(model.optimizer.iterations.numpy()) == 2
    worst = max(float(np.abs(v.numpy()).max()) for v in model.discriminator.trainable_variables)
    assert worst <= 0.05 + 1e-7  # clipped after every critic update


def test_iteration_history_recovers_every_steps_own_values():
    x = symmetric_data(192)
    model = gan.tiny_gan_for_tests(seed=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True, jit_compile=False)
    record = callbacks.IterationHistory()
    h = model.fit(x, batch_size=64, epochs=2, verbose=0, shuffle=False, callbacks=[record]).history
    assert len(record.rows) == 6
    for epoch in (1, 2):
        rows = [r for r in record.rows if r["epoch"] == epoch]
        for name in ("d_loss", "g_loss", "d_x", "d_g_z"):
            # Equal batches: the epoch mean is the mean of the steps' means.
            assert abs(np.mean([r[name] for r in rows]) - h[name][epoch - 1]) < 1e-5
    assert len({round(r["d_loss"], 6) for r in record.rows}) == 6  # distinct per step, not running means


# ------------------------------------------------------------------ saving
def _wgan_gp(seed):
    keras.utils.set_random_seed(seed)
    # With dropout and a generator average: their states must survive too.
    model = gan.tiny_gan_for_tests(seed=seed, ema_momentum=0.9)
    kwargs = gan.wgan_gp_compile_kwargs(learning_rate=1e-3)
    kwargs["n_critic"] = 2
    model.compile(**kwargs)
    return model


@pytest.mark.slow
def test_keras_round_trip_keeps_both_optimizers_and_continues_bit_for_bit(tmp_path):
    x = symmetric_data(128)
    model = _wgan_gp(seed=7)
    assert model.jit_compile is True
    model.fit(x, batch_size=64, epochs=2, verbose=0, shuffle=False)
    path = str(tmp_path / "gan.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, gan.GAN)
    assert (loaded.objective, loaded.n_critic, loaded.gradient_penalty_weight) == ("wasserstein", 2, 10.0)
    assert isinstance(loaded.d_optimizer, keras.optimizers.Adam) and loaded.d_optimizer is not loaded.optimizer
    assert loaded.d_optimizer.beta_2 == 0.9
    assert int(loaded.d_optimizer.iterations.numpy()) == 8 and int(loaded.optimizer.iterations.numpy()) == 4
    saved = state(model)
    for key, value in state(loaded).items():
        np.testing.assert_array_equal(value, saved[key], err_msg=key)  # moments, seeds, dropout seeds
    np.testing.assert_array_equal(loaded.sample(5, seed=3), model.sample(5, seed=3))
    # N steps straight (model) against N/2, save, load, N/2 (loaded): identical.
    model.fit(x, batch_size=64, epochs=2, verbose=0, shuffle=False)
    loaded.fit(x, batch_size=64, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(model.variables, loaded.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def _train_in(out_dir, x, epochs, interrupt_at=None):
    keras.utils.set_random_seed(0)
    model = gan.tiny_gan_for_tests(seed=11)
    kwargs = gan.wgan_compile_kwargs()
    kwargs.update(n_critic=2, d_optimizer=keras.optimizers.RMSprop(1e-3), g_optimizer=keras.optimizers.RMSprop(1e-3))
    model.compile(**kwargs)
    extra = [callbacks.IterationHistory(os.path.join(out_dir, "iterations.csv"))]
    extra += [Interrupt(interrupt_at)] if interrupt_at else []
    runs.fit_with_artifacts(
        model,
        tf.data.Dataset.from_tensor_slices(x).batch(64),
        out_dir,
        epochs=epochs,
        n_samples=16,
        callbacks=extra,
        verbose=0,
    )
    return model


@pytest.mark.slow
def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    x = symmetric_data(128)
    straight = _train_in(str(tmp_path / "straight"), x, epochs=4)
    with pytest.raises(KeyboardInterrupt):
        _train_in(str(tmp_path / "resumed"), x, epochs=4, interrupt_at=2)
    resumed = _train_in(str(tmp_path / "resumed"), x, epochs=4)
    assert int(resumed.d_optimizer.iterations.numpy()) == 16
    for a, b in zip(straight.variables, resumed.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    history = runs.read_history(str(tmp_path / "resumed" / "history.csv"))
    assert len(history["d_loss"]) == 4
    iterations = callbacks.read_iterations(str(tmp_path / "resumed" / "iterations.csv"))
    np.testing.assert_array_equal(iterations["epoch"], np.repeat([1, 2, 3, 4], 2))  # whole epochs, none twice


@pytest.mark.slow
def test_finished_run_is_continued_not_repeated(tmp_path):
    """The same call after a finished run trains nothing; a larger `epochs`
    continues from the last checkpoint with both optimizers' and the seed
    generators' states, like an uninterrupted run of that length."""
    x = symmetric_data(128)
    out = str(tmp_path / "run")
    first = _train_in(out, x, epochs=2)
    again = _train_in(out, x, epochs=2)
    for a, b in zip(first.variables, again.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    longer = _train_in(out, x, epochs=3)
    assert int(longer.d_optimizer.iterations.numpy()) == 12 and int(longer.optimizer.iterations.numpy()) == 6
    assert len(runs.read_history(os.path.join(out, "history.csv"))["d_loss"]) == 3
    assert runs.latest_checkpoint(os.path.join(out, "checkpoints"))[0] == 3
    # Unshuffled data: 2 epochs + 1 continued epoch are 3 straight epochs, bit for bit.
    straight = _train_in(str(tmp_path / "straight"), x, epochs=3)
    for a, b in zip(straight.variables, longer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((8, 12), 3.0, np.float32), r"\[-1, 1\]"),
        (np.zeros((8, 11), np.float32), "shape"),
        (np.full((8, 12), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_input_is_refused_before_any_work(tmp_path, bad, message):
    model = gan.tiny_gan_for_tests(seed=0)
    model.compile(optimizer="adam")
    before = state(model)
    with pytest.raises(DataError, match=message):
        runs.fit_with_artifacts(model, bad, str(tmp_path / "run"), epochs=1, verbose=0)
    assert not (tmp_path / "run").exists()
    for key, value in state(model).items():
        np.testing.assert_array_equal(value, before[key])


def test_bad_compile_arguments_are_named():
    model = gan.tiny_gan_for_tests(seed=0)
    with pytest.raises(ValueError, match="objective must be one of"):
        model.compile(optimizer="adam", objective="hinge")
    with pytest.raises(ValueError, match="n_critic"):
        model.compile(optimizer="adam", n_critic=0)
    with pytest.raises(ValueError, match="simultaneous"):
        model.compile(optimizer="adam", n_critic=5, simultaneous=True)
    with pytest.raises(ValueError, match="d_optimizer and g_optimizer"):
        model.compile(d_optimizer="adam")
    opt = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="separate optimizer"):
        model.compile(d_optimizer=opt, g_optimizer=opt)
    with pytest.raises(ValueError, match="generator makes samples of shape"):
        gan.GAN(gan_networks.build_mlp_generator(4, (10,)), gan_networks.build_mlp_discriminator((12,)))


# ------------------------------------------------------------ generating
def test_architectures_are_those_of_the_notes_and_the_tutorial():
    mlp = gan.make_gan("mlp", (784,), seed=0)
    assert mlp.latent_dim == 20 and mlp.data_domain == "symmetric"
    assert [layer.units for layer in mlp.generator.layers if isinstance(layer, keras.layers.Dense)] == [100, 784]
    assert mlp.generator.layers[-1].activation.__name__ == "tanh"
    dc = gan.make_gan("dcgan", (28, 28, 1), seed=0)
    assert dc.latent_dim == 100
    convs = [
        (layer.filters, layer.strides)
        for layer in dc.generator.layers
        if isinstance(layer, keras.layers.Conv2DTranspose)
    ]
    assert convs == [(128, (1, 1)), (64, (2, 2)), (1, (2, 2))]
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in dc.generator.layers) == 3
    assert [layer.rate for layer in dc.discriminator.layers if isinstance(layer, gan_networks.CounterDropout)] == [
        0.3,
        0.3,
    ]
    # The tutorial's parameter counts: 2,330,944 (generator) and 212,865 (discriminator; its
    # dropout layers add only their two-word seed states, which are not parameters).
    assert dc.generator.count_params() == 2_330_944
    assert sum(math.prod(v.shape) for v in dc.discriminator.trainable_variables) == 212_865
    z = dc.draw_latent(4, 0)
    out = dc.generate(z).numpy()
    assert out.shape == (4, 28, 28, 1) and np.all(np.abs(out) <= 1)
    ends = dc.interpolate(z[0], z[1], steps=5)
    np.testing.assert_allclose(ends[[0, -1]], out[:2], atol=1e-5)


@pytest.mark.slow
def test_batch_normalized_critic_is_clipped_and_refuses_the_gradient_penalty():
    """The original WGAN's critic: batch normalization after the second convolution.
    Clipping reaches its scale and offset too (every trainable critic weight), and
    a gradient penalty, which needs per-example gradients, is refused by name."""
    model = gan.make_gan("dcgan", (28, 28, 1), discriminator_kwargs={"dropout": 0.0, "normalization": "batch"}, seed=0)
    norms = [layer for layer in model.discriminator.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 1 and norms[0].synchronized
    with pytest.raises(ValueError, match="batch normalization"):
        model.compile(**gan.wgan_gp_compile_kwargs())
    model.compile(**gan.wgan_compile_kwargs())
    x = np.random.default_rng(0).uniform(-1, 1, (20, 28, 28, 1)).astype("float32")
    model.fit(x, batch_size=10, epochs=1, verbose=0)  # n_critic 5: two critic updates of 2 images per batch
    for v in model.discriminator.trainable_variables:
        assert np.max(np.abs(v.numpy())) <= 0.01 + 1e-7, v.path
    assert np.max(np.abs(norms[0].gamma.numpy())) <= 0.01 + 1e-7
    with pytest.raises(ValueError, match="normalization"):
        gan_networks.build_dcgan_discriminator(normalization="layer")


@pytest.mark.slow
def test_exported_generator_serves_without_keras_gen(tmp_path, serve_without_keras_gen):
    model = gan.make_gan("mlp", (784,), noise="uniform", ema_momentum=0.99, seed=0, name="mlp_gan")
    model.compile(optimizer="adam")
    model.fit(
        np.tanh(np.random.default_rng(0).standard_normal((64, 784))).astype("float32"),
        batch_size=32,
        epochs=1,
        verbose=0,
    )  # the average now differs from the generator: the export must serve it
    model.export_saved_model(str(tmp_path / "export"))
    z = model.draw_latent(3, 9).numpy()
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "generate.npy", model.generate(z).numpy())
    np.save(tmp_path / "sample.npy", model.sample(4, seed=5))
    output = serve_without_keras_gen(
        """
        gen = served.signatures["generate"](z=tf.constant(np.load(os.path.join(d, "z.npy"))))["x"].numpy()
        smp = served.signatures["sample"](n=tf.constant(4), seed=tf.constant(5))["x"].numpy()
        np.testing.assert_allclose(gen, np.load(os.path.join(d, "generate.npy")), atol=1e-6)
        np.testing.assert_allclose(smp, np.load(os.path.join(d, "sample.npy")), atol=1e-6)
        print("served", gen.shape, smp.shape)
        """,
        tmp_path,
    )
    assert "served (3, 784) (4, 784)" in output


# ------------------------------------------------------------ tf.distribute
MIRRORED = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    from keras_gen.core import distribute
    distribute.split_cpu(2)
    import numpy as np, tensorflow as tf, keras
    from keras_gen.models import gan

    rng = np.random.default_rng(0)
    prototypes = np.where(rng.random((2, 12)) < 0.5, -1.0, 1.0)
    x = prototypes[rng.integers(0, 2, 64)] * np.where(rng.random((64, 12)) < 0.1, -1.0, 1.0)
    # Jitter: with +-1 inputs and critic weights clipped to exactly +-c, pre-activations can cancel to
    # exactly 0, where float summation order (which differs between the runs) picks the LeakyReLU branch.
    x = (0.9 * x + 0.05 * rng.standard_normal(x.shape)).clip(-1, 1).astype("float32")

    def run(strategy, game):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = gan.tiny_gan_for_tests(seed=3, dropout=0.25 if game == "wgan_gp" else 0.0,
                                           ema_momentum=None if game == "wgan_gp" else 0.9)
            # SGD: its update is linear in the gradient, so a gradient scaled wrongly for the global
            # batch shows up in the weights (Adam's scale-free update would hide it).
            kwargs = {"d_optimizer": keras.optimizers.SGD(0.05, momentum=0.5),
                      "g_optimizer": keras.optimizers.SGD(0.05, momentum=0.5),
                      "objective": "wasserstein", "n_critic": 2}
            kwargs.update({"gradient_penalty": 10.0} if game == "wgan_gp" else {"clip_value": 0.05})
            model.compile(**kwargs)
        # The weights (not the seed generators' integer states).
        before = [np.array(v.numpy(), np.float64) for v in model.variables if "seed" not in v.path]
        history = model.fit(tf.data.Dataset.from_tensor_slices(x).batch(32), epochs=2, verbose=0).history
        after = [np.array(v.numpy(), np.float64) for v in model.variables if "seed" not in v.path]
        return before, after, history

    out = {}
    for game in ("wgan_gp", "wgan_clip"):
        b1, a1, h1 = run(tf.distribute.get_strategy(), game)
        b2, a2, h2 = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), game)
        out[game] = {"moved": max(float(np.abs(a - b).max()) for a, b in zip(a1, b1)),
                     "initial_diff": max(float(np.abs(a - b).max()) for a, b in zip(b1, b2)),
                     "diff": max(float(np.abs(a - b).max()) for a, b in zip(a1, a2)),
                     "metric_diff": max(abs(h1[k][-1] - h2[k][-1]) / (1 + abs(h1[k][-1])) for k in h1)}
    json.dump(out, open(sys.argv[1], "w"))
    """
)


@pytest.mark.slow
def test_mirrored_two_replicas_equal_one_device(tmp_path):
    """WGAN-GP (nested gradients, dropout) and the clipped WGAN on 2 logical
    CPUs give the one-device weights: the noise of every example, the
    interpolation coefficients and dropout masks follow its place in the
    global batch, and the losses are scaled for the global batch."""
    out = tmp_path / "result.json"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(out)],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    r = json.loads(out.read_text())
    for game, numbers in r.items():
        assert numbers["initial_diff"] == 0.0, (game, numbers)
        assert numbers["moved"] > 1e-2, (game, numbers)
        # Runs differ only in float summation order (~1e-6 relative per step).
        assert numbers["diff"] <= 1e-4 * numbers["moved"] + 1e-6, (game, numbers)
        assert numbers["metric_diff"] < 1e-4, (game, numbers)


@pytest.mark.slow
def test_cli_trains_a_gan_with_a_generator_ema(tmp_path, monkeypatch):
    from keras_gen import cli

    monkeypatch.chdir(tmp_path)
    cli.main(
        [
            "train",
            "wgan",
            "--dataset",
            "ring8",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "4",
            "--ema-momentum",
            "0.99",
            "--verbose",
            "0",
            "--out",
            "run",
        ]
    )
    model = keras.saving.load_model(str(tmp_path / "run" / "model.keras"))
    assert model.ema_momentum == 0.99 and model.average_generator is not None
    z = model.draw_latent(6, 0)
    np.testing.assert_allclose(model.sample(6, seed=0), model.average_generator(z).numpy(), rtol=1e-6)
    assert not np.allclose(model.average_generator(z).numpy(), model.generator(z).numpy())
