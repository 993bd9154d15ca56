"""Out-of-distribution detection with a model's log-density.

A density model should give test digits a higher log p(x) than inputs that
are not digits. Every family with a tractable score exposes it as
`log_density(x)` (EBM: -E; RBM: -F; VAE: the ELBO), and the AUROC of that
score separating MNIST test digits from each outlier set is the measure:
1 is perfect, 0.5 is chance, and below 0.5 the model prefers the outliers
(the known failure of likelihoods on simple inputs, Nalisnick et al. 2019).

Outlier sets are made from the test digits themselves, so they share
their size and format: uniform noise, inverted digits (1 - x) and digits
rotated by 90 degrees. All images are given as intensities in [0, 1],
shape (n, 28, 28, 1); `to_model_domain` maps them to each model's input.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from keras_gen import data

OUTLIER_SETS = ("uniform noise", "inverted", "rotated 90")


def outliers(x_unit, seed=0):
    """{name: images} of the outlier sets built from test images `x_unit` in [0, 1]."""
    rng = np.random.default_rng(seed)
    return {
        "uniform noise": rng.random(x_unit.shape).astype(np.float32),
        "inverted": (1.0 - x_unit).astype(np.float32),
        "rotated 90": np.rot90(x_unit, k=1, axes=(1, 2)).copy(),
    }


def to_model_domain(model, x_unit):
    """Images in [0, 1] as `model` takes them: [-1, 1] for "symmetric" models, its shape."""
    x = data.from_unit_interval(x_unit, model.data_domain)
    return x.reshape((len(x), *model.data_shape))


def auroc(positive_scores, negative_scores):
    """P(score of a positive > score of a negative), ties counted half (the
    Mann-Whitney statistic; the area under the ROC curve)."""
    pos = np.asarray(positive_scores, np.float64)
    neg = np.asarray(negative_scores, np.float64)
    ranks = rankdata(np.concatenate([pos, neg]))  # ties get their average rank
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def log_densities(model, x_unit, batch_size=500):
    """`model.log_density` of images in [0, 1], in batches (float64 numpy)."""
    x = to_model_domain(model, x_unit)
    return np.concatenate(
        [np.asarray(model.log_density(x[i : i + batch_size]), np.float64) for i in range(0, len(x), batch_size)]
    )


def ood_scores(model, x_test_unit, seed=0):
    """{outlier set: AUROC of test digits against it} by `model.log_density`."""
    inliers = log_densities(model, x_test_unit)
    return {name: auroc(inliers, log_densities(model, x)) for name, x in outliers(x_test_unit, seed).items()}
