"""Publishing a zoo entry: the one way a trained model becomes `zoo/NAME.json`
and `saved_models/NAME.weights.h5`.

`publish` writes the weights (the model's variables only: no optimizer
state, which a zoo user never needs and which made Keras warn on load), their
sha256, and a card validated against the schema of `keras_gen.zoo.card`
*before* any file is touched, written atomically. Every recipe in
`training/` ends with it. `machine_description`, `now_iso`, `command_line`
and `run_history` describe the run for the card's training record.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from dataclasses import replace
from pathlib import Path

from keras_gen.core.files import save_atomically, sha256, write_json
from keras_gen.zoo import registry
from keras_gen.zoo.card import SCHEMA_VERSION, Weights, from_dict, read

PENDING_SHA256 = "0" * 64  # stands in for the weights' hash while the card is checked before writing


def machine_description():
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}"
    )


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def command_line():
    """The command this process runs, as typed (`python training/x.py --out ...`)."""
    return " ".join([os.path.basename(sys.executable)] + sys.argv)


def recipe_main(doc, name, epochs, root, train, finalize, argv=None, add_arguments=None):
    """The command line every zoo recipe in training/ shares: train (or resume) into
    `--out`, then `finalize(model_path, args)` unless `--train-only`; `--finalize
    MODEL.keras` skips training. `add_arguments(parser)` adds a recipe's own options.
    `train` passes `args.tensorboard` on to `fit_with_artifacts` (checked here first)."""
    import argparse

    from keras_gen import runs
    from keras_gen.cli import positive_int

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=positive_int, default=epochs)
    parser.add_argument("--out", default=f"runs/{name}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=root, help="where zoo/ and saved_models/ are (default: this checkout)")
    parser.add_argument("--train-only", action="store_true", help="train (or resume) without finalizing")
    parser.add_argument("--finalize", metavar="MODEL.keras", help="skip training; evaluate this model, write the card")
    parser.add_argument(
        "--resume-from",
        metavar="STATE",
        help="start from a run state saved by --save-state (when --out has no backup of its own)",
    )
    parser.add_argument(
        "--save-state",
        metavar="STATE",
        help="copy the newest whole state of the run in --out to STATE (safe while it trains) and exit",
    )
    parser.add_argument(
        "--tensorboard",
        metavar="DIR",
        help='also write TensorBoard logs (epoch scalars, sample images) to DIR; pip install "keras-gen[tensorboard]"',
    )
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if args.tensorboard and not (args.save_state or args.finalize):
        from keras_gen.callbacks import require_tensorboard

        try:
            require_tensorboard()
        except ImportError as err:
            raise SystemExit(f"{name} --tensorboard: {err}") from None
    if args.save_state:
        epoch = runs.save_run_state(args.out, args.save_state)
        print(f"{args.out}: the state after epoch {epoch} saved in {args.save_state}")
        return args
    if args.resume_from and runs.adopt_run_state(args.resume_from, args.out):
        print(f"{args.out}: starting from the run state in {args.resume_from}")
    path = args.finalize or train(args)
    if not args.train_only:
        finalize(path, args)
    return args


def add_sample_cache_argument(parser):
    """`--sample-cache DIR`, for a recipe whose finalize step draws for hours."""
    parser.add_argument(
        "--sample-cache",
        metavar="DIR",
        help="keep the samples the finalize step draws in DIR, batch by batch: a stopped finalize "
        "(or one carried to another machine with DIR) resumes where it was, with the same samples",
    )


def sample_cache(args, model):
    """The finalize step's `SampleCache` for `model` (`--sample-cache`), or None."""
    if not getattr(args, "sample_cache", None):
        return None
    from keras_gen.evaluation.sample_cache import SampleCache

    return SampleCache.for_model(args.sample_cache, model)


def epoch_figure(out_dir, figures, name, caption):
    """`figures/NAME_epochs.png` from the run's per-epoch sample grids (`out_dir/samples`,
    carried with the run's state); returns ["epochs"], or [] if the run kept none."""
    import glob

    from keras_gen import plots

    grids = glob.glob(os.path.join(out_dir, "samples", "epoch_*.png"))
    if not grids:
        return []
    plots.epoch_grids(grids, os.path.join(figures, f"{name}_epochs.png"), f"{name}: {caption}")
    return ["epochs"]


