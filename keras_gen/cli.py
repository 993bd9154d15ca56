"""The `keras-gen` command line.

    keras-gen train [FAMILY] [--dataset ring8|grid25|mnist|FILE.npz] [--epochs N] [--out DIR]
                    [--strategy default|mirrored|multi-worker] [--cpu-devices N] [--tensorboard DIR]
    keras-gen sample NAME_OR_MODEL [-n 100] [--seed 0] [--out samples.png]
    keras-gen export NAME_OR_MODEL DIR [--overwrite]
    keras-gen zoo list | show NAME [--json] | verify NAME | gallery [--out docs/zoo.md]
    keras-gen evaluate NAME_OR_MODEL [--full] [--samples N] | --all [--rows JSON] [--report MD]
    keras-gen ising [--temperatures T ...] [--out DIR]

`train` with no arguments is the main job on the embedded default: a VAE on
the 8-Gaussian ring, which needs no download and takes about a minute.
NAME_OR_MODEL is a zoo name (`keras-gen zoo list`) or a `.keras` file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

TRAIN_DEFAULTS = {
    # family -> dataset kind -> (epochs, batch size)
    "toy": (30, 256),
    "mnist": (10, 128),
}


# ------------------------------------------------------------------ start-up
def quiet_tensorflow():
    """Import TensorFlow without its log lines (what `--verbose` shows).

    TF_CPP_MIN_LOG_LEVEL=3 silences TensorFlow's C++ logging once it is set up,
    but the lines its libraries write while they load (before absl's logging
    starts) ignore it: they go to a temporary file instead, replayed if the
    import fails. TensorFlow is imported here, and only by the commands that
    need it, so `--help` and `zoo` answer without it.
    """
    import logging
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        sys.stderr.flush()
        stderr = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            except BaseException:
                os.dup2(stderr, 2)
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
                raise
            finally:
                os.dup2(stderr, 2)
                os.close(stderr)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


# ------------------------------------------------------------- argument types
def positive_int(text):
    """An argparse type: an integer >= 1 (argparse exits 2 with the message otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text):
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


# ------------------------------------------------------------------ families
def label(dataset):
    """The dataset's name in model and run names: a file's stem (a path is no Keras name)."""
    return os.path.splitext(os.path.basename(dataset))[0]


def _vae_setup(dataset, args):
    from keras_gen import data
    from keras_gen.models.vae import make_vae

    if data.is_points(dataset):
        model = make_vae(
            "dense",
            data.data_shape(dataset),
            latent_dim=args.latent_dim or 2,
            likelihood="gaussian",
            encoder_kwargs={"hidden": [128, 128]},
            decoder_kwargs={"hidden": [128, 128]},
            seed=args.seed,
            name=f"vae_{label(dataset)}",
        )
        preprocessing = None
    else:
        # The keras.io convolutional VAE (latent 2 unless told otherwise).
        model = make_vae(
            "conv",
            data.data_shape(dataset),
            latent_dim=args.latent_dim or 2,
            seed=args.seed,
            name=f"vae_{label(dataset)}",
        )
        preprocessing = "binarized"
    return model, preprocessing, False, {}


def _rbm_setup(dataset, args):
    import keras

    from keras_gen import data
    from keras_gen.models.rbm import make_rbm

    if data.is_points(dataset):
        # Real-valued data: Gaussian visibles, the stable settings of
        # training/grbm_ring8.py (learned log sigma from 0.5, weights at the
        # data scale, PCD-10 so the chains keep up with a multimodal model).
        model = make_rbm(
            "gaussian",
            data.data_shape(dataset)[0],
            args.hidden or 20,
            k=args.k or 10,
            persistent=True,
            sigma=0.5,
            learn_sigma=True,
            weight_stddev=0.5,
            seed=args.seed,
            name=f"rbm_{label(dataset)}",
        )
        args.optimizer = keras.optimizers.Adam(args.learning_rate or 3e-3)
        # Scatter plots show samples of p(v|h), not the component means.
        return model, None, True, {"gibbs_steps": 1000, "return_probabilities": False}
    # Centered updates (as training/rbm_mnist.py): same model, a far better
    # conditioned gradient (rbm_mnist: -87.7 nats against -95.3 uncentered).
    model = make_rbm(
        "bernoulli",
        data.data_shape(dataset, flatten=True)[0],
        args.hidden or 500,
        k=args.k or 1,
        persistent=True,
        centering=True,
        seed=args.seed,
        name=f"rbm_{label(dataset)}",
    )
    # Visible biases at the pixel log-odds (Hinton's practical guide): from
    # zero, an adaptive optimizer needs many epochs just to learn the marginals.
    model.initialize_from_data(data.load_arrays(dataset, "train", flatten=True)[0])
    # SGD with momentum, the classic RBM update (Adam's per-parameter steps
    # learn the 784 x 500 weights far more slowly in a short run).
    args.optimizer = keras.optimizers.SGD(args.learning_rate or 0.01, momentum=0.9)
    return model, "binarized", True, {"gibbs_steps": 1000}


