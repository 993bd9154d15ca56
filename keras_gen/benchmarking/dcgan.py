"""The DCGAN benchmark's contenders: the TensorFlow DCGAN tutorial's
`@tf.function` training loop and keras-gen's `fit` on the same model
(batch 256, Adam 1e-4 for both players, simultaneous updates).

* `tutorial_trainer`: the tutorial's models and `train_step`, written out
  with Keras 3 layers, called in a Python loop over the dataset;
* `keras_gen_trainer`: `make_gan("dcgan")` compiled with
  `dcgan_compile_kwargs()`, optionally with `steps_per_execution` or a
  mixed-precision policy;
* `flops_per_example`: the counted FLOPs of a training step.

Each trainer returns `run(dataset, steps)` and its (generator, discriminator).
Used by benchmarks/dcgan_throughput.py and benchmarks/throughput.py.
"""

from __future__ import annotations

BATCH = 256
NOISE_DIM = 100


# ------------------------------------------------------------ the tutorial
def tutorial_models():
    import keras
    from keras import layers

    generator = keras.Sequential(
        [
            keras.Input((NOISE_DIM,)),
            layers.Dense(7 * 7 * 256, use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Reshape((7, 7, 256)),
            layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.LeakyReLU(),
            layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"),
        ]
    )
    discriminator = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"),
            layers.LeakyReLU(),
            layers.Dropout(0.3),
            layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"),
            layers.LeakyReLU(),
            layers.Dropout(0.3),
            layers.Flatten(),
            layers.Dense(1),
        ]
    )
    return generator, discriminator


def tutorial_trainer():
    import keras
    import tensorflow as tf

    generator, discriminator = tutorial_models()
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    generator_optimizer = keras.optimizers.Adam(1e-4)
    discriminator_optimizer = keras.optimizers.Adam(1e-4)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([BATCH, NOISE_DIM])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated_images, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = cross_entropy(tf.ones_like(real_output), real_output) + cross_entropy(
                tf.zeros_like(fake_output), fake_output
            )
        gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
        discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))
        return gen_loss, disc_loss

    def run(dataset, steps):
        for images in dataset.take(steps):
            losses = train_step(images)
        float(losses[0])  # wait for the last step

    return run, (generator, discriminator)


def keras_gen_trainer(steps_per_execution=1, policy=None):
    import keras

    from keras_gen.models import gan

    previous = keras.mixed_precision.global_policy().name
    if policy:  # layers take the global policy when they are built
        keras.mixed_precision.set_global_policy(policy)
    try:
        model = gan.make_gan("dcgan", (28, 28, 1), seed=0)
        model.compile(**gan.dcgan_compile_kwargs(), steps_per_execution=steps_per_execution)
    finally:
        keras.mixed_precision.set_global_policy(previous)

    def run(dataset, steps):
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)

    return run, (model.generator, model.discriminator)


# ------------------------------------------------------------------- FLOPs
def forward_macs(model):
    """Multiply-adds of one example's forward pass through Dense and convolution layers."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            total += int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            # Every input position scatters a k x k x C_out patch.
            _, h, w, c_in = layer.input.shape
            kh, kw = layer.kernel_size
            total += h * w * c_in * kh * kw * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c_out * kh * kw * int(layer.input.shape[-1])
    return total


def flops_per_example(generator, discriminator):
    g, d = forward_macs(generator), forward_macs(discriminator)
    return 2 * (3 * g + 3 * d + 4 * d)
