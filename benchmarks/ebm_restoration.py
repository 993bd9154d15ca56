"""What an energy is good for: denoising and inpainting MNIST digits.

Corrupts the first `--n` MNIST test digits three ways (Gaussian noise, the
lower half missing, 70% of the pixels missing at random) and restores them
with the energy-based model's Langevin chains: from the noisy digit itself
(`denoise`), or with the known pixels clamped (`inpaint`), for several chain
lengths. Reports the mean squared error over the corrupted pixels and the
domain classifier's accuracy on the true labels, before and after, with
standard errors over the digits (`keras_gen.evaluation.restoration`), and
draws one digit of each class through every stage.

    python benchmarks/ebm_restoration.py                     # the zoo's ebm_mnist
    python benchmarks/ebm_restoration.py --model runs/ebm_mnist/model.keras
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np

from keras_gen import data, evaluation, zoo
from keras_gen.benchmarking.report import BenchmarksFile
from keras_gen.cli import positive_int
from keras_gen.evaluation import restoration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = BenchmarksFile(os.path.join(ROOT, "BENCHMARKS.md"))
FIGURE = os.path.join("benchmarks", "figures", "ebm_restoration.png")


def load(model_arg):
    if model_arg.endswith(".keras"):
        import keras_gen.models  # noqa: F401  (registers the families for deserialisation)

        return keras.saving.load_model(model_arg), f"`{model_arg}`"
    return zoo.load(model_arg), f"zoo entry `{model_arg}`"


def figure(model, x_unit, labels, steps, path, seed=0):
    """Per task: the clean digit, its corruption, and its restoration after each chain length."""
    import matplotlib.pyplot as plt

    picks = np.array([np.flatnonzero(labels == d)[0] for d in range(10)])
    x = x_unit[picks]
    tasks = restoration.corrupt(x, seed)
    rows = 2 + len(steps)
    fig, axes = plt.subplots(rows, 3, figsize=(3 * 4.2, rows * 0.62 + 0.6), layout="constrained")
    for col, (task, (corrupted, known)) in enumerate(tasks.items()):
        stages = [("clean", x), ("corrupted", corrupted)]
        stages += [(f"{k} steps", restoration.restore(model, corrupted, known, seed=seed, steps=k)) for k in steps]
        for row, (name, images) in enumerate(stages):
            ax = axes[row, col]
            ax.imshow(np.concatenate(list(images[..., 0]), axis=1), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        axes[0, col].set_title(task, fontsize=10)
    fig.suptitle("Restoring test digits with the energy: Langevin from the corrupted digit, known pixels clamped")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ebm_mnist", help="a zoo name or a .keras file of an EnergyModel")
    parser.add_argument("--n", type=positive_int, default=1000, help="test digits restored per task")
    parser.add_argument("--steps", type=positive_int, nargs="+", default=[20, 60, 256], help="chain lengths")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model, described = load(args.model)
    if not hasattr(model, "inpaint"):
        raise SystemExit(f"{args.model}: a {type(model).__name__} cannot restore images (it has no energy).")
    classifier = evaluation.load_classifier()
    x, labels = data.load_arrays("mnist", "test", preprocessing="unit")
    start = time.perf_counter()
    rows = restoration.restoration_table(
        model, x[: args.n], labels[: args.n], classifier, steps=args.steps, seed=args.seed
    )
    seconds = time.perf_counter() - start
    figure(model, x, labels, args.steps, os.path.join(ROOT, FIGURE), seed=args.seed)
    for row in rows:
        print(row, flush=True)
    lines = [
        BENCHMARKS.header("What an energy is good for: denoising and inpainting digits"),
        f"- model: {described}; chains of the model's sampler (step {model.step_size:g}, noise "
        f"{model.noise_scale}, gradients clipped to {model.gradient_clip}); missing pixels start from uniform "
        "noise and the known ones stay clamped",
        f"- {args.n} MNIST test digits per task; MSE over the corrupted pixels (all of them for noise; missing "
        "pixels enter as background 0), in [0, 1] intensities; accuracy: the domain classifier's on the true "
        f"labels; ± standard errors over the digits; {seconds:.0f} s for the table",
        f"- figure: `{FIGURE}` (one digit of each class through every stage)",
        "",
        "| task | Langevin steps | MSE | classifier accuracy |",
        "|---|---|---|---|",
    ]
    for r in rows:
        stage = r["steps"] if r["steps"] is not None else "—" if r["task"] == "clean digits" else "— (as corrupted)"
        lines.append(
            f"| {r['task']} | {stage} | {r['mse']:.4f} ± {r['mse_se']:.4f} | "
            f"{r['accuracy']:.3f} ± {r['accuracy_se']:.3f} |"
        )
    BENCHMARKS.write_section("ebm_restoration", "\n".join(lines))


if __name__ == "__main__":
    main()
