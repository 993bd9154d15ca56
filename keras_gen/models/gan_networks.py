"""The GAN family's networks: MLP and DCGAN generators and discriminators."""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from keras_gen.core.base import register
from keras_gen.core.distribute import replica_uniform
from keras_gen.core.random import seed_tensor


# --------------------------------------------------------------------- layers
@register
class CounterDropout(layers.Layer):
    """Dropout with masks from the counter-based generator.

    Same as `keras.layers.Dropout` (inverted scaling, identity at inference),
    but the layer's seed state is saved with the weights (so a resumed run
    draws the same masks), the masks are cheap under XLA on CPU, and each
    example's mask depends on its place in the global batch, not on the
    replica that computes it.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="dropout_seed")
        # A tracked variable: saved in weights files and checkpoints.
        self.seed_state = self.seed_generator.state

    def call(self, inputs, training=False):
        if not training or self.rate == 0.0:
            return inputs
        keep = replica_uniform(ops.shape(inputs), seed_tensor(self.seed_generator), inputs.dtype) >= self.rate
        return ops.where(keep, inputs / (1.0 - self.rate), ops.zeros_like(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def build_mlp_generator(latent_dim=20, output_shape=(784,), hidden=(100,), output_activation="tanh"):
    """Dense layers with LeakyReLU, then a dense output (tanh for [-1, 1] data).
    The defaults are the generator of the course notes' MNIST GAN."""
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = inputs
    for units in _as_tuple(hidden):
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(negative_slope=0.01)(x)
    x = layers.Dense(math.prod(output_shape), activation=output_activation, name="x")(x)
    if len(output_shape) > 1:
        x = layers.Reshape(tuple(output_shape))(x)
    return keras.Model(inputs, x, name="generator")


def build_mlp_discriminator(input_shape=(784,), hidden=(100,), dropout=0.5, seed=None):
    """Dense layers with LeakyReLU and dropout, then one logit: the
    discriminator of the course notes' MNIST GAN."""
    inputs = keras.Input(shape=tuple(input_shape), name="x")
    x = layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    for i, units in enumerate(_as_tuple(hidden)):
        x = layers.Dense(units)(x)
        x = layers.LeakyReLU(negative_slope=0.01)(x)
        if dropout:
            x = CounterDropout(dropout, seed=None if seed is None else seed + i)(x)
    logits = layers.Dense(1, name="logit")(x)
    return keras.Model(inputs, logits, name="discriminator")


def build_dcgan_generator(latent_dim=100, output_shape=(28, 28, 1), filters=(256, 128, 64)):
    """The TensorFlow DCGAN tutorial's generator: Dense to a 7x7x256 map,
    5x5 transposed convolutions 128 (stride 1), 64 and 1 (stride 2), batch
    normalization and LeakyReLU between them, tanh output."""
    h, w, c = output_shape
    if h % 4 or w % 4:
        raise ValueError(f"The DCGAN generator upsamples 4x; image size {h}x{w} is not divisible by 4.")
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense((h // 4) * (w // 4) * filters[0], use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU(negative_slope=0.3)(x)
    x = layers.Reshape((h // 4, w // 4, filters[0]))(x)
    for f, stride in ((filters[1], 1), (filters[2], 2)):
        x = layers.Conv2DTranspose(f, 5, strides=stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(negative_slope=0.3)(x)
    x = layers.Conv2DTranspose(c, 5, strides=2, padding="same", use_bias=False, activation="tanh", name="x")(x)
    return keras.Model(inputs, x, name="generator")


def build_dcgan_discriminator(input_shape=(28, 28, 1), filters=(64, 128), dropout=0.3, normalization=None, seed=None):
    """The TensorFlow DCGAN tutorial's discriminator: 5x5 stride-2
    convolutions 64 and 128 with LeakyReLU and dropout 0.3, one logit.

    With dropout=0 it is a WGAN critic. `normalization="batch"` adds batch
    normalization after every convolution but the first, as the DCGAN critic
    of the original WGAN (Arjovsky et al. 2017): under weight clipping it
    keeps every layer's activations at unit scale, where an unnormalized
    critic's shrink layer by layer and it learns slowly. Its statistics are
    synchronized across replicas under tf.distribute (the same batch
    statistics as one device). Not for the gradient penalty, which needs
    per-example gradients."""
    if normalization not in (None, "batch"):
        raise ValueError(f"normalization must be None or 'batch', got {normalization!r}.")
    inputs = keras.Input(shape=tuple(input_shape), name="x")
    x = inputs
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 5, strides=2, padding="same")(x)
        if normalization == "batch" and i > 0:
            x = layers.BatchNormalization(synchronized=True)(x)
        x = layers.LeakyReLU(negative_slope=0.3)(x)
        if dropout:
            x = CounterDropout(dropout, seed=None if seed is None else seed + i)(x)
    x = layers.Flatten()(x)
    logits = layers.Dense(1, name="logit")(x)
    return keras.Model(inputs, logits, name="discriminator")


def _as_tuple(v):
    if v is None:
        return ()
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)
