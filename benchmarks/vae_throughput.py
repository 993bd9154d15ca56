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

The contenders are in `keras_gen.benchmarking.vae` (shared with
benchmarks/throughput.py).

Usage: TFDS_DATA_DIR=... python benchmarks/vae_throughput.py [--samples 12800] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "BENCHMARKS.md")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=12_800, help="images per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps-per-execution", type=int, default=25)
    parser.add_argument(
        "--extra", action="store_true", help="also time the levers one at a time (XLA, steps_per_execution=1, bfloat16)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)

    from keras_gen.benchmarking.report import BenchmarksFile, markdown_table
    from keras_gen.benchmarking.timing import matmul_ceiling, rotate
    from keras_gen.benchmarking.vae import (
        BATCH,
        keras_gen_dataset,
        keras_gen_vae,
        keras_io_vae,
        mnist_unit_array,
        time_keras_gen,
        time_reference,
        training_flops_per_example,
    )

    report = BenchmarksFile(BENCHMARKS)
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
        rows.append(
            {
                "name": "keras.io example loop (reference)" if name == "reference" else name,
                "rate": rate,
                "gflops": rate * flops / 1e9,
                "ceiling": f"{100 * rate * flops / 1e9 / ceiling:.0f}%",
                "ratio": f"{rate / ref_rate:.2f}x",
                "per_rep": ", ".join(f"{r:.2f}" for r in ratios),
            }
        )
    text = report.header("VAE training throughput: keras-gen vs the keras.io example loop") + "\n".join(
        [
            f"- load average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (shared CPUs)",
            f"- task: conv VAE, latent 2, batch {BATCH}, Adam, MNIST; {n} images per timed run, "
            f"{args.repeats} repetitions in rotating order, medians; keras-gen: library defaults "
            f'(`jit_compile="auto"`: no XLA for convolutions on a CPU), steps_per_execution={spe}, '
            f'`keras_gen.data.load("mnist", preprocessing="binarized")`; '
            'reference: `jit_compile="auto"` (off on CPU), float32 array through `fit`',
            f"- counted FLOPs per training example: {flops / 1e6:.1f} M; matmul ceiling "
            f"{ceiling:.1f} GFLOP/s (float32 2048^3 `tf.matmul`, median)",
            "",
            markdown_table(
                rows,
                [
                    ("name", "contender"),
                    ("rate", "samples/s"),
                    ("gflops", "GFLOP/s"),
                    ("ceiling", "of ceiling"),
                    ("ratio", "vs reference"),
                    ("per_rep", "ratio per repetition"),
                ],
            ),
            "",
        ]
    )
    print(text)
    if not args.no_write:
        report.write_section("vae_throughput", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
