"""DCGAN training throughput: keras_gen's `fit` against the TensorFlow tutorial's loop.

Both contenders train the tutorial's DCGAN (generator Dense -> 7x7x256,
transposed convolutions 128/64/1 with batch normalization; discriminator
convolutions 64/128 with dropout 0.3) with its training step: noise for the
batch, one forward pass, the two players' gradients from two tapes, Adam
1e-4 for each, batch 256, fed by the same pipeline
(`keras_gen.data.load("mnist", preprocessing="symmetric", batch_size=256)`).

* tutorial: the `@tf.function` `train_step` of the TensorFlow DCGAN
  tutorial, written out in `keras_gen.benchmarking.dcgan` with Keras 3
  layers (`keras.layers.Dropout`, `keras.losses.BinaryCrossentropy(
  from_logits=True)`, `tf.random.normal` noise), called in a Python loop
  over the dataset;
* keras_gen: `keras_gen.models.gan.make_gan("dcgan")` compiled with
  `gan.dcgan_compile_kwargs()` (the same step, `simultaneous=True`) and
  trained by `model.fit` with the library's defaults (`jit_compile="auto"`:
  no XLA for convolutional models on a CPU, where it is slower; the
  counter-based random numbers for the noise and dropout masks are compiled
  on their own); then the levers: `steps_per_execution` and the
  mixed_bfloat16 policy (fast on CPUs with AMX/AVX512-BF16 units, slow
  without them; it changes the numerics, so it is not a default).

Every contender runs in its own process (its own thread pools and memory,
nothing shared with the others), kept alive between repetitions. Each
repetition asks every contender in turn, in an order that rotates between
repetitions, to time `--steps` steps (after a warm-up that compiles), while
the other processes wait idle; the CPUs may be shared with other jobs, so
medians over `--repeats` repetitions compare the contenders under the same
conditions, and each process also reports the CPU time it spent (all its
threads), which measures the work a step needs whatever the load; the
fastest repetition shows what the machine gives a contender when nothing
holds it back. GFLOP/s
counts the multiply-adds of the
dense and convolution layers (2 FLOPs each): per example, 3x the forward
pass of each differentiated pass (forward, input and weight gradients) and
one more forward's worth for the fake images' second cotangent through the
discriminator. The matmul ceiling is `keras_gen.benchmarking.timing.matmul_ceiling`;
the contenders are in `keras_gen.benchmarking.dcgan` (shared with
benchmarks/throughput.py).

    TFDS_DATA_DIR=... python benchmarks/dcgan_throughput.py [--steps 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_gen.benchmarking.dcgan import BATCH, flops_per_example, keras_gen_trainer, tutorial_trainer  # noqa: E402

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "BENCHMARKS.md")


# ----------------------------------------------------------------- workers
CONTENDERS = {
    "tutorial": ("TF tutorial `@tf.function` loop", lambda args: tutorial_trainer()),
    "keras_gen": (
        "keras_gen `fit`, library defaults (no XLA for convolutions on a CPU)",
        lambda args: keras_gen_trainer(),
    ),
    "spe": (
        "keras_gen `fit`, steps_per_execution={spe}",
        lambda args: keras_gen_trainer(steps_per_execution=args.steps_per_execution),
    ),
    "bf16": (
        "keras_gen `fit`, mixed_bfloat16 (changes the numerics: not a default)",
        lambda args: keras_gen_trainer(policy="mixed_bfloat16"),
    ),
}


def worker(name, args):
    """One contender's process: build, warm up, then time `args.steps` steps per request on stdin."""
    import keras

    from keras_gen import data

    keras.utils.set_random_seed(0)
    dataset = data.load(
        "mnist", "train", preprocessing="symmetric", batch_size=BATCH, seed=0, drop_remainder=True
    ).repeat()
    run, models = CONTENDERS[name][1](args)
    run(dataset, 3)  # warm-up: trace and compile
    print(json.dumps({"ready": name, "flops": flops_per_example(*models)}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start, start_cpu = time.perf_counter(), time.process_time()
        run(dataset, args.steps)
        print(json.dumps({"wall": time.perf_counter() - start, "cpu": time.process_time() - start_cpu}), flush=True)


class Contender:
    """A worker process and the line protocol to it."""

    def __init__(self, name, args):
        self.name = name
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            name,
            "--steps",
            str(args.steps),
            "--steps-per-execution",
            str(args.steps_per_execution),
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def reply(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker {self.name!r} exited with {self.process.wait()}")
        return json.loads(line)

    def run(self):
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self.reply()

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()


# --------------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per contender per repetition")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps-per-execution", type=int, default=10, help="for the steps_per_execution row")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--worker", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args)

    from keras_gen.benchmarking.report import BenchmarksFile, markdown_table
    from keras_gen.benchmarking.timing import matmul_ceiling

    report = BenchmarksFile(BENCHMARKS)
    contenders = {}
    flops = {}
    try:
        # Started one after another: each warms up alone.
        for name in CONTENDERS:
            contenders[name] = Contender(name, args)
            flops[name] = contenders[name].reply()["flops"]
        assert len(set(flops.values())) == 1, flops  # the same architecture
        times = {name: [] for name in contenders}
        cpu = {name: [] for name in contenders}
        ceilings = []
        order = list(contenders)
        for rep in range(args.repeats):
            # Rotate the order so no contender always runs first (load drifts).
            for name in order[rep % len(order) :] + order[: rep % len(order)]:
                result = contenders[name].run()
                times[name].append(result["wall"])
                cpu[name].append(result["cpu"])
            ceilings.append(matmul_ceiling())
            print(rep, {k: f"{args.steps * BATCH / v[-1]:.0f} samples/s" for k, v in times.items()}, flush=True)
    finally:
        for contender in contenders.values():
            contender.close()

    rows = []
    for name, (label, _) in CONTENDERS.items():
        seconds = float(np.median(times[name]))
        rate = args.steps * BATCH / seconds
        ratios = [t / k for t, k in zip(times["tutorial"], times[name])]
        cpu_ratios = [t / k for t, k in zip(cpu["tutorial"], cpu[name])]
        best = args.steps * BATCH / min(times[name])
        rows.append(
            {
                "contender": label.format(spe=args.steps_per_execution),
                "rate": rate,
                "best": best,
                "best_ratio": f"{min(times['tutorial']) / min(times[name]):.2f}",
                "step_ms": 1000 * seconds / args.steps,
                "cpu_ms": 1000 * float(np.median(cpu[name])) / args.steps,
                "cpu_ratio": f"{np.median(cpu_ratios):.2f}",
                "gflops": rate * flops[name] / 1e9,
                "ratio": f"{np.median(ratios):.2f} (range {min(ratios):.2f}–{max(ratios):.2f})",
            }
        )
    ceiling = float(np.median(ceilings))
    table = markdown_table(
        rows,
        [
            ("contender", "contender"),
            ("rate", "samples/s, median"),
            ("step_ms", "ms per step of 256"),
            ("gflops", "GFLOP/s"),
            ("best", "samples/s, fastest repetition"),
            ("best_ratio", "fastest vs tutorial's fastest"),
            ("ratio", "speed vs tutorial, median of per-repetition ratios"),
            ("cpu_ms", "CPU ms per step (all threads)"),
            ("cpu_ratio", "CPU-time efficiency vs tutorial"),
        ],
    )
    text = (
        report.header("DCGAN training throughput (batch 256)")
        + "\n"
        + f"The TensorFlow tutorial's DCGAN and training step, same data pipeline; each contender in its own "
        f"process, {args.steps} steps per contender per repetition, {args.repeats} repetitions in rotating "
        f"order, medians. {flops['tutorial'] / 1e6:.0f} MFLOP per example (dense and convolution "
        "multiply-adds, forward and backward). float32 matmul ceiling of this CPU: "
        f"{ceiling:.0f} GFLOP/s (median over repetitions). Wall time per step varies between repetitions "
        "for every contender (from other jobs on the machine, and from repetitions in which TensorFlow "
        "keeps only one of the cores busy); the CPU time a contender's process spent per step (all its "
        "threads) measures the work a step needs whatever happens, and the fastest repetition what the "
        "machine gives when nothing holds a contender back.\n\n" + table + "\n"
    )
    print(text)
    if not args.no_write:
        report.write_section("dcgan_throughput", text)


if __name__ == "__main__":
    main()
