"""Sample quality of MNIST models, judged the same way whatever their family.

1. The domain classifier's view of a set of images (`ImageSet`: features and
   class probabilities, computed once per set).
2. `sample_quality`: Fréchet distance, classifier score, KID, precision and
   recall, class histogram and pixel MMD of a sample against a reference
   (the MNIST test set); the maths is in `keras_gen.evaluation.metrics`.
3. `reference_rows`: the numbers that make a model's numbers meaningful, the
   training set against the test set (the floor) and corrupted test digits
   (noise, blur) that must score monotonically worse.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from keras_gen import data, zoo
from keras_gen.evaluation import metrics
from keras_gen.models.classifier import CLASSIFIER_NAME, FEATURE_DIM, FEATURE_LAYER, IMAGE_SHAPE


class NotEvaluable(ValueError):
    """A model whose samples are not MNIST images (e.g. a 2-D toy model)."""


def load_classifier(name=CLASSIFIER_NAME):
    """The domain classifier from the zoo, its weights sha256-checked first."""
    entry = zoo.card(name)
    if entry.family != "classifier":
        raise zoo.ZooError(f"Zoo entry {name!r} is a {entry.family!r} model, not a classifier.")
    return zoo.load(name)


def classifier_available(name=CLASSIFIER_NAME):
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
    x = data.to_unit_interval(x, domain)
    if not np.all(np.isfinite(x)):
        raise ValueError("Samples contain NaN or infinite values.")
    low, high = float(x.min()), float(x.max())
    if low < -atol or high > 1 + atol:
        raise ValueError(
            f"Samples span [{low:.3g}, {high:.3g}], outside [0, 1] (domain {domain!r}); "
            "state the model's data_domain ('symmetric' for [-1, 1])."
        )
    return np.clip(x, 0.0, 1.0)


class ImageSet:
    """A set of [0, 1] images as the metrics see it: the classifier's
    features and class probabilities, and the raw pixels (flat)."""

    def __init__(self, images, classifier, label="", batch_size=500):
        self.images = to_images(images)
        self.label = label
        self._radii = {}
        features, probabilities = [], []
        for start in range(0, len(self.images), batch_size):
            f, p = classifier.features_and_probabilities(tf.constant(self.images[start : start + batch_size]))
            features.append(f.numpy())
            probabilities.append(p.numpy())
        self.features = np.concatenate(features).astype(np.float64)
        self.probabilities = np.concatenate(probabilities).astype(np.float64)

    def __len__(self):
        return len(self.images)

    def knn_radii(self, k=3):
        """Squared k-NN radii of the features (cached: a reference set serves many comparisons)."""
        if k not in self._radii:
            self._radii[k] = metrics.knn_radii(self.features, k)
        return self._radii[k]

    @property
    def pixels(self):
        return self.images.reshape(len(self.images), -1)


_REFERENCE_CACHE = {}


def mnist_set(split, classifier, n=None, seed=0):
    """The first `n` (all if None) MNIST images of a split as an `ImageSet`
    (cached per classifier): the test split is the reference of every metric."""
    key = (id(classifier), split, n, seed)
    if key not in _REFERENCE_CACHE:
        x, _ = data.load_arrays("mnist", split, preprocessing="unit")
        if n is not None and n < len(x):
            x = x[np.random.default_rng(seed).choice(len(x), n, replace=False)]
        _REFERENCE_CACHE[key] = ImageSet(x, classifier, label=f"MNIST {split}")
    return _REFERENCE_CACHE[key]


# ============================================================== sample quality
def sample_quality(generated, reference, k=3, kid_subsets=100, kid_subset_size=1000, mmd_samples=2000, seed=0):
    """Every sample-quality number of `generated` against `reference` (ImageSets).

    FD, KID and precision/recall live in the classifier's feature space
    (layer `features`); the classifier score and class histogram use its
    probabilities; the MMD (Gaussian kernel, bandwidth² = mean squared
    distance within the reference, note 002's biased estimate) uses raw
    pixels on the first `mmd_samples` images of each set.
    """
    score = metrics.classifier_score(generated.probabilities)
    kid = metrics.kernel_inception_distance(
        generated.features, reference.features, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
    )
    pr = metrics.precision_recall(reference.features, generated.features, k=k, real_radii=reference.knn_radii(k))
    histogram = metrics.class_histogram(generated.probabilities)
    m = min(mmd_samples, len(generated), len(reference))
    mmd = metrics.gaussian_mmd(reference.pixels[:m], generated.pixels[:m])
    return {
        "fd": metrics.frechet_distance(generated.features, reference.features),
        "score": score["score"],
        "score_std": score["std"],
        "kid": kid["kid"],
        "kid_std": kid["std"],
        "precision": pr["precision"],
        "recall": pr["recall"],
        "class_fractions": histogram["fractions"],
        "class_max_deviation": histogram["max_deviation"],
        "mmd": mmd["mmd"],
        "n_samples": len(generated),
        "n_reference": len(reference),
        "settings": {
            "feature_layer": f"{CLASSIFIER_NAME}/{FEATURE_LAYER} ({FEATURE_DIM} ReLU units)",
            "pr_k": k,
            "kid_subsets": kid["subsets"],
            "kid_subset_size": kid["subset_size"],
            "mmd_samples": m,
            "mmd_bandwidth": mmd["bandwidth"],
        },
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
    rows = [
        {
            "model": f"reference: MNIST train ({len(train):,}) vs test",
            **sample_quality(train, test, seed=seed, **quality_kwargs),
        }
    ]
    for label, images in corruptions(train.images, seed=seed).items():
        corrupted = ImageSet(images, classifier, label=label)
        rows.append(
            {"model": f"reference: train, {label}", **sample_quality(corrupted, test, seed=seed, **quality_kwargs)}
        )
    return rows
