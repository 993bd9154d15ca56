"""Diffusion training and sampling throughput: keras-gen vs the keras.io DDIM example's loop, side by side.

Both contenders drive the same network, keras-gen's compact UNet
(`build_unet((28, 28, 1), widths=(32, 64, 128), block_depth=2,
attention=True)`), on the same batches (MNIST in [-1, 1], batch 128 by
default, `keras_gen.data.load`), with the same optimizer (the example's AdamW,
1e-3, weight decay 1e-4): what is compared is the loop around the network.

* reference: the keras.io "Denoising Diffusion Implicit Models" example's
  `keras.Model` written out in `keras_gen.benchmarking.diffusion` (its
  `train_step`: continuous diffusion times, offset-cosine rates, noise
  prediction, mean absolute error, an EMA network updated by a Python loop of
  `assign`s), compiled as the example compiles it (Keras defaults:
  `jit_compile="auto"`, off on a CPU) and trained by `fit`; it samples with
  the example's `generate`, a Python for-loop calling the EMA network eagerly
  once per step. The UNet takes an integer step where the example feeds the
  noise variance: the reference passes round(999 t) for diffusion time t;
* keras-gen: `make_diffusion("unet", (28, 28, 1))` with the library's
  defaults (`jit_compile="auto"`: no XLA for convolutional models on a CPU,
  where it was measured slower), trained by `fit`; it samples with
  `model.sample(n, steps=50, eta=0.0)`, the DDIM sampler compiled as one
  `tf.while_loop`;
* keras-gen in mixed bfloat16: the same, its UNet built with
  `dtype_policy="mixed_bfloat16"` (how `ddpm_mnist` trains); reported beside
  the others, while the goals compare the float32 contenders.

Every repetition times each contender's training (`--train-steps` steps after
a first, untimed one; tracing and compilation happen in a warm-up before) and
its sampling (`--sample-batch` images, `--sample-steps` DDIM steps), and the
float32 matmul ceiling, in an order that rotates between repetitions
(`keras_gen.benchmarking.timing.rotate`): the CPUs are shared with other jobs,
so medians of alternating runs compare the contenders under the same load.
Ratios are ratios of the medians; the per-repetition ratios show the spread.
GFLOP/s counts the convolutions, dense layers and attention of the UNet
(2 FLOPs per multiply-add; a training step costs 3 forward passes).

`--pause PID` stops another process (SIGSTOP) while the measurements run and
resumes it (SIGCONT) when they end, however they end
(`keras_gen.benchmarking.timing.paused`): a background job on a 2-core
machine otherwise takes half of the CPU from whichever contender runs.

    TFDS_DATA_DIR=... python benchmarks/diffusion_throughput.py [--repeats 5] [--train-steps 8] [--pause PID]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "BENCHMARKS.md")
TITLE = "Diffusion training and sampling throughput: keras-gen vs the keras.io DDIM loop"
GOALS = {"training": 1.0, "sampling": 1.5}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of every measurement")
    parser.add_argument("--train-steps", type=int, default=8, help="timed training steps per run")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch")
    parser.add_argument("--sample-steps", type=int, default=50, help="DDIM steps per sampling run")
    parser.add_argument("--sample-batch", type=int, default=64, help="images per sampling run")
    parser.add_argument(
        "--pause", type=int, action="append", default=[], metavar="PID", help="stop this process while timing"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    for name in ("repeats", "train_steps", "batch_size", "sample_steps", "sample_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    import keras

    from keras_gen.benchmarking import diffusion as bench
    from keras_gen.benchmarking.report import BenchmarksFile, markdown_table
    from keras_gen.benchmarking.timing import matmul_ceiling, paused, rotate

    keras.utils.set_random_seed(0)
    report = BenchmarksFile(BENCHMARKS)
    batch, n, steps = args.batch_size, args.sample_batch, args.sample_steps
    data = bench.dataset(batch)
    reference = bench.keras_io_ddim(data.take(8))
    ours = bench.keras_gen_ddim()
    # The same model computing in bfloat16 (float32 weights), as ddpm_mnist trains:
    # not part of the goals, which compare like with like in float32.
    ours_bf16 = bench.keras_gen_ddim(dtype_policy="mixed_bfloat16")
    for model in (reference, ours, ours_bf16):  # trace and compile: not timed
        model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)
    bench.time_reference_sampling(reference, n, 2)
    for model in (ours, ours_bf16):
        bench.time_keras_gen_sampling(model, n, 2)  # the step count is a tensor: one trace for any count

    runs = {
        "train reference": lambda: bench.time_training(reference, data, args.train_steps, batch),
        "train keras-gen": lambda: bench.time_training(ours, data, args.train_steps, batch),
        "sample reference": lambda: bench.time_reference_sampling(reference, n, steps),
        "sample keras-gen": lambda: bench.time_keras_gen_sampling(ours, n, steps),
        "train keras-gen bf16": lambda: bench.time_training(ours_bf16, data, args.train_steps, batch),
        "sample keras-gen bf16": lambda: bench.time_keras_gen_sampling(ours_bf16, n, steps),
        "ceiling": matmul_ceiling,
    }

    def progress(r, results):
        print(r, {k: f"{v[-1]:.1f}" for k, v in results.items()}, flush=True)

    load_before = os.getloadavg()[0]
    with paused(args.pause):
        results = rotate(runs, args.repeats, progress)
    load_after = os.getloadavg()[0]

    forward = bench.forward_flops(ours.network)
    assert forward == bench.forward_flops(reference.network)  # the same network
    ceiling = statistics.median(results["ceiling"])
    rows, ratios = [], {}
    labels = {
        "train reference": ("training", "keras.io example loop, `fit` (reference)", 3 * forward),
        "train keras-gen": ("training", "keras-gen `DiffusionModel`, `fit`", 3 * forward),
        "sample reference": ("sampling", f"keras.io `generate`: eager Python loop, {steps} steps", forward * steps),
        "sample keras-gen": ("sampling", f"keras-gen `sample`: compiled DDIM loop, {steps} steps", forward * steps),
        "train keras-gen bf16": ("training", "keras-gen `DiffusionModel`, `fit`, mixed bfloat16", 3 * forward),
        "sample keras-gen bf16": ("sampling", f"keras-gen `sample`, mixed bfloat16, {steps} steps", forward * steps),
    }
    for key, (task, label, flops) in labels.items():
        rate = statistics.median(results[key])
        base = results[key.replace("keras-gen", "reference").removesuffix(" bf16")]
        ratio = rate / statistics.median(base)
        if key.endswith("keras-gen"):
            ratios[task] = ratio
        rows.append(
            {
                "task": task,
                "contender": label,
                "rate": rate,
                "gflops": rate * flops / 1e9,
                "ceiling": f"{100 * rate * flops / 1e9 / ceiling:.0f}%",
                "ratio": f"{ratio:.2f}x",
                "per_rep": ", ".join(f"{a / b:.2f}" for a, b in zip(results[key], base)),
            }
        )
    goals = [
        f"{task} {ratios[task]:.2f}x, goal >= {goal:.1f}x: {'met' if ratios[task] >= goal else 'NOT met'}"
        for task, goal in GOALS.items()
    ]
    paused_note = f"{len(args.pause)} background process(es) paused while timing; " if args.pause else ""
    text = report.header(TITLE) + "\n".join(
        [
            f"- load average: {load_before:.1f} before, {load_after:.1f} after ({paused_note}2 shared cores)",
            f"- network (both): `build_unet((28, 28, 1), widths=(32, 64, 128), block_depth=2, attention=True)`, "
            f"{ours.network.count_params():,} parameters, {forward / 1e6:.0f} MFLOP per image forward "
            "(convolutions, dense, attention); AdamW 1e-3, weight decay 1e-4, EMA 0.999, for both",
            f"- training: MNIST in [-1, 1], batch {batch}, {args.train_steps} timed steps per run after an "
            "untimed one; reference: the example's `train_step` (continuous times, offset-cosine rates, "
            "MAE on the noise, EMA by a Python loop of `assign`s; time t fed as step round(999 t)), "
            'Keras defaults (`jit_compile="auto"`: off on CPU); keras-gen: `make_diffusion("unet")` defaults '
            f'(prediction "{ours.prediction}", {ours.schedule.kind} schedule of {ours.schedule.steps} steps, '
            'MSE, `jit_compile="auto"`: no XLA for convolutions on a CPU)',
            f"- sampling: {n} images, DDIM with {steps} steps (eta 0) from the EMA network, to a numpy array",
            f"- {args.repeats} repetitions in rotating order; medians; ratios of medians (keras-gen / reference); "
            f"float32 matmul ceiling {ceiling:.0f} GFLOP/s (2048^3 `tf.matmul`, median; the bfloat16 rows "
            "can pass it)",
            "- mixed bfloat16: the same keras-gen model with `network_kwargs={'dtype_policy': 'mixed_bfloat16'}` "
            "(float32 weights, group-norm statistics and output layer; how `ddpm_mnist` trains); the goals "
            "compare the float32 rows",
            f"- goals: {'; '.join(goals)}",
            "",
            markdown_table(
                rows,
                [
                    ("task", "task"),
                    ("contender", "contender"),
                    ("rate", "images/s, median"),
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
        report.write_section("diffusion_throughput", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