def _gan_setup(dataset, args, game="gan"):
    """GANs compile themselves (two optimizers, the game's rules): the setup returns a compiled model."""
    from keras_gen import data
    from keras_gen.models import gan

    toy = data.is_points(dataset)
    kwargs = {
        "gan": gan.standard_compile_kwargs,
        "dcgan": gan.dcgan_compile_kwargs,
        "wgan": gan.wgan_compile_kwargs,
        "wgan_gp": gan.wgan_gp_compile_kwargs,
    }[game]()
    if args.learning_rate:
        for key in ("d_optimizer", "g_optimizer"):
            kwargs[key].learning_rate = args.learning_rate
    name = f"{game}_{label(dataset)}"
    if toy:
        if game == "dcgan":
            raise SystemExit(
                "keras-gen train dcgan: the DCGAN is convolutional and needs images (--dataset mnist or an "
                "image file); use gan, wgan or wgan_gp on points."
            )
        model = gan.make_toy_gan(
            latent_dim=args.latent_dim or 8,
            seed=args.seed,
            name=name,
            ema_momentum=args.ema_momentum,
            data_dim=data.data_shape(dataset)[0],
        )
        flatten = True
    elif game == "gan":
        # The course notes' MLP GAN on flattened MNIST in [-1, 1].
        model = gan.make_gan(
            "mlp",
            data.data_shape(dataset, flatten=True),
            latent_dim=args.latent_dim or 20,
            ema_momentum=args.ema_momentum,
            seed=args.seed,
            name=name,
        )
        flatten = True
    else:
        # The TensorFlow tutorial's DCGAN; the WGANs use its critic without dropout.
        model = gan.make_gan(
            "dcgan",
            data.data_shape(dataset),
            latent_dim=args.latent_dim or 100,
            seed=args.seed,
            discriminator_kwargs={} if game == "dcgan" else {"dropout": 0.0},
            ema_momentum=args.ema_momentum,
            name=name,
        )
        flatten = False
    model.compile(**kwargs)
    return model, None if toy else "symmetric", flatten, {}


def _diffusion_setup(dataset, args):
    import keras

    from keras_gen import data
    from keras_gen.models.diffusion import make_diffusion

    name = f"diffusion_{label(dataset)}"
    if data.is_points(dataset):
        # The ddpm_ring8 recipe's denoiser (training/ddpm_ring8.py).
        hidden = [args.hidden or 256] * 3
        model = make_diffusion(
            "mlp", data.data_shape(dataset), network_kwargs={"hidden": hidden}, seed=args.seed, name=name
        )
        return model, None, True, {"steps": 50}
    # The ddpm_mnist UNet, unconditional (labels are not part of this pipeline).
    model = make_diffusion("unet", data.data_shape(dataset), ema_momentum=0.9995, seed=args.seed, name=name)
    args.optimizer = keras.optimizers.Adam(args.learning_rate or 2e-4)
    return model, "symmetric", False, {"steps": 50}


