"""Export for every family, both ways, and `.keras` files that load quietly.

* Keras's own `model.export(path)` works on a model of every family, fitted or
  not (Keras infers a subclassed model's input from its first call, which a
  GAN's `train_step` never makes): `tf.saved_model.load(path).serve(x)` gives
  `model(x)`.
* keras-gen's `export_saved_model` writes every endpoint the family declares.
* A saved GAN or RBM loads without Keras warning about its optimizers.
"""

from __future__ import annotations

import logging
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.models import dbn, diffusion, ebm, gan, rbm, vae


def adam():
    return keras.optimizers.Adam(1e-3)


def tiny_vae():
    model = vae.make_vae(
        "dense", (12,), latent_dim=2, seed=3, encoder_kwargs={"hidden": [8]}, decoder_kwargs={"hidden": [8]}
    )
    model.compile(optimizer=adam())
    return model


def tiny_conv_vae():
    model = vae.make_vae(
        "conv", (8, 8, 1), latent_dim=2, seed=3, encoder_kwargs={"filters": (4, 4), "hidden": 4},
        decoder_kwargs={"filters": (4, 4)},
    )  # fmt: skip
    model.compile(optimizer=adam())
    return model


def tiny_rbm(persistent=True):
    model = rbm.make_rbm("bernoulli", 12, 6, k=2, persistent=persistent, seed=3)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=False)
    return model


def tiny_dbn():
    return dbn.make_dbn((12, 6, 4), seed=3)


def tiny_gan(preset=None, dropout=0.25):
    model = gan.tiny_gan_for_tests(seed=3, dropout=dropout)
    # Without XLA: compiling a tiny step takes longer than running it.
    model.compile(**(preset() if preset else {"d_optimizer": adam(), "g_optimizer": adam()}), jit_compile=False)
    return model


def tiny_dcgan():
    model = gan.make_gan(
        "dcgan", (8, 8, 1), latent_dim=4, generator_kwargs={"filters": (8, 4, 4)},
        discriminator_kwargs={"filters": (4, 4)}, seed=3,
    )  # fmt: skip
    model.compile(**gan.dcgan_compile_kwargs())
    return model


def tiny_diffusion():
    model = diffusion.make_diffusion("mlp", (12,), steps=50, ema_momentum=0.9, seed=3, network_kwargs={"hidden": [16]})
    model.compile(optimizer=adam())
    return model


def tiny_ebm():
    model = ebm.make_ebm(
        "mlp", (12,), sample_range=(-1, 1), buffer_size=64, langevin_steps=4, seed=3, network_kwargs={"hidden": [16]}
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.0))
    return model


FAMILIES = {
    "vae": tiny_vae,
    "conv_vae": tiny_conv_vae,
    "rbm": tiny_rbm,
    "dbn": tiny_dbn,
    "gan": tiny_gan,
    "dcgan": tiny_dcgan,
    "wgan": lambda: tiny_gan(gan.wgan_compile_kwargs, dropout=0.0),
    "wgan_gp": lambda: tiny_gan(gan.wgan_gp_compile_kwargs, dropout=0.0),
    "diffusion": tiny_diffusion,
    "ebm": tiny_ebm,
}


def call_input(model, n=5):
    """A batch for `call`: latent points for a GAN, data for the others."""
    shape = model.call_signature()[0].shape[1:]
    return np.random.default_rng(0).uniform(-1, 1, (n, *shape)).astype(np.float32)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_keras_export_serves_call_and_keras_gen_export_every_endpoint(family, tmp_path):
    model = FAMILIES[family]()
    model.export(str(tmp_path / "keras"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "keras"))
    x = call_input(model)
    expected = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(served.serve(tf.constant(x)).numpy(), expected, rtol=1e-5, atol=1e-6)

    names = model.export_saved_model(str(tmp_path / "keras_gen"))
    assert names == sorted(model.serving_endpoints())
    assert set(names) <= set(tf.saved_model.load(str(tmp_path / "keras_gen")).signatures)


def test_exporting_an_unfitted_pcd_rbm_keeps_its_default_chains(tmp_path):
    """Building for export must not size the persistent chains by a dummy batch of one."""
    model = tiny_rbm()
    model.export(str(tmp_path / "rbm"), verbose=False)
    assert model.n_chains == rbm.DEFAULT_N_CHAINS


# ------------------------------------------------------------------ .keras files
def binary_data(n=64, dim=12):
    return (np.random.default_rng(0).random((n, dim)) < 0.3).astype(np.float32)


def symmetric_data(n=64, dim=12):
    return np.tanh(np.random.default_rng(0).normal(size=(n, dim))).astype(np.float32)


SAVED = {
    "rbm_pcd": (tiny_rbm, None),
    "rbm_cd": (lambda: tiny_rbm(persistent=False), None),
    "gan": (tiny_gan, None),
    "wgan_gp": (lambda: tiny_gan(gan.wgan_gp_compile_kwargs, dropout=0.0), None),
    # Fitted: the optimizers hold state; the GAN was never called, only its networks.
    "rbm_pcd_fitted": (tiny_rbm, binary_data),
    "gan_fitted": (tiny_gan, symmetric_data),
}


