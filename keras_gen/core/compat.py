"""Every private Keras and TensorFlow API keras-gen relies on, in one place.

Each function below wraps one private use and says why no public API serves.
`tests/test_compat.py` exercises every one of them, so a Keras or TensorFlow
release that renames or changes one fails there, loudly and by name, instead
of deep inside a training step. Nothing else in keras_gen reaches into
`keras.src`, `tensorflow.python`, `tf.__internal__` or an underscore attribute
of a Keras or TensorFlow object.
"""

from __future__ import annotations

import tensorflow as tf


def flatten_layers(model):
    """Every layer of `model`, nested models' layers included, `model` first.

    `Model.layers` lists direct children only; Keras's own walk over the
    whole tree (used by `compile` itself) is `Layer._flatten_layers`.
    """
    return list(model._flatten_layers())


def in_multi_worker_mode(strategy):
    """Whether a strategy spans several workers (a MultiWorkerMirroredStrategy
    without TF_CONFIG runs on one host and is not). No public accessor."""
    probe = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return bool(probe()) if probe is not None else False


def is_default_strategy(strategy):
    """Whether `strategy` is TensorFlow's default one-device strategy.

    `tf.distribute.has_strategy()` answers for the strategy in scope, not for
    a given object (e.g. `model.distribute_strategy` outside its scope).
    """
    from tensorflow.python.distribute import distribute_lib

    return isinstance(strategy, distribute_lib._DefaultDistributionStrategy)


def draw_seed(seed):
    """Keras's int32 (2,) seed for an int (stateless: [seed, 0]) or None (a
    draw from Keras's global generator, so `keras.utils.set_random_seed`
    fixes it): the same seed `keras.random` functions derive."""
    from keras.src.random.seed_generator import draw_seed as keras_draw_seed

    return keras_draw_seed(seed)


def make_step_function(model, step):
    """Keras's TensorFlow trainer wrapped around a replica `step`
    (strategy.run, log reduction, steps_per_execution), the way
    `make_train_function` wraps `train_step`. Lets a family build the step
    function itself under tf.distribute (see `GenerativeModel`)."""
    return model._make_function(step)


def merge_call(fn, *args):
    """Run `fn(strategy, *args)` in cross-replica context from inside a
    replica step, as an optimizer applies its updates (so every replica's copy
    of a variable gets the same new value). Public only as `tf.__internal__`."""
    return tf.__internal__.distribute.interim.maybe_merge_call(fn, tf.distribute.get_strategy(), *args)


# ModelCheckpoint decides whether and where to save in two private methods and
# saves in a third; `callbacks.AtomicModelCheckpoint` replaces only the write.
MODEL_CHECKPOINT_SAVE_METHOD = "_save_model"


def checkpoint_path(callback, epoch, batch, logs):
    """The file a `keras.callbacks.ModelCheckpoint` would write now."""
    return callback._get_file_path(epoch, batch, logs)


def checkpoint_should_save(callback, epoch, batch, logs, path):
    """Whether a `keras.callbacks.ModelCheckpoint` would save now (monitor,
    save_best_only, ...), updating its best value as it does."""
    return callback._should_save_model(epoch, batch, logs, path)
