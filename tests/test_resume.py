"""Nothing lost: exact resumption, verified backups, non-finite steps.

* `data.Epochs`: each epoch's order is a function of (seed, epoch) alone, so
  a stream started at epoch k is the tail of the stream started at 0.
* Every family, interrupted mid-epoch and run again with the same call, ends
  with the weights, optimizer state, chains, buffers and seeds of an
  uninterrupted run, bit for bit, with shuffling on.
* A damaged backup is named and the previous one used; when none is usable
  the run refuses to start over.
* A non-finite gradient skips the update (on one device and under
  MirroredStrategy) and the guard stops the run with the last finite weights.
* SIGKILL at the moments a file is being written (the first backup, between
  a backup and its record, mid-checkpoint, while old backups are deleted)
  and mid-epoch: the run started again ends where an uninterrupted one does.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from test_contract import FAMILIES

from keras_gen import data, runs
from keras_gen.callbacks import TrainingDiverged
from keras_gen.core.distribute import apply_if_finite
from keras_gen.core.errors import DataError
from keras_gen.models import gan, vae
from keras_gen.zoo.publish import recipe_main

EPOCHS = 2
BATCH = 16  # 96 examples: 6 steps per epoch


# ---------------------------------------------------------------- data order
def test_epochs_are_a_function_of_seed_and_epoch():
    x = np.arange(50, dtype="float32")[:, None]
    epochs = data.Epochs(x, batch_size=8, seed=4)
    assert epochs.steps == 7
    whole = [b.numpy() for b in epochs.stream().take(3 * 7)]
    for epoch in range(3):
        batches = whole[7 * epoch : 7 * (epoch + 1)]
        # Each epoch is a permutation of the data, and epochs differ.
        np.testing.assert_array_equal(np.sort(np.concatenate(batches)[:, 0]), x[:, 0])
    assert not np.array_equal(whole[0], whole[7])
    # Resumed anywhere, the stream is the tail of the full one.
    for start in (7, 10):
        tail = [b.numpy() for b in epochs.stream(start_batch=start).take(21 - start)]
        for a, b in zip(whole[start:], tail):
            np.testing.assert_array_equal(a, b)
    # A new object with the same seed gives the same epochs; another seed does not.
    np.testing.assert_array_equal(next(iter(data.Epochs(x, 8, seed=4).stream(14))).numpy(), whole[14])
    assert not np.array_equal(next(iter(data.Epochs(x, 8, seed=5).stream())).numpy(), whole[0])


def test_dynamic_binarization_is_fixed_per_epoch_and_batch():
    source = np.full((20, 4), 128, dtype="uint8")
    transform = data._dynamic_binarize(with_labels=False)
    epochs = data.Epochs((source, np.zeros(20, "int64")), batch_size=5, seed=1, transform=transform)
    first = [b.numpy() for b in epochs.stream().take(8)]
    again = [b.numpy() for b in epochs.stream(start_batch=4).take(4)]
    for a, b in zip(first[4:], again):
        np.testing.assert_array_equal(a, b)
    assert set(np.unique(np.concatenate(first))) == {0.0, 1.0}
    assert not np.array_equal(first[0], first[4])  # fresh pixels in the next epoch


def test_load_still_reshuffles_every_pass():
    ds = data.load("ring8", "train", batch_size=1000, seed=2)
    a, b = (next(iter(ds)).numpy() for _ in range(2))
    assert not np.array_equal(a, b)
    assert int(ds.cardinality()) == 50


# ------------------------------------------------------- resume, per family
class Interrupt(keras.callbacks.Callback):
    """Raise in the middle of an epoch, as a kill would stop the run there."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch = epoch, batch

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt("interrupted for the test")


def state(model):
    """Every variable that decides how training continues."""
    variables = list(model.weights)
    for value in vars(model).values():
        if isinstance(value, keras.optimizers.Optimizer):
            variables += [v for v in value.variables if all(v is not w for w in variables)]
    # By position: two models built alike name their layers differently (dense_1, dense_3, ...).
    return [(tuple(v.shape), np.array(v.numpy())) for v in variables]


def build(make):
    # Some networks draw their initial weights from Keras's global seed.
    keras.utils.set_random_seed(0)
    model, x = make()
    # Resumption does not depend on XLA (tested elsewhere); tracing without it is faster here.
    model.jit_compile = False
    return model, x


