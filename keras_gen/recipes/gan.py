"""The GAN zoo recipes' procedure: train (or continue a zoo entry), draw the
figures, judge the samples, publish the entry.

`training/dcgan_mnist.py`, `training/wgan_mnist.py` and
`training/wgan_gp_mnist.py` each describe their entry as a `GanRecipe` and
call `main`. Training is resumable (run the same command again after an
interruption). `--continue-from NAME` starts from a zoo entry's players with
fresh optimizers and keeps that entry's training record, which goes on the
new card as `training.continued_from`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from keras_gen import data, plots, zoo
from keras_gen.callbacks import IterationHistory, read_iterations
from keras_gen.cli import positive_float, positive_int
from keras_gen.core.files import write_json
from keras_gen.runs import fit_with_artifacts, read_history
from keras_gen.zoo.publish import publish
from keras_gen.zoo.registry import build_model

MNIST_TRAIN_IMAGES = 60_000


@dataclass(frozen=True)
class GanRecipe:
    name: str
    description: str
    architecture: dict  # {"factory": "gan", "kwargs": {...}}, as on the card
    compile: Callable[[], dict]  # fresh compile arguments: optimizers hold state, so one set per model
    batch_size: int  # real images per generator update (all critic steps' together)
    training_note: str  # the optimizer and schedule, in words, for the card
    epochs: int  # default length of a run

    @property
    def script(self):
        return f"training/{self.name}.py"


def build(recipe, seed):
    model = build_model(recipe.architecture["factory"], recipe.architecture["kwargs"], seed=seed)
    model.compile(**recipe.compile())
    return model


def continue_from(model, name, out):
    """Start from the players of zoo entry `name` (the optimizers start afresh) and keep
    its card's training record in `out`, for the new card. A resumed run restores its
    checkpoint over these weights, as any resumed run does."""
    record = os.path.join(out, "continued_from.json")
    if not os.path.exists(record):
        previous = zoo.card(name)
        write_json(
            record,
            {
                "name": name,
                "weights_sha256": previous.weights.sha256,
                "recipe_command": previous.recipe.command,
                "training": previous.training,
            },
        )
    previous = zoo.load(name)
    model.generator.set_weights(previous.generator.get_weights())
    model.discriminator.set_weights(previous.discriminator.get_weights())
    if model.average_generator is not None:
        model.average_generator.set_weights(previous.sampling_generator.get_weights())


def train(recipe, args):
    keras.utils.set_random_seed(args.seed)
    model = build(recipe, args.seed)
    if args.continue_from:
        continue_from(model, args.continue_from, args.out)
    train_ds = data.load_epochs(
        "mnist", "train", preprocessing="symmetric", batch_size=recipe.batch_size, seed=args.seed, drop_remainder=True
    )
    steps = args.steps_per_epoch
    fit_with_artifacts(
        model,
        train_ds,
        args.out,
        epochs=args.epochs or recipe.epochs,
        steps_per_epoch=steps,
        callbacks=[IterationHistory(os.path.join(args.out, "iterations.csv"))],
        verbose=2,
    )
    return os.path.join(args.out, "model.keras")


def figures(model, name, out, title, root, epochs=None):
    """The figures a user looks at: samples, training by iteration, the latent space."""
    directory = os.path.join(root, "zoo", "figures")
    os.makedirs(directory, exist_ok=True)
    paths = {}
    paths["samples"] = plots.save_samples(
        model.sample(100, seed=0),
        os.path.join(directory, f"{name}_samples.png"),
        title=f"{title}: 100 samples (seed 0)",
    )
    iterations = os.path.join(out, "iterations.csv")
    if os.path.exists(iterations):
        steps = read_iterations(iterations)
        if epochs:
            steps = {k: v[steps["epoch"] <= epochs] for k, v in steps.items()}
        paths["training"] = plots.plot_gan_iterations(
            steps,
            os.path.join(directory, f"{name}_training.png"),
            title=title,
            probabilities=model.objective != "wasserstein",
        )
    rows, labels = [], []
    z = keras.ops.convert_to_numpy(model.draw_latent(12, 7))
    for i in range(0, 12, 2):
        rows.append(model.interpolate(z[i], z[i + 1], steps=10))
        labels.append(f"z{i} → z{i + 1}")
    paths["interpolation"] = plots.save_image_rows(
        rows,
        os.path.join(directory, f"{name}_interpolation.png"),
        row_labels=labels,
        title=f"{title}: latent interpolation",
    )
    settings = [(0, 1), (1, 1), (5, 1), (-5, 1), (1, 5), (1, 10)]
    rows = [model.explore_latent(m, s, n=12, seed=3) for m, s in settings]
    paths["exploration"] = plots.save_image_rows(
        rows,
        os.path.join(directory, f"{name}_exploration.png"),
        row_labels=[f"means ×{m}, widths ×{s}" for m, s in settings],
        title=f"{title}: z_j ~ N(m·r_j, s·|r_j|), r = linspace(-1, 1)",
    )
    return {k: os.path.relpath(v, root) for k, v in paths.items()}


def quality(model):
    """The evaluation harness's sample-quality row when its classifier is in the zoo."""
    from keras_gen import evaluation

    if not evaluation.classifier_available():
        return {"note": "sample-quality metrics pending: the domain classifier is not in the zoo yet"}
    row = evaluation.evaluate(model, likelihood=False)
    return {
        k: (round(v, 5) if isinstance(v, float) else v)
        for k, v in row.items()
        if isinstance(v, (int, float, str, bool, list)) or v is None
    }