def run_history(out_dir):
    """What a finished run left in `out_dir/history.csv`: (history, epochs, training seconds)."""
    import numpy as np

    from keras_gen.runs import read_history

    history = read_history(os.path.join(out_dir, "history.csv"))
    epochs = len(history.get("loss", [])) or None
    seconds = float(np.nansum(history["epoch_seconds"])) if history.get("epoch_seconds") else None
    return history, epochs, seconds


def save_zoo_weights(model, architecture, path):
    """`model`'s variables, and nothing else, as `.weights.h5` at `path`, atomically.

    A fresh, uncompiled model is built from `architecture` ({"factory",
    "kwargs"}, as on the card) and receives every variable of `model` (weights,
    seed states, persistent chains); saving it leaves the optimizer state out.
    Building from the card's own description also proves the card describes
    this model: a mismatch in any variable's shape is refused.
    """
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"Zoo weights must end in .weights.h5, got {path!r}.")
    copy = registry.build_model(architecture["factory"], architecture["kwargs"])
    copy.build_for_data()
    model.build_for_data()
    source, target = model.variables, copy.variables
    if len(source) != len(target):
        raise ValueError(
            f"The card's architecture makes {len(target)} variables; the model to publish has {len(source)}."
        )
    for s, t in zip(source, target):
        if tuple(s.shape) != tuple(t.shape) or s.dtype != t.dtype:
            raise ValueError(
                f"The card's architecture does not describe this model: variable {t.path} is "
                f"{t.dtype}{tuple(t.shape)}, the model's {s.path} is {s.dtype}{tuple(s.shape)}."
            )
        t.assign(s)
    return save_atomically(copy, path)


def _plain_compile(compile):
    """Compile arguments as card data: optimizers serialized, no `jit_compile`
    (XLA is for the loading machine's model default to decide)."""
    import keras

    out = {}
    for key, value in (compile or {}).items():
        if key == "jit_compile":
            continue
        out[key] = keras.optimizers.serialize(value) if isinstance(value, keras.optimizers.Optimizer) else value
    return out


def publish(
    model,
    root,
    name,
    *,
    family,
    description,
    architecture,
    dataset,
    metrics,
    training,
    command,
    script=None,
    compile=None,
    sample_kwargs=None,
    features=None,
    figures=(),
):
    """Write zoo entry `name` under `root` (its `zoo/` and `saved_models/`); return its card.

    * `architecture`: {"factory": registry key, "kwargs": {...}} making `model`;
    * `compile`: arguments for a fine-tuning compile (optimizer objects or
      configs, plain values);
    * `command`: what reproduces the entry from a checkout's root
      (e.g. "python training/vae_mnist.py"); `script` defaults to
      training/NAME.py;
    * `training`: the run's record; the machine, the date and the command
      this process runs are added unless given;
    * `figures`: paths under `root`, which must exist.

    The card is validated before anything is written; then the weights, then
    the card (each atomically).
    """
    root = Path(root)
    card_path = root / "zoo" / f"{name}.json"
    weights_path = root / "saved_models" / f"{name}.weights.h5"
    missing = [f for f in figures if not (root / f).is_file()]
    if missing:
        raise FileNotFoundError(f"Figures of zoo entry {name!r} not found under {root}: {', '.join(missing)}")
    record = dict(training)
    record.setdefault("machine", machine_description())
    record.setdefault("date", now_iso())
    record.setdefault("command", command_line())
    draft = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "family": family,
        "description": description,
        "architecture": {"factory": architecture["factory"], "kwargs": dict(architecture["kwargs"])},
        "compile": _plain_compile(compile),
        "sample_kwargs": dict(sample_kwargs or {}),
        "dataset": dataset,
        "weights": {"file": weights_path.name, "sha256": PENDING_SHA256},
        "recipe": {"script": script or f"training/{name}.py", "command": command},
        **({"features": features} if features is not None else {}),
        "metrics": metrics,
        "training": record,
        "figures": list(figures),
    }
    card = from_dict(draft, source=card_path)
    try:
        json.dumps(draft)
    except TypeError as err:  # e.g. a numpy float32 among the metrics
        raise ValueError(f"Zoo card {card_path}: not JSON data ({err}); convert with float()/int()/.tolist()") from None
    save_zoo_weights(model, draft["architecture"], weights_path)
    card = replace(card, weights=Weights(weights_path.name, sha256(weights_path)))
    write_json(card_path, card.to_dict())
    return read(card_path)
