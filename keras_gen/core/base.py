"""The contract every keras-gen family shares.

A family is a `GenerativeModel`: a `keras.Model` that overrides `train_step`
and `test_step`, owns a `SeedGenerator` for all its randomness, declares the
data it accepts (shape and domain) so bad input is refused before any work is
done, and declares the serving endpoints that `export` turns into SavedModel
signatures.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_gen.core import compat, validation
from keras_gen.core.caching import compiled_once, forget_compiled

PACKAGE = "keras_gen"
# sample(n) returns one array; beyond this it refuses and points to sample_batches.
MAX_SAMPLE_BYTES = 4 * 2**30


def register(cls):
    """Register a class with `keras.saving` under the keras_gen package."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def replica_mean(per_example):
    """Mean over the global batch of a per-example quantity, replica-local.

    Under `tf.distribute`, each replica sees a shard of the global batch and
    the optimizer *sums* gradients across replicas. Dividing the local mean by
    the number of replicas makes that sum equal to the gradient of the mean
    over the global batch (shards are equal in size, as tf.distribute splits
    a global batch). With one replica this is the plain mean.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    mean = keras.ops.mean(per_example)
    if replicas > 1:
        mean = mean / replicas
    return mean


def serving_archive(model, endpoints):
    """A `keras.export.ExportArchive` of `model` serving `endpoints`
    (name -> (function, input specs)), every input checked before any work
    (`validation.checked_endpoint`)."""
    model.build_for_data()
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (fn, specs) in endpoints.items():
        archive.add_endpoint(name, validation.checked_endpoint(fn, specs), input_signature=specs)
    return archive


def features(data):
    """The x of a batch as `fit` passes it: x, (x,), (x, y) or (x, y, sample_weight)."""
    x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
    return x


def _distributed(model):
    from keras_gen.core.distribute import is_distributed

    return is_distributed(model.distribute_strategy)


def _multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and compat.in_multi_worker_mode(strategy)


CONVOLUTIONS = tuple(
    getattr(keras.layers, name)
    for name in (
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "SeparableConv1D",
        "SeparableConv2D",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
    )
)


def xla_by_default(model):
    """Whether `jit_compile="auto"` compiles `model`'s steps with XLA.

    Yes on GPUs and TPUs, and on CPUs for models without convolutions. No for
    convolutional models on CPU-only machines: XLA's CPU convolutions are
    slower than TensorFlow's oneDNN kernels (measured: the keras.io conv VAE
    trains 1.5x faster without XLA on 2 cores, BENCHMARKS.md). Pass
    `jit_compile=True` to force XLA.
    """
    if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
        return True
    return not any(isinstance(layer, CONVOLUTIONS) for layer in compat.flatten_layers(model))


class FitPosition(keras.callbacks.Callback):
    """The epoch and step (1-based) `fit` is at, to name them when a batch is refused."""

    epoch = step = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_begin(self, batch, logs=None):
        self.step = batch + 1


class GenerativeModel(keras.Model):
    """Base class of every keras-gen model.

    Subclasses implement:
      * `data_shape` (a tuple without the batch axis) and `data_domain`
        (one of `validation.DOMAINS`) describing what `fit` accepts;
      * `generate_samples(n, seed)`: n samples drawn with `seed` (a seed
        generator or a stateless seed tensor);
      * `train_step` / `test_step` with `keras.metrics.Mean` trackers;
      * `serving_endpoints()` for export.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        # Keras saves no SeedGenerator state. Held as a model variable, the
        # generator's state goes into .keras files, weights files and
        # checkpoints, so a resumed run continues the same random stream.
        self.seed_state = self.seed_generator.state
        # Validation and `evaluate` draw from their own generator, restarted at
        # every evaluation: passing `validation_data` leaves the training
        # stream (and so the trained weights) bit-identical, and the same
        # weights always get the same validation numbers.
        self.eval_seed_generator = keras.random.SeedGenerator(
            None if seed is None else int(seed) + 1, name="eval_seed_generator"
        )

    # ----------------------------------------------------------- data contract
    # Families set `_data_shape` (and `_data_domain` unless it is "real") or
    # override these properties.
    @property
    def data_shape(self):
        return self._data_shape

    @property
    def data_domain(self):
        return getattr(self, "_data_domain", "real")

    def validate_data(self, data):
        """Raise a clear error if `data` does not fit this model.

        Accepts numpy arrays, tensors and `tf.data.Dataset`s (whose first
        batch is checked); `(x, y)` tuples are checked on `x`.
        """
        validation.check_data(
            data,
            shape=self.data_shape,
            domain=self.data_domain,
            owner=type(self).__name__,
        )

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        # Refuse bad data before any work (or any checkpoint write) happens.
        self.validate_data(x)
        if validation_data is not None:
            self.validate_data(validation_data)
        # Built models save their build state, so a loaded model (and its
        # optimizer) is whole before its variables are restored.
        self.build_for_data()
        if isinstance(x, tf.data.Dataset):
            # A tf.data pipeline shuffles itself; Keras would only warn.
            kwargs.setdefault("shuffle", False)
        x, validation_data = self._checked(x), self._checked(validation_data)
        position = FitPosition()
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or ()), position]
        try:
            return super().fit(x, y, *args, validation_data=validation_data, **kwargs)
        except tf.errors.InvalidArgumentError as err:
            problem = validation.fit_error(err, position.epoch, position.step)
            if problem is None:
                raise
            raise problem from None

    def train_on_batch(self, x=None, y=None, *args, **kwargs):
        # One batch, checked like `fit`'s data: a NaN batch would otherwise poison
        # metrics and moving averages, a wrong shape reach the first kernel.
        self.validate_data(x)
        self.build_for_data()
        return super().train_on_batch(self._checked(x), y, *args, **kwargs)

    def test_on_batch(self, x=None, y=None, *args, **kwargs):
        self.validate_data(x)
        return super().test_on_batch(self._checked(x), y, *args, **kwargs)

    def checked_input(self, x, shape=None, domain=None, method="input"):
        """`x` as a float32 tensor, refused with a clear error if it does not fit.

        For the user-facing functions of a family (`log_density`, `energy`,
        `encode`, `decode`): called with concrete values, `x` is checked
        against `shape` and `domain` (the data's, by default; binary units
        also score grey values in [0, 1], e.g. for out-of-distribution
        images); inside a traced step the data was checked on its way in.
        """
        if domain is None:
            domain = "unit" if self.data_domain == "binary" else self.data_domain
        if tf.executing_eagerly() and not isinstance(x, keras.KerasTensor):
            validation.check_data(
                x, shape=shape or self.data_shape, domain=domain, owner=f"{type(self).__name__}.{method}"
            )
        return keras.ops.cast(x, "float32")

    def _checked(self, data):
        """Data as the steps take it: a dataset checked batch by batch in the graph;
        integer or boolean arrays as float32 (every family computes in floats)."""
        if data is None:
            return None
        if isinstance(data, tf.data.Dataset):
            return validation.checked_dataset(data, self.data_domain, type(self).__name__)
        if isinstance(data, tuple):
            return (self._checked(data[0]), *data[1:])
        if isinstance(data, tf.Tensor):
            return tf.cast(data, tf.float32) if data.dtype.is_integer or data.dtype == tf.bool else data
        array = np.asarray(data)
        # float16 and float64 too: the steps compute in float32 and need one trace for all.
        return array.astype(np.float32) if array.dtype != np.float32 else data

    def evaluate(self, x=None, *args, **kwargs):
        self.validate_data(x)
        self.restart_eval_seed()
        try:
            return super().evaluate(x, *args, **kwargs)
        finally:
            # Left at its start, the generator's state is the same in every
            # copy of the model (saved, restored or not) between evaluations.
            self.restart_eval_seed()

    def restart_eval_seed(self):
        """Rewind `eval_seed_generator` to its first draw (Keras's generator
        state is [seed, draws so far])."""
        state = self.eval_seed_generator.state
        state.assign(keras.ops.stack([state[0], keras.ops.zeros((), state.dtype)]))

    def compile(self, *args, jit_compile="auto", steps_per_execution=1, **kwargs):
        # Every keras-gen train_step is written to compile with XLA. "auto"
        # (the default) turns it on except where it was measured to be slower
        # (see `xla_by_default`); Keras's own "auto" turns it off on any CPU.
        # What the user asked for is what `get_compile_config` saves, so a
        # model saved on one machine decides "auto" afresh on the next.
        self.requested_jit_compile = jit_compile
        if jit_compile == "auto":
            jit_compile = xla_by_default(self)
        if steps_per_execution != 1 and _distributed(self):
            # Keras runs several steps per call in a `while` whose body calls
            # the step under `tf.cond`; under a distribution strategy the
            # gradient all-reduce inside that `cond` fails ("You must feed a
            # value for placeholder tensor", keras-team/keras#19246, also with
            # a plain Sequential model). One step per call is correct.
            warnings.warn(
                f"steps_per_execution={steps_per_execution} is not supported under "
                f"{type(self.distribute_strategy).__name__} (keras-team/keras#19246); using 1.",
                stacklevel=2,
            )
            steps_per_execution = 1
        super().compile(*args, jit_compile=jit_compile, steps_per_execution=steps_per_execution, **kwargs)
        # Built now, as `compile_from_config` builds it when the model loads: a
        # model saved before its first step then holds the optimizer variables
        # its loader expects (else Keras skips them with a warning).
        self.build_optimizers()

    def get_compile_config(self):
        config = super().get_compile_config()
        if config and "jit_compile" in config:
            config["jit_compile"] = self.requested_jit_compile
        return config

    # XLA under tf.distribute. Keras compiles a whole step, strategy.run and
    # all, as one XLA program; with several replicas that program would read
    # every replica's variables from one device ("Trying to access resource
    # ... located in device CPU:1 from device CPU:0"), and the cross-replica
    # sums of a step cannot live inside XLA anyway. Under a strategy the step
    # is therefore built without XLA around it, and each replica compiles its
    # own computation: `test_step` whole (Keras does so for `predict_step`), `train_step`
    # through `replica_compiled` (everything but the gradient all-reduce).
    def replica_compiled(self, fn):
        """`fn` compiled with XLA for the current replica, to call in `train_step`.

        Families put the replica-local work of a step (forward pass, losses,
        gradients, sampler moves, metric updates) in `fn` and keep the
        synchronising calls (`optimizer.apply_gradients`,
        `distribute.gather_replicas`) outside it. Without a strategy the
        whole step is already one XLA program and `fn` is returned as is.
        """
        if not self._xla_per_replica():
            return fn
        return compiled_once(self, ("replica", getattr(fn, "__func__", fn)), fn)

    def _xla_per_replica(self):
        return bool(self.jit_compile) and not self.run_eagerly and _distributed(self)

    @contextlib.contextmanager
    def _without_outer_xla(self):
        # Keras reads `jit_compile` while it builds a step function.
        self.jit_compile = False
        try:
            yield
        finally:
            self.jit_compile = True

    def make_train_function(self, force=False):
        if (self.train_function is not None and not force) or not _distributed(self):
            return super().make_train_function(force)
        self.train_function = self._make_distributed_function(self.train_step, compile_whole=False)
        return self.train_function

    def make_test_function(self, force=False):
        if (self.test_function is not None and not force) or not _distributed(self):
            return super().make_test_function(force)
        self.test_function = self._make_distributed_function(self.test_step, compile_whole=True)
        return self.test_function

    def _make_distributed_function(self, step, compile_whole):
        # A rebuilt step (e.g. after a callback changed a setting) retraces its compiled parts too.
        forget_compiled(self)
        xla = self._xla_per_replica()
        if xla and compile_whole:
            step = tf.function(step, jit_compile=True, reduce_retracing=True)
        multi_worker = _multi_worker(self.distribute_strategy)

        def replica_step(data):
            # A Python function: a compiled `step` is traced once per replica,
            # on that replica's device and variables.
            logs = step(data)
            if multi_worker:
                # Keras averages multi-worker logs with reduce(MEAN, axis=0),
                # which needs an axis to reduce: give each replica's value one.
                logs = tf.nest.map_structure(lambda t: tf.reshape(t, [1]), logs)
            return logs

        with self._without_outer_xla() if xla else contextlib.nullcontext():
            return compat.make_step_function(self, replica_step)

    def build_for_data(self):
        """Create every variable by running the model once on a dummy batch,
        so weights can be loaded into it."""
        if not self.built or not self.weights:
            self(keras.ops.zeros((1, *self.data_shape)))
        return self

    def build_optimizers(self):
        """Create the optimizer's variables (so a checkpoint's state can be loaded into them)."""
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None and not optimizer.built and self.trainable_variables:
            optimizer.build(self.trainable_variables)
        return self

    def build(self, input_shape=None):
        # Families create their variables in __init__ (sub-models arrive
        # built); there is nothing shape-dependent left to create.
        self.built = True

    def save(self, filepath, *args, **kwargs):
        # A model saved before its first call is whole (see `build`); marking it
        # built spares the user Keras's warning that it may hold no weights.
        if not self.built:
            self.build()
        return super().save(filepath, *args, **kwargs)

    def compile_from_config(self, config):
        # Keras skips this for models that override `compile`; ours only
        # changes a default, so restore the compile state (and with it the
        # optimizer, whose variables `.keras` files hold) as Keras would.
        self.compile(**keras.saving.deserialize_keras_object(config))  # builds the optimizer

    # --------------------------------------------------------------- sampling
    def sample(self, n, seed=None, **kwargs):
        """Draw `n` samples as a numpy array.

        `seed=None` advances the model's seed generator; an integer gives the
        same samples every time, whatever the generator's state.
        """
        # A count, not something that rounds to one: sample(2.7) or sample(True) is a bug.
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"sample() needs a positive integer n, got {n!r} ({type(n).__name__}).")
        n = int(n)
        if n < 1:
            raise ValueError(f"sample() needs a positive integer n, got {n}.")
        size = n * math.prod(self.data_shape) * 4
        if size > MAX_SAMPLE_BYTES:
            raise ValueError(
                f"sample({n}) would hold {size / 2**30:.1f} GiB in memory (limit {MAX_SAMPLE_BYTES / 2**30:g} GiB); "
                "draw them in batches with sample_batches(n, batch_size=...)."
            )
        # keras.random treats an int seed as stateless: same int, same draw.
        draw_seed = self.seed_generator if seed is None else int(seed)
        return keras.ops.convert_to_numpy(self.generate_samples(n, draw_seed, **kwargs))

    def sample_batches(self, n, seed=None, batch_size=1000, **kwargs):
        """Yield `n` samples as numpy batches of at most `batch_size`: memory stays
        bounded however large n is. With an integer seed, batch i is drawn with a
        seed derived from (seed, i), so the stream is reproducible."""
        for name, value in (("n", n), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"sample_batches() needs a positive integer {name}, got {value!r}.")
        for i, start in enumerate(range(0, int(n), int(batch_size))):
            count = min(int(batch_size), int(n) - start)
            if seed is None:
                draw_seed = self.seed_generator
            else:  # an integer seed per batch (every family's sampler takes one)
                draw_seed = int(np.random.SeedSequence((int(seed), i)).generate_state(1)[0] >> 1)
            yield keras.ops.convert_to_numpy(self.generate_samples(count, draw_seed, **kwargs))

    def generate_samples(self, n, seed, **kwargs):
        raise NotImplementedError

    def log_density(self, x):
        """A score of how likely each example of `x` is: log p(x) up to a constant
        the same for every x (an unnormalised log-density, or a bound on it).

        Families with one override this (RBM: -free energy; VAE: the ELBO;
        EBM: -energy); it ranks inputs, e.g. for out-of-distribution detection.
        """
        raise NotImplementedError(f"{type(self).__name__} has no tractable log-density.")

    # ------------------------------------------------------------------ export
    def serving_endpoints(self):
        """Map signature name -> (function, [tf.TensorSpec, ...]).

        The function takes tensors and returns a tensor or a dict of tensors;
        `keras_gen.export.export_saved_model` wraps each as a signature.
        """
        return {}

    def export_saved_model(self, path, overwrite=False):
        from keras_gen.export import export_saved_model

        return export_saved_model(self, path, overwrite=overwrite)

    def call_signature(self):
        """The input specs of `call`, which Keras's `model.export` serves as `serve`:
        a batch of data (the GAN's `call` takes latent points instead)."""
        return [tf.TensorSpec([None, *self.data_shape], tf.float32, name="x")]

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras's export of `call` (endpoint `serve`), also for a model never called.

        Keras infers the input of a subclassed model from its first call; a
        family's `train_step` may never call the model itself (a GAN calls its
        two networks), so the input comes from `call_signature` instead, and
        is checked like every keras-gen signature. The named signatures
        (`sample`, `encode`, ...) are `export_saved_model`'s.
        """
        self.build_for_data()
        if format != "tf_saved_model" or input_signature is not None or kwargs:
            input_signature = input_signature or self.call_signature()
            return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)
        # Keras's `export` runs `self.__call__` through an ExportArchive, as here.
        archive = serving_archive(self, {"serve": (lambda x: self(x), self.call_signature())})
        archive.write_out(filepath, verbose=True if verbose is None else verbose)

    # ------------------------------------------------------------------ config
    # Config keys whose values are Keras objects (sub-models, layers, or lists
    # of them): `get_config` stores them with `serialize_nested` and
    # `from_config` rebuilds them.
    nested_config_keys = ()

    def get_config(self):
        return {"seed": self.seed, "name": self.name}

    @staticmethod
    def serialize_nested(value):
        if isinstance(value, (list, tuple)):
            return [keras.saving.serialize_keras_object(v) for v in value]
        return keras.saving.serialize_keras_object(value)

    renamed_config_keys = {}
    """Old config key -> new, so `.keras` files saved before a rename still load."""

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for old, new in cls.renamed_config_keys.items():
            if old in config:
                config[new] = config.pop(old)
        for key in cls.nested_config_keys:
            value = config[key]
            config[key] = (
                [keras.saving.deserialize_keras_object(v) for v in value]
                if isinstance(value, list)
                else keras.saving.deserialize_keras_object(value)
            )
        return cls(**config)
