"""The shared contract: data pipelines, the zoo's integrity checks, SavedModel
export served without keras-gen, and the command line."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import cli, data, zoo
from keras_gen.core.files import save_atomically
from keras_gen.models.vae import make_vae

MNIST_AVAILABLE = os.path.isdir(os.path.join(os.environ.get("TFDS_DATA_DIR", ""), "mnist"))
needs_mnist = pytest.mark.skipif(not MNIST_AVAILABLE, reason="MNIST needs TFDS_DATA_DIR with a prepared copy")


def tiny_vae(seed=0):
    return make_vae(
        "dense",
        (12,),
        latent_dim=2,
        seed=seed,
        encoder_kwargs={"hidden": [8]},
        decoder_kwargs={"hidden": [8]},
        name="tiny_vae",
    )


# ------------------------------------------------------------------ data
def test_ring8_is_the_eight_gaussian_ring():
    x = data.toy_2d("ring8", 40_000, seed=0)
    assert x.shape == (40_000, 2) and x.dtype == np.float32
    radius = np.linalg.norm(x, axis=1)
    assert abs(radius.mean() - 2.0) < 0.01
    coverage = data.mode_coverage(x, "ring8")
    assert coverage["modes_covered"] == 8
    # Within 3 sigma in 2-D holds 1 - exp(-9/2) = 98.9% of a Gaussian's mass.
    assert abs(coverage["high_quality_fraction"] - (1 - np.exp(-4.5))) < 0.003
    # One mode only: seven modes are missed.
    collapsed = data.toy_2d("ring8", 1000, seed=1)
    collapsed = collapsed[np.argmin(np.linalg.norm(collapsed - [2.0, 0.0], axis=1) > 0.5)][None].repeat(100, 0)
    assert data.mode_coverage(collapsed, "ring8")["modes_covered"] == 1


def test_toy_pipeline_is_batched_and_reproducible():
    a = [b.numpy() for b in data.load("ring8", batch_size=500, seed=3).take(2)]
    b = [b.numpy() for b in data.load("ring8", batch_size=500, seed=3).take(2)]
    assert a[0].shape == (500, 2)
    np.testing.assert_array_equal(a[0], b[0])


@needs_mnist
@pytest.mark.parametrize(
    "preprocessing, lo, hi, binary",
    [
        ("unit", 0, 1, False),
        ("symmetric", -1, 1, False),
        ("binarized", 0, 1, True),
        ("binarized_static", 0, 1, True),
        ("thresholded", 0, 1, True),
    ],
)
def test_mnist_preprocessings(preprocessing, lo, hi, binary):
    ds = data.load("mnist", "test", preprocessing=preprocessing, batch_size=256, shuffle=False)
    x = next(iter(ds)).numpy()
    assert x.shape == (256, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == lo and x.max() == hi
    assert np.all((x == 0) | (x == 1)) == binary
    flat = next(
        iter(data.load("mnist", "test", preprocessing=preprocessing, flatten=True, batch_size=8, shuffle=False))
    ).numpy()
    assert flat.shape == (8, 784)


@needs_mnist
def test_dynamic_binarization_is_fresh_each_epoch_and_matches_the_intensities():
    ds = data.load("mnist", "test", preprocessing="binarized", batch_size=10_000, shuffle=False, seed=1)
    first, second = [next(iter(ds)).numpy() for _ in range(2)]
    assert (first != second).mean() > 0.01  # new pixels every pass
    intensity, _ = data.load_arrays("mnist", "test", preprocessing="unit")
    # E[x] = intensity: the mean over 10,000 images agrees within 5 standard errors per pixel.
    se = np.sqrt(np.maximum((intensity * (1 - intensity)).sum(0), 1e-12)) / 10_000
    assert np.all(np.abs(first.mean(0) - intensity.mean(0)) <= 5 * se + 1e-6)
    again = next(
        iter(data.load("mnist", "test", preprocessing="binarized", batch_size=10_000, shuffle=False, seed=1))
    ).numpy()
    np.testing.assert_array_equal(first, again)  # seeded: reproducible


def test_unknown_dataset_and_preprocessing_are_named():
    with pytest.raises(KeyError, match="cifar"):
        data.load("cifar")
    with pytest.raises(ValueError, match="sharpened"):
        data.load("mnist", preprocessing="sharpened")


# ------------------------------------------------------------------ zoo
def tiny_card(sha256, name="tiny", **changes):
    """A schema-1 card of the tiny VAE (JSON object)."""
    card = {
        "schema_version": zoo.SCHEMA_VERSION,
        "name": name,
        "family": "vae",
        "description": "a tiny VAE",
        "architecture": {
            "factory": "vae",
            "kwargs": {
                "architecture": "dense",
                "input_shape": [12],
                "latent_dim": 2,
                "encoder_kwargs": {"hidden": [8]},
                "decoder_kwargs": {"hidden": [8]},
                "name": name,
            },
        },
        "compile": {"optimizer": keras.optimizers.serialize(keras.optimizers.Adam(1e-4))},
        "dataset": {"name": "ring8", "split": "train"},
        "weights": {"file": "tiny.weights.h5", "sha256": sha256},
        "recipe": {"script": "training/tiny.py", "command": "python training/tiny.py --epochs 3"},
        "metrics": {"test_nll": 1.0},
        "training": {"epochs": 3, "machine": "test", "date": "2026-01-01 00:00 UTC", "command": "pytest"},
        "figures": [],
    }
    card.update(changes)
    return card


@pytest.fixture
def zoo_home(tmp_path, monkeypatch):
    """A zoo with one entry, `tiny`, in a fresh KERAS_GEN_HOME."""
    model = tiny_vae(seed=1)
    model.build_for_data()
    (tmp_path / "zoo").mkdir()
    (tmp_path / "saved_models").mkdir()
    weights = tmp_path / "saved_models" / "tiny.weights.h5"
    save_atomically(model, str(weights))
    (tmp_path / "zoo" / "tiny.json").write_text(json.dumps(tiny_card(zoo.sha256(weights))))
    monkeypatch.setenv("KERAS_GEN_HOME", str(tmp_path))
    return tmp_path, model


def write_card(home, card, file_name=None):
    path = home / "zoo" / (file_name or f"{card['name']}.json")
    path.write_text(card if isinstance(card, str) else json.dumps(card))
    return path


def test_zoo_loads_verified_weights(zoo_home):
    _, original = zoo_home
    assert "tiny" in zoo.names()
    loaded = zoo.load("tiny")
    z = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    np.testing.assert_array_equal(original.decode(z), loaded.decode(z))
    assert loaded.zoo_card["metrics"]["test_nll"] == 1.0
    assert zoo.card("tiny").recipe.command == "python training/tiny.py --epochs 3"


def test_zoo_list_is_now_names():
    with pytest.warns(DeprecationWarning, match="names"):
        assert zoo.list() == zoo.names()


def test_zoo_refuses_a_tampered_weights_file(zoo_home):
    home, _ = zoo_home
    weights = home / "saved_models" / "tiny.weights.h5"
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(zoo.WeightsIntegrityError, match="sha256"):
        zoo.load("tiny")
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="python training/tiny.py"):
        zoo.load("tiny")


def test_unknown_zoo_name_lists_the_known_ones(zoo_home):
    with pytest.raises(zoo.ZooError, match=r"Unknown zoo model 'tinny'.*tiny"):
        zoo.load("tinny")


@pytest.mark.parametrize("factory", ["os.system", "keras_gen.cli.main", "keras_gen.models.vae.make_vae"])
def test_zoo_refuses_a_factory_outside_the_registry(zoo_home, monkeypatch, factory):
    """A card names a registry key; a module path, even one inside keras_gen, is
    refused when the card is read, naming the card's file, and nothing is imported."""
    home, _ = zoo_home
    card = json.loads((home / "zoo" / "tiny.json").read_text())
    card["architecture"]["factory"] = factory
    path = write_card(home, card)
    imported = []
    monkeypatch.setattr("importlib.import_module", lambda name, *a, **k: imported.append(name))
    for action in (lambda: zoo.card("tiny"), lambda: zoo.load("tiny")):
        with pytest.raises(zoo.ZooError, match="not a registered model factory") as err:
            action()
        assert str(path) in str(err.value) and repr(factory) in str(err.value)
    assert imported == []


