"""Every Keras callback keras-gen provides, in one place.

* Pictures and sample quality: `SampleGrid`, `SampleImages` (TensorBoard), `FrechetDistance`.
* RBMs: `FreeEnergyGap` (overfitting monitor), `GibbsStepsSchedule`.
* GANs: `IterationHistory` (each step's own metrics) and `read_iterations`.
* Guards: `NonFiniteGuard` (any run), `EnergyDivergenceGuard` (runaway energies).
* Runs (used by `keras_gen.runs.fit_with_artifacts`): `EpochTimer`,
  `AtomicModelCheckpoint` (the run's backup is `keras_gen.runs.RunBackup`).
"""

from __future__ import annotations

import csv
import io
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_gen import plots
from keras_gen.core import compat
from keras_gen.core.files import save_atomically


class SampleGrid(keras.callbacks.Callback):
    """Save a grid of samples drawn with a fixed seed at the end of every epoch.

    The seed stays the same across epochs, so the PNGs show how the same
    latent points evolve (for latent-variable models); `make_gif()` turns
    them into an animation of training.
    """

    def __init__(self, directory, n=100, seed=1234, every=1, reference=None, sample_kwargs=None):
        super().__init__()
        self.directory = directory
        self.n = n
        self.seed = seed
        self.every = every
        self.reference = reference
        self.sample_kwargs = dict(sample_kwargs or {})
        self.paths = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        self.show(self.model.sample(self.n, seed=self.seed, **self.sample_kwargs), epoch)

    def show(self, samples, epoch):
        """Save the figure of `samples` after `epoch` (0-based); its path."""
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"epoch_{epoch + 1:03d}.png")
        plots.save_samples(samples, path, title=f"epoch {epoch + 1}", reference=self.reference)
        self.paths.append(path)
        return path

    def make_gif(self, path=None):
        path = path or os.path.join(self.directory, "training.gif")
        pngs = sorted(p for p in os.listdir(self.directory) if p.startswith("epoch_") and p.endswith(".png"))
        return plots.make_gif([os.path.join(self.directory, p) for p in pngs], path)


TENSORBOARD_MISSING = 'TensorBoard is not installed: pip install "keras-gen[tensorboard]"'


