"""The cost of checking every batch in the graph (`keras_gen.core.validation.checked_dataset`).

`fit` on a tf.data pipeline checks each batch (finite, in the model's domain)
inside the pipeline. This measures what that adds: the CPU time per MNIST
batch of the pipeline with and without the checks (batch 128, 28 x 28 x 1,
iterated on its own), beside the time of one training step of the conv VAE,
which the pipeline runs alongside. Contenders alternate; medians.

    python benchmarks/input_checks.py [--batches 400] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import tensorflow as tf

from keras_gen import data
from keras_gen.benchmarking.report import BenchmarksFile
from keras_gen.benchmarking.timing import rotate
from keras_gen.core.validation import checked_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = BenchmarksFile(os.path.join(ROOT, "BENCHMARKS.md"))


def cpu_ms_per_batch(dataset, batches):
    start = time.process_time()
    for _ in dataset.take(batches):
        pass
    return 1000 * (time.process_time() - start) / batches


def vae_step_ms(steps=20):
    import keras

    from keras_gen.models.vae import make_vae

    model = make_vae("conv", (28, 28, 1), latent_dim=2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = (np.random.default_rng(0).random((128 * (steps + 2), 28, 28, 1)) < 0.5).astype("float32")
    model.fit(x[: 128 * 2], batch_size=128, epochs=1, verbose=0)
    start = time.process_time()
    model.fit(x[128 * 2 :], batch_size=128, epochs=1, verbose=0, shuffle=False)
    return 1000 * (time.process_time() - start) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    plain = data.load("mnist", "train", preprocessing="binarized", batch_size=128, seed=0).repeat().prefetch(2)
    checked = checked_dataset(plain, "binary", "VAE")
    for ds in (plain, checked):  # warm-up: file reads, tracing
        cpu_ms_per_batch(ds, 50)
    results = rotate(
        {
            "plain": lambda: cpu_ms_per_batch(plain, args.batches),
            "checked": lambda: cpu_ms_per_batch(checked, args.batches),
        },
        args.repeats,
    )
    plain_ms, checked_ms = (float(np.median(results[k])) for k in ("plain", "checked"))
    step_ms = vae_step_ms()
    added = checked_ms - plain_ms
    lines = [
        BENCHMARKS.header("Cost of the in-graph input checks"),
        f"- MNIST, dynamic binarization, batch 128; CPU ms per batch of the tf.data pipeline iterated alone, "
        f"median of {args.repeats} alternating runs of {args.batches} batches; a conv VAE training step for scale",
        "",
        "| pipeline | CPU ms per batch |",
        "|---|---|",
        f"| without checks | {plain_ms:.3f} |",
        f"| with `checked_dataset` (finite, binary) | {checked_ms:.3f} |",
        f"| added by the checks | {added:.3f} ({100 * added / step_ms:.2f}% of a step) |",
        f"| one conv VAE training step (batch 128) | {step_ms:.1f} |",
    ]
    BENCHMARKS.write_section("input_checks", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