def _ebm_setup(dataset, args):
    import keras

    from keras_gen import data
    from keras_gen.models.ebm import make_ebm

    name = f"ebm_{label(dataset)}"
    if data.is_points(dataset):
        # The ebm_ring8 recipe's settings (training/ebm_ring8.py): exact Langevin
        # negatives, so the energy is a density. Its box holds the ring with a
        # margin of a quarter of its width; so does a file's.
        box = (-3.0, 3.0)
        if data.is_file(dataset):
            x = data.load_arrays(dataset, "train")[0]
            low, high = float(x.min()), float(x.max())
            box = (low - (high - low) / 4, high + (high - low) / 4)
        model = make_ebm(
            "mlp",
            data.data_shape(dataset),
            sample_range=box,
            langevin_steps=args.k or 100,
            step_size=1e-4,
            noise_scale=None,
            gradient_clip=None,
            sample_steps=2000,
            network_kwargs={"hidden": [args.hidden or 128] * 3},
            seed=args.seed,
            name=name,
        )
        args.optimizer = keras.optimizers.Adam(args.learning_rate or 1e-3, beta_1=0.0)
        return model, None, True, {"steps": 500}
    # The conv energy with the documented defaults of EnergyModel (60 steps of
    # size 10, noise 0.005, a buffer of 8,192), on images in [-1, 1].
    model = make_ebm("conv", data.data_shape(dataset), langevin_steps=args.k or 60, seed=args.seed, name=name)
    args.optimizer = keras.optimizers.Adam(args.learning_rate or 1e-4, beta_1=0.0)
    return model, "symmetric", False, {}


FAMILIES = {
    "vae": _vae_setup,
    "rbm": _rbm_setup,
    "diffusion": _diffusion_setup,
    "ebm": _ebm_setup,
    "gan": lambda dataset, args: _gan_setup(dataset, args, "gan"),
    "dcgan": lambda dataset, args: _gan_setup(dataset, args, "dcgan"),
    "wgan": lambda dataset, args: _gan_setup(dataset, args, "wgan"),
    "wgan_gp": lambda dataset, args: _gan_setup(dataset, args, "wgan_gp"),
}


# ------------------------------------------------------------------ commands
def cmd_train(args):
    import keras

    from keras_gen import data
    from keras_gen.runs import fit_with_artifacts

    if args.family not in FAMILIES:
        raise SystemExit(_not_a_family(args.family))
    if args.tensorboard:
        from keras_gen.callbacks import require_tensorboard

        try:
            require_tensorboard()
        except ImportError as err:
            raise SystemExit(f"keras-gen train --tensorboard: {err}") from None
    if args.dataset not in data.available() and not data.is_file(args.dataset):
        raise SystemExit(
            f"keras-gen train: unknown dataset {args.dataset!r}; known: {data.available()}, or a .npy/.npz file."
        )
    toy = data.is_points(args.dataset)
    epochs, batch_size = TRAIN_DEFAULTS["toy" if toy else "mnist"]
    epochs = args.epochs or epochs
    batch_size = args.batch_size or batch_size
    out = args.out or os.path.join("runs", f"{args.family}_{label(args.dataset)}")

    strategy = _strategy(args)
    if args.strategy != "default":
        replicas = strategy.num_replicas_in_sync
        print(
            f"training on {replicas} replica{'s' if replicas != 1 else ''} ({type(strategy).__name__})",
            file=sys.stderr,
        )
    keras.utils.set_random_seed(args.seed)
    # Variables (weights, optimizer slots, chains, seeds) are created in the
    # strategy's scope, so they are mirrored on every replica.
    with strategy.scope():
        model, preprocessing, flatten, sample_kwargs = FAMILIES[args.family](args.dataset, args)
        if not model.compiled:  # families with their own compile rules (GANs) arrive compiled
            # A family's setup may choose its own optimizer (args.optimizer); else Adam.
            model.compile(
                optimizer=getattr(args, "optimizer", None) or keras.optimizers.Adam(args.learning_rate or 1e-3)
            )
    reference = data.toy_2d(args.dataset, 2000, seed=args.seed + 1) if args.dataset in data.TOY_DATASETS else None
    validate = "test" in data.splits(args.dataset)  # a file may hold no test split
    if toy:
        train_ds = data.load_epochs(args.dataset, "train", batch_size=batch_size, seed=args.seed)
        val_ds = data.load(args.dataset, "test", batch_size=1000, shuffle=False, seed=args.seed) if validate else None
    else:
        train_ds = data.load_epochs(
            args.dataset, "train", preprocessing=preprocessing, flatten=flatten, batch_size=batch_size, seed=args.seed
        )
        val_ds = None
        if validate:
            val_ds = data.load(
                args.dataset,
                "test",
                preprocessing=f"{preprocessing}_static" if preprocessing == "binarized" else preprocessing,
                flatten=flatten,
                batch_size=500,
                shuffle=False,
            )
    steps = args.steps_per_epoch
    fit_with_artifacts(
        model,
        train_ds,
        out,
        epochs=epochs,
        validation_data=val_ds,
        steps_per_epoch=steps,
        n_samples=1000 if toy else 100,
        sample_kwargs=sample_kwargs,
        reference=reference,
        verbose=args.verbose,
        tensorboard=args.tensorboard,
    )
    summary = {
        "model": os.path.join(out, "model.keras"),
        "samples": os.path.join(out, "samples"),
        "loss_curves": os.path.join(out, "loss_curves.png"),
    }
    if args.dataset in data.TOY_DATASETS:
        coverage = data.mode_coverage(model.sample(2000, seed=args.seed, **sample_kwargs), args.dataset)
        summary["mode_coverage"] = coverage
    print(json.dumps(summary, indent=2, default=float))


