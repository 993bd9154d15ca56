"""Judging generative models of MNIST the same way, whatever their family.

Reads top to bottom:

1. The domain classifier: a small CNN trained on MNIST
   (`training/mnist_classifier.py`, ≥ 99.3% test accuracy), shipped in the
   zoo with family "classifier" and loaded through `keras_gen.zoo`, so its
   weights are sha256-checked like any zoo entry. Its penultimate layer
   (`features`, 128 ReLU units) is the feature space of the metrics.
2. `FeatureStatistics`: the classifier's view of a set of images (features,
   class probabilities), computed once per set.
3. `sample_quality`: Fréchet distance, classifier score, KID, precision and
   recall, class histogram and pixel MMD of a sample against a reference
   (the MNIST test set), see `keras_gen.metrics` for the maths.
4. `reference_rows`: the numbers that make a model's numbers meaningful, the
   training set against the test set (the floor) and corrupted test digits
   (noise, blur) that must score monotonically worse.
5. `test_log_likelihood`: the family's own likelihood estimate (VAE: the
   importance-weighted bound; RBM: AIS), in nats per image.
6. `evaluate`: one row of the zoo table for a model.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_gen import metrics
from keras_gen.base import register

CLASSIFIER_NAME = "mnist_classifier"
FEATURE_LAYER = "features"
FEATURE_DIM = 128
IMAGE_SHAPE = (28, 28, 1)
N_CLASSES = 10


# ============================================================ the classifier
@register
class DomainClassifier(keras.Model):
    """A small CNN for 28x28x1 images in [0, 1]: two 5x5 conv blocks, a
    128-unit ReLU feature layer, a 10-way softmax head (logits out).

    `features(x)` is the penultimate layer the sample-quality metrics use.
    """

    def __init__(self, filters=(32, 64), feature_dim=FEATURE_DIM, dropout=0.4, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.feature_dim = int(feature_dim)
        self.dropout = float(dropout)
        blocks = [keras.Input(IMAGE_SHAPE)]
        for f in self.filters:
            blocks += [layers.Conv2D(f, 5, use_bias=False), layers.BatchNormalization(),
                       layers.ReLU(), layers.MaxPooling2D()]
        blocks += [layers.Flatten(), layers.Dense(self.feature_dim, activation="relu", name=FEATURE_LAYER)]
        self.body = keras.Sequential(blocks, name="body")
        self.head_dropout = layers.Dropout(self.dropout)
        self.head = layers.Dense(N_CLASSES, name="logits")

    @property
    def data_shape(self):
        return IMAGE_SHAPE

    def build_for_data(self):
        if not self.built or not self.weights:
            self(keras.ops.zeros((1, *IMAGE_SHAPE)))
        return self

    def build(self, input_shape=None):
        self.head.build((None, self.feature_dim))
        self.built = True

    def call(self, x, training=False):
        return self.head(self.head_dropout(self.body(x, training=training), training=training))

    def features(self, x):
        return self.body(x, training=False)

    def get_config(self):
        return {"filters": list(self.filters), "feature_dim": self.feature_dim, "dropout": self.dropout,
                "name": self.name}


def make_mnist_classifier(filters=(32, 64), feature_dim=FEATURE_DIM, dropout=0.4, name=CLASSIFIER_NAME):
    """The zoo builder of the domain classifier."""
    return DomainClassifier(filters=filters, feature_dim=feature_dim, dropout=dropout, name=name)


class NotEvaluable(ValueError):
    """A model whose samples are not MNIST images (e.g. a 2-D toy model)."""


def load_classifier(name=CLASSIFIER_NAME):
    """The domain classifier from the zoo, its weights sha256-checked first."""
    from keras_gen import zoo

    entry = zoo.card(name)
    if entry.get("family") != "classifier":
        raise zoo.ZooError(f"Zoo entry {name!r} is a {entry.get('family')!r} model, not a classifier.")
    return zoo.load(name)


def classifier_available(name=CLASSIFIER_NAME):
    from keras_gen import zoo

    try:
        zoo.verify(name)
    except (zoo.ZooError, FileNotFoundError):
        return False
    return True


# ===================================================== images and their features
def to_images(samples, domain="unit", atol=1e-3):
    """Model output -> float32 images (n, 28, 28, 1) in [0, 1].

    Flat 784-vectors are reshaped; data in [-1, 1] (domain "symmetric", tanh
    generators) is mapped to [0, 1]. Anything else is refused with the reason.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2 and x.shape[1] == math.prod(IMAGE_SHAPE):
        x = x.reshape(-1, *IMAGE_SHAPE)
    elif x.ndim == 3 and x.shape[1:] == IMAGE_SHAPE[:2]:
        x = x[..., None]
    if x.shape[1:] != IMAGE_SHAPE:
        raise NotEvaluable(
            f"Samples of shape {x.shape[1:]} are not 28x28x1 (or flat 784) MNIST images; "
            "the MNIST metrics do not apply (2-D toy models are judged by keras_gen.data.mode_coverage)."
        )
    if domain == "symmetric":
        x = (x + 1.0) / 2.0
    if not np.all(np.isfinite(x)):
        raise ValueError("Samples contain NaN or infinite values.")
    low, high = float(x.min()), float(x.max())
    if low < -atol or high > 1 + atol:
        raise ValueError(f"Samples span [{low:.3g}, {high:.3g}], outside [0, 1] (domain {domain!r}); "
                         "state the model's data_domain ('symmetric' for [-1, 1]).")
    return np.clip(x, 0.0, 1.0)


