"""`keras-gen train --tensorboard DIR`: epoch scalars and sample images, read back from the event files."""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_gen import cli

pytest.importorskip("tensorboard")


def read_events(log_dir):
    """{(run, tag): [(step, value)]} of every event file under `log_dir`; an image's
    value is its decoded array, a scalar's a float."""
    found = {}
    for path in sorted(glob.glob(os.path.join(log_dir, "*", "events.out.tfevents.*"))):
        run = os.path.basename(os.path.dirname(path))
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                if value.metadata.plugin_data.plugin_name == "images":
                    tensor = tf.image.decode_png(tensor[2]).numpy()  # [width, height, PNG, ...]
                found.setdefault((run, value.tag), []).append((event.step, tensor))
    return found


def test_train_writes_the_epoch_losses_and_a_sample_image_per_epoch(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "vae", "--epochs", "2", "--steps-per-epoch", "3", "--verbose", "0", "--out", "run"]
    cli.main([*argv, "--tensorboard", "tb"])
    assert "training on" not in capsys.readouterr().err  # the default strategy says nothing more

    events = read_events(tmp_path / "tb")
    for run in ("train", "validation"):
        for tag in ("epoch_loss", "epoch_reconstruction_loss", "epoch_kl_loss"):
            values = events[(run, tag)]
            assert [step for step, _ in values] == [0, 1], (run, tag)
            assert all(np.isfinite(float(v)) for _, v in values)
    # The logged loss is the one the CSV history records.
    history = np.genfromtxt(tmp_path / "run" / "history.csv", delimiter=",", names=True)
    np.testing.assert_allclose([float(v) for _, v in events[("train", "epoch_loss")]], history["loss"], rtol=1e-5)

    images = events[("samples", "samples")]
    assert [step for step, _ in images] == [0, 1]
    # The scatter plot of the ring's samples, the picture the run keeps as a PNG.
    width, height = Image.open(tmp_path / "run" / "samples" / "epoch_001.png").size
    assert all(image.shape == (height, width, 3) for _, image in images)


def test_sample_images_draw_the_same_points_without_touching_the_training_rng(tmp_path):
    from keras_gen.callbacks import SampleImages
    from keras_gen.models.vae import make_vae

    model = make_vae("dense", (2,), latent_dim=2, likelihood="gaussian", seed=0)
    model.build_for_data()
    callback = SampleImages(str(tmp_path), n=50, seed=7)
    callback.set_model(model)
    state = np.array(model.seed_generator.state.numpy())
    callback.on_epoch_end(0)
    callback.on_epoch_end(1)
    callback.on_train_end()
    assert np.array_equal(model.seed_generator.state.numpy(), state)
    (first, a), (second, b) = read_events(tmp_path)[("samples", "samples")]
    assert (first, second) == (0, 1)
    # Same weights, same seed: the same points; only the title ("epoch 1", "epoch 2") differs.
    rows = np.flatnonzero((a != b).any(axis=(1, 2)))
    assert rows.size and rows.max() < a.shape[0] // 10, rows


def test_train_without_tensorboard_installed_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` raises ImportError
    with pytest.raises(SystemExit) as stopped:
        cli.main(["train", "vae", "--epochs", "1", "--out", "run", "--tensorboard", "tb"])
    message = str(stopped.value)
    assert len(message.splitlines()) == 1 and 'pip install "keras-gen[tensorboard]"' in message
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()


@pytest.mark.slow
def test_a_mirrored_run_says_how_many_replicas_it_uses(tmp_path):
    # The CPU is split into two devices before TensorFlow starts: a fresh process.
    result = subprocess.run(
        [sys.executable, "-m", "keras_gen.cli", "train", "vae", "--epochs", "1", "--steps-per-epoch", "2"]
        + ["--verbose", "0", "--out", str(tmp_path / "run"), "--strategy", "mirrored", "--cpu-devices", "2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training on 2 replicas (MirroredStrategy)" in result.stderr.splitlines()


def test_the_zoo_recipes_take_tensorboard_too(tmp_path, monkeypatch):
    from keras_gen.zoo.publish import recipe_main

    trained = []

    def train(args):
        trained.append(args.tensorboard)
        return "model.keras"

    argv = ["--out", str(tmp_path / "run"), "--train-only", "--tensorboard", str(tmp_path / "tb")]
    recipe_main("doc", "some_recipe", 1, str(tmp_path), train, finalize=None, argv=argv)
    assert trained == [str(tmp_path / "tb")]
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(SystemExit, match=r'some_recipe --tensorboard: .*pip install "keras-gen\[tensorboard\]"'):
        recipe_main("doc", "some_recipe", 1, str(tmp_path), train, finalize=None, argv=argv)
    assert len(trained) == 1
