"""One row of the zoo's evaluation table: sample quality, targets and likelihood.

`evaluate(model_or_name)` draws samples, judges them against the MNIST test
set (`sample_quality`), checks the image-model targets, and adds the test-set
likelihood of models that have a tractable estimate. Which estimate is found
from what the model can do, not from its family's name: a model with
`importance_weighted_log_likelihood` gets the IWAE bound, an RBM (anything
`as_rbm_layer` accepts) gets AIS with reverse AIS beside it.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import sys
import time

import numpy as np

from keras_gen import zoo
from keras_gen.evaluation import metrics
from keras_gen.evaluation.sample_cache import SampleCache
from keras_gen.evaluation.sample_quality import (
    ImageSet,
    NotEvaluable,
    load_classifier,
    mnist_set,
    sample_quality,
    to_images,
)
from keras_gen.models.classifier import IMAGE_SHAPE

# The image-model targets (`targets`): score >= 0.97 x the test set's own score,
# FD <= 2 x FD(train, test) at the same sample count, every class within ±30% of uniform.
SCORE_FRACTION = 0.97
FD_FACTOR = 2.0
CLASS_DEVIATION = 0.3


def family_of(model):
    card = getattr(model, "zoo_card", None) or {}
    if card.get("family"):
        return card["family"]
    return type(model).__name__.lower()


def likelihood_kind(model):
    """Which test-set likelihood `model` supports on binarized MNIST: "iwae",
    "ais" or None, from what the model can do (and its data)."""
    from keras_gen.models.rbm import as_rbm_layer

    if tuple(model.data_shape) not in ((784,), IMAGE_SHAPE):
        return None
    # Likelihoods of binarized digits: Bernoulli decoders and Bernoulli visibles only.
    if hasattr(model, "importance_weighted_log_likelihood"):
        return "iwae" if getattr(model, "likelihood", None) == "bernoulli" else None
    try:
        layer = as_rbm_layer(model)
    except TypeError:
        return None
    return "ais" if layer.visible_type == "bernoulli" else None


def mnist_test_nll(model, n_images=1000, iwae_k=1000, ais_chains=100, ais_betas=None, seed=0):
    """Test-set negative log-likelihood in nats per image where the model has
    a tractable estimate (`likelihood_kind`), else None (GANs have none).

    The test set is MNIST test binarized once (seed 0, as in the zoo recipes);
    IWAE: the importance-weighted bound with `iwae_k` samples on the first
    `n_images` images (an upper bound on the NLL); AIS: estimate of log Z
    with `ais_chains` chains (its error is the stderr of log Z), with reverse
    AIS on the same images as the conservative side (`nll_conservative`: AIS
    and RAISE bracket the true value when both have converged).
    """
    from keras_gen import data
    from keras_gen.evaluation.likelihood import log_likelihood

    kind = likelihood_kind(model)
    if kind is None:
        return None
    x, _ = data.load_arrays(
        "mnist", "test", preprocessing="binarized", seed=0, flatten=tuple(model.data_shape) == (784,)
    )
    x = x[:n_images]
    data_note = f"MNIST test, first {len(x):,} images, binarized once (seed 0)"
    if kind == "iwae":
        log_w = model.importance_weighted_log_likelihood(x, k=iwae_k, batch_size=50, chunk=100, seed=seed)
        return {
            "nll": -float(log_w.mean()),
            "nll_err": float(log_w.std(ddof=1) / math.sqrt(len(log_w))),
            "nll_method": f"IWAE bound, k={iwae_k} (upper bound on NLL; err = s.e.m. over images)",
            "nll_data": data_note,
            "nll_units": "nats per image",
        }
    result = log_likelihood(model, x, method="ais", n_chains=ais_chains, betas=ais_betas, seed=seed)
    # The pessimistic side on the same images: AIS alone can look far better
    # than the model is when its chains miss modes (seen on sharply peaked PCD models).
    reverse = log_likelihood(model, x, method="raise", n_samples=1, betas=ais_betas, seed=seed + 1)
    n_betas = result["ais"]["n_betas"]
    return {
        "nll": -result["mean"],
        "nll_err": result["stderr"],
        "nll_data_err": result["data_stderr"],
        "nll_conservative": -reverse["mean"],
        "nll_conservative_err": reverse["stderr"],
        "nll_method": f"AIS, {ais_chains} chains, {n_betas} temperatures "
        "(err = s.e. of log Z; AIS tends to underestimate log Z, i.e. the NLL); "
        f"reverse AIS (RAISE, {n_betas} temperatures, 1 chain per image) gives the "
        "conservative side, nll_conservative",
        "nll_data": data_note,
        "nll_units": "nats per image",
    }


# ===================================================================== evaluate
def describe_sampling(model, kwargs):
    """The sampling settings in use: the given ones over generate_samples' defaults."""
    settings = {
        name: p.default
        for name, p in inspect.signature(model.generate_samples).parameters.items()
        if p.default is not inspect.Parameter.empty and p.default is not None
    }
    settings.update(kwargs)
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"


