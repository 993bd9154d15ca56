"""Exact and estimated log-likelihoods."""

from __future__ import annotations

import math

import numpy as np

from keras_gen.models.rbm import as_rbm_layer
from keras_gen.sampling import ais


def free_energy_numpy(layer, v):
    """F(v) in float64 numpy (exact reference computations)."""
    layer = as_rbm_layer(layer)
    p = layer.numpy_parameters()
    v = np.asarray(v, np.float64)
    if layer.visible_type == "bernoulli":
        return -v @ p["b"] - np.logaddexp(0.0, p["c"] + v @ p["W"]).sum(-1)
    var = p["sigma"] ** 2
    return (((v - p["b"]) ** 2) / (2 * var)).sum(-1) - np.logaddexp(0.0, p["c"] + (v / var) @ p["W"]).sum(-1)


def binary_states(n, start=0, stop=None):
    """Rows of all n-bit states (bit j of the row index in column j), float64."""
    stop = 2**n if stop is None else stop
    ints = np.arange(start, stop, dtype=np.int64)
    return ((ints[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(np.float64)


def _logsumexp(a):
    m = np.max(a)
    return m + np.log(np.sum(np.exp(a - m)))


def exact_log_partition(layer, over="auto", max_bits=20, batch_size=1 << 14):
    """log Z by enumerating one layer's 2^n states, the other summed out (float64).

    over: "visible" (Bernoulli only), "hidden", or "auto" (the smaller side;
    always "hidden" for Gaussian visibles, whose integral is closed-form).
    Refuses more than 2^max_bits states: use `log_likelihood(..., "ais")`.
    """
    layer = as_rbm_layer(layer)
    p = layer.numpy_parameters()
    gaussian = layer.visible_type == "gaussian"
    if over == "auto":
        over = "hidden" if gaussian or layer.n_hidden <= layer.n_visible else "visible"
    if over not in ("visible", "hidden"):
        raise ValueError(f"over must be 'auto', 'visible' or 'hidden', got {over!r}.")
    if gaussian and over == "visible":
        raise ValueError("Gaussian visibles are continuous: enumerate over='hidden'.")
    n = layer.n_visible if over == "visible" else layer.n_hidden
    if n > max_bits:
        raise ValueError(
            f"Enumerating 2^{n} {over} states is intractable (max_bits={max_bits}); "
            "estimate log Z with AIS instead (log_likelihood(..., method='ais'))."
        )
    W, b, c = p["W"], p["b"], p["c"]
    chunks = []
    for start in range(0, 2**n, batch_size):
        s = binary_states(n, start, min(2**n, start + batch_size))
        if over == "visible":
            vals = s @ b + np.logaddexp(0.0, c + s @ W).sum(-1)
        elif not gaussian:
            vals = s @ c + np.logaddexp(0.0, b + s @ W.T).sum(-1)
        else:
            # ∫ exp(-(v-b)²/(2σ²) + v m/σ²) dv = sqrt(2πσ²) exp(((b+m)² - b²)/(2σ²)), m = W h
            var = p["sigma"] ** 2
            m = s @ W.T
            vals = s @ c + (0.5 * np.log(2 * np.pi * var) + ((b + m) ** 2 - b**2) / (2 * var)).sum(-1)
        chunks.append(_logsumexp(vals))
    return float(_logsumexp(np.array(chunks)))


def exact_log_likelihood(layer, v, log_z=None, **kwargs):
    """log p(v) = -F(v) - log Z per example (float64 numpy; density for Gaussian)."""
    layer = as_rbm_layer(layer)
    if log_z is None:
        log_z = exact_log_partition(layer, **kwargs)
    return -free_energy_numpy(layer, v) - log_z


def ais_log_partition(model_or_layer, **kwargs):
    """`sampling.ais.ais_log_partition` for an RBM model or layer."""
    return ais.ais_log_partition(as_rbm_layer(model_or_layer), **kwargs)


def log_likelihood(model_or_layer, v, method="auto", max_bits=20, **ais_kwargs):
    """Mean log-likelihood of `v` (nats per example) with its error.

    method: "exact" (enumeration, see `exact_log_partition`), "ais",
    "raise" (reverse AIS, `sampling.ais.raise_log_likelihood`: per example, on the
    pessimistic side where AIS is on the optimistic one), or "auto" (exact
    when 2^min(n_visible, n_hidden) <= 2^max_bits states — n_hidden for
    Gaussian visibles — else AIS). Further keyword arguments go to
    `sampling.ais.ais_log_partition` or `sampling.ais.raise_log_likelihood`; their
    base-rate model is fit to `v` unless `base_data` is given.

    Returns a dict: `mean`, `stderr` (the error of the estimate from log Z:
    0 for exact; for RAISE the spread of the per-example estimates / sqrt(n)),
    `data_stderr` (std of log p over examples / sqrt(n)), `log_z` (None for
    RAISE), `method`, and `conservative` = mean - 3 stderr for AIS (computed
    with log Z + 3 sigma, the pessimistic side, since AIS tends to
    underestimate log Z; see `keras_gen.sampling.ais`), the mean itself for RAISE.
    """
    layer = as_rbm_layer(model_or_layer)
    v = np.asarray(v, np.float64)
    if v.ndim != 2 or v.shape[1] != layer.n_visible:
        raise ValueError(f"v must have shape (n, {layer.n_visible}), got {v.shape}.")
    tractable = (
        layer.n_hidden if layer.visible_type == "gaussian" else min(layer.n_visible, layer.n_hidden)
    ) <= max_bits
    if method == "auto":
        method = "exact" if tractable else "ais"
    if method == "exact":
        log_z, stderr, extra = exact_log_partition(layer, max_bits=max_bits), 0.0, {}
    elif method == "ais":
        ais_kwargs.setdefault("base_data", v)
        extra = ais.ais_log_partition(layer, **ais_kwargs)
        log_z, stderr = extra["log_z"], extra["stderr"]
        extra = {"ais": {k: val for k, val in extra.items() if k != "log_weights"}}
    elif method == "raise":
        ais_kwargs.setdefault("base_data", v)
        est = ais.raise_log_likelihood(layer, v, **ais_kwargs)
        return {
            "mean": est["mean"],
            "stderr": est["stderr"],
            "data_stderr": est["stderr"],
            "log_z": None,
            "conservative": est["mean"],
            "method": method,
            "log_p": est["log_p"],
            "raise": {"n_samples": est["n_samples"], "n_betas": est["n_betas"]},
        }
    else:
        raise ValueError(f"method must be 'auto', 'exact', 'ais' or 'raise', got {method!r}.")
    ll = -free_energy_numpy(layer, v) - log_z
    mean = float(ll.mean())
    return {
        "mean": mean,
        "stderr": float(stderr),
        "data_stderr": float(ll.std(ddof=1) / math.sqrt(len(ll))) if len(ll) > 1 else 0.0,
        "log_z": float(log_z),
        "conservative": mean - 3.0 * float(stderr),
        "method": method,
        "log_p": ll,  # per example, as for "raise"
        **extra,
    }


# ------------------------------------------------- densities known up to Z, in 2-D
def _grid(low, high, points):
    edges = np.linspace(low, high, points + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    xx, yy = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32)


def _grid_energies(energy_fn, grid, batch_size=1 << 16):
    return np.concatenate(
        [np.asarray(energy_fn(grid[i : i + batch_size]), np.float64) for i in range(0, len(grid), batch_size)]
    )


def grid_log_partition(energy_fn, low, high, points=1024):
    """log Z = log of the integral of exp(-E) over the square [low, high]^2, by the
    midpoint rule on a `points` x `points` grid (float64 accumulation).

    Exact up to the quadrature error: the rule's error falls as the square of
    the cell size for smooth E, so doubling `points` shows whether the grid
    resolves the density (the tests compare with Gaussians' closed form).
    Mass outside the square is not counted: choose it to hold the density.
    """
    energies = _grid_energies(energy_fn, _grid(low, high, points))
    return _logsumexp(-energies) + 2.0 * math.log((high - low) / points)


def grid_samples(energy_fn, low, high, points=1024, n=1000, seed=0):
    """n exact samples of exp(-E) on [low, high]^2, up to the grid: a cell drawn with
    its probability mass, a point uniform within it (float32)."""
    grid = _grid(low, high, points)
    energies = _grid_energies(energy_fn, grid)
    weights = np.exp(-(energies - energies.min()))
    rng = np.random.default_rng(seed)
    cells = rng.choice(len(grid), size=n, p=weights / weights.sum())
    cell = (high - low) / points
    return (grid[cells] + cell * (rng.random((n, 2)) - 0.5)).astype(np.float32)


def grid_log_likelihood(energy_fn, x, low, high, points=1024):
    """Per-point log p(x) = -E(x) - log Z of a 2-D energy, Z by `grid_log_partition`."""
    log_z = grid_log_partition(energy_fn, low, high, points)
    return -np.asarray(energy_fn(np.asarray(x, np.float32)), np.float64) - log_z, log_z
