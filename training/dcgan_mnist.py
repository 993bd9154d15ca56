"""Recipe: the `dcgan_mnist` zoo entry (and the shared GAN recipe steps).

The DCGAN of the TensorFlow tutorial (latent 100, Dense -> 7x7x256,
transposed convolutions 128/64/1 with batch normalization; a two-layer conv
discriminator with dropout 0.3) on MNIST scaled to [-1, 1], with the
tutorial's training step (simultaneous updates, non-saturating loss) run by
`fit`, and the DCGAN paper's optimizer (Adam 2e-4, beta1 0.5, batch 64).
The model samples from a moving average of the generator's weights
(momentum 0.999: about one epoch). Resumable: run the same command again
after an interruption. Then `finalize` saves the weights to `saved_models/`, the figures to
`zoo/figures/` (samples, the two-panel losses and D(x)/D(G(z)) by
iteration, latent interpolation and exploration) and the card
`zoo/dcgan_mnist.json`.

    TFDS_DATA_DIR=../shared/tensorflow_datasets python training/dcgan_mnist.py --epochs 50
    # finish from a checkpoint of an interrupted or shortened run:
    python training/dcgan_mnist.py --finalize runs/dcgan_mnist/checkpoints/epoch_008.keras

The zoo's weights were trained in two stages: 10 epochs without the average
(its record is kept on the card), then more from those weights with the
average and fresh optimizers:

    python training/dcgan_mnist.py --epochs 40 --continue-from dcgan_mnist --out runs/dcgan_mnist_average
    python training/dcgan_mnist.py --out runs/dcgan_mnist_average \
        --finalize runs/dcgan_mnist_average/checkpoints/epoch_NNN.keras
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import keras
import numpy as np

from keras_gen import data, gan, plots, zoo
from keras_gen.recipes import machine_description, now_iso, write_card
from keras_gen.trainer import fit_with_artifacts, read_history, save_zoo_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = {
    "name": "dcgan_mnist",
    "description": "DCGAN of the TensorFlow tutorial (latent 100) on MNIST in [-1, 1], non-saturating loss.",
    "architecture": {
        "builder": "keras_gen.gan.make_gan",
        "kwargs": {"architecture": "dcgan", "data_shape": [28, 28, 1], "latent_dim": 100,
                   "noise": "normal", "generator_average": 0.999, "name": "dcgan_mnist"},
    },
    "compile": lambda: {**gan.dcgan_compile_kwargs(),
                        "d_optimizer": keras.optimizers.Adam(2e-4, beta_1=0.5),
                        "g_optimizer": keras.optimizers.Adam(2e-4, beta_1=0.5)},
    "batch_size": 64,
    "training_note": "Adam 2e-4, beta1 0.5 (both players; Radford et al. 2016), batch 64, simultaneous "
                     "updates (the tutorial's step). The tutorial's Adam 1e-4 at batch 256 makes 4x fewer, "
                     "smaller updates per epoch: too slow for the CPU budget of this entry.",
    "epochs": 50,
}


def build(config, seed):
    model = gan.make_gan(**config["architecture"]["kwargs"], seed=seed)
    model.compile(**config["compile"]())
    return model


def continue_from(model, name, out):
    """Start from the players of zoo entry `name` (the optimizers start afresh) and keep
    its card's training record in `out`, for the new card. A resumed run restores its
    checkpoint over these weights, as any resumed run does."""
    record = os.path.join(out, "continued_from.json")
    if not os.path.exists(record):
        previous = zoo.card(name)
        write_card(record, {"name": name, "weights_sha256": previous["weights"]["sha256"],
                            "training": previous["training"]})
    previous = zoo.load(name)
    model.generator.set_weights(previous.generator.get_weights())
    model.discriminator.set_weights(previous.discriminator.get_weights())
    if model.average_generator is not None:
        model.average_generator.set_weights(previous.sampling_generator.get_weights())


def train(config, args):
    keras.utils.set_random_seed(args.seed)
    model = build(config, args.seed)
    if args.continue_from:
        continue_from(model, args.continue_from, args.out)
    train_ds = data.load("mnist", "train", preprocessing="symmetric", batch_size=config["batch_size"],
                         seed=args.seed, drop_remainder=True)
    steps = args.steps_per_epoch
    if steps:
        train_ds = train_ds.repeat()
    fit_with_artifacts(model, train_ds, args.out, epochs=args.epochs or config["epochs"], steps_per_epoch=steps,
                       callbacks=[gan.IterationHistory(os.path.join(args.out, "iterations.csv"))], verbose=2)
    return os.path.join(args.out, "model.keras")


def figures(model, name, out, title, root=ROOT, epochs=None):
    """The figures a user looks at: samples, training by iteration, the latent space."""
    directory = os.path.join(root, "zoo", "figures")
    os.makedirs(directory, exist_ok=True)
    paths = {}
    paths["samples"] = plots.save_samples(model.sample(100, seed=0), os.path.join(directory, f"{name}_samples.png"),
                                          title=f"{title}: 100 samples (seed 0)")
    iterations = os.path.join(out, "iterations.csv")
    if os.path.exists(iterations):
        steps = gan.read_iterations(iterations)
        if epochs:
            steps = {k: v[steps["epoch"] <= epochs] for k, v in steps.items()}
        paths["training"] = plots.plot_gan_iterations(
            steps, os.path.join(directory, f"{name}_training.png"), title=title,
            probabilities=model.loss_name != "wasserstein")
    rows, labels = [], []
    z = keras.ops.convert_to_numpy(model.draw_latent(12, 7))
    for i in range(0, 12, 2):
        rows.append(model.interpolate(z[i], z[i + 1], steps=10))
        labels.append(f"z{i} → z{i + 1}")
    paths["interpolation"] = plots.save_image_rows(rows, os.path.join(directory, f"{name}_interpolation.png"),
                                                   row_labels=labels, title=f"{title}: latent interpolation")
    settings = [(0, 1), (1, 1), (5, 1), (-5, 1), (1, 5), (1, 10)]
    rows = [model.explore_latent(m, s, n=12, seed=3) for m, s in settings]
    paths["exploration"] = plots.save_image_rows(
        rows, os.path.join(directory, f"{name}_exploration.png"),
        row_labels=[f"means ×{m}, widths ×{s}" for m, s in settings],
        title=f"{title}: z_j ~ N(m·r_j, s·|r_j|), r = linspace(-1, 1)")
    return {k: os.path.relpath(v, root) for k, v in paths.items()}


def quality(model):
    """The evaluation harness's sample-quality row when its classifier is in the zoo."""
    from keras_gen import evaluation

    if not evaluation.classifier_available():
        return {"note": "sample-quality metrics pending: the domain classifier is not in the zoo yet"}
    row = evaluation.evaluate(model, likelihood=False)
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()
            if isinstance(v, (int, float, str, bool, list)) or v is None}


