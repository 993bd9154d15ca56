"""`fit` with the artifacts a training run should leave behind.

One function serves the CLI and the zoo recipes: per-epoch checkpoints and a
backup written atomically and verified, resumption of an interrupted run to
the weights an uninterrupted one would reach (data order included), a sample
grid per epoch and their GIF, the history as CSV and as loss curves, and on
request TensorBoard logs (the epoch scalars and the sample figure).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import warnings

import keras
import tensorflow as tf

from keras_gen import plots
from keras_gen.callbacks import (
    AtomicModelCheckpoint,
    EpochTimer,
    NonFiniteGuard,
    SampleGrid,
    SampleImages,
    require_tensorboard,
)
from keras_gen.core.distribute import is_chief
from keras_gen.core.files import (
    copy_atomically,
    fsync_directory,
    remove_temporaries,
    save_atomically,
    sha256,
    write_json,
)
from keras_gen.data import Epochs


def fit_with_artifacts(
    model,
    train_data,
    out_dir,
    epochs,
    validation_data=None,
    steps_per_epoch=None,
    batch_size=None,
    n_samples=100,
    sample_seed=1234,
    sample_kwargs=None,
    reference=None,
    callbacks=(),
    verbose="auto",
    keep_checkpoints=None,
    data_seed=0,
    resume_from=None,
    tensorboard=None,
):
    """Train `model` with `fit`, leaving checkpoints, samples and plots in `out_dir`.

    Running the same call again after an interruption (an exception, Ctrl-C
    or SIGKILL at any moment) resumes from the last completed epoch and ends
    with the weights an uninterrupted run reaches: `out_dir/backup` holds the
    whole training state (weights, optimizer, chains, buffers, seeds) of the
    last two epochs, each with its sha256; a damaged copy is reported by
    name and the previous one used.

    Exact resumption needs the data order of every epoch to be known without
    replaying the earlier ones: pass `train_data` as `keras_gen.data.Epochs`
    (`data.load_epochs(...)`) or as arrays (with `batch_size`; shuffled per
    epoch with `data_seed`). A `tf.data.Dataset` is iterated as `fit` would
    (exact only if its order does not change between passes).

    A finished run is not repeated: the same call trains nothing, and a larger
    `epochs` trains it further. `resume_from`: a run state that `save_run_state`
    carried away (e.g. committed, for a run that outlives its machine), used
    when `out_dir` has no backup of its own.

    `tensorboard`: a folder for TensorBoard logs: `keras.callbacks.TensorBoard`'s
    epoch scalars (losses, metrics, `epoch_seconds`) in `train/` and
    `validation/`, and the sample figure of each epoch in `samples/`
    (`callbacks.SampleImages`, the same draw as the PNGs). It needs the
    `tensorboard` package, checked before anything is written.
    """
    if tensorboard is not None:
        require_tensorboard()
    if not isinstance(train_data, (Epochs, tf.data.Dataset)):
        arrays = train_data if isinstance(train_data, tuple) else (train_data,)
        train_data = Epochs(arrays, batch_size or 32, seed=data_seed)
    elif batch_size is not None and isinstance(train_data, tf.data.Dataset):
        raise ValueError("batch_size applies to arrays; a tf.data.Dataset is batched already.")
    # Refuse bad data before any file is written.
    model.validate_data(train_data.dataset() if isinstance(train_data, Epochs) else train_data)
    # Multi-worker training runs this on every worker; only the chief writes
    # `out_dir`. The others write the same files to a temporary folder
    # (saving reads variables collectively, so every worker takes part) and
    # delete it; all of them resume from the chief's backup.
    backup = RunBackup(os.path.join(out_dir, "backup"))
    checkpoints = os.path.join(out_dir, "checkpoints")
    chief = is_chief(model.distribute_strategy)
    if not chief:
        out_dir = tempfile.mkdtemp(prefix="keras-gen-worker-")
        if tensorboard is not None:
            tensorboard = os.path.join(out_dir, "tensorboard")
    os.makedirs(out_dir, exist_ok=True)
    if resume_from is not None and chief:
        adopt_run_state(resume_from, os.path.dirname(backup.directory))
    model.build_for_data()
    with model.distribute_strategy.scope():  # optimizer slots are made where fit would make them
        model.build_optimizers()
    initial_epoch = backup.restore(model, tidy=chief)
    if initial_epoch is None:
        # No backup (a run from before backups were verified, or one whose
        # backup folder was deleted): continue from its last checkpoint.
        last = latest_checkpoint(checkpoints)
        initial_epoch = 0
        if last is not None:
            initial_epoch, path = last
            model.load_weights(path)
    if chief:
        remove_temporaries(checkpoints)
    if isinstance(train_data, Epochs):
        # One endless stream read `steps` batches per epoch: epoch k starts at
        # batch k * steps, wherever the run (re)started.
        steps_per_epoch = steps_per_epoch or train_data.steps
        train_data = train_data.stream(start_batch=min(initial_epoch, epochs) * steps_per_epoch)
    grid_kwargs = {"n": n_samples, "seed": sample_seed, "reference": reference, "sample_kwargs": sample_kwargs}
    if tensorboard is None:
        grid = SampleGrid(os.path.join(out_dir, "samples"), **grid_kwargs)
    else:  # one draw per epoch for the PNG and the TensorBoard image
        grid = SampleImages(tensorboard, directory=os.path.join(out_dir, "samples"), **grid_kwargs)
    history_csv = os.path.join(out_dir, "history.csv")
    all_callbacks = [
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
        *([] if tensorboard is None else [epoch_scalars(tensorboard)]),
        # The backup marks an epoch as done, so it is written last: a run
        # interrupted while the history row, the checkpoint or a user callback
        # is written repeats the epoch instead of losing its record.
        BackupEveryEpoch(backup if chief else RunBackup(os.path.join(out_dir, "backup"))),
    ]
    history = model.fit(
        train_data,
        epochs=epochs,
        initial_epoch=min(initial_epoch, epochs),
        validation_data=validation_data,
        steps_per_epoch=steps_per_epoch,
        shuffle=False,  # the data order is the stream's (or the user's pipeline's)
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


def epoch_scalars(log_dir):
    """`keras.callbacks.TensorBoard` writing the epoch logs only: no graph (a custom
    `train_step` has none worth drawing), no profiling, no per-batch values."""
    return keras.callbacks.TensorBoard(
        log_dir, histogram_freq=0, write_graph=False, write_images=False, update_freq="epoch", profile_batch=0
    )


class BackupError(RuntimeError):
    """No usable backup, although the backup folder holds some."""


class RunBackup:
    """The training state at the end of recent epochs, verified before use.

    Epoch e is two files in `directory`: `epoch_NNNN.keras` (the whole model:
    weights, optimizer slots, chains, buffers and seed states) and
    `epoch_NNNN.json` ({"epoch", "file", "bytes", "sha256"}), each written to a
    temporary file, fsynced and renamed. The JSON is written second: it is the
    commit record, so a model file without one (a kill between the two) is
    ignored. The newest `keep` epochs are kept, and an older one is deleted
    only once a newer one is complete: nothing good is replaced by a write
    that has not finished.
    """

    def __init__(self, directory, keep=2):
        self.directory = os.fspath(directory)
        self.keep = int(keep)

    def _records(self):
        return sorted(epoch_files(self.directory, ".json"), reverse=True)

    def _check(self, record_path):
        """(epoch, model path) of a record whose files are whole, else raise ValueError."""
        try:
            with open(record_path) as f:
                record = json.load(f)
            epoch, name, size, digest = (record[k] for k in ("epoch", "file", "bytes", "sha256"))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"unreadable record ({type(err).__name__}: {err})") from None
        path = os.path.join(self.directory, os.path.basename(name))
        if not os.path.exists(path):
            raise ValueError(f"{path} is missing")
        if os.path.getsize(path) != size:
            raise ValueError(f"{path} has {os.path.getsize(path)} bytes, the record says {size}")
        if sha256(path) != digest:
            raise ValueError(f"{path} does not match its sha256")
        return int(epoch), path

    def restore(self, model, tidy=True):
        """Load the newest whole backup into `model`; its epoch, or None if there is none.

        A damaged copy is reported (a warning naming the file) and the one
        before it is used; if every copy is damaged, `BackupError` names them
        all rather than start the run over. With `tidy` (the one process that
        writes the folder) it also clears what a killed write left behind.
        """
        records = self._records()
        if not records:
            return None
        if tidy:
            remove_temporaries(self.directory)
        damaged = []
        for _, record_path in records:
            try:
                epoch, path = self._check(record_path)
                model.load_weights(path)
            except Exception as err:  # a bad record, checksum or a file Keras cannot read
                damaged.append(f"{record_path}: {err}")
                continue
            if tidy and not damaged:
                self._prune()  # finish a cleanup a kill interrupted
            else:
                warnings.warn(
                    f"Skipped damaged backups ({'; '.join(damaged)}); resuming from {path}, epoch {epoch}.",
                    stacklevel=2,
                )
            return epoch
        raise BackupError(
            f"No usable backup in {self.directory}: {'; '.join(damaged)}. "
            f"Move the folder away to train from the last checkpoint or from scratch."
        )

    def save(self, model, epoch):
        """Write the state after `epoch` epochs (1-based), then drop copies beyond `keep`."""
        stem = os.path.join(self.directory, f"epoch_{epoch:04d}")
        path = save_atomically(model, stem + ".keras")
        write_json(
            stem + ".json",
            {"epoch": epoch, "file": os.path.basename(path), "bytes": os.path.getsize(path), "sha256": sha256(path)},
        )
        self._prune()
        return path

    def _prune(self):
        """Delete copies beyond the newest `keep`, and model files that never got a record."""
        for old_epoch, record_path in self._records()[self.keep :]:
            os.remove(record_path)  # the record first: a model file without one is ignored
            old_model = os.path.join(self.directory, f"epoch_{old_epoch:04d}.keras")
            if os.path.exists(old_model):
                os.remove(old_model)
        recorded = {f"epoch_{e:04d}.keras" for e, _ in self._records()}
        for name in os.listdir(self.directory):
            if name.endswith(".keras") and name not in recorded:
                os.remove(os.path.join(self.directory, name))
        fsync_directory(self.directory)


def save_run_state(out_dir, dest, _attempts=3):
    """Copy the newest whole backup of run `out_dir`, and its history, into `dest`.

    The result is the smallest folder that resumes the run exactly (weights,
    optimizer slots, chains, buffers, seed states, the epoch and so the data
    order): a long run can be carried to another machine, or committed and
    continued in a later session, with `resume_from=dest` (the recipes'
    `--resume-from`). Safe while the run is training: the copy is checked
    against the backup's sha256 record, and the previous state in `dest` is
    replaced only once the new one is whole. Returns the epoch saved.
    """
    source = RunBackup(os.path.join(out_dir, "backup"))
    for _, record_path in source._records():
        try:
            epoch, model_path = source._check(record_path)
        except ValueError:
            continue  # damaged, or pruned by the running trainer meanwhile: an older one
        with open(record_path) as f:
            record = json.load(f)
        target = RunBackup(os.path.join(dest, "backup"), keep=1)
        os.makedirs(target.directory, exist_ok=True)
        stem = os.path.join(target.directory, f"epoch_{epoch:04d}")
        copy_atomically(model_path, stem + ".keras")
        if sha256(stem + ".keras") != record["sha256"]:
            os.remove(stem + ".keras")
            if _attempts > 1:  # the trainer replaced it while we copied: take the newer one
                return save_run_state(out_dir, dest, _attempts - 1)
            raise BackupError(f"{model_path} kept changing while it was copied.")
        history = os.path.join(out_dir, "history.csv")
        if os.path.exists(history):
            copy_atomically(history, os.path.join(dest, "history.csv"))
        _copy_sample_grids(out_dir, dest, up_to=epoch)
        write_json(stem + ".json", {**record, "file": os.path.basename(stem + ".keras")})
        target._prune()
        return epoch
    raise BackupError(f"No whole backup to save in {source.directory}.")


def adopt_run_state(state_dir, out_dir):
    """Start run `out_dir` from `state_dir` (what `save_run_state` wrote) unless it
    has a backup of its own: a run is never set back by an older carried state.
    The state's sha256 is checked when the backup is restored."""
    own = RunBackup(os.path.join(out_dir, "backup"))
    if own._records():
        return False
    carried = RunBackup(os.path.join(state_dir, "backup"))
    records = carried._records()
    if not records:
        raise BackupError(f"{state_dir} holds no run state (no backup/epoch_NNNN.json).")
    epoch, record_path = records[0]
    os.makedirs(own.directory, exist_ok=True)
    for path in (os.path.join(carried.directory, f"epoch_{epoch:04d}.keras"), record_path):
        copy_atomically(path, os.path.join(own.directory, os.path.basename(path)))
    history = os.path.join(state_dir, "history.csv")
    if os.path.exists(history) and not os.path.exists(os.path.join(out_dir, "history.csv")):
        copy_atomically(history, os.path.join(out_dir, "history.csv"))
    _copy_sample_grids(state_dir, out_dir, up_to=epoch)
    return True


