"""The diffusion benchmark's contenders: the keras.io "Denoising Diffusion
Implicit Models" example's loop and keras-gen's `DiffusionModel`, driving the
same network (keras-gen's compact UNet, widths 32/64/128, two residual blocks
per level, attention at 7 x 7) on the same batches.

The benchmark compares the loops, not the networks: the example's own
network (a UNet fed the noise variance) is swapped for `build_unet`, so what
differs is everything around the network's forward and backward passes.

* `keras_io_ddim`: the example's `keras.Model` with its own `train_step`
  (diffusion times uniform in [0, 1], the offset-cosine signal and noise
  rates, the network predicts the noise, mean absolute error, the EMA network
  updated by a Python loop of `assign`s over the weights) and its
  `reverse_diffusion`, a Python for-loop that calls the EMA network eagerly
  once per step. `build_unet` takes an integer step t in [0, 999] where the
  example feeds the noise variance, so the continuous diffusion time is
  mapped to round(999 t) before each call;
* `keras_gen_ddim`: `make_diffusion("unet", (28, 28, 1))` with the library's
  defaults, sampling with the compiled DDIM sampler (`model.sample`);
* `time_training`, `time_reference_sampling`, `time_keras_gen_sampling`:
  images per second of either;
* `forward_flops`: the counted FLOPs of one image through the network.

Used by benchmarks/diffusion_throughput.py.
"""

from __future__ import annotations

import time

IMAGE_SHAPE = (28, 28, 1)
UNET = {"widths": (32, 64, 128), "block_depth": 2, "attention": True}
# The example's settings: AdamW, EMA momentum, signal-rate range of the schedule.
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
EMA = 0.999
MIN_SIGNAL_RATE = 0.02
MAX_SIGNAL_RATE = 0.95
# The keras.io time t in [0, 1] becomes the UNet's integer step round(t * LAST_STEP).
LAST_STEP = 999


def optimizer():
    """The example's optimizer, given to both contenders so that only the loops differ."""
    import keras

    return keras.optimizers.AdamW(learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY)


# ------------------------------------------------------ the keras.io reference
def keras_io_ddim(dataset=None, seed=0):
    """The keras.io DDIM example's model and loops around `build_unet`, compiled
    as the example compiles it (Keras defaults: no XLA on a CPU). `dataset`
    (images in [-1, 1]) adapts the example's normalizer, as the example does
    on its training set before `fit`."""
    import keras
    import tensorflow as tf
    from keras import layers, ops

    from keras_gen.models.diffusion import build_unet

    class ReferenceDDIM(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.normalizer = layers.Normalization()
            self.network = build_unet(IMAGE_SHAPE, **UNET)
            self.ema_network = keras.models.clone_model(self.network)
            self.seed_generator = keras.random.SeedGenerator(seed)
            self.noise_loss_tracker = keras.metrics.Mean(name="n_loss")
            self.image_loss_tracker = keras.metrics.Mean(name="i_loss")

        @property
        def metrics(self):
            return [self.noise_loss_tracker, self.image_loss_tracker]

        def denormalize(self, images):
            images = self.normalizer.mean + images * self.normalizer.variance**0.5
            return ops.clip(images, -1.0, 1.0)

        def diffusion_schedule(self, diffusion_times):
            start_angle = ops.cast(ops.arccos(MAX_SIGNAL_RATE), "float32")
            end_angle = ops.cast(ops.arccos(MIN_SIGNAL_RATE), "float32")
            angles = start_angle + diffusion_times * (end_angle - start_angle)
            return ops.sin(angles), ops.cos(angles)  # noise rates, signal rates

        def denoise(self, noisy_images, diffusion_times, noise_rates, signal_rates, training):
            network = self.network if training else self.ema_network
            # Where the example feeds noise_rates**2, the UNet takes an integer step.
            steps = ops.cast(ops.round(ops.reshape(diffusion_times, (-1,)) * LAST_STEP), "int32")
            pred_noises = network([noisy_images, steps], training=training)
            pred_images = (noisy_images - noise_rates * pred_noises) / signal_rates
            return pred_noises, pred_images

        def reverse_diffusion(self, initial_noise, diffusion_steps):
            num_images = ops.shape(initial_noise)[0]
            step_size = 1.0 / diffusion_steps
            next_noisy_images = initial_noise
            for step in range(diffusion_steps):
                noisy_images = next_noisy_images
                diffusion_times = ops.ones((num_images, 1, 1, 1)) - step * step_size
                noise_rates, signal_rates = self.diffusion_schedule(diffusion_times)
                pred_noises, pred_images = self.denoise(
                    noisy_images, diffusion_times, noise_rates, signal_rates, training=False
                )
                next_diffusion_times = diffusion_times - step_size
                next_noise_rates, next_signal_rates = self.diffusion_schedule(next_diffusion_times)
                next_noisy_images = next_signal_rates * pred_images + next_noise_rates * pred_noises
            return pred_images

        def generate(self, num_images, diffusion_steps):
            initial_noise = keras.random.normal((num_images, *IMAGE_SHAPE), seed=self.seed_generator)
            return self.denormalize(self.reverse_diffusion(initial_noise, diffusion_steps))

        def train_step(self, images):
            images = self.normalizer(images, training=True)
            batch = ops.shape(images)[0]
            noises = keras.random.normal(ops.shape(images), seed=self.seed_generator)
            diffusion_times = keras.random.uniform((batch, 1, 1, 1), 0.0, 1.0, seed=self.seed_generator)
            noise_rates, signal_rates = self.diffusion_schedule(diffusion_times)
            noisy_images = signal_rates * images + noise_rates * noises
            with tf.GradientTape() as tape:
                pred_noises, pred_images = self.denoise(
                    noisy_images, diffusion_times, noise_rates, signal_rates, training=True
                )
                noise_loss = ops.mean(ops.abs(noises - pred_noises))
                image_loss = ops.mean(ops.abs(images - pred_images))
            gradients = tape.gradient(noise_loss, self.network.trainable_weights)
            self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))
            self.noise_loss_tracker.update_state(noise_loss)
            self.image_loss_tracker.update_state(image_loss)
            for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
                ema_weight.assign(EMA * ema_weight + (1 - EMA) * weight)
            return {m.name: m.result() for m in self.metrics}

    model = ReferenceDDIM()
    if dataset is not None:
        model.normalizer.adapt(dataset)
    else:
        model.normalizer.build((None, *IMAGE_SHAPE))
    model.compile(optimizer=optimizer())
    return model


