"""Annealed importance sampling of partition functions and likelihoods.

* `ais_log_partition(layer, ...)`: annealed importance sampling of log Z
  (Salakhutdinov & Murray, "On the quantitative analysis of deep belief
  networks", ICML 2008), vectorized over chains and compiled with XLA.

* `raise_log_likelihood(layer, v, ...)`: reverse AIS (Burda et al. 2015),
  per-example log-likelihoods that err on the pessimistic side, the check
  on AIS's optimistic one.

AIS in one paragraph. With the hidden units summed out, an RBM is an
unnormalized density over visibles p*_B(v) = exp(-F_B(v)). The base-rate
model A has no weights: its visibles are independent (biases b_A, zero or fit
to the data marginals) and its hiddens uniform, so
Z_A = 2^{n_hidden} * prod_i Z_i(b_A) is known. The path anneals the energy:
p_k ∝ p_A^{1-β_k} p_B^{β_k}, i.e. the RBM with W and hidden biases scaled by
β_k and visible biases interpolated, (1-β_k) b_A + β_k b_B:

    log p*_β(v) = (1-β) [-E_A^vis(v)] + β [-E_B^vis(v)] + Σ_j softplus(β x_j(v)),
    x(v) = c + in(v) W      (in(v) = v, or v/σ² for Gaussian visibles).

A chain starts from an exact sample of p_A; at step k it adds
log p*_k(v) - log p*_{k-1}(v) to its log weight and moves with one Gibbs
sweep that leaves p_k invariant (h ~ p_k(h|v), v ~ p_k(v|h)). Then
Z_B / Z_A ≈ mean_i w_i. Each step costs two matrix products per chain batch
(x(v) serves both the weight update and the hidden draw).

Error bars. `stderr` is the delta-method standard error of
log(mean w): sd(w) / (sqrt(n) * mean(w)), from the spread of the importance
weights. It is only as good as the weights' empirical spread: when a few
weights dominate, it underestimates the true error.

Which side is conservative. The AIS estimate of Z is unbiased, so by Jensen
E[log Ẑ] <= log Z and by Markov P(log Ẑ > log Z + b) < e^{-b}: AIS rarely
*over*estimates log Z and tends to *under*estimate it when chains mix
poorly. The result reports `log_z_lower = log Ẑ - 3·stderr` (the
three-sigma band Salakhutdinov & Murray report with their estimates) and
`log_z_upper = log Ẑ + 3·stderr`. Note the direction when turning log Z into
a test log-likelihood, log p(v) = -F(v) - log Z: an underestimated log Z
*over*states the likelihood, so the conservative (pessimistic) likelihood
uses `log_z_upper`; `keras_gen.evaluation.likelihood.log_likelihood` reports it that way.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import tensorflow as tf

from keras_gen.core.caching import compiled_once
from keras_gen.core.random import bernoulli, fold_in, seed_tensor

LOG2 = math.log(2.0)


def ais_betas(n_low=500, n_mid=4000, n_high=10000, low=0.5, mid=0.9):
    """The inverse temperatures of Salakhutdinov & Murray (2008): `n_low`
    spaced uniformly on [0, low), `n_mid` on [low, mid), `n_high` on
    [mid, 1]: 500 + 4000 + 10000 = 14,500 distributions by default, starting
    at β = 0 (the base model) and ending at β = 1 (the RBM)."""
    if min(n_low, n_mid, n_high) < 1:
        raise ValueError("Every segment of the beta schedule needs at least one point.")
    betas = np.concatenate(
        [
            np.linspace(0.0, low, n_low, endpoint=False),
            np.linspace(low, mid, n_mid, endpoint=False),
            np.linspace(mid, 1.0, n_high),
        ]
    )
    return betas


def _as_betas(betas):
    if betas is None:
        return ais_betas()
    if isinstance(betas, (int, np.integer)):
        # A total count: split as the paper does (~3.4% / 27.6% / 69%).
        n = int(betas)
        if n < 3:
            raise ValueError("AIS needs at least 3 inverse temperatures.")
        n_low = max(1, round(n * 500 / 14500))
        n_mid = max(1, round(n * 4000 / 14500))
        return ais_betas(n_low, n_mid, max(1, n - n_low - n_mid))
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 1 or len(betas) < 2:
        raise ValueError("betas must be a 1-D schedule with at least 2 entries.")
    if betas[0] != 0.0 or betas[-1] != 1.0 or np.any(np.diff(betas) < 0):
        raise ValueError("betas must increase from exactly 0 to exactly 1.")
    return betas


def ais_log_partition(layer, n_chains=100, betas=None, base_data=None, seed=0, jit_compile=True, return_weights=False):
    """Estimate log Z of an RBM layer by annealed importance sampling.

    Args:
      layer: an RBM layer (`keras_gen.models.rbm_layers.BernoulliRBM` or
        `GaussianBernoulliRBM`, or anything implementing the `ais_*` hooks
        and `hidden_activation`).
      n_chains: independent AIS runs, simulated together as one batch.
      betas: the schedule: None (the paper's 14,500), an int (that many,
        split like the paper), or an increasing array from 0 to 1.
      base_data: None for a base-rate model with zero visible biases
        (uniform visibles; for Gaussian visibles: mean 0), or an array of
        data whose marginals set the base model's visible biases (better:
        the base model is then closer to the RBM and the weights vary less).
      seed: int or (2,) seed tensor.

    Returns a dict of floats: `log_z`, `stderr` (delta method on the log of
    the mean weight), `log_z_lower` (= log_z - 3 stderr) and `log_z_upper`
    (= log_z + 3 stderr), `log_z_base`, `n_chains`, `n_betas`,
    `effective_sample_size` (Kish) and, with `return_weights=True`, the
    `log_weights` (numpy, one per chain). See the module docstring for which
    side is conservative.
    """
    betas = _as_betas(betas)
    n_chains = int(n_chains)
    if n_chains < 2:
        raise ValueError("AIS needs at least 2 chains to report a standard error.")
    base_bias, log_z_base, dtype = _base_model(layer, base_data)
    run = _ais_runner(layer, jit_compile)
    log_w = run(
        tf.constant(betas, dtype=dtype),
        tf.constant(base_bias, dtype=dtype),
        tf.constant(n_chains, tf.int32),
        seed_tensor(seed),
    ).numpy()
    if not np.all(np.isfinite(log_w)):
        raise FloatingPointError("AIS produced non-finite importance weights.")
    return summarize_log_weights(log_w, log_z_base, len(betas), return_weights)


def _base_model(layer, base_data):
    """The base-rate model of the AIS path: (visible biases b_A, log Z_A, dtype of the runs)."""
    base_bias = layer.ais_base_bias(base_data)
    log_z_base = float(layer.ais_base_log_partition(base_bias)) + layer.n_hidden * LOG2
    dtype = layer.variable_dtype if hasattr(layer, "variable_dtype") else "float32"
    return base_bias, log_z_base, dtype


def _log_mean_exp(a, axis=None):
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.mean(np.exp(a - m), axis=axis))


def summarize_log_weights(log_w, log_z_base=0.0, n_betas=None, return_weights=False):
    """log Z, its delta-method standard error and 3-sigma band from log weights."""
    log_w = np.asarray(log_w, dtype=np.float64)
    n = len(log_w)
    log_mean = _log_mean_exp(log_w)
    r = np.exp(log_w - log_mean)  # w_i / mean(w); mean(r) == 1
    stderr = float(np.std(r, ddof=1) / math.sqrt(n))
    log_z = float(log_z_base + log_mean)
    out = {
        "log_z": log_z,
        "stderr": stderr,
        "log_z_lower": log_z - 3.0 * stderr,
        "log_z_upper": log_z + 3.0 * stderr,
        "log_z_base": float(log_z_base),
        "n_chains": n,
        "n_betas": n_betas,
        "effective_sample_size": float(np.sum(r) ** 2 / np.sum(r**2)),
    }
    _warn_if_degenerate(out)
    if return_weights:
        out["log_weights"] = log_w
    return out


class AISWarning(UserWarning):
    """An AIS estimate that rests on too few effective chains to be trusted."""


def _warn_if_degenerate(result, min_fraction=0.1, min_chains=10):
    """Warn when the importance weights are dominated by a few chains: the log Z (and
    its standard error, computed from the same weights) is then unreliable."""
    ess, n = result["effective_sample_size"], result["n_chains"]
    if ess < max(min_chains, min_fraction * n):
        warnings.warn(
            f"AIS log Z rests on an effective sample size of {ess:.1f} of {n} chains: the estimate "
            f"(log Z {result['log_z']:.2f} ± {result['stderr']:.2f}) cannot be trusted. Run more chains "
            f"(n_chains) or more temperatures (n_betas, now {result['n_betas']}).",
            AISWarning,
            stacklevel=3,
        )


def softplus_difference(y, d):
    """softplus(y) - softplus(y - d), accurate for the small d of an annealing step.

    Written as -log1p(sigmoid(y) expm1(-d)) (an exact identity without the
    cancellation of two nearly equal softplus values), and directly when |d|
    is large.
    """
    small = tf.abs(d) < 1.0
    stable = -tf.math.log1p(tf.sigmoid(y) * tf.math.expm1(-tf.where(small, d, tf.zeros_like(d))))
    return tf.where(small, stable, tf.nn.softplus(y) - tf.nn.softplus(y - d))


def _ais_runner(layer, jit_compile):
    def run(betas, base_bias, n_chains, seed):
        v = layer.ais_sample_base(n_chains, base_bias, fold_in(seed, -1))
        n_steps = tf.shape(betas)[0]

        def body(k, v, log_w):
            beta, beta_prev = betas[k], betas[k - 1]
            dbeta = beta - beta_prev
            x = layer.hidden_activation(v)
            p = tf.sigmoid(beta * x)
            # log p*_k(v) - log p*_{k-1}(v): the visible part is linear in β,
            # the hidden part Σ_j softplus(β x_j) - softplus(β' x_j).
            delta = dbeta * layer.ais_visible_term(v, base_bias) + tf.reduce_sum(
                softplus_difference(beta * x, dbeta * x), axis=-1
            )
            log_w = log_w + tf.cast(delta, tf.float64)
            # One Gibbs sweep that leaves p_k invariant (x and p are reused).
            h = bernoulli(p, fold_in(seed, 2 * k))
            v = layer.ais_sample_visible(h, beta, base_bias, fold_in(seed, 2 * k + 1))
            return k + 1, v, log_w

        # The transition after the last (β = 1) update is wasted but harmless.
        _, _, log_w = tf.while_loop(
            lambda k, v, log_w: k < n_steps,
            body,
            (tf.constant(1), v, tf.zeros(tf.shape(v)[:1], tf.float64)),
        )
        return log_w

    return compiled_once(layer, "ais", run, jit_compile=jit_compile)


# ---------------------------------------------------------------- reverse AIS
def raise_log_likelihood(layer, v, n_samples=1, betas=None, base_data=None, seed=0, batch_size=500, jit_compile=True):
    """Per-example log p(v) by reverse annealed importance sampling (RAISE).

    Burda, Grosse & Salakhutdinov, "Accurate and conservative estimates of MRF
    log-likelihood using reverse annealing" (AISTATS 2015). Forward AIS
    estimates Z without bias, so its log-likelihoods err on the optimistic
    side when chains fail to reach the RBM's modes. RAISE errs the other way:
    it is an unbiased estimate of p_ann(v), the likelihood under an
    "annealing model" that draws hiddens h_0 ~ p_A, moves them through the
    AIS path's Gibbs kernels and emits v ~ p(v | h); p_ann -> p as the path
    gets longer, and log of the estimate is below log p_ann on average
    (Jensen). Agreement of the two brackets the true value.

    For each example, chains start from the exact posterior h ~ p(h | v) and
    run the path backwards (β from 1 to 0) with the same two-step Gibbs
    kernels as AIS, which are reversible for the hidden marginal f_β(h) =
    Σ_v p*_β(v, h). The log weight is

        log w = -F(v) - log Z_A - Σ_{k<K} [log f_{β_{k+1}}(h_k) - log f_{β_k}(h_k)],

    needing only the layer's `ais_hidden_log_ratio` hook besides AIS's.
    `n_samples` chains per example are combined by log-mean-exp.

    Returns a dict: `log_p` (numpy, one per example), `mean`, `stderr`
    (std of `log_p` / sqrt(n): data and estimator noise together),
    `n_samples`, `n_betas`.
    """
    betas = _as_betas(betas)
    n_samples = int(n_samples)
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
    x = np.asarray(v, np.float32)
    if x.ndim != 2 or x.shape[1] != layer.n_visible:
        raise ValueError(f"v must have shape (n, {layer.n_visible}), got {x.shape}.")
    base_bias, log_z_base, dtype = _base_model(layer, base_data)
    run = _raise_runner(layer, jit_compile)
    key = seed_tensor(seed)
    chunks = []
    for b, start in enumerate(range(0, len(x), int(batch_size))):
        rows = np.repeat(x[start : start + int(batch_size)], n_samples, axis=0)
        log_w = (
            run(
                tf.constant(rows, dtype=dtype),
                tf.constant(betas, dtype=dtype),
                tf.constant(base_bias, dtype=dtype),
                fold_in(key, b),
            )
            .numpy()
            .reshape(-1, n_samples)
        )
        chunks.append(_log_mean_exp(log_w, axis=1) - log_z_base)
    log_p = np.concatenate(chunks)
    if not np.all(np.isfinite(log_p)):
        raise FloatingPointError("RAISE produced non-finite importance weights.")
    return {
        "log_p": log_p,
        "mean": float(log_p.mean()),
        "stderr": float(log_p.std(ddof=1) / math.sqrt(len(log_p))) if len(log_p) > 1 else 0.0,
        "n_samples": n_samples,
        "n_betas": len(betas),
    }


def _raise_runner(layer, jit_compile):
    def run(v, betas, base_bias, seed):
        n_steps = tf.shape(betas)[0]
        h = bernoulli(tf.sigmoid(layer.hidden_activation(v)), fold_in(seed, -1))  # exact h ~ p(h | v)
        log_w = -tf.cast(layer.free_energy(v), tf.float64)

        def body(k, h, log_w):
            # h is h_k: pay the weight of stepping the path from β_{k+1} down to β_k ...
            log_w = log_w - tf.cast(layer.ais_hidden_log_ratio(h, betas[k + 1], betas[k], base_bias), tf.float64)
            # ... then draw h_{k-1} with the kernel that leaves f_{β_k} invariant (wasted at k = 0).
            v_k = layer.ais_sample_visible(h, betas[k], base_bias, fold_in(seed, 2 * k))
            h = bernoulli(tf.sigmoid(betas[k] * layer.hidden_activation(v_k)), fold_in(seed, 2 * k + 1))
            return k - 1, h, log_w

        _, _, log_w = tf.while_loop(lambda k, h, log_w: k >= 0, body, (n_steps - 2, h, log_w))
        return log_w

    return compiled_once(layer, "raise", run, jit_compile=jit_compile)
