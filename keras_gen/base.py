"""The contract every keras-gen family shares.

A family is a `GenerativeModel`: a `keras.Model` that overrides `train_step`
and `test_step`, owns a `SeedGenerator` for all its randomness, declares the
data it accepts (shape and domain) so bad input is refused before any work is
done, and declares the serving endpoints that `export` turns into SavedModel
signatures.
"""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf

from keras_gen import validation

PACKAGE = "keras_gen"


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


def replica_sum_scale():
    """The factor that turns a replica-local loss back into its global value."""
    return float(tf.distribute.get_strategy().num_replicas_in_sync)


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

    # ----------------------------------------------------------- data contract
    @property
    def data_shape(self):
        raise NotImplementedError

    @property
    def data_domain(self):
        return "real"

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
        return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        self.validate_data(x)
        return super().evaluate(x, *args, **kwargs)

    def compile(self, *args, jit_compile=True, **kwargs):
        # Keras turns XLA off on CPU-only machines under "auto"; every
        # keras-gen train_step is written to compile, so XLA is the default.
        return super().compile(*args, jit_compile=jit_compile, **kwargs)

    def build_for_data(self):
        """Create every variable by running the model once on a dummy batch,
        so weights can be loaded into it."""
        if not self.built or not self.weights:
            self(keras.ops.zeros((1, *self.data_shape)))
        return self

    def build(self, input_shape=None):
        # Families create their variables in __init__ (sub-models arrive
        # built); there is nothing shape-dependent left to create.
        self.built = True

    def compile_from_config(self, config):
        # Keras skips this for models that override `compile`; ours only
        # changes a default, so restore the compile state (and with it the
        # optimizer, whose variables `.keras` files hold) as Keras would.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if getattr(self, "optimizer", None) is not None and self.trainable_variables:
            self.optimizer.build(self.trainable_variables)

    # --------------------------------------------------------------- sampling
    def sample(self, n, seed=None, **kwargs):
        """Draw `n` samples as a numpy array.

        `seed=None` advances the model's seed generator; an integer gives the
        same samples every time, whatever the generator's state.
        """
        n = int(n)
        if n < 1:
            raise ValueError(f"sample() needs n >= 1, got {n}.")
        # keras.random treats an int seed as stateless: same int, same draw.
        draw_seed = self.seed_generator if seed is None else int(seed)
        return keras.ops.convert_to_numpy(self.generate_samples(n, draw_seed, **kwargs))

    def generate_samples(self, n, seed, **kwargs):
        raise NotImplementedError

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

    # ------------------------------------------------------------------ config
    def get_config(self):
        return {"seed": self.seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