# ----------------------------------------------------------------- keras-gen
def keras_gen_ddim(seed=0, dtype_policy=None):
    """`make_diffusion("unet", (28, 28, 1))` with the library's defaults and the same UNet
    (computing in `dtype_policy`, e.g. "mixed_bfloat16", if given)."""
    from keras_gen.models.diffusion import make_diffusion

    network_kwargs = {**UNET, "dtype_policy": dtype_policy}
    model = make_diffusion("unet", IMAGE_SHAPE, network_kwargs=network_kwargs, seed=seed)
    model.compile(optimizer=optimizer())
    return model


def dataset(batch_size, seed=0):
    """MNIST in [-1, 1], batched (full batches only) and repeated: both contenders' input."""
    from keras_gen import data

    return data.load(
        "mnist", "train", preprocessing="symmetric", batch_size=batch_size, seed=seed, drop_remainder=True
    ).repeat()


# -------------------------------------------------------------------- timing
def time_training(model, data, steps, batch_size):
    """Images/s over `steps` training steps of `fit`, timed from the end of a first,
    untimed step (the iterator's start and `fit`'s set-up are not the loop's speed)."""
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            float(next(iter(logs.values())))  # the step has run
            self.ends.append(time.perf_counter())

    clock = Clock()
    model.fit(data, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[clock])
    return steps * batch_size / (clock.ends[-1] - clock.ends[0])


def time_reference_sampling(model, n, steps):
    """Images/s of the example's `generate` (its eager Python loop), to a numpy array."""
    start = time.perf_counter()
    model.generate(n, steps).numpy()
    return n / (time.perf_counter() - start)


def time_keras_gen_sampling(model, n, steps, seed=0):
    """Images/s of keras-gen's compiled DDIM sampler (eta 0), to a numpy array."""
    start = time.perf_counter()
    model.sample(n, seed=seed, steps=steps, eta=0.0)
    return n / (time.perf_counter() - start)


# ----------------------------------------------------------------------- FLOPs
def forward_flops(network):
    """FLOPs of one image's forward pass: 2 per multiply-add of the convolutions,
    dense layers and self-attention (projections and both attention products);
    normalization and activations are left out."""
    import keras

    from keras_gen.benchmarking.dcgan import forward_macs

    macs = forward_macs(network)
    for layer in network.layers:
        if isinstance(layer, keras.layers.MultiHeadAttention):
            tokens, channels = layer.output.shape[1:]  # self-attention: output shape = query shape
            heads, key_dim = layer.num_heads, layer.key_dim
            macs += 3 * tokens * channels * heads * key_dim  # query, key, value projections
            macs += 2 * tokens * tokens * heads * key_dim  # scores and weighted values
            macs += tokens * heads * key_dim * channels  # output projection
    return 2 * macs
