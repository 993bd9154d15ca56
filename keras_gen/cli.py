"""The `keras-gen` command line.

    keras-gen train [FAMILY] [--dataset ring8|grid25|mnist] [--epochs N] [--out DIR]
    keras-gen sample NAME_OR_MODEL [-n 100] [--seed 0] [--out samples.png]
    keras-gen export NAME_OR_MODEL DIR [--overwrite]
    keras-gen zoo list | show NAME | verify NAME

`train` with no arguments is the main job on the embedded default: a VAE on
the 8-Gaussian ring, which needs no download and takes about a minute.
NAME_OR_MODEL is a zoo name (`keras-gen zoo list`) or a `.keras` file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

# Keep TensorFlow's C++ start-up chatter out of a command-line tool's output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TRAIN_DEFAULTS = {
    # family -> dataset kind -> (epochs, batch size)
    "toy": (30, 256),
    "mnist": (10, 128),
}


# ------------------------------------------------------------------ families
def _vae_setup(dataset, args):
    from keras_gen import data
    from keras_gen.vae import make_vae

    if dataset in data.TOY_DATASETS:
        model = make_vae("dense", (2,), latent_dim=args.latent_dim or 2, likelihood="gaussian",
                         encoder_kwargs={"hidden": [128, 128]}, decoder_kwargs={"hidden": [128, 128]},
                         seed=args.seed, name=f"vae_{dataset}")
        preprocessing = None
    else:
        # The keras.io convolutional VAE (latent 2 unless told otherwise).
        model = make_vae("conv", data.data_shape(dataset), latent_dim=args.latent_dim or 2,
                         seed=args.seed, name=f"vae_{dataset}")
        preprocessing = "binarized"
    return model, preprocessing, False, {}


def _rbm_setup(dataset, args):
    from keras_gen import data
    from keras_gen.rbm import make_rbm

    if dataset in data.TOY_DATASETS:
        # Real-valued data: Gaussian visibles with a small fixed sigma (stable defaults).
        model = make_rbm("gaussian", 2, args.hidden or 64, k=args.k, persistent=True, sigma=0.25,
                         seed=args.seed, name=f"rbm_{dataset}")
        preprocessing = None
    else:
        model = make_rbm("bernoulli", 784, args.hidden or 500, k=args.k, persistent=True,
                         seed=args.seed, name=f"rbm_{dataset}")
        preprocessing = "binarized"
    return model, preprocessing, True, {"gibbs_steps": 1000}


FAMILIES = {"vae": _vae_setup, "rbm": _rbm_setup}


# ------------------------------------------------------------------ commands
def cmd_train(args):
    import keras

    from keras_gen import data
    from keras_gen.trainer import fit_with_artifacts

    if args.family not in FAMILIES:
        raise SystemExit(f"keras-gen train: unknown family {args.family!r}; known: {sorted(FAMILIES)}.")
    if args.dataset not in data.available():
        raise SystemExit(f"keras-gen train: unknown dataset {args.dataset!r}; known: {data.available()}.")
    toy = args.dataset in data.TOY_DATASETS
    epochs, batch_size = TRAIN_DEFAULTS["toy" if toy else "mnist"]
    epochs = args.epochs or epochs
    batch_size = args.batch_size or batch_size
    out = args.out or os.path.join("runs", f"{args.family}_{args.dataset}")

    keras.utils.set_random_seed(args.seed)
    model, preprocessing, flatten, sample_kwargs = FAMILIES[args.family](args.dataset, args)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate or 1e-3))
    reference = None
    if toy:
        train_ds = data.load(args.dataset, "train", batch_size=batch_size, seed=args.seed)
        val_ds = data.load(args.dataset, "test", batch_size=1000, shuffle=False, seed=args.seed)
        reference = data.toy_2d(args.dataset, 2000, seed=args.seed + 1)
    else:
        train_ds = data.load(args.dataset, "train", preprocessing=preprocessing, flatten=flatten,
                             batch_size=batch_size, seed=args.seed)
        val_ds = data.load(args.dataset, "test", preprocessing=f"{preprocessing}_static"
                           if preprocessing == "binarized" else preprocessing,
                           flatten=flatten, batch_size=500, shuffle=False)
    steps = args.steps_per_epoch
    if steps:
        train_ds = train_ds.repeat()
    fit_with_artifacts(model, train_ds, out, epochs=epochs, validation_data=val_ds,
                       steps_per_epoch=steps, n_samples=1000 if toy else 100,
                       sample_kwargs=sample_kwargs, reference=reference, verbose=2)
    summary = {"model": os.path.join(out, "model.keras"), "samples": os.path.join(out, "samples"),
               "loss_curves": os.path.join(out, "loss_curves.png")}
    if toy:
        coverage = data.mode_coverage(model.sample(2000, seed=args.seed, **sample_kwargs), args.dataset)
        summary["mode_coverage"] = coverage
    print(json.dumps(summary, indent=2, default=float))


def load_model(name_or_path):
    """A `.keras` file or a zoo name -> a built model."""
    import keras

    import keras_gen  # noqa: F401 - registers the families
    from keras_gen import zoo

    if name_or_path.endswith(".keras") or os.path.exists(name_or_path):
        if not os.path.isfile(name_or_path):
            raise SystemExit(f"keras-gen: no model file at {name_or_path!r}.")
        return keras.saving.load_model(name_or_path)
    return zoo.load(name_or_path)


def cmd_sample(args):
    import numpy as np

    from keras_gen import plots

    model = load_model(args.model)
    samples = model.sample(args.n, seed=args.seed)
    out = args.out or f"{os.path.splitext(os.path.basename(args.model))[0]}_samples.png"
    plots.save_samples(samples, out, title=f"{model.name}: {args.n} samples (seed {args.seed})")
    if args.npy:
        np.save(args.npy, samples)
    print(out)


def cmd_export(args):
    from keras_gen.export import export_saved_model

    model = load_model(args.model)
    signatures = export_saved_model(model, args.directory, overwrite=args.overwrite)
    print(f"{args.directory}: SavedModel with signatures {', '.join(signatures)}")


def cmd_zoo(args):
    from keras_gen import zoo

    if args.action == "list":
        for name in zoo.list():
            entry = zoo.card(name)
            metrics = ", ".join(f"{k}={v}" for k, v in entry.get("metrics", {}).items()
                                if isinstance(v, (int, float)) and not k.endswith(("_sem", "_k")))
            print(f"{name:24s} {entry.get('family', ''):6s} {metrics}")
    elif args.action == "show":
        entry = {k: v for k, v in zoo.card(args.name).items() if not k.startswith("_")}
        print(json.dumps(entry, indent=2))
    elif args.action == "verify":
        print(f"{args.name}: sha256 ok ({zoo.verify(args.name)})")


# ------------------------------------------------------------------ parser
def build_parser():
    parser = argparse.ArgumentParser(prog="keras-gen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a family with fit, leaving checkpoints and sample grids")
    train.add_argument("family", nargs="?", default="vae", help="vae (default), rbm, ...")
    train.add_argument("--dataset", default="ring8", help="ring8 (embedded, default), grid25, mnist")
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--steps-per-epoch", type=int, default=None)
    train.add_argument("--learning-rate", type=float, default=None)
    train.add_argument("--latent-dim", type=int, default=None)
    train.add_argument("--hidden", type=int, default=None, help="hidden units (RBM)")
    train.add_argument("--k", type=int, default=1, help="Gibbs steps per update (RBM)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="run folder (default runs/FAMILY_DATASET); rerun to resume")
    train.set_defaults(func=cmd_train)

    sample = sub.add_parser("sample", help="draw samples and save a grid (PNG)")
    sample.add_argument("model", help="zoo name or .keras file")
    sample.add_argument("-n", type=int, default=100)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", default=None)
    sample.add_argument("--npy", default=None, help="also save the samples as .npy")
    sample.set_defaults(func=cmd_sample)

    export = sub.add_parser("export", help="write a TensorFlow SavedModel with serving signatures")
    export.add_argument("model", help="zoo name or .keras file")
    export.add_argument("directory")
    export.add_argument("--overwrite", action="store_true")
    export.set_defaults(func=cmd_export)

    zoo_cmd = sub.add_parser("zoo", help="list, show or verify the pretrained models")
    zoo_cmd.add_argument("action", choices=["list", "show", "verify"])
    zoo_cmd.add_argument("name", nargs="?")
    zoo_cmd.set_defaults(func=cmd_zoo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "zoo" and args.action != "list" and not args.name:
        raise SystemExit(f"keras-gen zoo {args.action}: a model name is required.")
    from keras_gen import zoo
    from keras_gen.validation import DataError

    try:
        args.func(args)
    except (zoo.ZooError, zoo.WeightsIntegrityError, DataError, FileExistsError) as err:
        raise SystemExit(f"keras-gen {args.command}: {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
