"""`fit` with the artifacts a training run should leave behind.

One function serves the CLI and the zoo recipes: per-epoch checkpoints written
atomically, resumption of an interrupted run with `BackupAndRestore`, a sample
grid per epoch and their GIF, the history as CSV and as loss curves.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf

from keras_gen import plots
from keras_gen.callbacks import SampleGrid
from keras_gen.distribute import is_chief


def save_atomically(model, path, weights_only=None):
    """`model.save(path)` (or `save_weights` for `.weights.h5`) via a temporary
    file and a rename: a reader never sees a half-written model, and an
    interruption leaves the old file intact."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    if weights_only and not path.endswith(".weights.h5"):
        raise ValueError(f"Weights-only checkpoints must end in .weights.h5, got {path!r}.")
    suffix = ".weights.h5" if path.endswith(".weights.h5") else os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    os.remove(tmp)  # Keras refuses to overwrite without asking; let it create the file.
    try:
        if suffix == ".weights.h5":
            model.save_weights(tmp)
        else:
            model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def save_zoo_weights(model, path):
    """The model's weights alone (no optimizer state) as `.weights.h5`,
    atomically: what a zoo entry ships. A fresh, uncompiled copy of the model
    receives the variables and is saved, so the file is a third of a
    checkpoint's size and loads into `zoo.build`'s uncompiled model."""
    if not os.fspath(path).endswith(".weights.h5"):
        raise ValueError(f"Zoo weights must end in .weights.h5, got {path!r}.")
    clone = type(model).from_config(model.get_config())
    clone.build_for_data()
    if len(clone.weights) != len(model.weights):
        raise ValueError(f"Cannot copy {len(model.weights)} variables into a fresh {type(model).__name__} "
                         f"with {len(clone.weights)}.")
    for target, source in zip(clone.weights, model.weights):
        target.assign(source)
    return save_atomically(clone, path)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` (same arguments: `monitor`,
    `save_best_only`, ...) whose files are written atomically: a checkpoint
    on disk is always complete, even if the run is killed while saving.
    Optionally keeps only the `keep_last` most recent files."""

    def __init__(self, filepath, keep_last=None, **kwargs):
        super().__init__(filepath, **kwargs)
        self.keep_last = keep_last
        self.saved = []

    def _save_model(self, epoch, batch, logs):
        # Same decision as ModelCheckpoint; only the write itself differs.
        path = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, path):
            return
        if self.save_weights_only:
            save_atomically(self.model, path, weights_only=True)
        else:
            save_atomically(self.model, path)
        if path not in self.saved:
            self.saved.append(path)
        if self.keep_last and len(self.saved) > self.keep_last:
            old = self.saved.pop(0)
            if os.path.exists(old):
                os.remove(old)


class EpochTimer(keras.callbacks.Callback):
    """Add each epoch's wall time to the logs as `epoch_seconds` (so the CSV
    history records what a run cost, summed correctly over resumed runs)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


class WorkerBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore of a non-chief worker: it resumes from the chief's
    backup (`chief_backup_dir`, on a file system the workers share) and
    writes its own backups to `own_backup_dir`, which nobody reads."""

    def __init__(self, chief_backup_dir, own_backup_dir, **kwargs):
        super().__init__(own_backup_dir, **kwargs)
        self.chief_backup = keras.callbacks.BackupAndRestore(chief_backup_dir, **kwargs)

    def on_train_begin(self, logs=None):
        self.chief_backup.set_model(self.model)
        self.chief_backup.on_train_begin(logs)


class _BackupLast(keras.callbacks.Callback):
    """Runs a BackupAndRestore's epoch-end backup after every other callback.

    The backup is what marks an epoch as done for a resumed run, so it is
    written last: an interruption while the history row, the checkpoint or a
    user callback is still being written repeats the epoch instead of losing
    its record. (Restoring must still happen first, at the start of training.)
    """

    def __init__(self, backup):
        super().__init__()
        self.backup = backup
        self.backup_epoch_end = backup.on_epoch_end
        backup.on_epoch_end = lambda epoch, logs=None: None

    def on_epoch_end(self, epoch, logs=None):
        self.backup_epoch_end(epoch, logs)


def fit_with_artifacts(
    model,
    train_data,
    out_dir,
    epochs,
    validation_data=None,
    steps_per_epoch=None,
    n_samples=100,
    sample_seed=1234,
    sample_kwargs=None,
    reference=None,
    callbacks=(),
    verbose="auto",
    keep_checkpoints=None,
):
    """Train `model` with `fit`, leaving checkpoints, samples and plots in `out_dir`.

    Running the same call again after an interruption resumes from the last
    completed epoch (BackupAndRestore keeps the weights, optimizer state and
    epoch). A finished run is not repeated: the same call again continues
    from its last checkpoint (weights, optimizer and seed states), so a larger
    `epochs` trains it further and the same `epochs` trains nothing.
    """
    # Refuse bad data before any file is written.
    model.validate_data(train_data)
    # Multi-worker training runs this on every worker; only the chief writes
    # `out_dir`. The others write the same files to a temporary folder
    # (saving reads variables collectively, so every worker takes part) and
    # delete it; all of them resume from the chief's backup.
    chief_backup = os.path.join(out_dir, "backup")
    checkpoints = os.path.join(out_dir, "checkpoints")
    chief = is_chief(model.distribute_strategy)
    if not chief:
        out_dir = tempfile.mkdtemp(prefix="keras-gen-worker-")
    os.makedirs(out_dir, exist_ok=True)
    model.build_for_data()
    initial_epoch = 0
    last = None if os.path.isdir(chief_backup) else latest_checkpoint(checkpoints)
    if last is not None:
        # No interrupted run to restore, but a finished one: continue it.
        initial_epoch, path = last
        model.build_optimizers()
        model.load_weights(path)
    grid = SampleGrid(os.path.join(out_dir, "samples"), n=n_samples, seed=sample_seed,
                      reference=reference, sample_kwargs=sample_kwargs)
    history_csv = os.path.join(out_dir, "history.csv")
    backup = (keras.callbacks.BackupAndRestore(chief_backup, double_checkpoint=True) if chief
              else WorkerBackupAndRestore(chief_backup, os.path.join(out_dir, "backup")))
    all_callbacks = [
        backup,
        EpochTimer(),
        # User callbacks run before the checkpoint and the CSV log so that
        # metrics they add to `logs` (e.g. a Frechet distance) are recorded.
        *callbacks,
        AtomicModelCheckpoint(os.path.join(out_dir, "checkpoints", "epoch_{epoch:03d}.keras"),
                              keep_last=keep_checkpoints, save_freq="epoch"),
        grid,
        keras.callbacks.CSVLogger(history_csv, append=True),
        _BackupLast(backup),
    ]
    history = model.fit(
        train_data,
        epochs=epochs,
        initial_epoch=min(initial_epoch, epochs),
        validation_data=validation_data,
        steps_per_epoch=steps_per_epoch,
        # A tf.data pipeline shuffles itself (seeded); arrays are shuffled by fit.
        shuffle=not isinstance(train_data, tf.data.Dataset),
        callbacks=all_callbacks,
        verbose=verbose,
    )
    save_atomically(model, os.path.join(out_dir, "model.keras"))
    full_history = read_history(history_csv)
    if full_history:
        plots.plot_history(full_history, os.path.join(out_dir, "loss_curves.png"), title=model.name)
    if os.path.isdir(grid.directory) and os.listdir(grid.directory):
        grid.make_gif()
    if not chief:
        shutil.rmtree(out_dir, ignore_errors=True)
    return history


def latest_checkpoint(directory):
    """(epoch, path) of the newest `epoch_NNN.keras` in `directory`, or None."""
    if not os.path.isdir(directory):
        return None
    found = []
    for name in os.listdir(directory):
        stem, ext = os.path.splitext(name)
        if ext == ".keras" and stem.startswith("epoch_") and stem[6:].isdigit():
            found.append((int(stem[6:]), os.path.join(directory, name)))
    return max(found) if found else None


def read_history(path):
    """The CSVLogger file as {metric: [values per epoch]} (resumed runs appended)."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("epoch") not in (None, "epoch")]
    # An epoch interrupted after its row was written but before the backup
    # marked it done is trained again on resume: its last row is the record.
    last = {}
    for row in rows:
        last.pop(row["epoch"], None)
        last[row["epoch"]] = row
    rows = sorted(last.values(), key=lambda r: int(r["epoch"]))
    out = {}
    for row in rows:
        for key, value in row.items():
            if key != "epoch" and value not in (None, ""):
                # CSVLogger writes "NA" for a metric missing from an epoch.
                out.setdefault(key, []).append(float("nan") if value == "NA" else float(value))
    return out