def generate(model, n, seed=0, batch_size=1000, cache=None, **kwargs):
    """n samples in batches (bounded memory, batch i seeded with seed + i) and
    the generation rate: samples per second of wall time drawing them.

    A warm-up batch runs first so tracing/compilation is not timed. With a
    `SampleCache`, each batch is kept as it is drawn and a later call reads
    the kept ones back (with the time they took): a long evaluation resumes.
    """
    folder = None if cache is None else cache.folder(seed, batch_size, kwargs)
    parts, seconds, warm = [], 0.0, False
    for index, start in enumerate(range(0, n, batch_size)):
        count = min(batch_size, n - start)
        kept = None if cache is None else cache.load(folder, index, count)
        if kept is None:
            if not warm:
                model.sample(min(batch_size, n), seed=seed + 10_000, **kwargs)  # traces and compiles
                warm = True
            started = time.perf_counter()
            batch = model.sample(count, seed=seed + index, **kwargs)
            took = time.perf_counter() - started
            kept = (batch, took) if cache is None else cache.save(folder, index, batch, took)
        parts.append(kept[0])
        seconds += kept[1]
    return np.concatenate(parts), n / seconds


def quality_sweep(
    model, settings, n_samples, classifier=None, seed=0, keys=("fd", "score", "precision", "recall"), cache=None
):
    """Sample quality of n samples for each sampler setting, every row against the
    same MNIST test features: `settings` maps a row's name to `sample` kwargs
    (e.g. guidance weights or chain lengths). Returns {row: {metric: value,
    "samples_per_second": rate}} and `best`, the row of lowest FD.

    Choose a setting on one seed and measure the chosen one on another: the
    lowest of several noisy FDs is biased low. `cache`: see `generate`.
    """
    classifier = classifier or load_classifier()
    test = mnist_set("test", classifier, seed=seed)
    domain = getattr(model, "data_domain", "unit")
    rows = {}
    for name, kwargs in settings.items():
        samples, rate = generate(model, n_samples, seed=seed, cache=cache, **kwargs)
        quality = sample_quality(ImageSet(to_images(samples, domain), classifier), test, seed=seed)
        rows[name] = {k: round(float(quality[k]), 4) for k in keys}
        rows[name]["samples_per_second"] = round(rate, 2)
    return {"n_samples": n_samples, "seed": seed, "rows": rows, "best": min(rows, key=lambda r: rows[r]["fd"])}