def test_a_card_with_the_old_builder_field_is_refused(zoo_home):
    home, _ = zoo_home
    card = json.loads((home / "zoo" / "tiny.json").read_text())
    card["architecture"] = {"builder": "keras_gen.vae.make_vae", "kwargs": card["architecture"]["kwargs"]}
    write_card(home, card)
    with pytest.raises(zoo.ZooError, match=r"tiny.json: unknown field architecture.builder"):
        zoo.card("tiny")


MALFORMED = {
    "bad JSON": ('{"name": "bad",', "not valid JSON"),
    "not an object": ("[1, 2]", "must be a JSON object"),
    "missing field": ({"drop": "weights"}, "missing field weights"),
    "wrong type": ({"metrics": [1.0]}, "metrics must be an object, got list"),
    "wrong nested type": (
        {"recipe": {"script": "training/bad.py", "command": 3}},
        "recipe.command must be a string, got int",
    ),
    "unknown factory": (
        {"architecture": {"factory": "transformer", "kwargs": {}}},
        "'transformer' is not a registered model factory",
    ),
    "unknown kwarg": (
        {"architecture": {"factory": "vae", "kwargs": {"latent_size": 2}}},
        "architecture.kwargs: factory 'vae'.*latent_size",
    ),
    "seed on the card": ({"architecture": {"factory": "vae", "kwargs": {"seed": 2}}}, "seed is chosen"),
    "bad sha256": (
        {"weights": {"file": "bad.weights.h5", "sha256": "ABC123"}},
        "weights.sha256 must be 64 lowercase hex digits",
    ),
    "weights outside saved_models": (
        {"weights": {"file": "../x.weights.h5", "sha256": "0" * 64}},
        "weights.file must be a file name",
    ),
    "jit_compile": ({"compile": {"jit_compile": False}}, "compile.jit_compile is not stored"),
    "optimizer by module path": (
        {"compile": {"optimizer": {"module": "os", "class_name": "system", "config": {}}}},
        "compile.optimizer must be one of Keras's built-in optimizers",
    ),
    "unknown family": ({"family": "transformer"}, "family 'transformer' is not one of"),
    "name differs from file": ({"name": "other"}, "name 'other' differs from the file's name 'bad'"),
    "unknown field": ({"builder": "x"}, "unknown field builder"),
}