def grid_classes(model):
    """Classes the classifier sees in the 100-sample grid (when available)."""
    from keras_gen import evaluation

    if not evaluation.classifier_available():
        return None
    classifier = evaluation.load_classifier()
    images = evaluation.ImageSet(evaluation.to_images(model.sample(100, seed=0), model.data_domain), classifier)
    return np.bincount(images.probabilities.argmax(1), minlength=10).tolist()


def finalize(config, model_path, args, train_seconds=None):
    name = config["name"]
    model = keras.saving.load_model(model_path)
    history = read_history(os.path.join(args.out, "history.csv"))
    # A checkpoint of a run that went on: keep the history of the epochs this model has seen.
    epochs_seen = int(model.optimizer.iterations.numpy()) // (60_000 // config["batch_size"])
    history = {k: v[:epochs_seen] for k, v in history.items()} if epochs_seen else history
    if train_seconds is None and history.get("epoch_seconds"):
        train_seconds = float(np.nansum(history["epoch_seconds"]))
    weights = os.path.join(args.root, "saved_models", f"{name}.weights.h5")
    save_zoo_weights(model, weights)  # without the optimizers: a third of the size
    t0 = time.time()
    paths = figures(model, name, args.out, name, root=args.root, epochs=epochs_seen or None)
    last = {k: round(float(v[-1]), 4) for k, v in history.items() if k in ("d_loss", "g_loss", "d_x", "d_g_z",
                                                                             "gradient_penalty")}
    metrics = {
        "final_epoch_means": last,
        "final_epoch_note": "means over the last epoch's steps; d_x and d_g_z are mean D(x) and D(G(z)) "
                            + ("(critic values)" if model.loss_name == "wasserstein" else "(probabilities)"),
        "grid_class_counts": grid_classes(model),
        "sample_quality": quality(model),
    }
    compile_config = model.get_compile_config()
    training = {
        "epochs": len(history.get("d_loss", [])) or None,
        "generator_steps": int(model.optimizer.iterations.numpy()),
        "batch_size": config["batch_size"],
        "optimizer": config["training_note"],
        "seconds": None if train_seconds is None else round(train_seconds),
        "seconds_note": "wall time of fit, summed over resumed runs; the CPU was shared with other jobs",
    }
    record = os.path.join(args.out, "continued_from.json")
    if os.path.exists(record):
        with open(record) as f:
            previous = json.load(f)
        training["continued_from"] = previous
        before = previous["training"].get("total") or previous["training"]  # the earlier stages, summed
        training["total"] = {k: before[k] + training[k] for k in ("epochs", "generator_steps", "seconds")
                             if training[k] is not None and before.get(k) is not None}
    card = {
        "name": name,
        "family": "gan",
        "description": config["description"],
        "architecture": config["architecture"],
        "dataset": {"name": "mnist", "preprocessing": "symmetric", "split": "train"},
        "compile": compile_config,
        "recipe": f"training/{name}.py",
        "weights": {"file": f"{name}.weights.h5", "sha256": zoo.sha256(weights)},
        "metrics": metrics,
        "training": {
            **training,
            "evaluation_seconds": round(time.time() - t0),
            "machine": machine_description(),
            "date": now_iso(),
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        },
        "figures": sorted(paths.values()),
    }
    write_card(os.path.join(args.root, "zoo", f"{name}.json"), card)
    print(metrics)
    return card


def main(config=CONFIG, argv=None, doc=__doc__):
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help=f"default {config['epochs']}")
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="shorter epochs (smoke tests)")
    parser.add_argument("--out", default=f"runs/{config['name']}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--finalize", metavar="MODEL.keras", help="skip training; write the card for this model")
    parser.add_argument("--root", default=ROOT, help="where zoo/ and saved_models/ are (default: this checkout)")
    parser.add_argument("--train-seconds", type=float, default=None, help="with --finalize: the training time")
    parser.add_argument("--continue-from", metavar="ZOO_NAME",
                        help="start from this zoo entry's weights (optimizers afresh); its card's training "
                             "record goes into the new card")
    args = parser.parse_args(argv)
    path = args.finalize or train(config, args)
    finalize(config, path, args, args.train_seconds)


if __name__ == "__main__":
    main()