def _classifier_fn(classifier):
    fn = classifier.__dict__.get("_evaluation_fn")
    if fn is None:
        @tf.function(reduce_retracing=True)
        def fn(x):
            features = classifier.body(x, training=False)
            return features, tf.nn.softmax(classifier.head(features))

        classifier.__dict__["_evaluation_fn"] = fn
    return fn


class ImageSet:
    """A set of [0, 1] images as the metrics see it: the classifier's
    features and class probabilities, and the raw pixels (flat)."""

    def __init__(self, images, classifier, label="", batch_size=500):
        self.images = to_images(images)
        self.label = label
        fn = _classifier_fn(classifier)
        features, probabilities = [], []
        for start in range(0, len(self.images), batch_size):
            f, p = fn(tf.constant(self.images[start:start + batch_size]))
            features.append(f.numpy())
            probabilities.append(p.numpy())
        self.features = np.concatenate(features).astype(np.float64)
        self.probabilities = np.concatenate(probabilities).astype(np.float64)

    def __len__(self):
        return len(self.images)

    def knn_radii(self, k=3):
        """Squared k-NN radii of the features (cached: a reference set serves many comparisons)."""
        cache = self.__dict__.setdefault("_radii", {})
        if k not in cache:
            cache[k] = metrics.knn_radii(self.features, k)
        return cache[k]

    @property
    def pixels(self):
        return self.images.reshape(len(self.images), -1)


_REFERENCE_CACHE = {}


def mnist_set(split, classifier, n=None, seed=0):
    """The first `n` (all if None) MNIST images of a split as an `ImageSet`
    (cached per classifier): the test split is the reference of every metric."""
    key = (id(classifier), split, n, seed)
    if key not in _REFERENCE_CACHE:
        from keras_gen import data

        x, _ = data.load_arrays("mnist", split, preprocessing="unit")
        if n is not None and n < len(x):
            x = x[np.random.default_rng(seed).choice(len(x), n, replace=False)]
        _REFERENCE_CACHE[key] = ImageSet(x, classifier, label=f"MNIST {split}")
    return _REFERENCE_CACHE[key]