def _copy_sample_grids(source_dir, dest_dir, up_to):
    """The per-epoch sample grids (`samples/epoch_NNN.png`, up to epoch `up_to`)
    that `dest_dir` lacks: a carried run keeps its picture of every epoch, and
    its GIF at the end shows the whole run. A few tens of kB an epoch."""
    for epoch, path in epoch_files(os.path.join(source_dir, "samples"), ".png"):
        target = os.path.join(dest_dir, "samples", os.path.basename(path))
        if epoch <= up_to and not os.path.exists(target):
            copy_atomically(path, target)


class BackupEveryEpoch(keras.callbacks.Callback):
    """Write a `RunBackup` at the end of every epoch (place it after every other callback)."""

    def __init__(self, backup):
        super().__init__()
        self.backup = backup

    def on_epoch_end(self, epoch, logs=None):
        self.backup.save(self.model, epoch + 1)


def latest_checkpoint(directory):
    """(epoch, path) of the newest `epoch_NNN.keras` in `directory`, or None."""
    return max(epoch_files(directory, ".keras"), default=None)


def epoch_files(directory, extension):
    """[(epoch, path)] of the `epoch_N...<extension>` files in `directory` (any number of digits)."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        stem, ext = os.path.splitext(name)
        if ext == extension and stem.startswith("epoch_") and stem[6:].isdigit():
            found.append((int(stem[6:]), os.path.join(directory, name)))
    return found


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
