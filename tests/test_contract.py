"""The contract every family keeps, checked family by family.

* Validation never changes training: `fit` with `validation_data` ends with
  weights bit-identical to `fit` without it (validation draws from its own
  seed generator, rewound at every evaluation).
* `compile(jit_compile=...)` saves what the user asked for ("auto" stays
  "auto"), so a saved model decides XLA afresh on the machine that loads it.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_gen.models import diffusion, ebm, gan, rbm, vae


def binary_data(n=96, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, dim)) < 0.3).astype("float32")


def symmetric_data(n=96, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    return np.tanh(rng.normal(size=(n, dim))).astype("float32")


def dense_vae():
    model = vae.make_vae(
        "dense", (12,), latent_dim=2, seed=3, encoder_kwargs={"hidden": [8]}, decoder_kwargs={"hidden": [8]}
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model, binary_data()


def pcd_rbm():
    model = rbm.make_rbm("bernoulli", 12, 6, k=2, persistent=True, n_chains=16, seed=3)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    return model, binary_data()


def standard_gan():
    model = gan.tiny_gan_for_tests(seed=3)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    return model, symmetric_data()


def wgan_gp():
    model = gan.tiny_gan_for_tests(seed=3, dropout=0.0)
    model.compile(**gan.wgan_gp_compile_kwargs(1e-3))
    return model, symmetric_data()


def ddpm():
    model = diffusion.make_diffusion("mlp", (12,), steps=50, ema_momentum=0.9, seed=3, network_kwargs={"hidden": [16]})
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model, symmetric_data()


def langevin_ebm():
    model = ebm.make_ebm(
        "mlp", (12,), sample_range=(-1, 1), buffer_size=64, langevin_steps=4, step_size=0.05, noise_scale=None,
        gradient_clip=0.5, sample_steps=5, seed=3, network_kwargs={"hidden": [16]},
    )  # fmt: skip
    model.compile(optimizer=keras.optimizers.Adam(1e-2, beta_1=0.0))
    return model, symmetric_data()


FAMILIES = {
    "vae": dense_vae,
    "rbm_pcd": pcd_rbm,
    "gan": standard_gan,
    "wgan_gp": wgan_gp,
    "diffusion": ddpm,
    "ebm": langevin_ebm,
}


def trained_weights(make, with_validation):
    keras.utils.set_random_seed(0)
    model, x = make()
    model.build_for_data()
    initial = [w.numpy() for w in model.trainable_weights]
    validation = {"validation_data": (x[:32],)} if with_validation else {}
    model.fit(x, epochs=2, batch_size=32, shuffle=True, verbose=0, **validation)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(initial, model.trainable_weights)), "nothing trained"
    return model, [w.numpy() for w in model.weights]


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_validation_leaves_training_bit_identical(family):
    _, plain = trained_weights(FAMILIES[family], with_validation=False)
    model, validated = trained_weights(FAMILIES[family], with_validation=True)
    assert len(plain) == len(validated)
    # Every variable but evaluation's own generator (a weights-file variable of the RBM).
    changed = [
        w.path
        for w, a, b in zip(model.weights, plain, validated)
        if not np.array_equal(a, b) and not w.path.startswith("eval_seed_generator")
    ]
    assert not changed, f"{family}: validation changed {changed}"


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_evaluation_is_a_function_of_the_weights(family):
    keras.utils.set_random_seed(0)
    model, x = FAMILIES[family]()
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    first = model.evaluate(x[:32], batch_size=16, verbose=0, return_dict=True)
    second = model.evaluate(x[:32], batch_size=16, verbose=0, return_dict=True)
    assert first == second


@pytest.mark.slow
@pytest.mark.parametrize("requested", ["auto", False])
def test_saved_model_keeps_the_requested_jit_compile(tmp_path, requested):
    for make in (dense_vae, standard_gan, ddpm, langevin_ebm):
        model, x = make()
        model.compile(**_recompile_kwargs(model), jit_compile=requested)
        model.fit(x[:32], epochs=1, batch_size=32, verbose=0)
        assert model.get_compile_config()["jit_compile"] == requested
        path = tmp_path / f"{model.name}_{requested}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert loaded.get_compile_config()["jit_compile"] == requested
        assert loaded.jit_compile in (True, False)  # resolved for this machine


def _recompile_kwargs(model):
    if isinstance(model, gan.GAN):
        return {"d_optimizer": keras.optimizers.Adam(1e-3), "g_optimizer": keras.optimizers.Adam(1e-3)}
    return {"optimizer": keras.optimizers.Adam(1e-3)}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sample_takes_a_positive_integer_only(family):
    model, _ = FAMILIES[family]()
    model.build_for_data()
    assert model.sample(np.int64(3), seed=0).shape[0] == 3
    for bad in (2.7, 3.0, True, "3", None):
        with pytest.raises(TypeError, match="positive integer"):
            model.sample(bad, seed=0)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="positive integer"):
            model.sample(bad, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sample_batches_streams_and_huge_n_is_refused(family):
    model, _ = FAMILIES[family]()
    model.build_for_data()
    batches = list(model.sample_batches(7, seed=3, batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    again = list(model.sample_batches(7, seed=3, batch_size=3))
    for a, b in zip(batches, again):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="sample_batches"):
        model.sample(10**9, seed=0)