def evaluate(
    model_or_name,
    n_samples=10_000,
    seed=0,
    likelihood=True,
    classifier=None,
    nll_images=1000,
    iwae_k=1000,
    ais_chains=100,
    ais_betas=None,
    n_reference=None,
    sample_kwargs=None,
    progress=None,
    cache=None,
    **quality_kwargs,
):
    """One row of the zoo table for a zoo name or a model.

    The reference is the MNIST test set (all 10,000 images, or a random
    `n_reference` of them for quick checks). Samples are drawn with
    `sample_kwargs` (default: the zoo card's, e.g. a diffusion model's steps).
    `progress(label)`, if given, is a context manager around each stage
    (`stage_lines()` prints one line per stage). `cache` (a `SampleCache`, or
    a directory for one) keeps the samples as they are drawn, so a stopped
    evaluation resumes (see `generate`), and an evaluation of the same weights
    with the same protocol (a zoo recipe's finalize step) is read back.
    """
    stage = progress or _silent
    if isinstance(model_or_name, str):
        entry = zoo.card(model_or_name)
        if entry.family == "classifier":
            raise NotEvaluable(f"{model_or_name!r} is the domain classifier, not a generative model.")
        with stage(f"loading {model_or_name}"):
            model = zoo.load(model_or_name)
    else:
        model = model_or_name
    shape = tuple(model.data_shape)
    if shape not in ((784,), IMAGE_SHAPE):
        raise NotEvaluable(
            f"{model.name} makes samples of shape {shape}, not MNIST images; "
            "the MNIST metrics do not apply (2-D toy models: keras_gen.data.mode_coverage; "
            "Ising models: keras_gen.evaluation.ising.compare_with_exact)."
        )
    if classifier is None:
        with stage("loading the domain classifier"):
            classifier = load_classifier()
    kwargs = dict((getattr(model, "zoo_card", None) or {}).get("sample_kwargs", {}))
    if sample_kwargs is not None:
        kwargs = dict(sample_kwargs)
    if isinstance(cache, (str, os.PathLike)):
        cache = SampleCache.for_model(cache, model)
    with stage(f"drawing {n_samples:,} samples"):
        samples, rate = generate(model, n_samples, seed=seed, cache=cache, **kwargs)
    with stage(f"judging them against {n_reference or 10_000:,} MNIST test images"):
        generated = ImageSet(to_images(samples, getattr(model, "data_domain", "unit")), classifier, label=model.name)
        test = mnist_set("test", classifier, n=n_reference, seed=seed)
        quality = sample_quality(generated, test, seed=seed, **quality_kwargs)
    row = {
        "model": getattr(model, "zoo_card", {}).get("name", model.name),
        "family": family_of(model),
        **quality,
        "samples_per_second": rate,
        "sampling": describe_sampling(model, kwargs),
    }
    with stage(f"the targets' floor: {n_samples:,} MNIST training images against the test images"):
        row.update(targets(row, classifier, seed=seed, n_reference=n_reference))
    if likelihood:
        nll = None
        kind = likelihood_kind(model)
        if kind is not None:
            how = f"IWAE bound, k={iwae_k}" if kind == "iwae" else "AIS and reverse AIS"
            with stage(f"test-set likelihood ({how}) of {nll_images:,} images"):
                nll = mnist_test_nll(
                    model, n_images=nll_images, iwae_k=iwae_k, ais_chains=ais_chains, ais_betas=ais_betas, seed=seed
                )
        row.update(nll or {"nll": None, "nll_method": "none: no tractable likelihood for this family"})
    return row


@contextlib.contextmanager
def _silent(label):
    yield


def stage_lines(prefix="", stream=None):
    """A `progress` for `evaluate`: each stage's label when it starts and its
    time when it ends, on one line of `stream` (stderr by default)."""

    @contextlib.contextmanager
    def stage(label):
        out = stream or sys.stderr
        print(f"{prefix}{label} ...", end="", file=out, flush=True)
        started = time.perf_counter()
        try:
            yield
        except BaseException:
            print(" stopped", file=out, flush=True)
            raise
        print(f" {time.perf_counter() - started:.1f} s", file=out, flush=True)

    return stage


def conditional_accuracy(model, classifier=None, n_per_class=500, seed=0, cache=None, **sample_kwargs):
    """For a class-conditional model: the share of its samples of each class that
    the classifier assigns to that class (`label=k` passed to `sample`).

    Returns {"per_class": [10 accuracies], "mean": their mean}.
    """
    classifier = classifier or load_classifier()
    accuracies = []
    for label in range(10):
        samples, _ = generate(model, n_per_class, seed=seed + 100 * label, cache=cache, label=label, **sample_kwargs)
        images = to_images(samples, getattr(model, "data_domain", "unit"))
        probabilities = ImageSet(images, classifier).probabilities
        accuracies.append(float(np.mean(probabilities.argmax(1) == label)))
    return {"per_class": [round(a, 4) for a in accuracies], "mean": round(float(np.mean(accuracies)), 4)}