def require_tensorboard():
    """Raise ImportError with the install command unless the `tensorboard` package is
    importable (`tf.summary` and `keras.callbacks.TensorBoard` write nothing without it)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ImportError(TENSORBOARD_MISSING) from None


class SampleImages(SampleGrid):
    """`SampleGrid`'s figure of every epoch as a TensorBoard image (`tf.summary.image`).

    The picture is the PNG `SampleGrid` draws: a grid for images, and for 2-D
    points (the ring datasets) a scatter plot of the samples over `reference`,
    rendered to an image. It is written to `log_dir/samples` under `tag`, at
    step = the 0-based epoch, the step `keras.callbacks.TensorBoard` gives
    its epoch scalars. The samples are drawn with the integer `seed`, a
    stateless draw: every epoch shows the same latent points, and the
    model's seed generator (the training's random numbers) is not touched.
    With `directory` the PNGs are kept there too, from the same draw.
    """

    def __init__(
        self, log_dir, n=100, seed=1234, every=1, reference=None, sample_kwargs=None, directory=None, tag="samples"
    ):
        require_tensorboard()
        super().__init__(directory, n=n, seed=seed, every=every, reference=reference, sample_kwargs=sample_kwargs)
        self.log_dir = log_dir
        self.tag = tag
        self._writer = None

    def show(self, samples, epoch):
        if self.directory:
            path = super().show(samples, epoch)
            with open(path, "rb") as f:
                png = f.read()
        else:
            buffer = io.BytesIO()
            plots.save_samples(samples, buffer, title=f"epoch {epoch + 1}", reference=self.reference)
            png = buffer.getvalue()
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "samples"))
        with self._writer.as_default():
            tf.summary.image(self.tag, tf.image.decode_png(png, channels=3)[tf.newaxis], step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class FrechetDistance(keras.callbacks.Callback):
    """Log the Fréchet distance (and KID) of the model's samples to a
    validation set of MNIST images, on the first epoch and every `every`
    epochs after, as the metrics `val_fd` and `val_kid`.

    The values go into the epoch logs, so callbacks placed *after* this one
    see them: `ModelCheckpoint(monitor="val_fd", mode="min", save_best_only=True)`,
    `CSVLogger`, `TensorBoard`. Features come from the zoo's domain
    classifier (`keras_gen.evaluation`); samples are drawn with a fixed seed.
    With the defaults (1,000 samples, 10 KID subsets of 500) it costs a few
    seconds per evaluation on a CPU, little next to an epoch.
    """

    def __init__(
        self,
        validation_images,
        every=5,
        n_samples=1000,
        seed=4321,
        kid=True,
        classifier=None,
        sample_kwargs=None,
        kid_subsets=10,
        kid_subset_size=500,
    ):
        super().__init__()
        from keras_gen import evaluation

        self.validation_images = evaluation.to_images(validation_images)
        self.every = int(every)
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {every}.")
        self.n_samples = int(n_samples)
        self.seed = seed
        self.kid = kid
        self.classifier = classifier
        self.sample_kwargs = dict(sample_kwargs or {})
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self._reference = None

    def on_train_begin(self, logs=None):
        from keras_gen import evaluation

        self.classifier = self.classifier or evaluation.load_classifier()
        if self._reference is None:
            self._reference = evaluation.ImageSet(self.validation_images, self.classifier, label="validation")

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or (epoch > 0 and (epoch + 1) % self.every):
            return
        from keras_gen import evaluation
        from keras_gen.evaluation import metrics

        samples = self.model.sample(self.n_samples, seed=self.seed, **self.sample_kwargs)
        generated = evaluation.ImageSet(
            evaluation.to_images(samples, getattr(self.model, "data_domain", "unit")), self.classifier
        )
        logs["val_fd"] = metrics.frechet_distance(generated.features, self._reference.features)
        if self.kid:
            logs["val_kid"] = metrics.kernel_inception_distance(
                generated.features,
                self._reference.features,
                subsets=self.kid_subsets,
                subset_size=self.kid_subset_size,
                seed=epoch,
            )["kid"]


# ---------------------------------------------------------------------- RBMs
class FreeEnergyGap(keras.callbacks.Callback):
    """Overfitting monitor of Hinton's practical guide (section 6).

    At the end of every `every`-th epoch, computes the mean free energy of a
    fixed subset of training data and of validation data and logs
    `free_energy_gap = mean F(val) - mean F(train)` (plus both means). Z
    cancels in the difference; a gap that keeps growing means the model
    assigns the training data ever more probability than held-out data.
    """

    def __init__(self, train_data, validation_data, n=1000, every=1, batch_size=1000):
        super().__init__()
        self.train_data = np.asarray(train_data[:n], np.float32)
        self.validation_data = np.asarray(validation_data[:n], np.float32)
        self.every = int(every)
        self.batch_size = int(batch_size)
        self._fn = None

    def _mean_free_energy(self, x):
        from keras_gen.models.rbm import as_rbm_layer

        layer = as_rbm_layer(self.model)
        if self._fn is None:
            self._fn = tf.function(layer.free_energy, reduce_retracing=True)
        total = 0.0
        for start in range(0, len(x), self.batch_size):
            total += float(tf.reduce_sum(self._fn(x[start : start + self.batch_size])))
        return total / len(x)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or (epoch + 1) % self.every:
            return
        f_train = self._mean_free_energy(self.train_data)
        f_val = self._mean_free_energy(self.validation_data)
        logs["free_energy_train"] = f_train
        logs["free_energy_val"] = f_val
        logs["free_energy_gap"] = f_val - f_train


class GibbsStepsSchedule(keras.callbacks.Callback):
    """Change the number of Gibbs sweeps per update as training proceeds.

    `schedule` maps the first epoch (0-based) of each phase to its k, e.g.
    `{0: 1, 20: 3, 40: 10}`, or is a function epoch -> k. Salakhutdinov &
    Murray (2008) grew CD's k from 1 to 25 this way: early on the model is
    smooth and one sweep mixes, later it needs more. The step is recompiled
    when k changes; a resumed run (`runs.RunBackup`) picks the k of the
    epoch it resumes at.
    """

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        if not callable(schedule):
            if not schedule or min(schedule) != 0:
                raise ValueError("A Gibbs-steps schedule needs an entry for epoch 0.")
            if min(schedule.values()) < 1:
                raise ValueError("Every phase needs k >= 1 Gibbs sweeps.")

    def k_at(self, epoch):
        if callable(self.schedule):
            return int(self.schedule(epoch))
        return int(self.schedule[max(e for e in self.schedule if e <= epoch)])

    def on_epoch_begin(self, epoch, logs=None):
        k = self.k_at(epoch)
        if k != self.model.k:
            self.model.k = k
            self.model.make_train_function(force=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["gibbs_steps"] = float(self.model.k)


# ---------------------------------------------------------------------- GANs
class IterationHistory(keras.callbacks.Callback):
    """Every train step's own metric values (not the epoch's running means).

    A `keras.metrics.Mean` holds a running total and count; the change in
    both over one step is that step's mean. Rows are written to `path` (CSV)
    at the end of each epoch, so a resumed run appends whole epochs only.
    """

    def __init__(self, path=None, names=("d_loss", "g_loss", "d_x", "d_g_z")):
        super().__init__()
        self.path = path
        self.names = tuple(names)
        self.rows = []

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._pending = []
        self._last = {name: (0.0, 0.0) for name in self.names}

    def on_train_batch_end(self, batch, logs=None):
        trackers = {m.name: m for m in self.model.metrics}
        row = {"epoch": self._epoch + 1, "step": batch + 1}
        for name in self.names:
            m = trackers.get(name)
            if m is None:
                continue
            total, count = float(np.asarray(m.total.numpy(), np.float64)), float(m.count.numpy())
            last_total, last_count = self._last[name]
            if count > last_count:
                row[name] = (total - last_total) / (count - last_count)
            self._last[name] = (total, count)
        self._pending.append(row)

    def on_epoch_end(self, epoch, logs=None):
        self.rows.extend(self._pending)
        if self.path:
            new = not os.path.exists(self.path)
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            with open(self.path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=["epoch", "step", *self.names])
                if new:
                    writer.writeheader()
                writer.writerows(self._pending)
        self._pending = []


def read_iterations(path):
    """An IterationHistory CSV as {column: np.array}."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    # An epoch repeated after an interruption was written twice; its last
    # block of rows (the run the model kept) is the record.
    by_epoch = {}
    for row in rows:
        block = by_epoch.setdefault(row["epoch"], [])
        if block and int(row["step"]) <= int(block[-1]["step"]):
            block.clear()
        block.append(row)
    rows = [row for epoch in sorted(by_epoch, key=float) for row in by_epoch[epoch]]
    if not rows:
        return {}
    return {k: np.array([float(r[k]) if r[k] not in ("", None) else np.nan for r in rows]) for k in rows[0]}


