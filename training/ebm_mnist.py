"""Recipe: the `ebm_mnist` zoo entry, an energy-based model of MNIST digits.

A small CNN energy (strided Swish convolutions 16-32-64-64, a dense layer of
64, one output; no normalisation, so an image's energy does not depend on
its batch) trained by contrastive divergence with Langevin negatives, with
the defaults of `EnergyModel` (the UvA deep-learning tutorial's settings
after Du & Mordatch 2019): 60 steps of size 10 with noise 0.005 and pixel
gradients clipped to 0.03, a replay buffer of 8,192 with 5% fresh uniform
noise per step, alpha = 0.1, Adam 1e-4 with beta_1 = 0 and a 0.97 decay per
epoch, batch 128, images in [-1, 1]. An `EnergyDivergenceGuard` stops the
run (restoring the last healthy epoch) if the energies run away.

Training is long on a CPU: run it in the background; it checkpoints every
epoch and the same command resumes it (the buffer is part of the
checkpoint). `--finalize` compares Langevin chains from noise of 256 to
2,000 steps on samples of one seed, judges the best length on another
seed with the evaluation table (FD, classifier score, precision/recall
against the MNIST test set) and publishes the entry.

    python training/ebm_mnist.py --epochs 30 --train-only        # train or resume
    python training/ebm_mnist.py --finalize runs/ebm_mnist/model.keras

The run outlives a machine: `--save-state saved_models/training_state/ebm_mnist`
copies its newest verified state (weights, optimizer, replay buffer, seeds, the
epoch and so the data order) into the checkout, where it is committed; a
later session continues it exactly with

    python training/ebm_mnist.py --epochs 30 --train-only --resume-from saved_models/training_state/ebm_mnist

The finalize step draws for hours; `--sample-cache DIR` keeps its samples as they
are drawn, so a stopped finalize (or DIR carried to another machine) resumes:

    python training/ebm_mnist.py --finalize runs/ebm_mnist/model.keras \\
        --sample-cache saved_models/training_state/ebm_mnist/finalize_samples
"""

from __future__ import annotations

import os
import time

import keras
import numpy as np

from keras_gen import data, evaluation
from keras_gen.callbacks import EnergyDivergenceGuard
from keras_gen.cli import positive_int
from keras_gen.models.ebm import make_ebm
from keras_gen.runs import fit_with_artifacts
from keras_gen.zoo import publish as zoo_publish
from keras_gen.zoo.publish import add_sample_cache_argument, publish, recipe_main, run_history, sample_cache

NAME = "ebm_mnist"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHITECTURE = {
    "factory": "ebm",
    "kwargs": {
        "architecture": "conv",
        "data_shape": [28, 28, 1],
        "buffer_size": 8192,
        "fresh_fraction": 0.05,
        "langevin_steps": 60,
        "step_size": 10.0,
        "noise_scale": 0.005,
        "gradient_clip": 0.03,
        "regularization": 0.1,
        "sample_steps": 256,
        "network_kwargs": {"widths": [16, 32, 64, 64], "hidden": 64},
        "name": NAME,
    },
}
BATCH_SIZE = 128
EPOCHS = 30
LEARNING_RATE = 1e-4
SAMPLE_KWARGS = {"steps": 256}  # the per-epoch grids during training
# Langevin chains from noise of these lengths are compared on samples of one
# seed; the headline row is measured with the best on another.
CHAIN_LENGTHS = (256, 500, 1000, 1500, 2000)


def train(args):
    keras.utils.set_random_seed(args.seed)
    model = make_ebm(**ARCHITECTURE["kwargs"], seed=args.seed)
    steps = 60_000 // BATCH_SIZE
    schedule = keras.optimizers.schedules.ExponentialDecay(LEARNING_RATE, steps, 0.97, staircase=True)
    model.compile(optimizer=keras.optimizers.Adam(schedule, beta_1=0.0))
    train_ds = data.load_epochs(
        "mnist", "train", preprocessing="symmetric", batch_size=BATCH_SIZE, seed=args.seed, drop_remainder=True
    )
    fit_with_artifacts(
        model,
        train_ds,
        args.out,
        epochs=args.epochs,
        n_samples=64,
        sample_kwargs=SAMPLE_KWARGS,
        callbacks=[EnergyDivergenceGuard()],
        verbose=2,
        tensorboard=args.tensorboard,
    )
    return os.path.join(args.out, "model.keras")


CHAIN_STEPS = (0, 8, 16, 32, 64, 128, 256)


