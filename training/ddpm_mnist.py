"""Recipe: the `ddpm_mnist` zoo entry, a class-conditional diffusion model of MNIST.

A compact UNet (widths 32, 64, 128, two residual blocks per level, group norm,
self-attention at 7 x 7, 2.8 M parameters, computing in bfloat16 with float32
weights) predicts the velocity v over a cosine schedule of 1,000 steps; labels
are dropped 10% of the time so one network also denoises unconditionally
(classifier-free guidance). Adam 2e-4, batch 128, an EMA of the weights
(momentum 0.9995) samples. Images in [-1, 1].

bfloat16 gives 1.22x the float32 training throughput on a CPU with bfloat16
instructions, but a CPU without them emulates it and a step takes 10x as long
as in float32: there training computes in float32 (`--dtype-policy auto`), much
more slowly than on the bfloat16 machine (epoch 11: 5,681 s, 10.5 images/s, on a
2-core AMD EPYC with AVX2 beside other jobs), so continue the run on a machine
whose `lscpu` lists avx512_bf16 or amx_bf16 where you can.

Training is long on a CPU (20-28 minutes an epoch on 2 cores shared with other
jobs; about 11 alone, at the benchmark's 94 images/s): run it in
the background; it checkpoints every epoch and the same command resumes it.
`--finalize` judges the EMA weights with the evaluation table (FD, classifier
score, precision/recall against the MNIST test set) and publishes the entry.

    python training/ddpm_mnist.py --epochs 40                    # train or resume
    python training/ddpm_mnist.py --finalize runs/ddpm_mnist/model.keras

The run outlives a machine: `--save-state saved_models/training_state/ddpm_mnist`
copies its newest verified state (weights, optimizer, EMA, seeds, the
epoch and so the data order) into the checkout, where it is committed; a
later session continues it exactly with

    python training/ddpm_mnist.py --epochs 40 --train-only --resume-from saved_models/training_state/ddpm_mnist

The finalize step draws for hours; `--sample-cache DIR` keeps its samples as they
are drawn, so a stopped finalize (or DIR carried to another machine) resumes:

    python training/ddpm_mnist.py --finalize runs/ddpm_mnist/model.keras \\
        --sample-cache saved_models/training_state/ddpm_mnist/finalize_samples
"""

from __future__ import annotations

import json
import os
import time

import keras
import numpy as np

from keras_gen import data, evaluation
from keras_gen.cli import positive_int
from keras_gen.core.hardware import bfloat16_is_emulated
from keras_gen.models.diffusion import make_diffusion
from keras_gen.runs import fit_with_artifacts
from keras_gen.zoo import publish as zoo_publish
from keras_gen.zoo.publish import add_sample_cache_argument, publish, recipe_main, run_history, sample_cache

NAME = "ddpm_mnist"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHITECTURE = {
    "factory": "diffusion",
    "kwargs": {
        "architecture": "unet",
        "data_shape": [28, 28, 1],
        "schedule": "cosine",
        "steps": 1000,
        "prediction": "v",
        "ema_momentum": 0.9995,
        "num_classes": 10,
        "label_dropout": 0.1,
        "network_kwargs": {
            "widths": [32, 64, 128],
            "block_depth": 2,
            "attention": True,
            "dtype_policy": "mixed_bfloat16",
        },
        "name": NAME,
    },
}
BATCH_SIZE = 128
EPOCHS = 40
LEARNING_RATE = 2e-4
# The sampler (DDIM, 50 steps) and how the model is judged: as the
# class-conditional model it is, classes drawn uniformly, with the guidance
# weight that gave the lowest FD in a sweep on samples of another seed.
SAMPLER = {"steps": 50, "eta": 0.0}
SAMPLE_KWARGS = {**SAMPLER, "label": "random", "guidance": 1.0}  # per-epoch grids and the default


def training_architecture(dtype_policy="auto"):
    """ARCHITECTURE's kwargs computing in `dtype_policy`: "auto" keeps mixed
    bfloat16 where the CPU has bfloat16 instructions and takes float32 where it
    would emulate them (10x slower). The weights are float32 either way, so a
    run continues across machines of both kinds from the same state."""
    kwargs = ARCHITECTURE["kwargs"]
    if dtype_policy == "auto":
        dtype_policy = "float32" if bfloat16_is_emulated() else kwargs["network_kwargs"]["dtype_policy"]
    return {**kwargs, "network_kwargs": {**kwargs["network_kwargs"], "dtype_policy": dtype_policy}}


