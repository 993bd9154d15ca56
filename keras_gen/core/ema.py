"""Exponential moving averages of weights, for any family that samples from one.

An average of a network's weights over the last steps of training samples
better than the weights of the last step: the players of an adversarial game
circle around a point rather than settle on it (Yazici et al. 2019), and a
denoising network's last step is one noisy gradient away from its mean
(Ho et al. 2020 sample from an EMA with momentum 0.9999). The GAN's averaged
generator is an instance; the diffusion family's network will be another.

The average is a Keras model tracked by its owner, so it is saved in `.keras`
files, weights files and backups, and restored on resume like every other
variable. `update_ema` is called inside a `train_step`: the update runs in
cross-replica context, so under `tf.distribute` every replica's copy of the
average receives the same value.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_gen.core.distribute import update_variables


def check_momentum(momentum, name="ema_momentum"):
    """`momentum` as a float in (0, 1), or None (no average); anything else is refused."""
    if momentum is None:
        return None
    momentum = float(momentum)
    if not 0.0 < momentum < 1.0:
        raise ValueError(f"{name} is the momentum of a moving average, in (0, 1); got {momentum}.")
    return momentum


def ema_copy(model):
    """A frozen copy of `model` with its current weights: the average's starting point."""
    average = keras.models.clone_model(model)
    average.set_weights(model.get_weights())
    average.trainable = False
    return average


def warmed_up_momentum(momentum, step):
    """min(m, (1 + t) / (10 + t)) at update t: the average follows the weights closely at
    first (also when training continues from weights trained without one), then settles
    to momentum m (TensorFlow's `ExponentialMovingAverage(num_updates=...)` rule)."""
    t = ops.cast(step, "float32")
    return ops.minimum(ops.cast(momentum, "float32"), (1.0 + t) / (10.0 + t))


def update_ema(average_model, live_model, momentum, step, applied=True):
    """average <- m_t average + (1 - m_t) live for every weight (batch-normalization
    statistics included), with m_t = `warmed_up_momentum(momentum, step)`.

    `applied` (a boolean tensor) false leaves the average as it is: the step's
    update was skipped (`distribute.apply_if_finite`), so there is nothing new to average.
    """
    m = ops.where(applied, warmed_up_momentum(momentum, step), 1.0)

    def update(average, live):
        m_t = ops.cast(m, average.dtype)
        return average.assign(m_t * average + (1.0 - m_t) * ops.cast(live, average.dtype))

    update_variables(average_model.weights, update, live_model.weights)