# ============================================================== sample quality
def sample_quality(generated, reference, k=3, kid_subsets=100, kid_subset_size=1000, mmd_samples=2000,
                   seed=0):
    """Every sample-quality number of `generated` against `reference` (ImageSets).

    FD, KID and precision/recall live in the classifier's feature space
    (layer `features`); the classifier score and class histogram use its
    probabilities; the MMD (Gaussian kernel, bandwidth² = mean squared
    distance within the reference, note 002's biased estimate) uses raw
    pixels on the first `mmd_samples` images of each set.
    """
    score = metrics.classifier_score(generated.probabilities)
    kid = metrics.kernel_inception_distance(generated.features, reference.features, subsets=kid_subsets,
                                            subset_size=kid_subset_size, seed=seed)
    pr = metrics.precision_recall(reference.features, generated.features, k=k,
                                  real_radii=reference.knn_radii(k))
    histogram = metrics.class_histogram(generated.probabilities)
    m = min(mmd_samples, len(generated), len(reference))
    mmd = metrics.gaussian_mmd(reference.pixels[:m], generated.pixels[:m])
    return {
        "fd": metrics.frechet_distance(generated.features, reference.features),
        "score": score["score"], "score_std": score["std"],
        "kid": kid["kid"], "kid_std": kid["std"],
        "precision": pr["precision"], "recall": pr["recall"],
        "class_fractions": histogram["fractions"], "class_max_deviation": histogram["max_deviation"],
        "mmd": mmd["mmd"],
        "n_samples": len(generated), "n_reference": len(reference),
        "settings": {"feature_layer": f"{CLASSIFIER_NAME}/{FEATURE_LAYER} ({FEATURE_DIM} ReLU units)",
                     "pr_k": k, "kid_subsets": kid["subsets"], "kid_subset_size": kid["subset_size"],
                     "mmd_samples": m, "mmd_bandwidth": mmd["bandwidth"]},
    }


# ============================================================== reference rows
def add_noise(images, std, seed=0):
    """Gaussian pixel noise of standard deviation `std`, clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    return np.clip(images + std * rng.standard_normal(images.shape).astype(np.float32), 0.0, 1.0)


def blur(images, sigma):
    """A Gaussian blur of `sigma` pixels over each image's two spatial axes."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="constant").astype(np.float32)


NOISE_LEVELS = (0.1, 0.3, 0.6)
BLUR_SIGMAS = (0.5, 1.0, 2.0)


def corruptions(images, seed=0, noise_levels=NOISE_LEVELS, blur_sigmas=BLUR_SIGMAS):
    """{label: corrupted images}: noise of rising std, then blur of rising width."""
    out = {}
    for std in noise_levels:
        out[f"noise std {std}"] = add_noise(images, std, seed=seed)
    for sigma in blur_sigmas:
        out[f"blur sigma {sigma} px"] = blur(images, sigma)
    return out


def reference_rows(n=10_000, classifier=None, seed=0, **quality_kwargs):
    """Rows for the MNIST training set against the test set (the floor of
    every metric at this sample count) and for corrupted training digits."""
    classifier = classifier or load_classifier()
    test = mnist_set("test", classifier)
    train = mnist_set("train", classifier, n=n, seed=seed)
    rows = [{"model": f"reference: MNIST train ({len(train):,}) vs test", **sample_quality(train, test, seed=seed,
                                                                                            **quality_kwargs)}]
    for label, images in corruptions(train.images, seed=seed).items():
        corrupted = ImageSet(images, classifier, label=label)
        rows.append({"model": f"reference: train, {label}", **sample_quality(corrupted, test, seed=seed,
                                                                             **quality_kwargs)})
    return rows


# ================================================================= likelihoods
def family_of(model):
    card = getattr(model, "zoo_card", None) or {}
    if card.get("family"):
        return card["family"]
    return type(model).__name__.lower()


