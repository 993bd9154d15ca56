"""Energy-based model training throughput: keras-gen vs the UvA tutorial's loop, side by side.

Every contender drives the same energy network, keras-gen's
`build_conv_energy((28, 28, 1))`, on the same batches (MNIST in [-1, 1],
batch 128 by default, `keras_gen.data.load`), with the tutorial's settings
(60 Langevin steps of size 10, noise 0.005, gradients clipped to 0.03, a
replay buffer of 8,192 with 5% fresh noise, alpha 0.1) and its optimizer
(Adam 1e-4, beta_1 = 0): what is compared is the loop around the network.

* reference: the UvA deep-learning course's EBM tutorial (Lippe, after Du &
  Mordatch 2019) re-typed in TensorFlow in `keras_gen.benchmarking.ebm`:
  the replay buffer a Python list of single-image tensors, the Langevin
  chain a Python for-loop with one `tf.GradientTape` gradient call per step,
  the loss over data and negatives, Adam. Timed in two ports, since a
  TensorFlow user could write either: every op dispatched eagerly from
  Python (as the PyTorch original runs), and with each Langevin step's
  network call and gradient, and the loss step, in a `tf.function`;
* keras-gen: `make_ebm("conv", (28, 28, 1))` with the library's defaults
  (which are the tutorial's settings), trained by `fit`: buffer, sampler and
  update in one graph (`jit_compile="auto"`: no XLA for convolutions on a
  CPU), and the same model compiled with `jit_compile=True`.

Every repetition times each contender's training (`--train-steps` steps after
a first, untimed one; tracing and compilation happen in a warm-up before) and
the float32 matmul ceiling, in an order that rotates between repetitions
(`keras_gen.benchmarking.timing.rotate`): the CPUs are shared with other
jobs, so medians of alternating runs compare the contenders under the same
load. Ratios are ratios of the medians; the per-repetition ratios show the
spread. The goal is keras-gen at least 2x the reference's training images/s;
it is judged against both ports. After the repetitions, one Langevin step of
every contender is timed in isolation, and the network's forward pass and
dE/dx alone, to show where the time goes. GFLOP/s counts the convolutions and
dense layers (2 FLOPs per multiply-add; a Langevin step costs 2 forward
passes, the loss 3 over data and negatives).

`--pause PID` (repeatable) stops other processes (SIGSTOP) while the
measurements run and resumes them (SIGCONT) when they end, however they end
(`keras_gen.benchmarking.timing.paused`).

    TFDS_DATA_DIR=... python benchmarks/ebm_throughput.py [--repeats 5] [--train-steps 4] [--pause PID ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "BENCHMARKS.md")
TITLE = "Energy-based model training throughput: keras-gen vs the UvA tutorial loop"
GOAL = 2.0
EAGER, GRAPH, OURS, OURS_XLA = "reference, eager", "reference, tf.function", "keras-gen", "keras-gen, XLA"
LABELS = {
    EAGER: "tutorial loop, eager (reference)",
    GRAPH: "tutorial loop, `tf.function` per Langevin step (reference)",
    OURS: '`make_ebm("conv")`, `fit`, library defaults',
    OURS_XLA: '`make_ebm("conv")`, `fit`, `jit_compile=True`',
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of every measurement")
    parser.add_argument("--train-steps", type=int, default=4, help="timed training steps per run")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch")
    parser.add_argument(
        "--pause", type=int, action="append", default=[], metavar="PID", help="stop this process while timing"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    for name in ("repeats", "train_steps", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    from keras_gen.benchmarking import ebm as bench
    from keras_gen.benchmarking.diffusion import time_training
    from keras_gen.benchmarking.report import BenchmarksFile, markdown_table
    from keras_gen.benchmarking.timing import matmul_ceiling, paused, rotate

    report = BenchmarksFile(BENCHMARKS)
    batch, steps = args.batch_size, args.train_steps
    data = bench.dataset(batch)
    batches = iter(data)
    models = {
        EAGER: bench.tutorial_ebm(batch, compiled=False),
        GRAPH: bench.tutorial_ebm(batch, compiled=True),
        OURS: bench.keras_gen_ebm(),
        OURS_XLA: bench.keras_gen_ebm(jit_compile=True),
    }
    for name in (EAGER, GRAPH):  # trace: not timed
        models[name].training_step(next(batches))
    for name in (OURS, OURS_XLA):
        models[name].fit(data, epochs=1, steps_per_epoch=2, verbose=0)

    runs = {
        name: (lambda m: lambda: bench.time_reference(m, batches, steps, batch))(models[name])
        for name in (EAGER, GRAPH)
    }
    runs.update(
        {name: (lambda m: lambda: time_training(m, data, steps, batch))(models[name]) for name in (OURS, OURS_XLA)}
    )
    runs["ceiling"] = matmul_ceiling

    def progress(r, results):
        print(r, {k: f"{v[-1]:.1f}" for k, v in results.items()}, flush=True)

    load_before = os.getloadavg()[0]
    with paused(args.pause):
        results = rotate(runs, args.repeats, progress)
        per_langevin_step = {name: bench.langevin_step_seconds(model, batch) for name, model in models.items()}
        network_alone = bench.network_gradient_seconds(models[OURS].energy_network, batch)
    load_after = os.getloadavg()[0]

    network = models[OURS].energy_network
    flops = bench.training_flops(network)
    ceiling = statistics.median(results["ceiling"])
    rates = {name: statistics.median(results[name]) for name in models}
    rows = []
    for name in models:
        rate = rates[name]
        rows.append(
            {
                "contender": LABELS[name],
                "rate": rate,
                "step": batch / rate,
                "langevin": 1e3 * per_langevin_step[name],
                "share": f"{100 * bench.LANGEVIN_STEPS * per_langevin_step[name] * rate / batch:.0f}%",
                "gflops": rate * flops / 1e9,
                "ceiling": f"{100 * rate * flops / 1e9 / ceiling:.0f}%",
                "vs_eager": f"{rate / rates[EAGER]:.2f}x",
                "vs_graph": f"{rate / rates[GRAPH]:.2f}x",
                "per_rep": ", ".join(f"{a / b:.2f}" for a, b in zip(results[name], results[GRAPH])),
            }
        )

    def verdict(reference, port):
        ratio = rates[OURS] / rates[reference]
        return f"{ratio:.2f}x vs the {port} port: {'met' if ratio >= GOAL else 'NOT met'}"

    graph_step, floor = per_langevin_step[GRAPH], network_alone
    paused_note = f"{len(args.pause)} background process(es) paused while timing; " if args.pause else ""
    text = report.header(TITLE) + "\n".join(
        [
            f"- load average: {load_before:.1f} before, {load_after:.1f} after ({paused_note}2 shared cores)",
            f"- network (all contenders): `build_conv_energy((28, 28, 1))`, {network.count_params():,} parameters, "
            f"{flops / 1e9:.2f} GFLOP per training image ({bench.LANGEVIN_STEPS} Langevin steps x 2 forward "
            "passes + the loss, 3 forward passes over the image and its negative; convolutions and dense layers)",
            f"- training: MNIST in [-1, 1], batch {batch}, {steps} timed steps per run after an untimed one; "
            f"{bench.LANGEVIN_STEPS} Langevin steps of size {bench.STEP_SIZE:g}, noise {bench.NOISE}, gradient clip "
            f"{bench.GRADIENT_CLIP}, buffer {bench.BUFFER_SIZE:,} with {bench.FRESH_FRACTION:.0%} fresh noise, "
            f"alpha {bench.ALPHA}, Adam {bench.LEARNING_RATE:g} with beta_1 = {bench.BETA_1:g}, for all",
            "- reference: the UvA tutorial's loop re-typed in TensorFlow (`keras_gen.benchmarking.ebm`): buffer "
            "a Python list of single-image tensors, `random.choices` and Binomial fresh draws, a Python for-loop "
            "of Langevin steps with one `tf.GradientTape` call each, the loss over data and negatives "
            "concatenated; eager: every op from Python; `tf.function`: each step's network call and gradient, "
            'and the loss step, compiled. keras-gen: `make_ebm("conv", (28, 28, 1))` defaults '
            '(`jit_compile="auto"`: no XLA for convolutions on a CPU), `fit`, and the same with `jit_compile=True`',
            f"- {args.repeats} repetitions in rotating order; medians; ratios of medians; float32 matmul ceiling "
            f"{ceiling:.0f} GFLOP/s (2048^3 `tf.matmul`, median)",
            f"- goal: keras-gen >= {GOAL:.0f}x the reference's training images/s: {verdict(EAGER, 'eager')}; "
            f"{verdict(GRAPH, '`tf.function`')}",
            "",
            markdown_table(
                rows,
                [
                    ("contender", "contender"),
                    ("rate", "images/s, median"),
                    ("step", "s per step"),
                    ("langevin", "ms per Langevin step"),
                    ("share", "Langevin share"),
                    ("gflops", "GFLOP/s"),
                    ("ceiling", "of ceiling"),
                    ("vs_eager", "vs eager"),
                    ("vs_graph", "vs `tf.function`"),
                    ("per_rep", "per repetition, vs `tf.function`"),
                ],
            ),
            "",
            f"Where the time goes. ms per Langevin step: one step of a batch of {batch} timed alone after the "
            "repetitions (median of 20; keras-gen: its compiled chain at 21 and 1 steps, differenced); Langevin "
            f"share: {bench.LANGEVIN_STEPS} such steps over the median training step. The network's forward pass "
            f"and dE/dx alone, one `tf.function` call, take {1e3 * floor:.1f} ms, the floor of any loop; "
            f"keras-gen's compiled chain takes {1e3 * per_langevin_step[OURS]:.1f} ms. The `tf.function` port "
            f"adds {1e3 * (graph_step - floor):.1f} ms per step of Python dispatch (the noise and clamps run "
            "eagerly, and the call itself), the eager port "
            f"{1e3 * (per_langevin_step[EAGER] - floor):.1f} ms. A loop around the same network can therefore "
            f"be at most about {graph_step / floor:.2f}x faster than the `tf.function` port per Langevin step, "
            f"and {per_langevin_step[EAGER] / floor:.1f}x faster than the eager one.",
            "",
        ]
    )
    print(text)
    if not args.no_write:
        report.write_section("ebm_throughput", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
