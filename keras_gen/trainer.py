"""`fit` with the artifacts a training run should leave behind.

One function serves the CLI and the zoo recipes: per-epoch checkpoints written
atomically, resumption of an interrupted run with `BackupAndRestore`, a sample
grid per epoch and their GIF, the history as CSV and as loss curves.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time

import keras
import tensorflow as tf

from keras_gen import plots
from keras_gen.callbacks import SampleGrid


def save_atomically(model, path):
    """`model.save(path)` via a temporary file and a rename: a reader never
    sees a half-written model, and an interruption leaves the old file intact."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
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


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Save the whole model (`.keras`, optimizer state included) every epoch,
    atomically, to `pattern.format(epoch=...)`."""

    def __init__(self, pattern, keep_last=None):
        super().__init__()
        self.pattern = pattern
        self.keep_last = keep_last
        self.saved = []

    def on_epoch_end(self, epoch, logs=None):
        path = self.pattern.format(epoch=epoch + 1)
        save_atomically(self.model, path)
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
    epoch); a finished run is not repeated.
    """
    # Refuse bad data before any file is written.
    model.validate_data(train_data)
    os.makedirs(out_dir, exist_ok=True)
    model.build_for_data()
    grid = SampleGrid(os.path.join(out_dir, "samples"), n=n_samples, seed=sample_seed,
                      reference=reference, sample_kwargs=sample_kwargs)
    history_csv = os.path.join(out_dir, "history.csv")
    all_callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(out_dir, "backup"), double_checkpoint=True),
        EpochTimer(),
        AtomicModelCheckpoint(os.path.join(out_dir, "checkpoints", "epoch_{epoch:03d}.keras"),
                              keep_last=keep_checkpoints),
        grid,
        keras.callbacks.CSVLogger(history_csv, append=True),
        *callbacks,
    ]
    history = model.fit(
        train_data,
        epochs=epochs,
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
    return history


def read_history(path):
    """The CSVLogger file as {metric: [values per epoch]} (resumed runs appended)."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("epoch") not in (None, "epoch")]
    out = {}
    for row in rows:
        for key, value in row.items():
            if key != "epoch" and value not in (None, ""):
                # CSVLogger writes "NA" for a metric missing from an epoch.
                out.setdefault(key, []).append(float("nan") if value == "NA" else float(value))
    return out
