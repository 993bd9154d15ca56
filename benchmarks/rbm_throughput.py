"""RBM training throughput: keras_gen vs scikit-learn, side by side.

Same configuration for both: 784 visible x 500 hidden Bernoulli RBM,
batches of 100, PCD-1, plain SGD with learning rate 0.1 (scikit-learn's
default; its update is the batch-mean gradient times the learning rate, which
is what `SGD(0.1)` applies to keras_gen's batch-mean surrogate loss), float32
statically binarized MNIST (`keras_gen.data`, preprocessing
"binarized_static"). Each repetition trains each contender on the first
`--samples` training images (default 20,000: 200 steps), and measures the
matmul ceiling, in an order that rotates between repetitions; the CPUs are
shared with other jobs whose load drifts, so many short alternating runs and
their medians compare the contenders under the same conditions.

FLOPs are counted for matrix products only (2*m*k*n each; elementwise work
and random numbers are not counted), per step of `--batch` examples:

  keras_gen PCD-1 (n_chains = batch = B):  7 products of B x 784 x 500
    chain v->h, chain h->v, F of [data; chains] (2B rows), its gradient
    (2B rows), and the mean-field reconstruction for the metric (6 products
    with `monitor=False`, which also skips the pseudo-likelihood);
  scikit-learn PCD-1:                        5 products of B x 784 x 500
    data v->h, persistent h->v, v->h, two gradient products.

The ceiling is the best float32 GFLOP/s of a 2048 x 2048 x 2048 `tf.matmul`
(plain and XLA-compiled, best of 3: `keras_gen.benchmarking.timing.matmul_ceiling`),
measured in every repetition; the median is reported.

Usage (prints markdown and writes the `rbm_throughput` section of
BENCHMARKS.md through `keras_gen.benchmarking.report`):

    TFDS_DATA_DIR=... python benchmarks/rbm_throughput.py [--samples 20000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

N_VISIBLE, N_HIDDEN = 784, 500
BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "BENCHMARKS.md")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps-per-execution", type=int, default=50)
    args = parser.parse_args(argv)

    import keras
    import sklearn
    from sklearn.neural_network import BernoulliRBM as SkBernoulliRBM

    from keras_gen import data
    from keras_gen.benchmarking.report import BenchmarksFile
    from keras_gen.benchmarking.timing import matmul_ceiling, rotate
    from keras_gen.models.rbm import make_rbm

    x, _ = data.load_arrays("mnist", "train", preprocessing="binarized_static", flatten=True)
    x = np.ascontiguousarray(x[: args.samples], dtype=np.float32)
    n, b, spe = len(x), args.batch, args.steps_per_execution
    load_before = os.getloadavg()

    # keras_gen: build, compile (XLA, the default) and warm up off the clock.
    models, compile_seconds = {}, 0.0
    for monitor in (True, False):
        model = make_rbm("bernoulli", N_VISIBLE, N_HIDDEN, k=1, persistent=True, n_chains=b, monitor=monitor, seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.1), steps_per_execution=spe)
        t = time.perf_counter()
        model.fit(x[: b * spe * 2], batch_size=b, epochs=1, shuffle=False, verbose=0)
        compile_seconds = max(compile_seconds, time.perf_counter() - t)
        models[monitor] = model
    SkBernoulliRBM(n_components=N_HIDDEN, batch_size=b, n_iter=1, random_state=0).fit(x[: b * 10])

    def run_keras(monitor):
        t = time.perf_counter()
        models[monitor].fit(x, batch_size=b, epochs=1, shuffle=False, verbose=0)
        return n / (time.perf_counter() - t)

    seeds = iter(range(args.repeats))  # scikit-learn's random_state: the repetition's index

    def run_sklearn():
        sk = SkBernoulliRBM(n_components=N_HIDDEN, learning_rate=0.1, batch_size=b, n_iter=1, random_state=next(seeds))
        t = time.perf_counter()
        sk.fit(x)
        return n / (time.perf_counter() - t)

    runs = {
        "keras": lambda: run_keras(True),
        "lean": lambda: run_keras(False),
        "sklearn": run_sklearn,
        "ceiling": matmul_ceiling,
    }
    results = rotate(runs, args.repeats)
    keras_rates, lean_rates, sk_rates, ceilings = (results[k] for k in ("keras", "lean", "sklearn", "ceiling"))

    product = 2 * N_VISIBLE * N_HIDDEN  # FLOPs per example per matrix product
    keras_flops, lean_flops, sk_flops = 7 * product, 6 * product, 5 * product
    k_rate, l_rate, s_rate, ceiling = (float(np.median(v)) for v in (keras_rates, lean_rates, sk_rates, ceilings))
    k_gflops, l_gflops, s_gflops = k_rate * keras_flops / 1e9, l_rate * lean_flops / 1e9, s_rate * sk_flops / 1e9

    report = BenchmarksFile(BENCHMARKS)
    bound = ceiling / (lean_flops / 1e9) / s_rate  # lean keras_gen at 100% of the ceiling
    lines = [
        report.header("RBM training throughput: keras_gen vs scikit-learn").rstrip("\n"),
        f"- software: scikit-learn {sklearn.__version__}, NumPy {np.__version__}; load average "
        f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after (2 cores shared with other jobs)",
        f"- task: Bernoulli RBM {N_VISIBLE}x{N_HIDDEN}, PCD-1, batch {b}, SGD lr 0.1, float32 "
        f"binarized MNIST, {n} samples per run, {args.repeats} repetitions of every contender "
        f"in rotating order; medians. keras_gen: XLA, steps_per_execution={spe} "
        f"(first compile + warm-up {compile_seconds:.1f} s, not timed).",
        "",
        "| | samples/s | ratio to scikit-learn | matmul GFLOP/s (counted) | % of matmul ceiling |",
        "|---|---:|---:|---:|---:|",
        f"| keras_gen `RBM`, default metrics (7 products/step) | {k_rate:,.0f} | {k_rate / s_rate:.2f}x | "
        f"{k_gflops:.1f} | {100 * k_gflops / ceiling:.0f}% |",
        f"| keras_gen `RBM`, `monitor=False` (6 products/step) | {l_rate:,.0f} | {l_rate / s_rate:.2f}x | "
        f"{l_gflops:.1f} | {100 * l_gflops / ceiling:.0f}% |",
        f"| scikit-learn `BernoulliRBM` (reference, 5 products/step) | {s_rate:,.0f} | 1.00x | "
        f"{s_gflops:.1f} | {100 * s_gflops / ceiling:.0f}% |",
        f"| float32 2048^3 `tf.matmul` ceiling (median of {len(ceilings)}) | | | {ceiling:.1f} | 100% |",
        "",
        "Ratios per repetition (keras_gen default / scikit-learn): "
        + ", ".join(f"{k / s:.2f}x" for k, s in zip(keras_rates, sk_rates))
        + "; with `monitor=False`: "
        + ", ".join(f"{k / s:.2f}x" for k, s in zip(lean_rates, sk_rates))
        + ".",
        "",
        "What bounds the ratio. Both implementations spend their time in the same "
        "dense B x 784 x 500 products, so samples/s = (achieved GFLOP/s) / (FLOPs per "
        "sample). keras_gen needs 6 products per PCD-1 step (chain v->h and h->v with "
        "the current weights, F of data and chains, and the gradient of F), 7 with the "
        "training metrics; scikit-learn needs 5 because it keeps *hidden* fantasy "
        "states and reuses the negative phase's v->h product, computed with the "
        "previous weights, as the next chain step. At 100% of the matmul ceiling, "
        f"keras_gen with `monitor=False` would reach {bound:.1f}x scikit-learn's "
        f"samples/s in this run (scikit-learn at {100 * s_gflops / ceiling:.0f}% of the ceiling): "
        + (
            "the 10x goal is out of reach whatever keras_gen does, short of changing the algorithm. "
            if bound < 10
            else "here the ratio is limited by scikit-learn's low efficiency, not by keras_gen. "
        )
        + f"The 40%-of-ceiling goal is {'met' if k_gflops / ceiling >= 0.4 else 'not met'} in this run "
        f"({100 * k_gflops / ceiling:.0f}% with the default metrics). "
        + (
            f"The load average exceeded the {os.cpu_count()} cores during the run, so all numbers are "
            "dominated by scheduling and not representative: scikit-learn's multithreaded BLAS "
            "(spinning worker threads) loses far more than XLA's code when its threads are "
            "descheduled, which inflates the ratio; rerun on an idle machine for representative "
            "numbers. "
            if max(load_before[0], os.getloadavg()[0]) > os.cpu_count()
            else ""
        )
        + "The remaining levers are small: scikit-learn's stale-hidden-state trick (6 -> 5 "
        "products, at most 1.2x), larger batches (better GEMM efficiency, a different "
        "configuration) and `steps_per_execution` (already used).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    report.write_section("rbm_throughput", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
