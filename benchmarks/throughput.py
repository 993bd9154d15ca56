"""The throughput suite: every family against its reference, one device and 2 replicas.

One command, one process, side by side:

    TFDS_DATA_DIR=... python benchmarks/throughput.py [--repeats 5] [--scale 1.0]

The CPU is split into 2 logical devices first, so the same process runs each
family on one device and under MirroredStrategy with 2 replicas. Contenders,
with the references of each family's own benchmark (shared through
`keras_gen.benchmarking`, not copied):

* VAE (keras.io conv VAE, latent 2, batch 128, MNIST): the keras.io
  example's loop (`keras_gen.benchmarking.vae.keras_io_vae`) vs keras-gen (XLA,
  steps_per_execution, `keras_gen.data` pipeline);
* RBM (784 x 500 Bernoulli, PCD-1, batch 100, SGD 0.1, binarized MNIST):
  scikit-learn's `BernoulliRBM` vs keras-gen (the configuration of
  `rbm_throughput.py`);
* DCGAN (the TensorFlow tutorial's, batch 256): the tutorial's
  `@tf.function` loop (`keras_gen.benchmarking.dcgan.tutorial_trainer`) vs keras-gen `fit`;
* sampling: VAE and GAN images generated per second, RBM Gibbs sweeps per
  second (100 chains, 1000 sweeps each).

Every repetition runs every contender once, in an order rotated between
repetitions, and measures the float32 matmul ceiling
(`keras_gen.benchmarking.timing`); the table gives medians of samples/s, the
median of the per-repetition ratios against the reference, and the counted
matmul/convolution FLOP rate as a fraction of the ceiling. The CPUs are
shared with other jobs, so absolute rates move with their load; ratios of
contenders timed back to back move much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "BENCHMARKS.md")


def vae_contenders(scale, spe, strategy):
    from keras_gen.benchmarking import vae as vt

    n = max(vt.BATCH * spe * 2, int(6400 * scale) // (vt.BATCH * spe) * vt.BATCH * spe)
    x_ref = vt.mnist_unit_array(n)
    reference = vt.keras_io_vae()
    reference.fit(x_ref[: vt.BATCH * 4], batch_size=vt.BATCH, epochs=1, verbose=0)
    dataset = vt.keras_gen_dataset(n)
    one = vt.keras_gen_vae(spe)
    two = vt.keras_gen_vae(spe, strategy=strategy)
    for model in (one, two):
        model.fit(dataset, epochs=1, steps_per_epoch=2 * spe, verbose=0)
    flops = vt.training_flops_per_example(one)
    return {
        "reference": ("keras.io example loop", lambda: vt.time_reference(reference, x_ref), flops),
        "one": ("keras-gen, 1 device", lambda: vt.time_keras_gen(one, n, dataset), flops),
        "two": ("keras-gen, 2 replicas", lambda: vt.time_keras_gen(two, n, dataset), flops),
    }, one


def rbm_contenders(scale, spe, strategy):
    import keras
    import numpy as np
    import tensorflow as tf
    from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM

    from keras_gen import data
    from keras_gen.models.rbm import make_rbm

    batch = 100
    n = max(batch * spe * 2, int(10_000 * scale) // (batch * spe) * batch * spe)
    x, _ = data.load_arrays("mnist", "train", preprocessing="binarized_static", flatten=True)
    x = np.ascontiguousarray(x[:n], dtype=np.float32)

    def build(s):
        with s.scope():
            model = make_rbm("bernoulli", 784, 500, k=1, persistent=True, n_chains=batch, seed=0)
            model.compile(optimizer=keras.optimizers.SGD(0.1), steps_per_execution=spe)
        model.fit(x[: batch * spe * 2], batch_size=batch, epochs=1, shuffle=False, verbose=0)
        return model

    one, two = build(tf.distribute.get_strategy()), build(strategy)
    SkBernoulliRBM(n_components=500, batch_size=batch, n_iter=1, random_state=0).fit(x[: batch * 10])

    def keras_gen(model):
        def run():
            t = time.perf_counter()
            model.fit(x, batch_size=batch, epochs=1, shuffle=False, verbose=0)
            return n / (time.perf_counter() - t)

        return run

    def sklearn():
        sk = SkBernoulliRBM(n_components=500, learning_rate=0.1, batch_size=batch, n_iter=1, random_state=0)
        t = time.perf_counter()
        sk.fit(x)
        return n / (time.perf_counter() - t)

    product = 2 * 784 * 500  # FLOPs of one example through one matrix product
    return {
        "reference": ("scikit-learn BernoulliRBM", sklearn, 5 * product),
        "one": ("keras-gen, 1 device", keras_gen(one), 7 * product),
        "two": ("keras-gen, 2 replicas", keras_gen(two), 7 * product),
    }, one


def dcgan_contenders(scale, strategy):
    from keras_gen import data
    from keras_gen.benchmarking import dcgan as dt
    from keras_gen.models import gan

    steps = max(2, int(10 * scale))
    dataset = data.load(
        "mnist", "train", preprocessing="symmetric", batch_size=dt.BATCH, seed=0, drop_remainder=True
    ).repeat()
    tutorial, models = dt.tutorial_trainer()
    one, one_models = dt.keras_gen_trainer()
    with strategy.scope():
        model = gan.make_gan("dcgan", (28, 28, 1), seed=0)
        model.compile(**gan.dcgan_compile_kwargs())

    def two(dataset, steps):
        model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)

    flops = dt.flops_per_example(*models)
    for run in (tutorial, one, two):
        run(dataset, 3)  # compile

    def timed(run):
        def go():
            t = time.perf_counter()
            run(dataset, steps)
            return steps * dt.BATCH / (time.perf_counter() - t)

        return go

    return {
        "reference": ("TF tutorial loop", timed(tutorial), flops),
        "one": ("keras-gen, 1 device", timed(one), flops),
        "two": ("keras-gen, 2 replicas", timed(two), flops),
    }, one_models  # (generator, discriminator) of the one-device keras-gen model


def sampling_rates(vae, rbm_model, gan_generator, repeats):
    """Generated images/s (VAE, GAN) and Gibbs sweeps/s x chains (RBM)."""
    import keras
    import numpy as np

    def vae_images():
        t = time.perf_counter()
        vae.sample(10_000, seed=1)
        return 10_000 / (time.perf_counter() - t)

    def gan_images():
        z = np.random.default_rng(0).standard_normal((2_000, int(gan_generator.inputs[0].shape[-1])))
        z = z.astype("float32")
        t = time.perf_counter()
        for start in range(0, len(z), 500):
            keras.ops.convert_to_numpy(gan_generator(z[start : start + 500], training=False))
        return len(z) / (time.perf_counter() - t)

    def gibbs():
        t = time.perf_counter()
        rbm_model.sample(100, seed=1, gibbs_steps=1000)
        return 100 * 1000 / (time.perf_counter() - t)

    runs = {"vae": vae_images, "gan": gan_images, "gibbs": gibbs}
    for run in runs.values():
        run()  # compile
    return {name: statistics.median(run() for _ in range(repeats)) for name, run in runs.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="work per timed run (1: ~5-10 s each)")
    parser.add_argument("--steps-per-execution", type=int, default=25)
    parser.add_argument("--families", default="vae,rbm,dcgan")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)

    from keras_gen.core import distribute

    distribute.split_cpu(2)
    import tensorflow as tf

    from keras_gen.benchmarking.report import BenchmarksFile, markdown_table
    from keras_gen.benchmarking.timing import matmul_ceiling, rotate

    report = BenchmarksFile(BENCHMARKS)

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    load_before = os.getloadavg()[0]
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    spe = args.steps_per_execution
    contenders, samplers = {}, {}
    if "vae" in families:
        contenders["VAE"], samplers["vae"] = vae_contenders(args.scale, spe, strategy)
    if "rbm" in families:
        contenders["RBM"], samplers["rbm"] = rbm_contenders(args.scale, spe, strategy)
    if "dcgan" in families:
        contenders["DCGAN"], samplers["gan"] = dcgan_contenders(args.scale, strategy)

    runs = {"ceiling": matmul_ceiling}
    for family, entries in contenders.items():
        for key, (_, run, _) in entries.items():
            runs[(family, key)] = run
    results = rotate(
        runs, args.repeats, on_repetition=lambda r, _: print(f"repetition {r + 1}/{args.repeats} done", flush=True)
    )
    ceiling = statistics.median(results["ceiling"])

    rows = []
    for family, entries in contenders.items():
        reference = results[(family, "reference")]
        for key, (label, _, flops) in entries.items():
            rates = results[(family, key)]
            ratios = [a / b for a, b in zip(rates, reference)]
            rate = statistics.median(rates)
            rows.append(
                {
                    "family": family,
                    "contender": label,
                    "rate": rate,
                    "ratio": "1"
                    if key == "reference"
                    else f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f})",
                    "ceiling": f"{100 * rate * flops / 1e9 / ceiling:.0f}%",
                }
            )
    table = markdown_table(
        rows,
        [
            ("family", "family"),
            ("contender", "contender"),
            ("rate", "samples/s"),
            ("ratio", "vs reference (median, range)"),
            ("ceiling", "of matmul ceiling"),
        ],
    )
    sampling = ""
    if len(samplers) == 3:
        vae_model, rbm_model, (generator, _) = samplers["vae"], samplers["rbm"], samplers["gan"]
        s = sampling_rates(vae_model, rbm_model, generator, args.repeats)
        sampling = "\n".join(
            [
                "",
                "Sampling (one device, medians):",
                "",
                markdown_table(
                    [
                        {"what": "VAE (conv, latent 2): images generated", "rate": s["vae"], "unit": "images/s"},
                        {"what": "DCGAN generator: images generated", "rate": s["gan"], "unit": "images/s"},
                        {
                            "what": "RBM 784x500: block-Gibbs sweeps x chains (100 chains)",
                            "rate": s["gibbs"],
                            "unit": "chain-sweeps/s",
                        },
                    ],
                    [("what", "sampler"), ("rate", "rate"), ("unit", "unit")],
                ),
            ]
        )
    text = report.header("Throughput suite: each family vs its reference, 1 device and 2 replicas") + "\n".join(
        [
            f"- load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (2 shared cores); "
            f"matmul ceiling {ceiling:.1f} GFLOP/s (median)",
            f'- {args.repeats} repetitions, rotating order; keras-gen: library defaults (`jit_compile="auto"`: '
            f"XLA for the RBM, none for the convolutional VAE and DCGAN on a CPU), steps_per_execution={spe} "
            "(VAE, RBM; 1 under a strategy, keras-team/keras#19246); 2 replicas = MirroredStrategy over the CPU "
            "split in 2 logical devices (same 2 "
            "cores: it measures the cost of distribution, not a speed-up)",
            "",
            table,
            sampling,
            "",
        ]
    )
    print(text)
    if not args.no_write:
        report.write_section("throughput", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