@pytest.mark.parametrize("case", sorted(SAVED))
def test_a_saved_gan_or_rbm_loads_without_warnings(case, tmp_path, caplog, capfd):
    """Keras skips (with a warning) optimizer variables a file holds in another
    number than the loaded optimizer has; a model saved right after `compile`
    used to hold none."""
    make, data = SAVED[case]
    model = make()
    if data is not None:
        model.fit(data(), epochs=1, batch_size=32, verbose=0)
        model.export(str(tmp_path / "export"), verbose=False)  # a fitted model exports too
    path = tmp_path / "model.keras"
    model.save(path)
    capfd.readouterr()
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.saving.load_model(path)
    logged = caplog.text + "".join(capfd.readouterr())
    assert not [str(w.message) for w in caught], [str(w.message) for w in caught]
    assert "optimizer" not in logged.lower(), logged
    for optimizer in (loaded.optimizer, getattr(loaded, "d_optimizer", None)):
        if optimizer is not None:
            assert optimizer.built
    assert [v.numpy().tolist() for v in loaded.optimizer.variables] == [
        v.numpy().tolist() for v in model.optimizer.variables
    ]


# ------------------------------------------------------------------ checked signatures
WRONG_RANK = """
import sys
import tensorflow as tf

path, endpoint, name = sys.argv[1:]
function = tf.saved_model.load(path).signatures[endpoint]
try:
    function(**{name: tf.zeros([2, 8, 8])})  # an image batch without its channel axis
except tf.errors.InvalidArgumentError as err:
    print("refused:", str(err))
"""


@pytest.mark.slow
@pytest.mark.parametrize("export", ["keras_gen", "keras"])
def test_a_wrong_rank_is_refused_before_any_kernel_runs(export, tmp_path):
    """A rank-3 batch reaching a oneDNN convolution aborts the process; the
    check must fire first. Run in a child process, so a crash cannot take
    pytest with it."""
    import subprocess
    import sys

    model = tiny_conv_vae()
    path = tmp_path / "export"
    if export == "keras":
        model.export(str(path), verbose=False)
        endpoint = "serve"
    else:
        model.export_saved_model(str(path))
        endpoint = "encode"
    result = subprocess.run(
        [sys.executable, "-c", WRONG_RANK, str(path), endpoint, "x"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refused:" in result.stdout, result.stdout
    assert "[2,8,8] is not compatible with expected shape [?,8,8,1]" in result.stdout, result.stdout


def test_signatures_refuse_wrong_shapes_and_dtypes_by_name(tmp_path):
    model = tiny_rbm(persistent=False)
    model.export_saved_model(str(tmp_path / "export"))
    signatures = tf.saved_model.load(str(tmp_path / "export")).signatures
    free_energy = signatures["free_energy"]
    assert free_energy(v=tf.zeros([3, 12]))["free_energy"].shape == (3,)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"tensor v \[3,11\] .* expected shape \[\?,12\]"):
        free_energy(v=tf.zeros([3, 11]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="float tensor but is a double tensor"):
        free_energy(v=tf.zeros([3, 12], tf.float64))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"tensor n \[1\] .* expected shape \[\]"):
        signatures["sample"](n=tf.constant([4]), seed=tf.constant(0), gibbs_steps=tf.constant(2))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["rbm", "dbn"])
def test_sample_takes_gibbs_steps_or_its_default(family, tmp_path):
    """`gibbs_steps` is optional: a default-valued input of the `sample`
    signature (TF Serving and session clients may omit it) and of the restored
    `served.sample` function; given, it is used."""
    from tensorflow.core.protobuf import saved_model_pb2

    model = tiny_rbm(persistent=False) if family == "rbm" else tiny_dbn()
    path = str(tmp_path / "export")
    model.export_saved_model(path)
    served = tf.saved_model.load(path)
    output = "probabilities" if family == "rbm" else "mean"
    n, seed = tf.constant(3), tf.constant(1)
    np.testing.assert_allclose(served.sample(n=n, seed=seed)[output], model.sample(3, seed=1), atol=1e-5)
    given = served.signatures["sample"](n=n, seed=seed, gibbs_steps=tf.constant(4))[output]
    np.testing.assert_allclose(given, model.sample(3, seed=1, gibbs_steps=4), atol=1e-5)

    saved = saved_model_pb2.SavedModel()
    with open(f"{path}/saved_model.pb", "rb") as f:
        saved.ParseFromString(f.read())
    signature = saved.meta_graphs[0].signature_def["sample"]
    assert tf.make_ndarray(signature.defaults["gibbs_steps"]) == rbm.DEFAULT_GIBBS_STEPS
    # What a session client (TF Serving) does: feed n and seed only.
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        fetched = session.run(
            signature.outputs[output].name, {signature.inputs["n"].name: 3, signature.inputs["seed"].name: 1}
        )
    np.testing.assert_allclose(fetched, model.sample(3, seed=1), atol=1e-5)