class TrainingDiverged(RuntimeError):
    """Raised by a guard that stopped a run whose numbers ran away."""


class NonFiniteGuard(keras.callbacks.Callback):
    """Stop training at the first non-finite step, keeping the weights of the last finite one.

    Every keras-gen `train_step` applies its updates through
    `core.distribute.apply_if_finite`: a step with a NaN or infinite gradient
    changes neither the weights nor the optimizer, whose `iterations` then
    stands still. The guard checks every batch for that and for non-finite
    numbers in the logs, and raises `TrainingDiverged` naming the epoch, the
    step and the values, before the epoch's checkpoint or backup can be
    written: a run never saves a non-finite model over a good one. The model
    in memory keeps the weights of the last finite step; if some variable is
    non-finite all the same (a model whose step does not guard its updates),
    every variable is put back to the end of the last healthy epoch.
    Subclasses add their own signs of divergence through `problem`.
    """

    def __init__(self):
        super().__init__()
        self.healthy = None
        self.healthy_epoch = 0
        self._epoch = 0

    def _snapshot(self):
        return [np.array(v.numpy()) for v in self.model.weights]

    def _optimizers(self):
        found = []
        for value in vars(self.model).values():
            if isinstance(value, keras.optimizers.Optimizer) and all(value is not f for f in found):
                found.append(value)
        return found

    def _iterations(self):
        return [int(optimizer.iterations.numpy()) for optimizer in self._optimizers()]

    def problem(self, logs):
        """Why `logs` show divergence (a phrase), or None if they are healthy."""
        bad = [k for k, v in (logs or {}).items() if np.size(v) == 1 and not np.isfinite(float(v))]
        return f"non-finite {', '.join(sorted(bad))}" if bad else None

    def advice(self):
        return "Try a smaller learning rate, or look for bad values in the data."

    def on_train_begin(self, logs=None):
        self.healthy = self._snapshot()
        self._epoch = 0
        self._last_iterations = self._iterations()
        self._advanced = [False] * len(self._last_iterations)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _skipped_update(self):
        """A phrase if an optimizer that updates every step did not update in the last one."""
        now = self._iterations()
        moved = [b > a for a, b in zip(self._last_iterations, now)]
        self._last_iterations = now
        stalled = [i for i, m in enumerate(moved) if not m and self._advanced[i]]
        self._advanced = [a or m for a, m in zip(self._advanced, moved)]
        if stalled or (moved and not any(moved)):
            return "non-finite gradients (the update was skipped)"
        return None

    def on_train_batch_end(self, batch, logs=None):
        skipped = self._skipped_update()
        problem = self.problem(logs) or skipped
        if problem is None:
            return
        self.model.stop_training = True
        # A non-finite step was skipped in the graph: what is in memory is the last finite
        # step. A subclass's sign of divergence (runaway energies) goes back to a healthy epoch.
        non_finite = skipped is not None or NonFiniteGuard.problem(self, logs) is not None
        weights = self._snapshot()
        if non_finite and all(np.all(np.isfinite(w)) for w in weights if np.issubdtype(w.dtype, np.floating)):
            kept = "kept the weights of the last finite step"
        else:
            for variable, value in zip(self.model.weights, self.healthy):
                variable.assign(value)
            kept = "restored " + (
                f"the weights of epoch {self.healthy_epoch}" if self.healthy_epoch else "the initial weights"
            )
        shown = ", ".join(f"{k}={float(v):.4g}" for k, v in sorted((logs or {}).items()) if np.size(v) == 1)
        raise TrainingDiverged(
            f"{self.model.name} diverged at epoch {self._epoch + 1}, step {batch + 1}: {problem} ({shown}); "
            f"{kept}. {self.advice()}"
        )

    def on_epoch_end(self, epoch, logs=None):
        weights = self._snapshot()
        weights_finite = all(np.all(np.isfinite(w)) for w in weights if np.issubdtype(w.dtype, np.floating))
        if self.problem(logs) is None and weights_finite:
            self.healthy = weights
            self.healthy_epoch = epoch + 1


