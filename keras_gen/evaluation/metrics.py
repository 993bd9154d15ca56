"""Sample-quality metrics between two sets of points (numpy, float64).

Each function takes feature arrays of shape (n, d) (or class probabilities of
shape (n, classes)) and knows nothing of models; `keras_gen.evaluation`
supplies the features of the domain classifier. Conventions:

  * Fréchet distance (FD, Heusel et al. 2017, the "FID" with other
    features): ‖μ₁ - μ₂‖² + tr(Σ₁ + Σ₂ - 2 (Σ₁^½ Σ₂ Σ₁^½)^½) between the
    Gaussians fitted to the two sets. A sample estimate biased upwards at
    finite n, so compare numbers computed with the same sample counts.
  * Classifier score (the Inception score with another classifier, Salimans
    et al. 2016): exp(E_x KL(p(y|x) ‖ p(y))), with p(y) the mean of p(y|x).
    Between 1 and the number of classes; high when every sample is
    classified confidently and the classes are used evenly.
  * KID (Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial
    kernel k(x, y) = (xᵀy / d + 1)³, averaged over random subsets; its
    standard deviation over subsets says how much to trust it. Zero in
    expectation for two samples of the same distribution (can be negative).
  * Improved precision and recall (Kynkäänniemi et al. 2019): each set's
    manifold is the union of balls around its points with radius the
    distance to the k-th nearest neighbour within the set. Precision: the
    fraction of generated points inside the real manifold; recall: the
    fraction of real points inside the generated manifold.
  * MMD with a Gaussian kernel (note 002): k(x, y) = exp(-‖x - y‖² / (2 h²)),
    with h² = σ² · mean of the squared distances within the first set unless
    a bandwidth h is given.
"""

from __future__ import annotations

import math

import numpy as np

CHUNK = 2048  # rows per block of pairwise products: bounded memory at any n


def _as_2d(x, name="x"):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n, features), got shape {x.shape}.")
    if len(x) < 2:
        raise ValueError(f"{name} needs at least 2 rows, got {len(x)}.")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return x


def _same_width(x, y):
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"The two sets have different feature sizes: {x.shape[1]} and {y.shape[1]}.")


# ------------------------------------------------------------- Fréchet distance
def gaussian_statistics(features):
    """Mean and covariance (ddof=1) of the rows of `features`."""
    x = _as_2d(features, "features")
    return x.mean(0), np.cov(x, rowvar=False)


