"""Recipe: the `ddpm_mnist` zoo entry, a class-conditional diffusion model of MNIST.

A compact UNet (widths 32, 64, 128, two residual blocks per level, group norm,
self-attention at 7 x 7, 2.8 M parameters) predicts the velocity v over a
cosine schedule of 1,000 steps; labels are dropped 10% of the time so one
network also denoises unconditionally (classifier-free guidance). Adam 2e-4,
batch 128, an EMA of the weights (momentum 0.9995) samples. Images in [-1, 1].

Training is long on a CPU (about 10-15 minutes an epoch on 2 cores): run it in
the background; it checkpoints every epoch and the same command resumes it.
`--finalize` judges the EMA weights with the evaluation table (FD, classifier
score, precision/recall against the MNIST test set) and publishes the entry.

    python training/ddpm_mnist.py --epochs 40                    # train or resume
    python training/ddpm_mnist.py --finalize runs/ddpm_mnist/model.keras
"""

from __future__ import annotations

import argparse
import os
import time

import keras

from keras_gen import data, evaluation
from keras_gen.models.diffusion import make_diffusion
from keras_gen.runs import fit_with_artifacts
from keras_gen.zoo.publish import publish, run_history

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
        "network_kwargs": {"widths": [32, 64, 128], "block_depth": 2, "attention": True},
        "name": NAME,
    },
}
BATCH_SIZE = 128
EPOCHS = 40
LEARNING_RATE = 2e-4
SAMPLE_KWARGS = {"steps": 50, "eta": 0.0}


def train(args):
    keras.utils.set_random_seed(args.seed)
    model = make_diffusion(**ARCHITECTURE["kwargs"], seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    train_ds = data.load(
        "mnist",
        "train",
        preprocessing="symmetric",
        batch_size=BATCH_SIZE,
        seed=args.seed,
        with_labels=True,
        drop_remainder=True,
    )
    fit_with_artifacts(
        model, train_ds, args.out, epochs=args.epochs, n_samples=64, sample_kwargs=SAMPLE_KWARGS, verbose=2
    )
    return os.path.join(args.out, "model.keras")


def finalize(model_path, args):
    model = keras.saving.load_model(model_path)
    t0 = time.time()
    row = evaluation.evaluate(model, n_samples=args.samples, **SAMPLE_KWARGS)
    eval_seconds = time.time() - t0
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
        sample_kwargs=SAMPLE_KWARGS,
        command=f"python training/{NAME}.py --epochs {epochs or args.epochs}",
        metrics={"sample_quality": {k: v for k, v in row.items() if isinstance(v, (int, float, str, bool))}},
        training={
            "epochs": epochs,
            "batch_size": BATCH_SIZE,
            "optimizer": f"Adam {LEARNING_RATE}",
            "seconds": None if train_seconds is None else round(train_seconds),
            "evaluation_seconds": round(eval_seconds),
        },
    )
    print(card.metrics)
    return card


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--out", default=f"runs/{NAME}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=10_000, help="samples judged by the evaluation table")
    parser.add_argument("--root", default=ROOT, help="where zoo/ and saved_models/ are (default: this checkout)")
    parser.add_argument("--train-only", action="store_true", help="train (or resume) without finalizing")
    parser.add_argument("--finalize", metavar="MODEL.keras", help="skip training; evaluate this model, write the card")
    args = parser.parse_args(argv)
    path = args.finalize or train(args)
    if not args.train_only:
        finalize(path, args)


if __name__ == "__main__":
    main()