def grid_classes(model):
    """Classes the classifier sees in the 100-sample grid (when available)."""
    from keras_gen import evaluation

    if not evaluation.classifier_available():
        return None
    classifier = evaluation.load_classifier()
    images = evaluation.ImageSet(evaluation.to_images(model.sample(100, seed=0), model.data_domain), classifier)
    return np.bincount(images.probabilities.argmax(1), minlength=10).tolist()


def reproducing_command(recipe, epochs, out, previous=None, steps_per_epoch=None):
    """What reproduces this stage from a checkout: the earlier stages' commands first."""
    command = f"python {recipe.script} --epochs {epochs}"
    if steps_per_epoch:
        command += f" --steps-per-epoch {steps_per_epoch}"
    if previous is None:
        return command
    # A separate run folder: the first stage's checkpoints would resume instead.
    command += f" --continue-from {previous['name']} --out runs/{os.path.basename(os.path.normpath(out))}"
    before = previous.get("recipe_command")
    return f"{before} && {command}" if before else command


def finalize(recipe, model_path, args, train_seconds=None):
    name = recipe.name
    model = keras.saving.load_model(model_path)
    history = read_history(os.path.join(args.out, "history.csv"))
    # A checkpoint of a run that went on: keep the history of the epochs this model has seen.
    epochs_seen = int(model.optimizer.iterations.numpy()) // (MNIST_TRAIN_IMAGES // recipe.batch_size)
    history = {k: v[:epochs_seen] for k, v in history.items()} if epochs_seen else history
    if train_seconds is None and history.get("epoch_seconds"):
        train_seconds = float(np.nansum(history["epoch_seconds"]))
    t0 = time.time()
    paths = figures(model, name, args.out, name, root=args.root, epochs=epochs_seen or None)
    last = {
        k: round(float(v[-1]), 4)
        for k, v in history.items()
        if k in ("d_loss", "g_loss", "d_x", "d_g_z", "gradient_penalty")
    }
    metrics = {
        "final_epoch_means": last,
        "final_epoch_note": "means over the last epoch's steps; d_x and d_g_z are mean D(x) and D(G(z)) "
        + ("(critic values)" if model.objective == "wasserstein" else "(probabilities)"),
        "grid_class_counts": grid_classes(model),
        "sample_quality": quality(model),
    }
    training = {
        "epochs": len(history.get("d_loss", [])) or None,
        "generator_steps": int(model.optimizer.iterations.numpy()),
        "batch_size": recipe.batch_size,
        "optimizer": recipe.training_note,
        "seconds": None if train_seconds is None else round(train_seconds),
        "seconds_note": "wall time of fit, summed over resumed runs; the CPU was shared with other jobs",
    }
    previous = None
    record = os.path.join(args.out, "continued_from.json")
    if os.path.exists(record):
        with open(record) as f:
            previous = json.load(f)
        training["continued_from"] = previous
        before = previous["training"].get("total") or previous["training"]  # the earlier stages, summed
        training["total"] = {
            k: before[k] + training[k]
            for k in ("epochs", "generator_steps", "seconds")
            if training[k] is not None and before.get(k) is not None
        }
    training["evaluation_seconds"] = round(time.time() - t0)
    card = publish(
        model,
        args.root,
        name,
        family="gan",
        description=recipe.description,
        architecture=recipe.architecture,
        compile=model.get_compile_config(),
        dataset={"name": "mnist", "preprocessing": "symmetric", "split": "train"},
        metrics=metrics,
        training=training,
        figures=sorted(paths.values()),
        script=recipe.script,
        command=reproducing_command(
            recipe, training["epochs"] or args.epochs or recipe.epochs, args.out, previous, args.steps_per_epoch
        ),
    )
    print(metrics)
    return card


def main(recipe, root, argv=None, doc=None):
    """The command line of a GAN recipe; `root` holds the zoo/ and saved_models/ it writes."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=positive_int, default=None, help=f"default {recipe.epochs}")
    parser.add_argument("--steps-per-epoch", type=positive_int, default=None, help="shorter epochs (smoke tests)")
    parser.add_argument("--out", default=f"runs/{recipe.name}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--finalize", metavar="MODEL.keras", help="skip training; write the card for this model")
    parser.add_argument("--root", default=root, help="where zoo/ and saved_models/ are (default: this checkout)")
    parser.add_argument("--train-seconds", type=positive_float, default=None, help="with --finalize: the training time")
    parser.add_argument(
        "--continue-from",
        metavar="ZOO_NAME",
        help="start from this zoo entry's weights (optimizers afresh); its card's training "
        "record goes into the new card",
    )
    args = parser.parse_args(argv)
    path = args.finalize or train(recipe, args)
    return finalize(recipe, path, args, args.train_seconds)