def _psd_sqrt(matrix):
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance_gaussians(mu1, sigma1, mu2, sigma2):
    """Squared 2-Wasserstein distance between N(mu1, sigma1) and N(mu2, sigma2).

    tr((Σ₁Σ₂)^½) is computed as tr((Σ₁^½ Σ₂ Σ₁^½)^½), a symmetric PSD matrix,
    so only symmetric eigendecompositions are needed (no complex sqrtm).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(
            f"Inconsistent shapes: means {mu1.shape}, {mu2.shape}; covariances {sigma1.shape}, {sigma2.shape}."
        )
    root1 = _psd_sqrt(sigma1)
    cross = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    trace_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    distance = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    return float(max(distance, 0.0))


def frechet_distance(x, y):
    """FD between the Gaussians fitted to the feature sets x and y."""
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    _same_width(x, y)
    return frechet_distance_gaussians(*gaussian_statistics(x), *gaussian_statistics(y))


# ------------------------------------------------------------ classifier score
def classifier_score(probabilities, splits=10, eps=1e-12):
    """exp(E_x KL(p(y|x) ‖ p(y))) on the whole set, and its std over `splits`
    disjoint parts (as the Inception score is usually reported)."""
    p = _as_2d(probabilities, "probabilities")
    if np.any(p < -1e-6) or not np.allclose(p.sum(1), 1.0, atol=1e-3):
        raise ValueError("probabilities must be rows of a probability distribution (>= 0, summing to 1).")

    def score(part):
        marginal = part.mean(0, keepdims=True)
        kl = np.sum(part * (np.log(part + eps) - np.log(marginal + eps)), axis=1)
        return float(np.exp(kl.mean()))

    parts = [score(part) for part in np.array_split(p, splits) if len(part)] if splits > 1 else []
    return {"score": score(p), "std": float(np.std(parts)) if parts else 0.0, "splits": splits}


def class_histogram(probabilities, n_classes=None):
    """Fraction of samples per predicted class (argmax), and the largest
    relative deviation from uniform, max_c |f_c · C - 1| (0.3 = ±30%)."""
    p = np.asarray(probabilities)
    labels = p.argmax(1) if p.ndim == 2 else p.astype(np.int64)
    n_classes = n_classes or (p.shape[1] if p.ndim == 2 else int(labels.max()) + 1)
    fractions = np.bincount(labels, minlength=n_classes) / len(labels)
    return {"fractions": fractions.tolist(), "max_deviation": float(np.max(np.abs(fractions * n_classes - 1.0)))}


# ------------------------------------------------------------------------- KID
def polynomial_kernel(x, y, degree=3, coef0=1.0):
    return (x @ y.T / x.shape[1] + coef0) ** degree


def _unbiased_mmd2(kxx, kyy, kxy):
    m, n = len(kxx), len(kyy)
    sum_xx = kxx.sum() - np.trace(kxx)
    sum_yy = kyy.sum() - np.trace(kyy)
    return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2 * kxy.mean()


def kernel_inception_distance(x, y, subsets=100, subset_size=1000, seed=0):
    """KID: unbiased polynomial-kernel MMD² averaged over random subsets.

    Returns {"kid", "std" (over subsets), "subsets", "subset_size"}; the
    subset size is capped at the smaller set.
    """
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    _same_width(x, y)
    size = int(min(subset_size, len(x), len(y)))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(subsets)):
        a = x[rng.choice(len(x), size, replace=False)]
        b = y[rng.choice(len(y), size, replace=False)]
        values.append(_unbiased_mmd2(polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(a, b)))
    values = np.asarray(values)
    return {
        "kid": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "subsets": int(subsets),
        "subset_size": size,
    }


# --------------------------------------------------------- precision and recall
def squared_distances(x, y):
    """‖x_i - y_j‖², clipped at 0 (rounding of the expanded form)."""
    d = np.sum(x**2, 1)[:, None] + np.sum(y**2, 1)[None, :] - 2 * x @ y.T
    return np.maximum(d, 0.0)


def knn_radii(x, k=3):
    """Squared distance of each row of x to its k-th nearest other row."""
    if not 1 <= k < len(x):
        raise ValueError(f"k must be in [1, {len(x) - 1}] for {len(x)} points, got {k}.")
    radii = np.empty(len(x))
    for start in range(0, len(x), CHUNK):
        d = squared_distances(x[start : start + CHUNK], x)
        # Column k of the sorted row: column 0 is the point itself (distance 0).
        radii[start : start + CHUNK] = np.partition(d, k, axis=1)[:, k]
    return radii


def manifold_coverage(points, support, support_radii):
    """Fraction of `points` inside at least one ball (support_i, radius_i)."""
    inside = np.zeros(len(points), dtype=bool)
    for start in range(0, len(points), CHUNK):
        d = squared_distances(points[start : start + CHUNK], support)
        inside[start : start + CHUNK] = np.any(d <= support_radii[None, :], axis=1)
    return float(inside.mean())


def precision_recall(real, generated, k=3, real_radii=None):
    """Improved precision and recall of `generated` against `real` (k-NN manifolds).

    `real_radii`: `knn_radii(real, k)` if already computed (a fixed reference
    set is compared with many generated sets).
    """
    real, generated = _as_2d(real, "real"), _as_2d(generated, "generated")
    _same_width(real, generated)
    if real_radii is None:
        real_radii = knn_radii(real, k)
    elif np.shape(real_radii) != (len(real),):
        raise ValueError(f"real_radii must have shape ({len(real)},), got {np.shape(real_radii)}.")
    return {
        "precision": manifold_coverage(generated, real, real_radii),
        "recall": manifold_coverage(real, generated, knn_radii(generated, k)),
        "k": int(k),
    }


# ---------------------------------------------------------------- Gaussian MMD
def _kernel_sums(x, y, gamma):
    """Σ_ij exp(-gamma ‖x_i - y_j‖²), in blocks."""
    total = 0.0
    for start in range(0, len(x), CHUNK):
        total += np.exp(-gamma * squared_distances(x[start : start + CHUNK], y)).sum()
    return total


def mean_squared_distance(x):
    """Mean of ‖x_i - x_j‖² over all pairs (i, j), diagonal included, in closed form."""
    centred = x - x.mean(0)
    return float(2 * np.sum(centred**2) / len(x))


def gaussian_mmd(x, y, sigma=1.0, bandwidth=None, unbiased=False):
    """MMD between samples x and y with the Gaussian kernel of note 002.

    k(x, y) = exp(-‖x - y‖² / (2 h²)) with h = `bandwidth` or, by default,
    h² = σ² · (mean squared distance within x) as in the note. The biased
    (V-statistic) estimate is the note's; `unbiased=True` drops the diagonal
    terms (then MMD² may come out negative; `mmd` is sqrt(max(MMD², 0))).
    """
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    _same_width(x, y)
    h2 = float(bandwidth) ** 2 if bandwidth is not None else sigma**2 * mean_squared_distance(x)
    if not h2 > 0:
        raise ValueError("The kernel bandwidth is zero: x has no spread; give bandwidth= explicitly.")
    gamma = 1.0 / (2 * h2)
    m, n = len(x), len(y)
    sum_xx, sum_yy, sum_xy = _kernel_sums(x, x, gamma), _kernel_sums(y, y, gamma), _kernel_sums(x, y, gamma)
    if unbiased:
        mmd2 = (sum_xx - m) / (m * (m - 1)) + (sum_yy - n) / (n * (n - 1)) - 2 * sum_xy / (m * n)
    else:
        mmd2 = sum_xx / m**2 + sum_yy / n**2 - 2 * sum_xy / (m * n)
    return {
        "mmd": math.sqrt(max(mmd2, 0.0)),
        "mmd2": float(mmd2),
        "bandwidth": math.sqrt(h2),
        "unbiased": bool(unbiased),
    }
