"""Observables of Ising samples with jackknife errors, and autocorrelation times.

Definitions (finite lattice, no symmetry breaking, so ``|m|`` replaces ``m``; the lattice
conventions are in :mod:`keras_gen.physics.lattice`):

  - ``energy``: ``<e>``
  - ``abs_magnetization``: ``<|m|>``
  - ``magnetization_sq``: ``<m^2>``
  - ``specific_heat``: ``C = N (<e^2> - <e>^2) / T^2``
  - ``susceptibility``: ``chi = N (<m^2> - <|m|>^2) / T``, the usual finite-lattice
    definition: on a finite torus ``<m> = 0`` exactly, so the ``<m>^2`` of the
    infinite-volume formula is replaced by ``<|m|>^2``. Below ``Tc`` this tends to the
    thermodynamic susceptibility; above ``Tc`` it is smaller than ``N <m^2> / T``
    (by the factor ``1 - 2/pi`` deep in the Gaussian regime).
  - ``binder_cumulant``: ``U = 1 - <m^4> / (3 <m^2>^2)``
  - ``correlation``: ``G(r) = <s_i s_{i+r}>`` averaged over sites and both lattice axes,
    ``r = 0 .. L // 2`` (not connected: ``<s> = 0`` on the finite torus)
"""

from __future__ import annotations

import numpy as np

from keras_gen.physics.lattice import as_pm1, correlation_function, lattice_energy, lattice_magnetization

OBSERVABLES = (
    "energy",
    "abs_magnetization",
    "magnetization_sq",
    "specific_heat",
    "susceptibility",
    "binder_cumulant",
    "correlation",
)


def integrated_autocorrelation_time(x, c=5.0):
    """Integrated autocorrelation time with Sokal's automatic windowing.

    ``tau = 1/2 + sum_{t=1}^{W} rho(t)``, with ``W`` the smallest window such that
    ``W >= c * tau(W)`` (Sokal 1997; ``c = 5`` as in ``emcee``). With this convention
    independent samples have ``tau = 1/2`` and the variance of a mean of ``n``
    correlated samples is ``2 tau sigma^2 / n``, so samples ``2 tau`` apart are roughly
    independent.

    ``x``: shape ``(n,)`` for one series or ``(n_chains, n)`` for several chains of the
    same process; the chains' autocorrelation functions are averaged (each about its
    own mean) before windowing, which is much less noisy than averaging per-chain taus.
    A constant series has no measurable correlation and returns ``0.5``. The estimate
    is only reliable for series longer than about ``50 tau``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"x must have shape (n,) or (n_chains, n) with n >= 2, got {x.shape}.")
    n = x.shape[1]
    x = x - x.mean(axis=1, keepdims=True)
    # FFT autocovariance, zero-padded to 2n so it is the linear, not circular, one.
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(x, n=size, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n].mean(axis=0)
    if acov[0] <= 1e-14 * max(1.0, np.abs(x).max() ** 2):
        return 0.5
    rho = acov / acov[0]
    taus = 0.5 + np.cumsum(rho[1:])  # taus[W-1] = tau(W)
    windows = np.arange(1, n)
    ok = windows >= c * taus
    W = int(np.argmax(ok)) if ok.any() else n - 2
    return float(taus[W])


def _derived(means, N, T):
    """Observables from sample means of the primaries; works on stacked means (leading axis)."""
    e, e2, am, m2, m4, g = means
    return {
        "energy": e,
        "abs_magnetization": am,
        "magnetization_sq": m2,
        "specific_heat": N * (e2 - e * e) / T**2,
        "susceptibility": N * (m2 - am * am) / T,
        "binder_cumulant": 1.0 - m4 / (3.0 * m2 * m2),
        "correlation": g,
    }


def observables(spins_pm1, T, n_blocks=20):
    """Observables of samples at one temperature ``T``, with jackknife errors.

    ``spins_pm1``: shape ``(n_samples, L, L)`` or ``(n_samples, L*L)``, values ±1 or
    ``{0, 1}`` (see :func:`as_pm1`), all sampled at temperature ``T`` (which enters
    ``C`` and ``chi``). Returns ``{name: (value, error)}`` for the names in
    :data:`OBSERVABLES` (definitions in the module docstring); ``correlation`` holds
    arrays over ``r = 0 .. L // 2``.

    Errors: the samples are cut into ``n_blocks`` contiguous blocks (binning, so that
    correlations shorter than a block do not bias the error; a remainder of fewer than
    ``n_blocks`` samples at the end is dropped) and the jackknife over blocks gives
    each observable's error, including the non-linear ``C``, ``chi`` and ``U``. Values
    are the jackknife bias-corrected estimates ``n f - (n - 1) mean_i f_(i)``, which
    removes the ``O(1/n_samples)`` bias of the variance-type observables; for the plain
    means this is just the sample mean.
    """
    s = as_pm1(spins_pm1)
    T = float(np.asarray(T))
    if not np.isfinite(T) or T <= 0:
        raise ValueError(f"T must be a finite positive temperature, got {T}.")
    n, L = s.shape[0], s.shape[1]
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) or n_blocks < 2:
        raise ValueError(f"n_blocks must be an integer >= 2, got {n_blocks!r}.")
    if n < n_blocks:
        raise ValueError(f"Need at least n_blocks={n_blocks} samples, got {n}.")
    N = L * L
    e = lattice_energy(s) / N
    m = lattice_magnetization(s) / N
    g = correlation_function(s)
    prim = np.column_stack([e, e * e, np.abs(m), m * m, m**4, g])
    b = n // n_blocks
    block_sums = prim[: b * n_blocks].reshape(n_blocks, b, -1).sum(axis=1)
    total = block_sums.sum(axis=0)
    full_mean = total / (b * n_blocks)
    jack_means = (total - block_sums) / (b * (n_blocks - 1))

    def split(mm):
        return (mm[..., 0], mm[..., 1], mm[..., 2], mm[..., 3], mm[..., 4], mm[..., 5:])

    full = _derived(split(full_mean), N, T)
    jack = _derived(split(jack_means), N, T)
    out = {}
    for name in OBSERVABLES:
        fj = np.asarray(jack[name])
        fbar = fj.mean(axis=0)
        value = n_blocks * np.asarray(full[name]) - (n_blocks - 1) * fbar
        error = np.sqrt((n_blocks - 1) / n_blocks * ((fj - fbar) ** 2).sum(axis=0))
        if name == "correlation":
            out[name] = (value, error)
        else:
            out[name] = (float(value), float(error))
    return out