def targets(row, classifier, seed=0, n_reference=None):
    """The image-model targets: score ≥ 0.97 × the test set's own score,
    FD ≤ 2 × FD(train, test) at the same sample count, every class within
    ±30% of uniform (`SCORE_FRACTION`, `FD_FACTOR`, `CLASS_DEVIATION`)."""
    test = mnist_set("test", classifier, n=n_reference, seed=seed)
    train = mnist_set("train", classifier, n=row["n_samples"], seed=seed)
    test_score = metrics.classifier_score(test.probabilities)["score"]
    fd_floor = metrics.frechet_distance(train.features, test.features)
    checks = {
        "score_ok": row["score"] >= SCORE_FRACTION * test_score,
        "fd_ok": row["fd"] <= FD_FACTOR * fd_floor,
        "classes_ok": row["class_max_deviation"] <= CLASS_DEVIATION,
    }
    return {"test_score": test_score, "fd_train_test": fd_floor, **checks, "targets_met": all(checks.values())}


def verdict(row):
    """Each target of a row of `evaluate`: (target, measured, required, passed)."""
    return [
        (
            "classifier score",
            f"{row['score']:.3f}",
            f"≥ {SCORE_FRACTION * row['test_score']:.3f} ({SCORE_FRACTION:g} × the test set's {row['test_score']:.3f})",
            row["score_ok"],
        ),
        (
            "Fréchet distance",
            f"{row['fd']:.3g}",
            f"≤ {FD_FACTOR * row['fd_train_test']:.3g} ({FD_FACTOR:g} × train vs test, {row['fd_train_test']:.3g})",
            row["fd_ok"],
        ),
        (
            "class balance",
            f"±{row['class_max_deviation']:.0%}",
            f"≤ ±{CLASS_DEVIATION:.0%} of uniform, every class",
            row["classes_ok"],
        ),
    ]


def format_verdict(row):
    """The targets as a table, one per line with pass/FAIL, and a last line naming the failed ones."""
    checks = verdict(row)
    widths = [max(len(check[i]) for check in checks) for i in range(3)]
    lines = ["targets:"]
    for *cells, passed in checks:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths)) + ("  pass" if passed else "  FAIL"))
    failed = [target for target, _, _, passed in checks if not passed]
    met = len(checks) - len(failed)
    lines.append(
        f"verdict: all {len(checks)} targets met"
        if not failed
        else f"verdict: {met} of {len(checks)} targets met; not met: {', '.join(failed)}"
    )
    return "\n".join(lines)


def format_row(row, targets=True):
    """One line of text for `keras-gen evaluate NAME`: the numbers, and unless
    `targets=False` whether the targets are met (naming those that are not)."""

    def f(key, fmt):
        return "—" if row.get(key) is None else format(row[key], fmt)

    nll = "—" if row.get("nll") is None else f"{row['nll']:.2f} ± {row.get('nll_err', 0):.2f} nats"
    return (
        f"{row['model']}: FD {f('fd', '.3g')} (train/test floor {f('fd_train_test', '.3g')}), "
        f"score {f('score', '.3f')} (test set {f('test_score', '.3f')}), "
        f"KID {f('kid', '.2e')} ± {f('kid_std', '.1e')}, precision {f('precision', '.3f')}, "
        f"recall {f('recall', '.3f')}, classes max dev {f('class_max_deviation', '.0%')}, "
        f"pixel MMD {f('mmd', '.3f')}, NLL {nll}, {f('samples_per_second', ',.0f')} samples/s, "
        f"n={row.get('n_samples')}"
    ) + (_targets_note(row) if targets else "")


def _targets_note(row):
    if "targets_met" not in row:
        return ""
    failed = [target for target, _, _, passed in verdict(row) if not passed]
    return "; targets met" if not failed else f"; targets NOT met: {', '.join(failed)}"