def _strategy(args):
    """The `--strategy` (checked before TensorFlow starts any work)."""
    from keras_gen.core import distribute

    try:
        if args.cpu_devices:
            distribute.split_cpu(args.cpu_devices)
        return distribute.make_strategy(args.strategy)
    except (ValueError, RuntimeError) as err:
        raise SystemExit(f"keras-gen train --strategy {args.strategy}: {err}") from None


def _not_a_family(name):
    """Why `keras-gen train NAME` cannot train `name`, in one line (with the
    reproducing command when `name` is a zoo entry: its recipe lives in a
    source checkout's training/, which the library never runs)."""
    from keras_gen import zoo

    try:
        entry = zoo.card(name)
    except zoo.ZooError:
        return f"keras-gen train: unknown family {name!r}; known: {sorted(FAMILIES)}."
    return (
        f"keras-gen train: {name!r} is a zoo entry, trained by its recipe, not by this command; "
        f"from a source checkout run: {entry.recipe.command}"
    )


def load_model(name_or_path):
    """A `.keras` file or a zoo name -> a built model."""
    import keras

    import keras_gen.models  # noqa: F401 - registers the families with keras.saving
    from keras_gen import zoo

    if name_or_path.endswith(".keras") or os.path.exists(name_or_path):
        if not os.path.isfile(name_or_path):
            raise SystemExit(f"keras-gen: no model file at {name_or_path!r}.")
        try:
            return keras.saving.load_model(name_or_path)
        except Exception as err:  # a damaged or foreign file: say which, in one line
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SystemExit(f"keras-gen: cannot load {name_or_path!r} ({type(err).__name__}: {first_line}).") from None
    if zoo.card(name_or_path).family == "classifier":
        raise SystemExit(
            f"keras-gen: {name_or_path!r} is the domain classifier of the evaluation harness, "
            "not a generative model (load it with keras_gen.evaluation.load_classifier())."
        )
    return zoo.load(name_or_path)


# Sampler options of `keras-gen sample`; a model takes those its `generate_samples` accepts.
SAMPLE_OPTIONS = ("steps", "eta", "label", "guidance", "step_size", "method")


def cmd_sample(args):
    import inspect

    import numpy as np

    from keras_gen import plots

    model = load_model(args.model)
    flags = {k: getattr(args, k) for k in SAMPLE_OPTIONS if getattr(args, k) is not None}
    accepted = inspect.signature(model.generate_samples).parameters
    refused = [k for k in flags if k not in accepted]
    if refused:
        names = "/".join("--" + k.replace("_", "-") for k in refused)
        raise SystemExit(f"keras-gen sample: {names} do not apply to {model.name}, a {type(model).__name__}.")
    # A zoo entry samples as its card says it was judged (ebm_mnist: 1,000
    # Langevin steps, not the model's training-time 256); flags override.
    options = {**(getattr(model, "zoo_card", None) or {}).get("sample_kwargs", {}), **flags}
    try:
        samples = model.sample(args.n, seed=args.seed, **options)
    except ValueError as err:  # e.g. a label for an unconditional model
        raise SystemExit(f"keras-gen sample: {err}") from None
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
    from keras_gen.zoo import summary

    if args.action == "list":
        # A malformed card is reported and skipped; the well-formed entries still list.
        for problem in zoo.problems():
            print(f"keras-gen zoo list: skipped: {problem}", file=sys.stderr)
        print(summary.text_table(), end="")
    elif args.action == "show":
        entry = zoo.card(args.name)
        print(
            json.dumps(entry.to_dict(), indent=2) if args.json else summary.describe(entry),
            end="\n" if args.json else "",
        )
    elif args.action == "verify":
        print(f"{args.name}: sha256 ok ({zoo.verify(args.name)})")
    elif args.action == "gallery":
        from keras_gen.zoo import gallery

        print(f"wrote {gallery.write(args.out)} ({len(zoo.names())} entries)")