@pytest.mark.parametrize("problem", sorted(MALFORMED))
def test_a_malformed_card_is_named_and_the_others_still_list_and_load(zoo_home, problem):
    home, original = zoo_home
    change, message = MALFORMED[problem]
    if isinstance(change, dict):
        card = tiny_card("0" * 64, name="bad")
        card["weights"]["file"] = "bad.weights.h5"
        change = dict(change)
        if "drop" in change:
            del card[change.pop("drop")]
        card.update(change)
        change = json.dumps(card)
    path = write_card(home, change, "bad.json")
    with pytest.warns(zoo.ZooCardWarning, match="bad.json") as caught:
        listed = zoo.names()
    assert "tiny" in listed and "bad" not in listed
    assert len([w for w in caught if w.category is zoo.ZooCardWarning]) == 1
    with pytest.raises(zoo.ZooError, match=message) as err:
        zoo.card("bad")
    text = str(err.value)
    assert text.startswith(f"Zoo card {path}: ") and "\n" not in text
    assert [str(e) for e in zoo.problems()] == [text]
    z = np.zeros((1, 2), np.float32)
    np.testing.assert_array_equal(zoo.load("tiny").decode(z), original.decode(z))


def test_cli_zoo_list_reports_a_malformed_card_and_lists_the_rest(zoo_home, capsys):
    home, _ = zoo_home
    write_card(home, "{", "bad.json")
    assert cli.main(["zoo", "list"]) == 0
    out, err = capsys.readouterr()
    assert "tiny" in [line.split()[0] for line in out.splitlines()]
    assert "skipped" in err and "bad.json" in err and "not valid JSON" in err


@pytest.mark.parametrize(
    "version, message",
    [
        (2, "schema_version 2 is not supported"),
        (None, "missing field schema_version"),
        ("1", "schema_version '1' is not supported"),
    ],
)
def test_a_card_of_another_schema_version_is_refused(zoo_home, version, message):
    home, _ = zoo_home
    card = json.loads((home / "zoo" / "tiny.json").read_text())
    if version is None:
        del card["schema_version"]
    else:
        card["schema_version"] = version
    path = write_card(home, card)
    with pytest.raises(zoo.ZooError, match=message) as err:
        zoo.load("tiny")
    assert str(path) in str(err.value)


def test_cli_train_of_a_zoo_name_prints_its_reproducing_command(zoo_home):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "tiny"])
    message = str(exit_.value.code)
    assert "python training/tiny.py --epochs 3" in message and "\n" not in message


def tiny_trained_rbm():
    """A tiny PCD RBM after a few updates: weights, seed states, persistent chains and an optimizer state."""
    from keras_gen.models.rbm import make_rbm

    model = make_rbm("bernoulli", 12, 6, k=1, persistent=True, n_chains=8, centering=True, seed=3, name="tiny_rbm")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = (np.random.default_rng(0).random((64, 12)) < 0.3).astype(np.float32)
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    return model


