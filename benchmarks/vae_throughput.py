"""VAE training throughput: keras-gen vs the keras.io VAE example's loop, side by side.

The configuration of the keras.io "Variational AutoEncoder" example: the
convolutional encoder/decoder (32-64 strided convolutions, a 16-unit dense
layer, latent dimension 2), Adam with its defaults, batches of 128, MNIST.

* reference: the example's training loop as a user runs it, written out
  below (a `keras.Model` whose `train_step` computes the summed binary
  cross-entropy of sigmoid outputs plus the KL term, Keras defaults:
  `jit_compile="auto"`, which is off on a CPU-only machine), fed the float32
  [0, 1] image array through `fit(x, batch_size=128)`;
* keras-gen: `make_vae("conv", (28, 28, 1), latent_dim=2)` compiled with the
  library defaults (`jit_compile="auto"`, which leaves XLA off for
  convolutional models on CPUs, where it was measured slower) and
  `steps_per_execution`, fed `keras_gen.data.load`
  (uint8 images held in memory, batched, dynamically binarized per batch,
  prefetched).

Every repetition trains each contender on `--samples` images after a
warm-up (compilation is not timed), in an order that rotates between
repetitions, and measures the float32 matmul ceiling; the CPUs are shared
with other jobs, so medians of alternating runs compare the contenders under
the same load. FLOPs are counted for the convolutions and dense layers
(2 per multiply-add; a training step costs 3x the forward pass: forward,
input gradients, weight gradients).

Usage: TFDS_DATA_DIR=... python benchmarks/vae_throughput.py [--samples 12800] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BATCH = 128


# ------------------------------------------------------ the keras.io reference
def keras_io_vae(latent_dim=2):
    """The keras.io example's model, written out: sampling layer, encoder,
    decoder with a sigmoid, and a train_step with per-batch mean losses."""
    import keras
    from keras import layers, ops
    import tensorflow as tf

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
                reconstruction_loss = ops.mean(ops.sum(
                    keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
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

    from keras_gen.vae import make_vae

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


def matmul_ceiling():
    from rbm_throughput import matmul_ceiling as ceiling

    return ceiling()


def rotate(runs, repeats):
    """{name: [rate per repetition]}, each repetition in a rotated order."""
    results = {name: [] for name in runs}
    order = list(runs)
    for r in range(repeats):
        for name in order[r % len(order):] + order[:r % len(order)]:
            results[name].append(runs[name]())
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=12_800, help="images per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps-per-execution", type=int, default=25)
    parser.add_argument("--extra", action="store_true",
                        help="also time the levers one at a time (XLA, steps_per_execution=1, bfloat16)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)

    import numpy as np

    from report import header, markdown_table, write_section

    n = args.samples - args.samples % BATCH
    spe = args.steps_per_execution
    load_before = os.getloadavg()[0]

    x_ref = mnist_unit_array(n)
    reference = keras_io_vae()
    reference.fit(x_ref[: BATCH * 4], batch_size=BATCH, epochs=1, verbose=0)  # warm-up
    contenders = {"keras-gen": keras_gen_vae(spe)}
    if args.extra:
        contenders["keras-gen, steps_per_execution=1"] = keras_gen_vae(1)
        forced = keras_gen_vae(spe)
        forced.compile(optimizer="adam", steps_per_execution=spe, jit_compile=True)
        contenders["keras-gen, XLA forced"] = forced
        contenders["keras-gen, mixed_bfloat16"] = keras_gen_vae(spe, dtype_policy="mixed_bfloat16")
    dataset = keras_gen_dataset(n)
    for model in contenders.values():
        model.fit(dataset, epochs=1, steps_per_epoch=2 * model.steps_per_execution, verbose=0)  # compile

    runs = {"reference": lambda: time_reference(reference, x_ref), "ceiling": matmul_ceiling}
    for name, model in contenders.items():
        runs[name] = (lambda m: lambda: time_keras_gen(m, n, dataset))(model)
    results = rotate(runs, args.repeats)

    flops = training_flops_per_example(contenders["keras-gen"])
    ceiling = statistics.median(results["ceiling"])
    ref_rate = statistics.median(results["reference"])
    rows = []
    for name in ["reference", *contenders]:
        rate = statistics.median(results[name])
        ratios = [a / b for a, b in zip(results[name], results["reference"])]
        rows.append({
            "name": "keras.io example loop (reference)" if name == "reference" else name,
            "rate": rate,
            "gflops": rate * flops / 1e9,
            "ceiling": f"{100 * rate * flops / 1e9 / ceiling:.0f}%",
            "ratio": f"{rate / ref_rate:.2f}x",
            "per_rep": ", ".join(f"{r:.2f}" for r in ratios),
        })
    text = header("VAE training throughput: keras-gen vs the keras.io example loop") + "\n".join([
        f"- load average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (shared CPUs)",
        f"- task: conv VAE, latent 2, batch {BATCH}, Adam, MNIST; {n} images per timed run, "
        f"{args.repeats} repetitions in rotating order, medians; keras-gen: library defaults "
        f"(`jit_compile=\"auto\"`: no XLA for convolutions on a CPU), steps_per_execution={spe}, `keras_gen.data.load(\"mnist\", preprocessing=\"binarized\")`; "
        "reference: `jit_compile=\"auto\"` (off on CPU), float32 array through `fit`",
        f"- counted FLOPs per training example: {flops / 1e6:.1f} M; matmul ceiling "
        f"{ceiling:.1f} GFLOP/s (float32 2048^3 `tf.matmul`, median)",
        "",
        markdown_table(rows, [("name", "contender"), ("rate", "samples/s"), ("gflops", "GFLOP/s"),
                              ("ceiling", "of ceiling"), ("ratio", "vs reference"),
                              ("per_rep", "ratio per repetition")]),
        "",
    ])
    print(text)
    if not args.no_write:
        write_section("vae_throughput", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
