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

import keras
import tensorflow as tf

from keras_gen import plots
from keras_gen.callbacks import (
    AtomicModelCheckpoint,
    BackupLast,
    EpochTimer,
    NonFiniteGuard,
    SampleGrid,
    WorkerBackupAndRestore,
)
from keras_gen.core.distribute import is_chief
from keras_gen.core.files import save_atomically


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
    grid = SampleGrid(
        os.path.join(out_dir, "samples"),
        n=n_samples,
        seed=sample_seed,
        reference=reference,
        sample_kwargs=sample_kwargs,
    )
    history_csv = os.path.join(out_dir, "history.csv")
    backup = (
        keras.callbacks.BackupAndRestore(chief_backup, double_checkpoint=True)
        if chief
        else WorkerBackupAndRestore(chief_backup, os.path.join(out_dir, "backup"))
    )
    all_callbacks = [
        backup,
        EpochTimer(),
        # A non-finite step stops the run before anything is saved (unless the
        # caller brought its own guard, e.g. EnergyDivergenceGuard).
        *([] if any(isinstance(c, NonFiniteGuard) for c in callbacks) else [NonFiniteGuard()]),
        # User callbacks run before the checkpoint and the CSV log so that
        # metrics they add to `logs` (e.g. a Frechet distance) are recorded.
        *callbacks,
        AtomicModelCheckpoint(
            os.path.join(out_dir, "checkpoints", "epoch_{epoch:03d}.keras"),
            keep_last=keep_checkpoints,
            save_freq="epoch",
        ),
        grid,
        keras.callbacks.CSVLogger(history_csv, append=True),
        BackupLast(backup),
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