def test_log_likelihood(model, family=None, n_images=1000, iwae_k=1000, ais_chains=100, ais_betas=None,
                        seed=0):
    """Test-set negative log-likelihood in nats per image where the family
    has one, else None (GANs have no likelihood).

    The test set is MNIST test binarized once (seed 0, as in the zoo recipes);
    VAE: the importance-weighted bound with `iwae_k` samples on the first
    `n_images` images (an upper bound on the NLL); RBM: AIS estimate of
    log Z with `ais_chains` chains (its error is the stderr of log Z), with
    reverse AIS on the same images as the conservative side
    (`nll_conservative`: AIS and RAISE bracket the true value when both
    have converged).
    """
    from keras_gen import data

    family = family or family_of(model)
    if family not in ("vae", "rbm") or tuple(model.data_shape) not in ((784,), IMAGE_SHAPE):
        return None
    # Likelihoods of binarized digits: Bernoulli decoders and Bernoulli visibles only.
    if family == "vae" and getattr(model, "likelihood", None) != "bernoulli":
        return None
    if family == "rbm" and getattr(getattr(model, "rbm", None), "visible_type", None) != "bernoulli":
        return None
    x, _ = data.load_arrays("mnist", "test", preprocessing="binarized", seed=0,
                            flatten=tuple(model.data_shape) == (784,))
    x = x[:n_images]
    data_note = f"MNIST test, first {len(x):,} images, binarized once (seed 0)"
    if family == "vae":
        log_w = model.importance_weighted_log_likelihood(x, k=iwae_k, batch_size=50, chunk=100, seed=seed)
        return {"nll": -float(log_w.mean()), "nll_err": float(log_w.std(ddof=1) / math.sqrt(len(log_w))),
                "nll_method": f"IWAE bound, k={iwae_k} (upper bound on NLL; err = s.e.m. over images)",
                "nll_data": data_note, "nll_units": "nats per image"}
    from keras_gen import rbm

    result = rbm.log_likelihood(model, x, method="ais", n_chains=ais_chains, betas=ais_betas, seed=seed)
    # The pessimistic side on the same images: AIS alone can look far better
    # than the model is when its chains miss modes (seen on sharply peaked PCD models).
    reverse = rbm.log_likelihood(model, x, method="raise", n_samples=1, betas=ais_betas, seed=seed + 1)
    n_betas = result["ais"]["n_betas"]
    return {"nll": -result["mean"], "nll_err": result["stderr"],
            "nll_data_err": result["data_stderr"],
            "nll_conservative": -reverse["mean"], "nll_conservative_err": reverse["stderr"],
            "nll_method": f"AIS, {ais_chains} chains, {n_betas} temperatures "
                          "(err = s.e. of log Z; AIS tends to underestimate log Z, i.e. the NLL); "
                          f"reverse AIS (RAISE, {n_betas} temperatures, 1 chain per image) gives the "
                          "conservative side, nll_conservative",
            "nll_data": data_note, "nll_units": "nats per image"}


# ===================================================================== evaluate
def sample_kwargs_of(model):
    """The model's own sampling settings (from its zoo card), else its defaults."""
    card = getattr(model, "zoo_card", None) or {}
    return dict(card.get("sample_kwargs", {}))


def describe_sampling(model, kwargs):
    """The sampling settings in use: the given ones over generate_samples' defaults."""
    import inspect

    settings = {name: p.default for name, p in inspect.signature(model.generate_samples).parameters.items()
                if p.default is not inspect.Parameter.empty and p.default is not None}
    settings.update(kwargs)
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"