TINY_RBM = {
    "factory": "rbm",
    "kwargs": {
        "visible": "bernoulli",
        "n_visible": 12,
        "n_hidden": 6,
        "k": 1,
        "persistent": True,
        "n_chains": 8,
        "centering": True,
        "name": "tiny_rbm",
    },
}


def publish_tiny(model, home, **changes):
    from keras_gen.zoo.publish import publish

    kwargs = dict(
        family="rbm",
        description="a tiny RBM",
        architecture=TINY_RBM,
        dataset={"name": "random", "split": "train"},
        metrics={"loss": 0.5},
        training={"epochs": 1},
        command="python training/tiny_rbm.py",
        compile={"optimizer": keras.optimizers.SGD(0.01), "jit_compile": True},
    )
    kwargs.update(changes)
    return publish(model, home, "tiny_rbm", **kwargs)


@pytest.mark.slow
def test_publish_round_trip(tmp_path, monkeypatch):
    """publish -> zoo.load from a fresh KERAS_GEN_HOME gives the same model: same
    variables, same samples; the weights hold no optimizer state; the card validates."""
    import h5py

    model = tiny_trained_rbm()
    card = publish_tiny(model, tmp_path)
    assert card.path == tmp_path / "zoo" / "tiny_rbm.json" and zoo.problems() == []
    assert card.weights.sha256 == zoo.sha256(tmp_path / "saved_models" / "tiny_rbm.weights.h5")
    assert card.recipe.script == "training/tiny_rbm.py"
    assert set(card.training) == {"epochs", "machine", "date", "command"}
    assert "jit_compile" not in card.compile and card.compile["optimizer"]["class_name"] == "SGD"
    with h5py.File(tmp_path / "saved_models" / "tiny_rbm.weights.h5", "r") as f:
        assert "optimizer" not in f

    monkeypatch.setenv("KERAS_GEN_HOME", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = zoo.load("tiny_rbm")
    # Every variable a weights file holds: parameters, centering offsets, chains, the model's seed states.
    assert len(model.weights) == len(loaded.weights) == 8
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    np.testing.assert_array_equal(model.sample(5, seed=4, gibbs_steps=3), loaded.sample(5, seed=4, gibbs_steps=3))
    assert loaded.zoo_card == card.to_dict()
    assert isinstance(loaded.optimizer, keras.optimizers.SGD)  # compiled from the card, ready to fine-tune


def test_publish_checks_the_card_before_writing_anything(tmp_path):
    model = tiny_trained_rbm()
    with pytest.raises(zoo.ZooError, match="tiny_rbm.json: family 'transformer'"):
        publish_tiny(model, tmp_path, family="transformer")
    with pytest.raises(ValueError, match="not JSON data"):
        publish_tiny(model, tmp_path, metrics={"loss": np.float32(0.5)})
    with pytest.raises(FileNotFoundError, match="zoo/figures/missing.png"):
        publish_tiny(model, tmp_path, figures=["zoo/figures/missing.png"])
    assert not (tmp_path / "zoo").exists() and not (tmp_path / "saved_models").exists()
    # A card that does not describe the model: refused, nothing written.
    other = {"factory": "rbm", "kwargs": {**TINY_RBM["kwargs"], "n_hidden": 7}}
    with pytest.raises(ValueError, match="does not describe this model"):
        publish_tiny(model, tmp_path, architecture=other)
    assert not (tmp_path / "zoo").exists()


def test_the_command_line_runs_no_files():
    """`keras-gen` calls library functions only: no recipe or benchmark script is run."""
    source = open(cli.__file__).read()
    assert "runpy" not in source and "exec(" not in source and "sys.argv" not in source


def test_the_zoo_table_is_written_from_stored_rows(tmp_path):
    """The library's zoo table (keras-gen evaluate --all, benchmarks/evaluate_zoo.py) from the
    stored rows: one section of the report, rewritten in place, the rest left alone."""
    import shutil

    from keras_gen.evaluation.zoo_table import SECTION, evaluate_zoo

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rows = tmp_path / "evaluate_zoo.json"
    shutil.copy(os.path.join(root, "benchmarks", "evaluate_zoo.json"), rows)
    report = tmp_path / "BENCHMARKS.md"
    report.write_text("# Benchmarks\n\n<!-- begin: other -->\nkept\n<!-- end: other -->\n")
    for _ in range(2):
        evaluate_zoo(rows, report, table_only=True)
    text = report.read_text()
    assert text.count(f"<!-- begin: {SECTION} -->") == 1 and "kept" in text
    for name in ("vae_mnist", "rbm_mnist", "dcgan_mnist", "wgan_mnist", "wgan_gp_mnist"):
        assert f"| {name} |" in text, name


def test_shipped_cards_are_complete():
    assert zoo.problems() == []
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shipped = sorted(name[:-5] for name in os.listdir(os.path.join(root, "zoo")) if name.endswith(".json"))
    assert zoo.names() == shipped
    for name in zoo.names():
        card = zoo.card(name)
        assert card.schema_version == zoo.SCHEMA_VERSION
        assert "jit_compile" not in card.compile
        assert os.path.isfile(zoo.weights_path(name)), name
        assert os.path.isfile(os.path.join(card.root, card.recipe.script)), card.recipe.script
        assert card.recipe.command.startswith(f"python {card.recipe.script}"), card.recipe.command
        for figure in card.figures:
            assert os.path.isfile(os.path.join(card.root, figure)), figure


def test_every_shipped_entry_holds_only_model_variables_and_loads_without_warnings(caplog, capfd):
    """Zoo weights carry no optimizer state, so no entry makes Keras warn when it
    loads (Keras reports skipped optimizer variables with warnings.warn)."""
    import logging

    import h5py

    for name in zoo.names():
        with h5py.File(zoo.weights_path(name), "r") as f:
            assert "optimizer" not in f, name
    capfd.readouterr()
    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in zoo.names():
            zoo.load(name)
    logged = caplog.text + "".join(capfd.readouterr())
    assert "optimizer" not in logged.lower(), logged


@pytest.mark.slow
def test_every_shipped_generative_entry_loads_and_samples():
    """Each generative model of the zoo loads from its card (weights checked by
    sha256) and draws reproducible samples of its data shape, in its domain."""
    from keras_gen.core.base import GenerativeModel

    domains = {"binary": (0.0, 1.0), "unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}
    checked = []
    for name in zoo.names():
        model = zoo.load(name)
        if not isinstance(model, GenerativeModel):  # e.g. the evaluation's classifier
            continue
        kwargs = {"gibbs_steps": 5} if zoo.card(name).family == "rbm" else {}
        a, b = model.sample(3, seed=1, **kwargs), model.sample(3, seed=1, **kwargs)
        assert a.shape == (3, *model.data_shape), (name, a.shape)
        assert np.isfinite(a).all() and np.array_equal(a, b), name
        low, high = domains.get(model.data_domain, (-np.inf, np.inf))
        assert a.min() >= low and a.max() <= high, (name, model.data_domain, a.min(), a.max())
        checked.append(name)
    assert {"vae_mnist", "rbm_mnist"} <= set(checked), checked


# ------------------------------------------------------------------ export
SERVE_WITHOUT_KERAS_GEN = textwrap.dedent(
    """
    import sys, numpy as np, tensorflow as tf
    path, out = sys.argv[1], sys.argv[2]
    served = tf.saved_model.load(path)
    z = tf.constant(np.load(out + "/z.npy"))
    x = tf.constant(np.load(out + "/x.npy"))
    sig = served.signatures
    np.save(out + "/decode.npy", sig["decode"](z=z)["x"].numpy())
    enc = sig["encode"](x=x)
    np.save(out + "/z_mean.npy", enc["z_mean"].numpy())
    np.save(out + "/reconstruct.npy", sig["reconstruct"](x=x)["x"].numpy())
    a = sig["sample"](n=tf.constant(5), seed=tf.constant(3))["x"].numpy()
    b = sig["sample"](n=tf.constant(5), seed=tf.constant(3))["x"].numpy()
    assert a.shape == (5, 12) and np.array_equal(a, b)
    assert not any(m == "keras_gen" or m.startswith("keras_gen.") for m in sys.modules), "keras_gen imported"
    print(",".join(sorted(sig.keys())))
    """
)


@pytest.mark.slow
def test_export_serves_without_keras_gen(tmp_path):
    model = tiny_vae(seed=2)
    model.build_for_data()
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 2)).astype(np.float32)
    x = (rng.random((6, 12)) < 0.5).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "x.npy", x)
    export_dir = tmp_path / "export"
    assert model.export_saved_model(str(export_dir)) == ["decode", "encode", "reconstruct", "sample"]
    script = tmp_path / "serve.py"
    script.write_text(SERVE_WITHOUT_KERAS_GEN)
    # A fresh process, started outside the source tree, that never imports keras_gen.
    result = subprocess.run(
        [sys.executable, str(script), str(export_dir), str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    signatures = set(result.stdout.strip().splitlines()[-1].split(","))
    assert {"decode", "encode", "reconstruct", "sample"} <= signatures
    np.testing.assert_allclose(np.load(tmp_path / "decode.npy"), model.decode(z), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "z_mean.npy"), model.encode(x)[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "reconstruct.npy"), model.reconstruct(x), rtol=1e-5, atol=1e-6)


def test_export_never_overwrites_by_accident(tmp_path, monkeypatch):
    model = tiny_vae(seed=2)
    model.build_for_data()
    target = tmp_path / "export"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    # A folder the export did not write is never replaced, with or without overwrite.
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match="not written by keras-gen"):
            model.export_saved_model(str(target), overwrite=overwrite)
    assert (target / "precious.txt").read_text() == "keep me"
    (target / "precious.txt").unlink()
    model.export_saved_model(str(target))  # an empty folder is fine
    first = sorted(p.name for p in target.iterdir())
    with pytest.raises(FileExistsError, match="an export"):
        model.export_saved_model(str(target))
    model.export_saved_model(str(target), overwrite=True)  # our own export: replaced whole
    assert sorted(p.name for p in target.iterdir()) == first and "keras_gen_export.json" in first
    (target / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        model.export_saved_model(str(target), overwrite=True)
    # No litter beside the target, and the user's umask on the folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == 0o777 & ~umask
    assert ((target / "keras_gen_export.json").stat().st_mode & 0o777) == 0o666 & ~umask
    monkeypatch.chdir(target)
    with pytest.raises(FileExistsError, match="current directory"):
        model.export_saved_model(".", overwrite=True)


# ------------------------------------------------------------------ command line
@pytest.mark.slow
def test_cli_train_sample_export(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli.main(["train", "vae", "--dataset", "ring8", "--epochs", "2", "--steps-per-epoch", "20", "--out", "run"])
    for name in (
        "model.keras",
        "checkpoints/epoch_002.keras",
        "samples/epoch_002.png",
        "samples/training.gif",
        "loss_curves.png",
        "history.csv",
    ):
        assert (tmp_path / "run" / name).exists(), name
    cli.main(["sample", "run/model.keras", "-n", "50", "--out", "s.png", "--npy", "s.npy"])
    assert np.load("s.npy").shape == (50, 2) and (tmp_path / "s.png").exists()
    cli.main(["export", "run/model.keras", "exported"])
    assert (tmp_path / "exported" / "saved_model.pb").exists()
    with pytest.raises(SystemExit, match="exists"):
        cli.main(["export", "run/model.keras", "exported"])


def test_cli_reports_unknown_names_clearly(tmp_path, monkeypatch, zoo_home):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="Unknown zoo model 'nope'"):
        cli.main(["sample", "nope"])
    with pytest.raises(SystemExit, match="unknown family"):
        cli.main(["train", "transformer"])
    with pytest.raises(SystemExit, match="no model file"):
        cli.main(["sample", "missing.keras"])


# ------------------------------------------------------------------ packaging
@pytest.mark.slow
def test_a_regular_install_finds_the_zoo(tmp_path):
    """A non-editable install carries the cards, weights and figures to <prefix>/share/keras-gen.

    `--ignore-installed` keeps pip from uninstalling the keras-gen this test
    suite runs in while it installs the copy under test into a private prefix."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prefix = tmp_path / "prefix"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--ignore-installed",
            "--prefix",
            str(prefix),
            root,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    site = next(prefix.glob("lib/python*/site-packages"))
    probe = (
        "import json, keras_gen, keras_gen.zoo as zoo; from keras_gen.zoo.summary import figures; "
        "print(json.dumps([keras_gen.__file__, [str(r) for r in zoo.roots()], zoo.names(), "
        "[str(zoo.verify(n)) for n in zoo.names()], "
        "[[str(path), exists] for n in zoo.names() for path, exists in figures(zoo.card(n))]]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_GEN_HOME", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    module_file, roots, names, verified, figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert module_file.startswith(str(site))  # the installed copy, not this checkout
    # The install's own data folder comes first (the interpreter's prefix may
    # follow when keras-gen is also installed there, as in CI).
    assert roots[0] == str(prefix / "share" / "keras-gen")
    assert not any(r.startswith(root) for r in roots)  # nothing read from this checkout
    assert names == zoo.names()  # every card of the checkout travelled with the install
    assert all(path.startswith(str(prefix)) for path in verified)
    # Every figure `keras-gen zoo show` prints is a file of the install.
    assert figures and all(exists and path.startswith(str(prefix)) for path, exists in figures)
    # Only keras_gen is installed as a top-level package.
    assert sorted(
        p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".egg-info")) and p.name != "__pycache__"
    ) == ["keras_gen"]


@pytest.mark.slow
def test_every_batch_of_a_dataset_is_checked_and_integers_are_cast(tmp_path):
    """A NaN (or a value out of the domain) in a late batch stops fit with a one-line error
    naming the batch, before any step uses it; integer and boolean data train as floats;
    an empty dataset is refused."""
    from keras_gen.core.validation import DataError

    model = tiny_vae(seed=2)
    rng = np.random.default_rng(0)
    x = (rng.random((96, 12)) < 0.5).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    before = [w.numpy().copy() for w in model.trainable_weights]
    bad = x.copy()
    bad[70, 1] = np.nan  # batch 3 of 3 (batch size 32)
    dataset = tf.data.Dataset.from_tensor_slices(bad).batch(32)
    with pytest.raises(DataError, match=r"batch 3 of the dataset has non-finite values") as info:
        model.fit(dataset, epochs=1, verbose=0)
    assert "\n" not in str(info.value)
    after_two_steps = [w.numpy() for w in model.trainable_weights]
    assert all(np.all(np.isfinite(w)) for w in after_two_steps)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after_two_steps))  # batches 1-2 trained
    out_of_range = tf.data.Dataset.from_tensor_slices(np.concatenate([x, x + 2.0])).batch(32)
    with pytest.raises(DataError, match=r"batch 4 of the dataset has values outside \[0, 1\]"):
        model.fit(out_of_range, epochs=1, verbose=0)
    # Integer and boolean arrays: cast, trained, and the model stays usable.
    model.fit(x.astype("int64"), epochs=1, batch_size=32, verbose=0)
    model.fit(x.astype(bool), epochs=1, batch_size=32, verbose=0)
    model.fit(tf.data.Dataset.from_tensor_slices(x.astype("int32")).batch(32), epochs=1, verbose=0)
    assert np.all(np.isfinite(model.sample(4, seed=0)))
    with pytest.raises(DataError, match="empty"):
        model.fit(tf.data.Dataset.from_tensor_slices(x).take(0).batch(32), epochs=1, verbose=0)


def test_atomic_writes_give_files_the_users_umask(tmp_path):
    from keras_gen.core.files import copy_atomically, write_json

    previous = os.umask(0o027)
    try:
        write_json(tmp_path / "record.json", {"a": 1})
        copy_atomically(tmp_path / "record.json", tmp_path / "copy.json")
    finally:
        os.umask(previous)
    for name in ("record.json", "copy.json"):
        assert ((tmp_path / name).stat().st_mode & 0o777) == 0o640, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.json", "record.json"]


def test_huge_values_in_a_late_batch_of_real_data_are_refused():
    """Real-valued data may take any value a float32 model can train on: a batch
    beyond LARGEST (Adam's second moment would overflow) stops the epoch."""
    from keras_gen.core.validation import LARGEST, checked_dataset, fit_error

    x = np.zeros((64, 2), "float32")
    x[40, 0] = -2 * LARGEST
    checked = checked_dataset(tf.data.Dataset.from_tensor_slices(x).batch(32), domain="real", owner="toy")
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        list(checked)
    message = str(fit_error(info.value, epoch=1, step=2))
    assert "batch 2 of the dataset has values beyond ±4.3e+09" in message and "\n" not in message
    x[40, 0] = LARGEST / 2
    assert len(list(checked_dataset(tf.data.Dataset.from_tensor_slices(x).batch(32), domain="real"))) == 2


def test_a_non_finite_step_stops_the_run_before_anything_is_saved(tmp_path):
    """A learning rate that overflows the weights: fit_with_artifacts stops at the first
    non-finite step with an error naming epoch and step; the update of that step is skipped,
    so the model holds the (finite) weights of the last finite step, and no checkpoint or
    backup of the bad epoch is written."""
    from keras_gen import runs
    from keras_gen.callbacks import TrainingDiverged

    x = (np.random.default_rng(0).random((256, 12)) < 0.5).astype("float32")
    model = tiny_vae(seed=1)
    model.compile(optimizer=keras.optimizers.SGD(1e-3))
    overflow = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: model.optimizer.learning_rate.assign(1e30) if epoch == 1 else None
    )
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 2, step \d+: non-finite.*last finite step"):
        runs.fit_with_artifacts(model, x, str(tmp_path / "run"), epochs=3, n_samples=4, verbose=0, callbacks=[overflow])
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["epoch_001.keras"]
    assert sorted(os.listdir(tmp_path / "run" / "backup")) == ["epoch_0001.json", "epoch_0001.keras"]
    for w in model.weights:
        assert np.all(np.isfinite(w.numpy())), w.path


@pytest.mark.parametrize("key", sorted(zoo.registry.FACTORIES))
def test_registry_reads_each_factory_signature_from_its_source(key):
    """Cards are checked against signatures read without importing the factories;
    they must be the factories' own (names, kinds, which have defaults)."""
    import inspect

    def shape(signature):
        return [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in signature.parameters.values()]

    assert shape(zoo.registry.signature(key)) == shape(inspect.signature(zoo.registry.factory(key)))
    assert zoo.registry.key_of(zoo.registry.factory(key)) == key


# ------------------------------------------------------------------ local dataset files
def test_a_local_npy_or_npz_file_is_a_dataset(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(64, 3)).astype(np.float64)
    np.save(tmp_path / "points.npy", points)
    name = str(tmp_path / "points.npy")
    assert data.is_points(name) and data.data_shape(name) == (3,) and data.splits(name) == ["train"]
    batch = next(iter(data.load(name, batch_size=16, shuffle=False)))
    assert batch.dtype == tf.float32 and batch.shape == (16, 3)
    np.testing.assert_allclose(batch.numpy(), points[:16].astype(np.float32))

    # Images in the keras.datasets layout: uint8 (n, H, W), labels, a test split.
    images = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=40)
    np.savez(tmp_path / "digits.npz", x_train=images[:32], y_train=labels[:32], x_test=images[32:])
    name = str(tmp_path / "digits.npz")
    assert not data.is_points(name) and data.data_shape(name) == (28, 28, 1)
    assert data.splits(name) == ["train", "test"]
    x, y = next(iter(data.load(name, batch_size=8, shuffle=False, with_labels=True)))
    np.testing.assert_allclose(x.numpy(), images[:8, :, :, None] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y.numpy(), labels[:8])
    binary = next(iter(data.load(name, "test", preprocessing="binarized", batch_size=8, flatten=True)))
    assert binary.shape == (8, 784) and set(np.unique(binary.numpy())) <= {0.0, 1.0}
    # Float images in [0, 1] are the same images.
    np.savez(tmp_path / "floats.npz", x_train=images[:32] / 255.0)
    symmetric, _ = data.load_arrays(str(tmp_path / "floats.npz"), preprocessing="symmetric")
    np.testing.assert_allclose(symmetric, data.load_arrays(name, preprocessing="symmetric")[0], atol=1e-6)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x_train": np.array([[0.0, np.nan]])}, "NaN or infinite"),
        ({"x_train": np.full((2, 4, 4), 1.5)}, r"float images must lie in \[0, 1\]"),
        ({"x_train": np.full((2, 4, 4), 300)}, r"integer images must lie in \[0, 255\]"),
        ({"x_train": np.zeros(5)}, r"expected shape \(n, d\)"),
        ({"x_train": np.zeros((0, 3))}, "n >= 1"),
        ({"x_train": np.array([["a", "b"]])}, "expected real numbers"),
        ({"x_train": np.zeros((4, 3)), "x_test": np.zeros((4, 2))}, r"x_train's are \(3,\)"),
        ({"x_train": np.zeros((4, 3)), "y_train": np.zeros(3, int)}, "expected 4 integer labels"),
    ],
)
def test_a_local_dataset_file_is_checked_when_read(tmp_path, arrays, message):
    from keras_gen.core.validation import DataError

    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message) as err:
        for split in data.splits(str(path)):
            data.load(str(path), split, batch_size=2)
    assert str(path) in str(err.value)


def test_a_missing_split_or_file_is_named(tmp_path):
    from keras_gen.core.validation import DataError

    np.save(tmp_path / "train_only.npy", np.zeros((4, 2)))
    with pytest.raises(DataError, match="no test split"):
        data.load(str(tmp_path / "train_only.npy"), "test")
    with pytest.raises(DataError, match="not found"):
        data.load(str(tmp_path / "nothing.npz"))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))  # a pickle: never loaded
    with pytest.raises(DataError, match="not a readable .npy file"):
        data.load(str(tmp_path / "objects.npy"))


@pytest.mark.slow  # tests/test_tensorboard.py trains through the command line by default
def test_cli_trains_on_a_local_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    points = np.random.default_rng(0).normal(size=(256, 3)).astype(np.float32)
    np.savez(tmp_path / "blobs.npz", x_train=points[:192], x_test=points[192:])
    cli.main(["train", "vae", "--dataset", "blobs.npz", "--epochs", "1", "--verbose", "0"])
    model = keras.saving.load_model(tmp_path / "runs" / "vae_blobs" / "model.keras")
    assert model.sample(5, seed=0).shape == (5, 3)