class EnergyDivergenceGuard(NonFiniteGuard):
    """`NonFiniteGuard` for energy-based models, which also stops runaway energies.

    Contrastive divergence has no fixed point it is forced to stay near: when
    the network raises the negatives' energy faster than the regulariser
    pulls it back, E(data) and E(samples) drift apart, the sampler's
    gradients grow, and the run degrades to noise without any error. Besides
    non-finite values the guard trips on |energy_data| or |energy_samples|
    above `max_energy`, or |energy_gap| above `max_gap` (with the regulariser
    alpha = 0.1 a healthy run keeps all three within about 1 / alpha = 10).
    """

    def __init__(self, max_energy=100.0, max_gap=50.0):
        super().__init__()
        self.max_energy = float(max_energy)
        self.max_gap = float(max_gap)

    def advice(self):
        return "Try a smaller learning rate, a larger regularization or more Langevin steps."

    def problem(self, logs):
        non_finite = super().problem(logs)
        if non_finite:
            return non_finite
        values = {k: float(logs[k]) for k in ("energy_data", "energy_samples", "energy_gap") if logs and k in logs}
        runaway = [k for k in ("energy_data", "energy_samples") if abs(values.get(k, 0.0)) > self.max_energy]
        if runaway:
            return f"|{runaway[0]}| = {abs(values[runaway[0]]):.3g} > max_energy {self.max_energy:g}"
        if abs(values.get("energy_gap", 0.0)) > self.max_gap:
            return f"|energy_gap| = {abs(values['energy_gap']):.3g} > max_gap {self.max_gap:g}"
        return None


# ---------------------------------------------------------------------- runs
class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`keras.callbacks.ModelCheckpoint` (same arguments: `monitor`,
    `save_best_only`, ...) whose files are written atomically: a checkpoint
    on disk is always complete, even if the run is killed while saving.
    Optionally keeps only the `keep_last` most recent files."""

    def __init__(self, filepath, keep_last=None, **kwargs):
        super().__init__(filepath, **kwargs)
        self.keep_last = keep_last
        self.saved = []

    def _save_model(self, epoch, batch, logs):  # compat.MODEL_CHECKPOINT_SAVE_METHOD
        # Same decision as ModelCheckpoint; only the write itself differs.
        path = compat.checkpoint_path(self, epoch, batch, logs)
        if not compat.checkpoint_should_save(self, epoch, batch, logs, path):
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