def generate(model, n, seed=0, batch_size=1000, **kwargs):
    """n samples in batches (bounded memory) and the generation rate.

    One small batch runs first so tracing/compilation is not timed; the rate
    is samples per second of wall time over the n samples.
    """
    model.sample(min(batch_size, n), seed=seed + 10_000, **kwargs)  # warm-up: traces and compiles
    start = time.perf_counter()
    parts = [model.sample(min(batch_size, n - i), seed=seed + i // batch_size, **kwargs)
             for i in range(0, n, batch_size)]
    seconds = time.perf_counter() - start
    return np.concatenate(parts), n / seconds


def evaluate(model_or_name, n_samples=10_000, seed=0, likelihood=True, classifier=None, nll_images=1000,
             iwae_k=1000, ais_chains=100, ais_betas=None, n_reference=None, **quality_kwargs):
    """One row of the zoo table for a zoo name or a model.

    The reference is the MNIST test set (all 10,000 images, or a random
    `n_reference` of them for quick checks).
    """
    from keras_gen import zoo

    if isinstance(model_or_name, str):
        entry = zoo.card(model_or_name)
        if entry.get("family") == "classifier":
            raise NotEvaluable(f"{model_or_name!r} is the domain classifier, not a generative model.")
        model = zoo.load(model_or_name)
    else:
        model = model_or_name
    shape = tuple(model.data_shape)
    if shape not in ((784,), IMAGE_SHAPE):
        raise NotEvaluable(f"{model.name} makes samples of shape {shape}, not MNIST images; "
                           "the MNIST metrics do not apply (2-D toy models: keras_gen.data.mode_coverage; "
                           "Ising models: keras_gen.ising_models.compare_with_exact).")
    classifier = classifier or load_classifier()
    kwargs = sample_kwargs_of(model)
    samples, rate = generate(model, n_samples, seed=seed, **kwargs)
    generated = ImageSet(to_images(samples, getattr(model, "data_domain", "unit")), classifier,
                         label=model.name)
    test = mnist_set("test", classifier, n=n_reference, seed=seed)
    row = {"model": getattr(model, "zoo_card", {}).get("name", model.name), "family": family_of(model),
           **sample_quality(generated, test, seed=seed, **quality_kwargs),
           "samples_per_second": rate, "sampling": describe_sampling(model, kwargs)}
    row.update(targets(row, classifier, seed=seed, n_reference=n_reference))
    if likelihood:
        nll = test_log_likelihood(model, row["family"], n_images=nll_images, iwae_k=iwae_k,
                                  ais_chains=ais_chains, ais_betas=ais_betas, seed=seed)
        row.update(nll or {"nll": None, "nll_method": "none: no tractable likelihood for this family"})
    return row


def targets(row, classifier, seed=0, n_reference=None):
    """The image-model targets: score ≥ 0.97 × the test set's own score,
    FD ≤ 2 × FD(train, test) at the same sample count, every class within
    ±30% of uniform."""
    test = mnist_set("test", classifier, n=n_reference, seed=seed)
    train = mnist_set("train", classifier, n=row["n_samples"], seed=seed)
    test_score = metrics.classifier_score(test.probabilities)["score"]
    fd_floor = metrics.frechet_distance(train.features, test.features)
    checks = {"score_ok": row["score"] >= 0.97 * test_score, "fd_ok": row["fd"] <= 2 * fd_floor,
              "classes_ok": row["class_max_deviation"] <= 0.3}
    return {"test_score": test_score, "fd_train_test": fd_floor, **checks, "targets_met": all(checks.values())}


def format_row(row):
    """One line of text for `keras-gen evaluate NAME`."""
    def f(key, fmt):
        return "—" if row.get(key) is None else format(row[key], fmt)

    nll = "—" if row.get("nll") is None else f"{row['nll']:.2f} ± {row.get('nll_err', 0):.2f} nats"
    return (f"{row['model']}: FD {f('fd', '.3g')} (train/test floor {f('fd_train_test', '.3g')}), "
            f"score {f('score', '.3f')} (test set {f('test_score', '.3f')}), "
            f"KID {f('kid', '.2e')} ± {f('kid_std', '.1e')}, precision {f('precision', '.3f')}, "
            f"recall {f('recall', '.3f')}, classes max dev {f('class_max_deviation', '.0%')}, "
            f"pixel MMD {f('mmd', '.3f')}, NLL {nll}, {f('samples_per_second', ',.0f')} samples/s, "
            f"n={row.get('n_samples')}; targets {'met' if row.get('targets_met') else 'NOT met'}")