def cmd_ising(args):
    """The physics demo: Ising data, an RBM per temperature, thermodynamics vs exact."""
    from keras_gen.recipes.ising import demo

    result = demo(
        args.temperatures,
        L=args.L,
        n_samples=args.n_samples,
        epochs=args.epochs,
        n_hidden=args.hidden,
        seed=args.seed,
        out=args.out,
    )
    print(result["table"])
    print(f"figures: {', '.join(result['figures'])}")
    print(f"total time: {result['timings']['total_s']:.0f} s")


# `keras-gen evaluate NAME`: a quick check by default, the zoo table's protocol with --full.
EVALUATE_QUICK = {"samples": 2_000, "reference": 2_000, "nll_images": 100, "iwae_k": 100, "ais_betas": 1_000}
EVALUATE_FULL = {"samples": 10_000, "reference": None, "nll_images": 1_000, "iwae_k": 1_000, "ais_betas": None}


def cmd_evaluate(args):
    """One row of sample quality (and NLL) for a model, or the whole zoo table."""
    from keras_gen import evaluation

    protocol = EVALUATE_FULL if args.full or args.all else EVALUATE_QUICK
    given = {"samples": args.samples, "nll_images": args.nll_images, "iwae_k": args.iwae_k}
    settings = {key: given.get(key) or value for key, value in protocol.items()}
    if args.all:
        from keras_gen.evaluation.zoo_table import SECTION, evaluate_zoo

        path = evaluate_zoo(
            args.rows,
            args.report,
            samples=settings["samples"],
            seed=args.seed,
            nll_images=settings["nll_images"],
            iwae_k=settings["iwae_k"],
        )
        print(f"wrote section {SECTION!r} of {path} (rows in {args.rows})")
        return
    if not args.model:
        raise SystemExit("keras-gen evaluate: give a zoo name or a .keras file, or --all.")
    stage = evaluation.stage_lines(prefix="keras-gen evaluate: ")
    with stage(f"loading {args.model}"):
        model = load_model(args.model)
    reference = settings["reference"]
    try:
        row = evaluation.evaluate(
            model,
            n_samples=settings["samples"],
            seed=args.seed,
            likelihood=not args.no_nll,
            nll_images=settings["nll_images"],
            iwae_k=settings["iwae_k"],
            ais_betas=settings["ais_betas"],
            n_reference=reference,
            progress=stage,
        )
    except evaluation.NotEvaluable as err:
        raise SystemExit(f"keras-gen evaluate: {err}") from None
    if args.json:
        print(json.dumps(row, indent=2, default=float))
        return
    how = (
        "the zoo table's protocol"
        if protocol is EVALUATE_FULL
        else "a quick check; --full for the zoo table's protocol"
    )
    print(
        f"{row['model']}: {row['n_samples']:,} samples against {row['n_reference']:,} MNIST test images ({how})\n"
        f"{evaluation.format_row(row, targets=False)}\n{evaluation.format_verdict(row)}"
    )