def uninterrupted(make, epochs=EPOCHS):
    """Plain `fit` on the same stream of epochs: no files, no artifacts, no resumption."""
    model, x = build(make)
    model.fit(data.Epochs(x, BATCH).stream(), steps_per_epoch=len(x) // BATCH, epochs=epochs, verbose=0)
    return model


def run(make, out, epochs=EPOCHS, callbacks=()):
    model, x = build(make)
    runs.fit_with_artifacts(
        model, x, str(out), epochs=epochs, batch_size=BATCH, n_samples=4, verbose=0, callbacks=list(callbacks)
    )
    return model


def assert_same_state(a, b):
    a, b = state(a), state(b)
    assert [shape for shape, _ in a] == [shape for shape, _ in b]
    for i, ((_, value_a), (_, value_b)) in enumerate(zip(a, b)):
        np.testing.assert_array_equal(value_a, value_b, err_msg=f"variable {i}")


def wgan_clipped():
    model = gan.tiny_gan_for_tests(seed=3, dropout=0.0)
    model.compile(**gan.wgan_compile_kwargs())
    return model, FAMILIES["gan"]()[1]


RESUMED = {**FAMILIES, "wgan_clipped": wgan_clipped}


@pytest.mark.parametrize(
    # vae by default; rbm_pcd and the rest with the slow tests (test_rbm resumes PCD chains by default).
    "family",
    [f if f == "vae" else pytest.param(f, marks=pytest.mark.slow) for f in sorted(RESUMED)],
)
def test_an_interrupted_run_ends_where_an_uninterrupted_one_does(family, tmp_path):
    make = RESUMED[family]
    reference = uninterrupted(make)
    with pytest.raises(KeyboardInterrupt):
        run(make, tmp_path / "resumed", callbacks=[Interrupt(epoch=1, batch=2)])
    resumed = run(make, tmp_path / "resumed")
    assert_same_state(reference, resumed)
    # The history has one row per epoch, however often an epoch was started.
    assert len(runs.read_history(tmp_path / "resumed" / "history.csv")["epoch_seconds"]) == EPOCHS


# ------------------------------------------------------------ damaged files
def dense_vae():
    return FAMILIES["vae"]()


def flip_a_byte(blob):
    blob = bytearray(blob)
    blob[len(blob) // 2] ^= 0xFF
    return bytes(blob)


# What is done to the newest backup's files, and how the warning names it.
DAMAGES = {
    "weights_bit_flipped": ("keras", flip_a_byte, r"epoch_0002\.keras does not match its sha256"),
    "weights_truncated": ("keras", lambda blob: blob[: len(blob) // 2], r"epoch_0002\.keras has \d+ bytes"),
    "weights_empty": ("keras", lambda blob: b"", r"epoch_0002\.keras has 0 bytes"),
    "record_bit_flipped": ("json", flip_a_byte, r"epoch_0002\.json: unreadable record"),
    "record_truncated": ("json", lambda blob: blob[: len(blob) // 2], r"epoch_0002\.json: unreadable record"),
}
# Every damage on the VAE; one each, in turn, on the other families (loading differs, checking does not).
DAMAGED = [("vae", damage) for damage in DAMAGES] + [
    (family, list(DAMAGES)[i % len(DAMAGES)]) for i, family in enumerate(f for f in sorted(FAMILIES) if f != "vae")
]


@functools.cache
def reference_state(family):
    """The state after an uninterrupted run of 3 epochs, shared by the fault tests of `family`."""
    return uninterrupted(FAMILIES[family], epochs=3)


@pytest.mark.parametrize(
    "family, damage",
    [
        case if case == ("vae", "weights_bit_flipped") else pytest.param(*case, marks=pytest.mark.slow)
        for case in DAMAGED
    ],
)
def test_a_damaged_backup_is_named_and_the_previous_one_used(family, damage, tmp_path):
    make = FAMILIES[family]
    out = tmp_path / "run"
    run(make, out, epochs=2)
    extension, harm, named = DAMAGES[damage]
    latest = out / "backup" / f"epoch_0002.{extension}"
    latest.write_bytes(harm(latest.read_bytes()))
    with pytest.warns(UserWarning, match=named + r".*epoch 1"):
        resumed = run(make, out, epochs=3)
    assert_same_state(reference_state(family), resumed)


def test_an_empty_record_falls_back_and_no_usable_backup_refuses(tmp_path):
    out = tmp_path / "run"
    run(dense_vae, out, epochs=2)
    (out / "backup" / "epoch_0002.json").write_text("")
    model, _ = dense_vae()
    model.build_for_data()
    model.build_optimizers()
    backup = runs.RunBackup(out / "backup")
    with pytest.warns(UserWarning, match=r"epoch_0002\.json: unreadable record"):
        assert backup.restore(model) == 1
    (out / "backup" / "epoch_0001.keras").write_bytes(b"not a model")
    with pytest.raises(runs.BackupError, match=r"No usable backup.*epoch_0002\.json.*epoch_0001\.keras"):
        backup.restore(model)


@pytest.mark.slow
def test_a_run_without_backup_continues_from_its_last_checkpoint(tmp_path):
    reference = uninterrupted(dense_vae, epochs=3)
    out = tmp_path / "run"
    run(dense_vae, out, epochs=2)
    for name in os.listdir(out / "backup"):
        os.remove(out / "backup" / name)
    assert_same_state(reference, run(dense_vae, out, epochs=3))


@pytest.mark.slow
def test_a_carried_run_state_resumes_on_another_machine(tmp_path, capsys):
    """A long run outlives its machine: its state is saved to a small folder
    (committed, copied), and a fresh run folder elsewhere continues from it,
    through the command line every zoo recipe shares."""
    trained = []

    def train(args):
        model, x = build(dense_vae)
        runs.fit_with_artifacts(model, x, args.out, epochs=args.epochs, batch_size=BATCH, n_samples=4, verbose=0)
        trained.append(model)

    def recipe(*argv):
        recipe_main("a tiny recipe", "tiny", 2, str(tmp_path), train, finalize=None, argv=["--train-only", *argv])

    reference = uninterrupted(dense_vae, epochs=3)
    recipe("--out", str(tmp_path / "first_machine"))
    carried = tmp_path / "carried"
    recipe("--out", str(tmp_path / "first_machine"), "--save-state", str(carried))
    assert "state after epoch 2 saved" in capsys.readouterr().out
    assert sorted(os.listdir(carried / "backup")) == ["epoch_0002.json", "epoch_0002.keras"]
    assert sorted(os.listdir(carried / "samples")) == ["epoch_001.png", "epoch_002.png"]
    out = tmp_path / "second_machine"
    recipe("--out", str(out), "--resume-from", str(carried), "--epochs", "3")
    assert_same_state(reference, trained[-1])
    assert len(runs.read_history(out / "history.csv")["epoch_seconds"]) == 3
    # The grids of every epoch are there, the carried ones unchanged, and the GIF shows them all.
    assert sorted(os.listdir(out / "samples")) == ["epoch_001.png", "epoch_002.png", "epoch_003.png", "training.gif"]
    with Image.open(out / "samples" / "training.gif") as gif:
        assert gif.n_frames == 3
    assert (out / "samples" / "epoch_002.png").read_bytes() == (carried / "samples" / "epoch_002.png").read_bytes()
    # A run with a backup of its own is never set back by a carried state.
    assert not runs.adopt_run_state(carried, out)
    # A damaged carried state is named, not trained from scratch.
    blob = carried / "backup" / "epoch_0002.keras"
    blob.write_bytes(blob.read_bytes()[:-10])
    with pytest.raises(runs.BackupError, match=r"epoch_0002\.keras has \d+ bytes"):
        recipe("--out", str(tmp_path / "third_machine"), "--resume-from", str(carried), "--epochs", "3")


# ------------------------------------------------------------ bad data late
@pytest.mark.parametrize(
    "family", [f if f == "vae" else pytest.param(f, marks=pytest.mark.slow) for f in sorted(FAMILIES)]
)
def test_a_nan_in_a_late_batch_names_epoch_and_step_and_keeps_good_checkpoints(family, tmp_path):
    model, x = build(FAMILIES[family])
    out = tmp_path / "run"

    def train(x, epochs):
        dataset = tf.data.Dataset.from_tensor_slices(x).batch(BATCH)
        runs.fit_with_artifacts(model, dataset, str(out), epochs=epochs, n_samples=4, verbose=0)

    def saved():
        return {p: p.read_bytes() for folder in ("checkpoints", "backup") for p in (out / folder).iterdir()}

    train(x, epochs=1)
    good = saved()
    bad = x.copy()
    bad[-3, 1] = np.nan  # in batch 6 of 6
    with pytest.raises(DataError, match=r"epoch 2, step 6: batch 6 of the dataset has non-finite values") as info:
        train(bad, epochs=2)
    assert "\n" not in str(info.value)
    assert saved() == good
    for w in model.weights:
        assert np.all(np.isfinite(w.numpy())), w.path


# ------------------------------------------------------- non-finite updates
def test_a_non_finite_gradient_skips_the_update():
    variable = tf.Variable([1.0, 2.0])
    optimizer = keras.optimizers.Adam(0.1)
    optimizer.build([variable])

    @tf.function(jit_compile=True)
    def step(g):
        return apply_if_finite(optimizer, [g], [variable])

    assert bool(step(tf.constant([1.0, 1.0])))
    after_one = (variable.numpy().copy(), [v.numpy().copy() for v in optimizer.variables])
    assert not bool(step(tf.constant([np.nan, 1.0])))
    np.testing.assert_array_equal(variable.numpy(), after_one[0])
    for v, before in zip(optimizer.variables, after_one[1]):
        np.testing.assert_array_equal(v.numpy(), before)
    assert int(optimizer.iterations.numpy()) == 1


MIRRORED_SKIP = textwrap.dedent(
    """
    import numpy as np
    from keras_gen.core import distribute
    distribute.split_cpu(2)
    import keras
    import tensorflow as tf
    strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
    with strategy.scope():
        variable = tf.Variable([1.0, 2.0])
        optimizer = keras.optimizers.SGD(0.5)
        optimizer.build([variable])

    @tf.function
    def step(bad_replica):
        def replica_fn():
            index = tf.distribute.get_replica_context().replica_id_in_sync_group
            g = tf.where(tf.equal(index, bad_replica), tf.constant([np.nan, 1.0]), tf.constant([1.0, 1.0]))
            return distribute.apply_if_finite(optimizer, [g], [variable])

        return strategy.experimental_local_results(strategy.run(replica_fn))

    applied = [bool(f) for f in step(tf.constant(-1))]
    after_one = [c.numpy().tolist() for c in variable.values]
    skipped = [bool(f) for f in step(tf.constant(1))]
    print(all(applied), after_one, any(skipped), [c.numpy().tolist() for c in variable.values],
          int(optimizer.iterations.numpy()))
    """
)


@pytest.mark.slow
def test_a_non_finite_gradient_on_one_replica_skips_every_replica():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", MIRRORED_SKIP], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    # Both replicas' gradients (1, 1) summed: 2 - 0.5 * 2 = 0 and 1; then NaN on replica 1: no change anywhere.
    expected = "True [[0.0, 1.0], [0.0, 1.0]] False [[0.0, 1.0], [0.0, 1.0]] 1"
    assert done.stdout.strip().splitlines()[-1] == expected


class PoisonedVAE(vae.VAE):
    """A VAE whose gradients turn NaN from a given step on (the loss stays finite)."""

    poison_from = 8

    def gradients_and_metrics(self, x):
        grads = super().gradients_and_metrics(x)
        poisoned = self.optimizer.iterations >= self.poison_from
        return [tf.where(poisoned, tf.fill(tf.shape(g), np.nan), g) for g in grads]


def test_the_guard_stops_at_a_skipped_update_with_the_last_finite_weights(tmp_path):
    model, x = dense_vae()
    poisoned = PoisonedVAE(model.encoder, model.decoder, seed=3)
    poisoned.compile(optimizer=keras.optimizers.Adam(1e-2))
    seen = {}
    snapshot = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.update(
            {int(poisoned.optimizer.iterations.numpy()): [w.numpy().copy() for w in poisoned.trainable_weights]}
        )
    )
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 3: non-finite gradients \(the update was skipped\)"):
        runs.fit_with_artifacts(
            poisoned, x, str(tmp_path / "run"), epochs=3, batch_size=BATCH, n_samples=4, verbose=0,
            callbacks=[snapshot],
        )  # fmt: skip
    assert int(poisoned.optimizer.iterations.numpy()) == 8
    for w, kept in zip(poisoned.trainable_weights, seen[8]):
        np.testing.assert_array_equal(w.numpy(), kept)
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["epoch_001.keras"]
    assert sorted(os.listdir(tmp_path / "run" / "backup")) == ["epoch_0001.json", "epoch_0001.keras"]


# ------------------------------------------------------------- SIGKILL
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    family, kill_at, out = sys.argv[1:4]
    import keras
    from keras_gen import runs
    from test_resume import Interrupt, build, FAMILIES, BATCH

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    what, _, where = kill_at.partition(":")
    callbacks = []
    if what == "batch":  # mid-epoch: epoch,batch
        epoch, batch = map(int, where.split(","))
        class Kill(Interrupt):
            def on_train_batch_end(self, b, logs=None):
                if self.current == epoch and b == batch:
                    die()
        callbacks.append(Kill(epoch, batch))
    elif what in ("replace", "remove"):  # before the rename to / deletion of a file ending so
        original = getattr(os, what)
        def patched(*args, **kwargs):
            if str(args[-1]).endswith(where):
                die()
            return original(*args, **kwargs)
        setattr(os, what, patched)
    elif what == "truncate":  # a temporary file half written, then killed
        from keras_gen.core import files
        original = os.replace
        def patched(src, dst):
            if str(dst).endswith(where):
                with open(src, "r+b") as f:
                    f.truncate(os.path.getsize(src) // 2)
                die()
            return original(src, dst)
        os.replace = patched
    model, x = build(FAMILIES[family])
    runs.fit_with_artifacts(model, x, out, epochs=3, batch_size=BATCH, n_samples=4, verbose=0,
                            callbacks=callbacks)
    """
)

STEPS = 96 // BATCH
KILLED = sorted(FAMILIES)
# A step of the 3 epochs per family, drawn once by a fixed-seed RNG.
RANDOM_STEPS = dict(zip(KILLED, np.random.default_rng(22).integers(0, 3 * STEPS, len(KILLED)).tolist()))


def kill_points(family):
    """Where a run of `family` is killed: a random step and a half-written backup;
    the VAE also at every other moment a file is written."""
    step = RANDOM_STEPS[family]
    points = {
        f"step_{step + 1}": f"batch:{step // STEPS},{step % STEPS}",
        "first_backup_half_written": "truncate:backup/epoch_0001.keras",
    }
    if family == "vae":
        points.update(
            {
                "first_backup_before_rename": "replace:backup/epoch_0001.keras",
                "between_backup_and_record": "replace:backup/epoch_0002.json",
                "mid_checkpoint": "replace:checkpoints/epoch_002.keras",
                "deleting_the_old_backup": "remove:backup/epoch_0001.json",
            }
        )
    return points


@pytest.mark.slow
@pytest.mark.parametrize("family", KILLED)
def test_sigkill_at_any_moment_resumes_to_the_uninterrupted_weights(family, tmp_path):
    make = FAMILIES[family]
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # The killed runs are independent: run them side by side.
    children = {
        name: subprocess.Popen(
            [sys.executable, str(script), family, kill_at, str(tmp_path / name)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, kill_at in kill_points(family).items()
    }
    for name, child in children.items():
        _, stderr = child.communicate()
        assert child.returncode == -signal.SIGKILL, f"{name}: the kill point was not reached\n{stderr[-3000:]}"
    for name in kill_points(family):
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="Skipped damaged")  # no damaged copy to skip
            resumed = run(make, tmp_path / name, epochs=3)
        assert_same_state(reference_state(family), resumed)
        backup = sorted(os.listdir(tmp_path / name / "backup"))
        assert backup == ["epoch_0002.json", "epoch_0002.keras", "epoch_0003.json", "epoch_0003.keras"], name
        for folder in ("backup", "checkpoints"):
            assert not [f for f in os.listdir(tmp_path / name / folder) if f.startswith(".tmp-")], (name, folder)
        records = [json.loads((tmp_path / name / "backup" / f).read_text()) for f in backup if f.endswith(".json")]
        assert [r["epoch"] for r in records] == [2, 3]
