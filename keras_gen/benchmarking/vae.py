"""The VAE benchmark's contenders: the keras.io VAE example and keras-gen's
conv VAE in the same configuration (latent 2, batch 128, MNIST).

* `keras_io_vae`: the example's model and training loop, written out as a
  user runs it (summed binary cross-entropy of sigmoid outputs plus the KL
  term, fed a float32 [0, 1] image array through `fit`);
* `keras_gen_vae`: `make_vae("conv", (28, 28, 1), latent_dim=2)` with the
  library defaults and `steps_per_execution`, fed `keras_gen.data.load`;
* `training_flops_per_example`: the counted FLOPs of a training step.

Used by benchmarks/vae_throughput.py and benchmarks/throughput.py.
"""

from __future__ import annotations

import time

BATCH = 128


# ------------------------------------------------------ the keras.io reference
def keras_io_vae(latent_dim=2):
    """The keras.io example's model, written out: sampling layer, encoder,
    decoder with a sigmoid, and a train_step with per-batch mean losses."""
    import keras
    import tensorflow as tf
    from keras import layers, ops

    class Sampling(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            return z_mean + ops.exp(0.5 * z_log_var) * eps

    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim)(x)
    z_log_var = layers.Dense(latent_dim)(x)
    encoder = keras.Model(inputs, [z_mean, z_log_var, Sampling()([z_mean, z_log_var])])

    latent = keras.Input(shape=(latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    decoder = keras.Model(latent, outputs)

    class ReferenceVAE(keras.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder, self.decoder = encoder, decoder
            self.total_tracker = keras.metrics.Mean(name="loss")
            self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
            self.kl_tracker = keras.metrics.Mean(name="kl_loss")

        @property
        def metrics(self):
            return [self.total_tracker, self.reconstruction_tracker, self.kl_tracker]

        def train_step(self, data):
            with tf.GradientTape() as tape:
                z_mean, z_log_var, z = self.encoder(data)
                reconstruction = self.decoder(z)
                reconstruction_loss = ops.mean(
                    ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
                )
                kl = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
                kl_loss = ops.mean(ops.sum(kl, axis=1))
                total = reconstruction_loss + kl_loss
            grads = tape.gradient(total, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.total_tracker.update_state(total)
            self.reconstruction_tracker.update_state(reconstruction_loss)
            self.kl_tracker.update_state(kl_loss)
            return {m.name: m.result() for m in self.metrics}

    model = ReferenceVAE(encoder, decoder)
    model.compile(optimizer=keras.optimizers.Adam())
    return model


# ----------------------------------------------------------------- FLOP count
def training_flops_per_example(model):
    """3 x the multiply-adds (x2) of every Conv2D, Conv2DTranspose and Dense layer."""
    from keras import layers

    total = 0
    for sub in (model.encoder, model.decoder):
        for layer in sub.layers:
            if isinstance(layer, layers.Conv2DTranspose):
                _, h, w, c_in = layer.input.shape
                k = layer.kernel_size[0] * layer.kernel_size[1]
                total += h * w * k * c_in * layer.filters
            elif isinstance(layer, layers.Conv2D):
                _, h, w, c_out = layer.output.shape
                k = layer.kernel_size[0] * layer.kernel_size[1]
                total += h * w * k * layer.input.shape[-1] * c_out
            elif isinstance(layer, layers.Dense):
                total += layer.input.shape[-1] * layer.units
    return 3 * 2 * total


# ------------------------------------------------------------ the contenders
def mnist_unit_array(n):
    """The reference's input: float32 [0, 1] images, as the example prepares them."""
    import numpy as np

    from keras_gen import data

    x, _ = data.load_arrays("mnist", "train", preprocessing="unit")
    return np.ascontiguousarray(x[:n])


def keras_gen_vae(steps_per_execution, strategy=None, dtype_policy=None):
    import keras
    import tensorflow as tf

    from keras_gen.models.vae import make_vae

    if dtype_policy:
        keras.mixed_precision.set_dtype_policy(dtype_policy)
    try:
        with (strategy or tf.distribute.get_strategy()).scope():
            model = make_vae("conv", (28, 28, 1), latent_dim=2, seed=0)
            model.compile(optimizer=keras.optimizers.Adam(), steps_per_execution=steps_per_execution)
    finally:
        if dtype_policy:
            keras.mixed_precision.set_dtype_policy("float32")
    return model


def keras_gen_dataset(n, repeat=True):
    from keras_gen import data

    ds = data.load("mnist", "train", preprocessing="binarized", batch_size=BATCH, seed=0)
    return ds.repeat() if repeat else ds


def time_keras_gen(model, n, dataset):
    steps = n // BATCH
    t = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return steps * BATCH / (time.perf_counter() - t)


def time_reference(model, x):
    t = time.perf_counter()
    model.fit(x, batch_size=BATCH, epochs=1, verbose=0)
    return len(x) / (time.perf_counter() - t)