# ------------------------------------------------------------------ parser
def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-gen", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--debug", action="store_true", help="on an error, show the full traceback instead of one line")
    parser.add_argument(
        "-v",
        "--verbose",
        dest="tensorflow_logs",
        action="store_true",
        help="show TensorFlow's own log messages (hidden by default)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a family with fit, leaving checkpoints and sample grids")
    train.add_argument(
        "family",
        nargs="?",
        default="vae",
        help="vae (default), rbm, diffusion, ebm, gan, dcgan, wgan or wgan_gp (WGANs split each batch over "
        "their 5 critic steps); for a zoo name, prints the command that reproduces it",
    )
    train.add_argument(
        "--dataset",
        default="ring8",
        help="ring8 (embedded, default), grid25, mnist, or a .npy/.npz file: points (n, d) or images "
        "(n, H, W[, C]), uint8 or floats in [0, 1]; a .npz may hold x_train and x_test (validation)",
    )
    train.add_argument("--epochs", type=positive_int, default=None)
    train.add_argument("--batch-size", type=positive_int, default=None)
    train.add_argument("--steps-per-epoch", type=positive_int, default=None)
    train.add_argument("--learning-rate", type=positive_float, default=None)
    train.add_argument("--latent-dim", type=positive_int, default=None)
    train.add_argument("--hidden", type=positive_int, default=None, help="hidden units (RBM; width of toy MLPs)")
    train.add_argument(
        "--k",
        type=positive_int,
        default=None,
        help="Gibbs steps per update (RBM; default 1 on MNIST, 10 on the 2-D toys); Langevin steps (ebm)",
    )
    train.add_argument(
        "--ema-momentum",
        type=float,
        default=None,
        metavar="M",
        help="GANs: sample from a moving average of the generator's weights (momentum M, e.g. 0.999)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=[0, 1, 2],
        help="1: progress bar (default), 2: one line per epoch, 0: silent",
    )
    train.add_argument("--out", default=None, help="run folder (default runs/FAMILY_DATASET); rerun to resume")
    train.add_argument(
        "--tensorboard",
        metavar="DIR",
        default=None,
        help="also write TensorBoard logs to DIR: the epoch losses and metrics, and the sample figure of each "
        'epoch (needs pip install "keras-gen[tensorboard]"; view with tensorboard --logdir DIR)',
    )
    train.add_argument(
        "--strategy",
        default="default",
        choices=["default", "mirrored", "multi-worker"],
        help="tf.distribute strategy: mirrored = this machine's GPUs (or --cpu-devices), "
        "multi-worker = the hosts in TF_CONFIG; --batch-size is the global batch",
    )
    train.add_argument(
        "--cpu-devices",
        type=positive_int,
        default=None,
        help="split the CPU into N logical devices (mirrored training without GPUs)",
    )
    train.set_defaults(func=cmd_train)

    sample = sub.add_parser("sample", help="draw samples and save a grid (PNG)")
    sample.add_argument("model", help="zoo name or .keras file")
    sample.add_argument("-n", type=positive_int, default=100)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="diffusion: reverse steps; ebm: Langevin steps (default for these and the options below: "
        "a zoo entry's card, else the model's own)",
    )
    sample.add_argument("--eta", type=float, default=None, help="diffusion: 0 DDIM (default), 1 DDPM")
    sample.add_argument("--label", type=int, default=None, help="diffusion: the class to draw (conditional models)")
    sample.add_argument("--guidance", type=float, default=None, help="diffusion: classifier-free guidance weight")
    sample.add_argument("--step-size", type=positive_float, default=None, help="ebm: Langevin step size")
    sample.add_argument("--method", choices=("ula", "mala"), default=None, help="ebm: Langevin sampler")
    sample.add_argument("--out", default=None)
    sample.add_argument("--npy", default=None, help="also save the samples as .npy")
    sample.set_defaults(func=cmd_sample)

    export = sub.add_parser("export", help="write a TensorFlow SavedModel with serving signatures")
    export.add_argument("model", help="zoo name or .keras file")
    export.add_argument("directory")
    export.add_argument("--overwrite", action="store_true")
    export.set_defaults(func=cmd_export)

    zoo_cmd = sub.add_parser(
        "zoo",
        help="list, show or verify the pretrained models; write their gallery",
        description="list: every entry with its size and headline metrics; show NAME: one entry "
        "(architecture, data, metrics, the command that reproduces it, files); verify NAME: its weights' sha256; "
        "gallery: write the page of pictures, metrics and commands (docs/zoo.md, from a checkout's root).",
    )
    zoo_cmd.add_argument("action", choices=["list", "show", "verify", "gallery"])
    zoo_cmd.add_argument("name", nargs="?")
    zoo_cmd.add_argument("--out", default=os.path.join("docs", "zoo.md"), help="with gallery: the page to write")
    zoo_cmd.add_argument("--json", action="store_true", help="with show: print the card's JSON as stored")
    zoo_cmd.set_defaults(func=cmd_zoo)

    ising_cmd = sub.add_parser("ising", help="physics demo: RBMs learn the 2-D Ising model; observables vs exact")
    ising_cmd.add_argument("--temperatures", type=float, nargs="+", default=[1.5, 2.269185314213022, 3.0])
    ising_cmd.add_argument("--L", type=positive_int, default=8, help="lattice size (<= 10 for the exact values)")
    ising_cmd.add_argument("--n-samples", type=positive_int, default=20000, help="Monte Carlo samples per temperature")
    ising_cmd.add_argument("--epochs", type=positive_int, default=50, help="CD-20 epochs per temperature")
    ising_cmd.add_argument("--hidden", type=positive_int, default=64)
    ising_cmd.add_argument("--seed", type=int, default=0)
    ising_cmd.add_argument("--out", default=os.path.join("runs", "ising"), help="folder for figures and results")
    ising_cmd.set_defaults(func=cmd_ising)

    evaluate = sub.add_parser("evaluate", help="sample quality (FD, score, KID, precision/recall) and NLL")
    evaluate.add_argument("model", nargs="?", help="zoo name or .keras file")
    evaluate.add_argument(
        "--all", action="store_true", help="every zoo entry with the --full protocol, table into BENCHMARKS.md"
    )
    evaluate.add_argument(
        "--full",
        action="store_true",
        help="the zoo table's protocol: 10,000 samples against all 10,000 test images, the NLL of 1,000 "
        "images (IWAE k=1,000; AIS with 14,500 temperatures); by default a quick check of a few minutes: "
        "2,000 samples against 2,000 test images, the NLL of 100 images (k=100; 1,000 temperatures)",
    )
    evaluate.add_argument("--samples", type=positive_int, default=None, help="generated samples (2,000; --full 10,000)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--no-nll", action="store_true", help="skip the test-set likelihood")
    evaluate.add_argument("--nll-images", type=positive_int, default=None, help="test images for the NLL (100; 1,000)")
    evaluate.add_argument(
        "--iwae-k", type=positive_int, default=None, help="importance samples for a VAE's NLL bound (100; 1,000)"
    )
    evaluate.add_argument("--json", action="store_true", help="print the whole row as JSON")
    evaluate.add_argument(
        "--rows",
        default=os.path.join("benchmarks", "evaluate_zoo.json"),
        help="with --all: the JSON file keeping every row (default: a checkout's "
        "benchmarks/evaluate_zoo.json, run from its root)",
    )
    evaluate.add_argument(
        "--report", default="BENCHMARKS.md", help="with --all: the markdown file whose evaluate_zoo section is written"
    )
    evaluate.set_defaults(func=cmd_evaluate)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "zoo" and args.action in ("show", "verify") and not args.name:
        raise SystemExit(f"keras-gen zoo {args.action}: a model name is required.")
    if args.command == "zoo" and args.json and args.action != "show":
        raise SystemExit(f"keras-gen zoo {args.action}: --json applies to show only.")
    from keras_gen import zoo
    from keras_gen.core.errors import DataError

    if args.command != "zoo" and not args.tensorflow_logs:  # the zoo's cards are JSON: no TensorFlow
        quiet_tensorflow()
    try:
        args.func(args)
    except (zoo.ZooError, zoo.WeightsIntegrityError, DataError, FileExistsError) as err:
        if args.debug:
            raise
        raise SystemExit(f"keras-gen {args.command}: {err}") from None
    except KeyboardInterrupt:
        if args.debug:
            raise
        raise SystemExit(f"keras-gen {args.command}: interrupted.") from None
    except Exception as err:
        # Anything else a user can hit (a damaged file, a full disk, a diverged run): one line,
        # the error's type and first line; --debug shows where it came from.
        if args.debug:
            raise
        text = str(err).strip()
        first_line = text.splitlines()[0] if text else ""
        raise SystemExit(
            f"keras-gen {args.command}: {type(err).__name__}: {first_line} (run with --debug for the traceback)"
        ) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
