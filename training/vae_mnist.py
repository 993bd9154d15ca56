"""Recipe: the `vae_mnist` zoo entry.

A convolutional VAE (latent 32) on dynamically binarized MNIST. Trains with
`fit` (resumable: run the same command again after an interruption), then
evaluates the test-set ELBO and the importance-weighted NLL bound (k = 1000)
on a fixed binarization of the test set, and publishes the entry
(`keras_gen.zoo.publish`: weights in `saved_models/`, card `zoo/vae_mnist.json`).

    TFDS_DATA_DIR=../shared/tensorflow_datasets python training/vae_mnist.py --epochs 100
    # finish from a checkpoint of an interrupted or shortened run:
    python training/vae_mnist.py --finalize runs/vae_mnist/checkpoints/epoch_040.keras
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np

from keras_gen import data, plots
from keras_gen.cli import positive_float, positive_int
from keras_gen.models.vae import make_vae
from keras_gen.runs import fit_with_artifacts
from keras_gen.zoo.publish import publish, run_history

NAME = "vae_mnist"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHITECTURE = {
    "factory": "vae",
    "kwargs": {
        "architecture": "conv",
        "input_shape": [28, 28, 1],
        "latent_dim": 32,
        "likelihood": "bernoulli",
        "encoder_kwargs": {"filters": [32, 64], "hidden": [512]},
        "decoder_kwargs": {"filters": [64, 32], "hidden": [512]},
        "name": NAME,
    },
}
BATCH_SIZE = 128
STEPS_PER_EPOCH = 60_000 // BATCH_SIZE + 1


def optimizer():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=10 * STEPS_PER_EPOCH, decay_rate=0.8)
    return keras.optimizers.Adam(learning_rate=schedule)


def train(args):
    keras.utils.set_random_seed(args.seed)
    model = make_vae(**ARCHITECTURE["kwargs"], seed=args.seed)
    model.compile(optimizer=optimizer())
    train_ds = data.load_epochs("mnist", "train", preprocessing="binarized", batch_size=BATCH_SIZE, seed=args.seed)
    test_ds = data.load("mnist", "test", preprocessing="binarized_static", batch_size=500, shuffle=False)
    fit_with_artifacts(model, train_ds, args.out, epochs=args.epochs, validation_data=test_ds, verbose=2)
    return os.path.join(args.out, "model.keras")


def finalize(model_path, args, train_seconds=None):
    model = keras.saving.load_model(model_path)
    x_test, labels = data.load_arrays("mnist", "test", preprocessing="binarized", seed=0)
    t0 = time.time()
    elbo = model.importance_weighted_log_likelihood(x_test, k=1, seed=1)
    # k importance samples cost k decoder passes per image: k = 1000 over all
    # 10,000 test images is ~10^7 conv-decoder passes, hours on a 2-core CPU.
    # The bound is therefore taken on the first `--iwae-images` test images
    # (a fixed subset), with its standard error, and the ELBO on both the
    # subset and the whole set shows how representative the subset is.
    subset = slice(0, args.iwae_images)
    iwae = model.importance_weighted_log_likelihood(x_test[subset], k=args.k, batch_size=50, chunk=100, seed=2)
    eval_seconds = time.time() - t0
    history, epochs, recorded_seconds = run_history(args.out)
    train_seconds = recorded_seconds if train_seconds is None else train_seconds

    figures = os.path.join(args.root, "zoo", "figures")
    os.makedirs(figures, exist_ok=True)
    plots.save_samples(
        model.sample(100, seed=0),
        os.path.join(figures, f"{NAME}_samples.png"),
        title="vae_mnist: means of p(x|z), z ~ N(0, I)",
    )
    plots.plot_latent_clusters(model, x_test[:5000], labels[:5000], os.path.join(figures, f"{NAME}_latent.png"))
    figure_paths = [f"zoo/figures/{NAME}_samples.png", f"zoo/figures/{NAME}_latent.png"]
    if history:
        plots.plot_history(history, os.path.join(figures, f"{NAME}_loss.png"), title=NAME)
        figure_paths.append(f"zoo/figures/{NAME}_loss.png")

    sem = lambda v: float(np.std(v, ddof=1) / np.sqrt(len(v)))  # noqa: E731
    card = publish(
        model,
        args.root,
        NAME,
        family="vae",
        description="Convolutional VAE, latent 32, Bernoulli decoder, on binarized MNIST.",
        architecture=ARCHITECTURE,
        dataset={
            "name": "mnist",
            "preprocessing": "binarized",
            "split": "train",
            "note": "dynamic binarization during training",
        },
        compile={"optimizer": keras.optimizers.Adam(1e-4)},
        command=f"python training/{NAME}.py --epochs {epochs or args.epochs}",
        metrics={
            "test_nll_iwae_nats": round(-float(iwae.mean()), 3),
            "test_nll_iwae_sem": round(sem(iwae), 3),
            "test_nll_iwae_k": args.k,
            "test_nll_iwae_images": len(iwae),
            "test_negative_elbo_nats": round(-float(elbo.mean()), 3),
            "test_negative_elbo_sem": round(sem(elbo), 3),
            "test_negative_elbo_on_iwae_images": round(-float(elbo[subset].mean()), 3),
            "test_set": "MNIST test (10,000), binarized once with seed 0 (keras_gen.data.load_arrays); "
            "the IWAE bound on its first test_nll_iwae_images images",
            "units": "nats per image",
        },
        training={
            "epochs": epochs,
            "batch_size": BATCH_SIZE,
            "optimizer": "Adam 1e-3, exponential decay x0.8 every 10 epochs",
            "seconds": None if train_seconds is None else round(train_seconds),
            "seconds_note": "wall time of fit, summed over resumed runs; the CPU was shared with other jobs",
            "evaluation_seconds": round(eval_seconds),
        },
        figures=figure_paths,
    )
    print(card.metrics)
    return card


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=positive_int, default=100)
    parser.add_argument("--out", default="runs/vae_mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=ROOT, help="where zoo/ and saved_models/ are (default: this checkout)")
    parser.add_argument("--k", type=positive_int, default=1000, help="importance samples for the NLL bound")
    parser.add_argument(
        "--finalize", metavar="MODEL.keras", help="skip training; evaluate this model and write the card"
    )
    parser.add_argument("--iwae-images", type=positive_int, default=1000, help="test images for the IWAE bound")
    parser.add_argument(
        "--train-seconds", type=positive_float, default=None, help="with --finalize: the training time to record"
    )
    args = parser.parse_args(argv)
    if args.finalize:
        finalize(args.finalize, args, args.train_seconds)
    else:
        path = train(args)
        finalize(path, args, args.train_seconds)


if __name__ == "__main__":
    main()