def chain_figure(model, path, n_chains=8, seed=7):
    """Langevin chains from uniform noise to digits: row = chain, column = step.
    `sample(n, seed, steps=k)` is the state of the same chains after k steps (each
    step's noise depends on the step's index only), so the columns are one trajectory."""
    import matplotlib.pyplot as plt

    snapshots = [model.sample(n_chains, seed=seed, steps=k) for k in CHAIN_STEPS]
    fig, axes = plt.subplots(
        n_chains, len(CHAIN_STEPS), figsize=(1.2 * len(CHAIN_STEPS), 1.2 * n_chains), layout="constrained"
    )
    for c, k in enumerate(CHAIN_STEPS):
        for r in range(n_chains):
            ax = axes[r, c]
            ax.imshow(snapshots[c][r, :, :, 0], cmap="gray_r", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, c].set_title(f"step {k}", fontsize=9)
    fig.suptitle(f"{NAME}: Langevin chains from uniform noise (step 10, noise 0.005)", fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def energy_histogram(model, samples, steps, path, n=2000):
    """E(test digits), E(samples) and E(uniform noise): where the model puts its mass.
    Noise sits far above the digits, so the right panel zooms in on digits and samples."""
    import matplotlib.pyplot as plt

    x_test, _ = data.load_arrays("mnist", "test", preprocessing="symmetric")
    noise = model.uniform_noise((n, 28, 28, 1), np.array([3, 0])).numpy()
    energies = {
        "MNIST test digits": model.energy(x_test[:n]).numpy(),
        f"samples ({steps} steps)": model.energy(samples[:n]).numpy(),
        "uniform noise": model.energy(noise).numpy(),
    }
    fig, (full, zoom) = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
    for ax, shown in ((full, list(energies)), (zoom, list(energies)[:2])):
        values = np.concatenate([energies[label] for label in shown])
        bins = np.linspace(values.min(), values.max(), 80)
        for label in shown:
            e = energies[label]
            ax.hist(e, bins=bins, alpha=0.6, label=f"{label} (mean {e.mean():.3f})")
        ax.set_xlabel("energy E(x)")
        ax.set_ylabel("images")
        ax.legend(fontsize=8)
    full.set_title("all three")
    zoom.set_title("digits and samples only")
    fig.suptitle(f"{NAME}: energies of data, samples and noise ({n:,} each)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return {label: round(float(e.mean()), 4) for label, e in energies.items()}


def finalize(model_path, args):
    model = keras.saving.load_model(model_path)
    t0 = time.time()
    classifier = evaluation.load_classifier()
    cache = sample_cache(args, model)  # hours of Langevin chains: resumable with --sample-cache
    settings = {str(k): {"steps": k} for k in CHAIN_LENGTHS}
    by_length = evaluation.quality_sweep(
        model, settings, args.sweep_samples, classifier, seed=args.seed + 1, cache=cache
    )
    judged_with = settings[by_length["best"]]
    row = evaluation.evaluate(
        model, n_samples=args.samples, seed=args.seed, sample_kwargs=judged_with, classifier=classifier, cache=cache
    )
    eval_seconds = time.time() - t0
    figures = os.path.join(args.root, "zoo", "figures")
    os.makedirs(figures, exist_ok=True)
    chain_figure(model, os.path.join(figures, f"{NAME}_chains.png"))
    # The headline's first 2,000 samples: read back from the cache, not drawn again.
    samples, _ = evaluation.generate(model, 2000, seed=args.seed, cache=cache, **judged_with)
    from keras_gen import plots

    title = f"{NAME}: 100 samples ({judged_with['steps']} Langevin steps)"
    plots.save_samples(samples[:100], os.path.join(figures, f"{NAME}_samples.png"), title=title)
    mean_energies = energy_histogram(
        model, samples, judged_with["steps"], os.path.join(figures, f"{NAME}_energies.png")
    )
    kinds = ["samples", "chains", "energies"]
    caption = "64 samples after each epoch (256 Langevin steps from noise)"
    kinds += zoo_publish.epoch_figure(args.out, figures, NAME, caption)
    history, epochs, train_seconds = run_history(args.out)
    card = publish(
        model,
        args.root,
        NAME,
        family="ebm",
        description="Energy-based model (CNN energy, Swish) on MNIST in [-1, 1], trained with Langevin negatives "
        f"from a replay buffer. model.sample(n, seed, steps={judged_with['steps']}): chains from uniform noise.",
        architecture=ARCHITECTURE,
        dataset={"name": "mnist", "split": "train", "preprocessing": "symmetric"},
        compile={"optimizer": keras.optimizers.Adam(LEARNING_RATE, beta_1=0.0)},
        sample_kwargs=judged_with,
        command=f"python training/{NAME}.py --epochs {epochs or args.epochs}",
        metrics={
            "sample_quality": {k: v for k, v in row.items() if isinstance(v, (int, float, str, bool))},
            "fd_by_chain_length": by_length,
            "mean_energies": mean_energies,
        },
        training={
            "epochs": epochs,
            "batch_size": BATCH_SIZE,
            "optimizer": f"Adam {LEARNING_RATE} (beta_1 0), x0.97 per epoch",
            "final_loss": None if not history.get("loss") else round(float(history["loss"][-1]), 5),
            "seconds": None if train_seconds is None else round(train_seconds),
            "evaluation_seconds": round(eval_seconds),
        },
        figures=[f"zoo/figures/{NAME}_{kind}.png" for kind in kinds],
    )
    print(card.metrics)
    return card


def add_arguments(parser):
    parser.add_argument("--samples", type=positive_int, default=10_000, help="samples judged by the evaluation table")
    parser.add_argument("--sweep-samples", type=positive_int, default=2000, help="samples per chain length compared")
    add_sample_cache_argument(parser)


def main(argv=None):
    recipe_main(__doc__, NAME, EPOCHS, ROOT, train, finalize, argv, add_arguments=add_arguments)


if __name__ == "__main__":
    main()