def train(args):
    keras.utils.set_random_seed(args.seed)
    kwargs = training_architecture(args.dtype_policy)
    print(f"{NAME}: computing in {kwargs['network_kwargs']['dtype_policy']}")
    model = make_diffusion(**kwargs, seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    train_ds = data.load_epochs(
        "mnist",
        "train",
        preprocessing="symmetric",
        batch_size=BATCH_SIZE,
        seed=args.seed,
        with_labels=True,
        drop_remainder=True,
    )
    fit_with_artifacts(
        model,
        train_ds,
        args.out,
        epochs=args.epochs,
        n_samples=64,
        sample_kwargs=SAMPLE_KWARGS,
        verbose=2,
        tensorboard=args.tensorboard,
    )
    return os.path.join(args.out, "model.keras")


STEPS_COMPARED = (10, 20, 50, 100, 1000)
GUIDANCE_SWEEP = (0.0, 0.5, 1.0, 2.0, 4.0)
CLASS_SAMPLES = 200  # conditional samples per class whose labels the classifier checks


def guidance_table(model, n_samples, classifier, seed=1, cache=None):
    """The unconditional (null-label) denoiser and each guidance weight with random
    classes; `best` is the weight of lowest FD, the one the headline row uses."""
    settings = {"unconditional": SAMPLER}
    settings.update({f"{w:g}": {**SAMPLER, "label": "random", "guidance": w} for w in GUIDANCE_SWEEP})
    table = evaluation.quality_sweep(model, settings, n_samples, classifier, seed=seed, cache=cache)
    weighted = {k: v for k, v in table["rows"].items() if k != "unconditional"}
    table["best"] = float(min(weighted, key=lambda k: weighted[k]["fd"]))
    return {**table, "sampler": "DDIM (eta 0), 50 steps"}


def steps_table(model, n_samples, classifier, guidance, seed=0, cache=None):
    """FD, score and precision/recall against the number of DDIM steps, same n for each."""
    settings = {str(k): {"steps": k, "eta": 0.0, "label": "random", "guidance": guidance} for k in STEPS_COMPARED}
    table = evaluation.quality_sweep(model, settings, n_samples, classifier, seed=seed, cache=cache)
    return {**table, "sampler": f"DDIM (eta 0), random classes, guidance {guidance:g}"}


def guidance_figure(model, path, seed=3):
    """Rows: the digits 0-9; columns: guidance weights; the same starting noise in every column."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(10, len(GUIDANCE_SWEEP), figsize=(1.3 * len(GUIDANCE_SWEEP), 13), layout="constrained")
    x_T = np.random.default_rng(seed).standard_normal((10, 28, 28, 1)).astype("float32")
    for c, w in enumerate(GUIDANCE_SWEEP):
        for label in range(10):
            image = model.sample(1, seed=seed, label=label, guidance=w, x_T=x_T[label : label + 1], **SAMPLER)
            axes[label, c].imshow(image[0, :, :, 0], cmap="gray_r", vmin=-1, vmax=1)
            axes[label, c].set_xticks([])
            axes[label, c].set_yticks([])
        axes[0, c].set_title(f"w = {w:g}", fontsize=9)
    fig.suptitle(f"{NAME}: classifier-free guidance, one starting noise per row", fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def trajectory_figure(model, path, seed=5, n=6, snapshots=(50, 40, 30, 20, 10, 5, 0)):
    """DDIM from noise to digits: the state with k of 50 steps left, for k in `snapshots`
    (`stop_after`: the same deterministic run stopped early, so each column continues
    the one before)."""
    import matplotlib.pyplot as plt

    x_T = np.random.default_rng(seed).standard_normal((n, 28, 28, 1)).astype("float32")
    states = [(k, model.sample(n, seed=seed, steps=50, eta=0.0, x_T=x_T, stop_after=50 - k)) for k in snapshots]
    fig, axes = plt.subplots(n, len(states), figsize=(1.3 * len(states), 1.3 * n), layout="constrained")
    for c, (remaining, x) in enumerate(states):
        for r in range(n):
            axes[r, c].imshow(np.clip(x[r, :, :, 0], -1, 1), cmap="gray_r", vmin=-1, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[0, c].set_title(f"{remaining} left", fontsize=9)
    fig.suptitle(f"{NAME}: a DDIM trajectory (50 steps) from noise", fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def progress_record(path):
    """{"quality_by_training_epoch": the record of judged epochs} (see
    benchmarks/training_progress.py), or nothing if there is no record."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {"quality_by_training_epoch": json.load(f)}


def finalize(model_path, args):
    model = keras.saving.load_model(model_path)
    t0 = time.time()
    classifier = evaluation.load_classifier()
    cache = sample_cache(args, model)  # hours of sampling: resumable with --sample-cache
    # The weight is chosen on samples of seed 1, the headline measured on seed 0.
    by_guidance = guidance_table(model, args.steps_samples, classifier, seed=args.seed + 1, cache=cache)
    judged_with = {**SAMPLER, "label": "random", "guidance": by_guidance["best"]}
    row = evaluation.evaluate(
        model, n_samples=args.samples, sample_kwargs=judged_with, classifier=classifier, cache=cache
    )
    by_steps = steps_table(model, args.steps_samples, classifier, by_guidance["best"], seed=args.seed, cache=cache)
    by_class = {
        f"guidance_{w:g}": evaluation.conditional_accuracy(
            model, classifier, n_per_class=CLASS_SAMPLES, guidance=w, cache=cache, **SAMPLER
        )
        for w in sorted({0.0, by_guidance["best"]})
    }
    eval_seconds = time.time() - t0
    figures = os.path.join(args.root, "zoo", "figures")
    os.makedirs(figures, exist_ok=True)
    guidance_figure(model, os.path.join(figures, f"{NAME}_guidance.png"))
    trajectory_figure(model, os.path.join(figures, f"{NAME}_trajectory.png"))
    from keras_gen import plots

    samples = model.sample(100, seed=args.seed, **judged_with)
    title = f"{NAME}: 100 samples (DDIM 50, random classes, guidance {by_guidance['best']:g})"
    plots.save_samples(samples, os.path.join(figures, f"{NAME}_samples.png"), title=title)
    kinds = ["samples", "guidance", "trajectory"]
    kinds += zoo_publish.epoch_figure(args.out, figures, NAME, "64 samples after each epoch (DDIM 50, guidance 1)")
    history, epochs, train_seconds = run_history(args.out)
    card = publish(
        model,
        args.root,
        NAME,
        family="diffusion",
        description="Class-conditional denoising diffusion (UNet, v-prediction, cosine schedule, EMA) on MNIST "
        "in [-1, 1]. model.sample(n, seed, steps=50, eta=0.0, label=7, guidance=1.0).",
        architecture=ARCHITECTURE,
        dataset={"name": "mnist", "split": "train", "preprocessing": "symmetric", "labels": True},
        compile={"optimizer": keras.optimizers.Adam(LEARNING_RATE)},
        sample_kwargs=judged_with,
        command=f"python training/{NAME}.py --epochs {epochs or args.epochs}",
        metrics={
            "sample_quality": {k: v for k, v in row.items() if isinstance(v, (int, float, str, bool))},
            "fd_by_guidance": by_guidance,
            "fd_by_sampling_steps": by_steps,
            "conditional_class_accuracy": by_class,
            **progress_record(
                args.progress_record or os.path.join(args.root, "saved_models", "training_state", NAME, "progress.json")
            ),
        },
        training={
            "epochs": epochs,
            "batch_size": BATCH_SIZE,
            "optimizer": f"Adam {LEARNING_RATE}",
            "seconds": None if train_seconds is None else round(train_seconds),
            "evaluation_seconds": round(eval_seconds),
        },
        figures=[f"zoo/figures/{NAME}_{kind}.png" for kind in kinds],
    )
    print(card.metrics)
    return card


def add_arguments(parser):
    parser.add_argument("--samples", type=positive_int, default=10_000, help="samples judged by the evaluation table")
    parser.add_argument(
        "--steps-samples", type=positive_int, default=2000, help="samples per row of the guidance and steps tables"
    )
    add_sample_cache_argument(parser)
    parser.add_argument(
        "--dtype-policy",
        choices=("auto", "mixed_bfloat16", "float32"),
        default="auto",
        help="what training computes in (auto: mixed_bfloat16 on a CPU with bfloat16 instructions, else float32)",
    )
    parser.add_argument(
        "--progress-record",
        help="the judged epochs of benchmarks/training_progress.py --record, put on the card "
        f"(default: ROOT/saved_models/training_state/{NAME}/progress.json, if it exists)",
    )


def main(argv=None):
    recipe_main(__doc__, NAME, EPOCHS, ROOT, train, finalize, argv, add_arguments=add_arguments)


if __name__ == "__main__":
    main()
