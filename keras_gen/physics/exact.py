"""Exact thermodynamics of the 2-D Ising model: references the samples are judged against.

* :func:`exact_enumeration` and :func:`density_of_states`: all ``2**(L*L)`` states of the
  ``L x L`` torus (``L <= 4``);
* :func:`transfer_matrix`: row transfer matrices (``L <= 10``), exact on the torus,
  including the magnetization distribution;
* :func:`onsager_energy`, :func:`onsager_magnetization`: the infinite lattice (with
  :data:`~keras_gen.physics.lattice.TC`).

Observables are those of :mod:`keras_gen.physics.observables`, with the same definitions.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import ellipkm1, logsumexp

from keras_gen.physics.lattice import (
    TC,
    as_temperatures,
    check_lattice_size,
    correlation_function,
    lattice_energy,
    lattice_magnetization,
)


# ---------------------------------------------------------------- enumeration
@functools.lru_cache(maxsize=4)
def _all_states(L):
    N = L * L
    codes = np.arange(2**N, dtype=np.int64)
    bits = (codes[:, None] >> np.arange(N)) & 1
    spins = (2 * bits - 1).astype(np.int8).reshape(-1, L, L)
    return lattice_energy(spins), lattice_magnetization(spins), correlation_function(spins)


def density_of_states(L):
    """Exact joint density of states of the ``L x L`` torus by enumeration (``L <= 4``).

    Returns ``(E, M, g)``: the distinct (total energy, total magnetization) pairs and
    their number of configurations ``g`` (int64, summing to ``2**(L*L)``).
    """
    L = check_lattice_size(L, 2, 4)
    E, M, _ = _all_states(L)
    pairs, counts = np.unique(np.stack([E, M], axis=1), axis=0, return_counts=True)
    return pairs[:, 0], pairs[:, 1], counts.astype(np.int64)


def _scalarize(result, scalar):
    if not scalar:
        return result
    return {k: (v[0] if np.ndim(v) > 1 else float(v[0])) for k, v in result.items()}


def exact_enumeration(L, T):
    """Exact finite-lattice thermodynamics of the ``L x L`` torus by summing all
    ``2**(L*L)`` configurations (``2 <= L <= 4``; ``L = 4`` is 65536 states).

    ``T`` scalar or 1-D. Returns a dict with the
    :data:`~keras_gen.physics.observables.OBSERVABLES` (same definitions as
    :func:`keras_gen.physics.observables.observables`; ``correlation`` has a trailing
    axis over ``r = 0 .. L // 2``) and ``log_z``. Boltzmann weights are handled in log space with
    ``logsumexp`` so low temperatures do not overflow.
    """
    L = check_lattice_size(L, 2, 4)
    t = as_temperatures(T)
    scalar = t.ndim == 0
    t = np.atleast_1d(t)
    N = L * L
    E, M, G = _all_states(L)
    logw = -E[None, :] / t[:, None]
    log_z = logsumexp(logw, axis=1)
    p = np.exp(logw - log_z[:, None])
    e, am, m2 = E / N, np.abs(M) / N, (M / N) ** 2
    mean_e = p @ e
    mean_am = p @ am
    mean_m2 = p @ m2
    # Central moments directly (not <x^2> - <x>^2) to avoid cancellation at low T.
    var_e = np.einsum("ts,ts->t", p, (e[None, :] - mean_e[:, None]) ** 2)
    var_am = np.einsum("ts,ts->t", p, (am[None, :] - mean_am[:, None]) ** 2)
    result = {
        "energy": mean_e,
        "abs_magnetization": mean_am,
        "magnetization_sq": mean_m2,
        "specific_heat": N * var_e / t**2,
        "susceptibility": N * var_am / t,
        "binder_cumulant": 1.0 - (p @ m2**2) / (3.0 * mean_m2**2),
        "correlation": p @ G,
        "log_z": log_z,
    }
    return _scalarize(result, scalar)


# ---------------------------------------------------------------- transfer matrix
def _row_orbits(L):
    """Representatives of row configurations up to cyclic shifts, and orbit sizes."""
    codes = np.arange(2**L)
    mask = (1 << L) - 1
    rots = np.stack([((codes >> k) | (codes << (L - k))) & mask for k in range(L)])
    canon = rots.min(axis=0)
    reps, sizes = np.unique(canon, return_counts=True)
    return reps, sizes


def transfer_matrix(L, T):
    """Exact finite-lattice thermodynamics of the ``L x L`` torus by row transfer matrices.

    ``2 <= L <= 10`` (on one core, L = 8 takes about 0.5 s per temperature and L = 10
    about 10 s; the cost grows like ``8**L``). ``T`` scalar or 1-D. Returns a dict with ``energy``,
    ``abs_magnetization``, ``magnetization_sq``, ``specific_heat``, ``susceptibility``,
    ``binder_cumulant`` (same definitions as
    :func:`keras_gen.physics.observables.observables`), ``log_z``, and
    ``magnetization_distribution``: ``P(M)`` for ``M = -N, -N + 2, ..., N``.

    Method. Rows are ``2**L`` states ``s``; the transfer matrix is
    ``W(s, s') = exp(-beta eps(s, s'))`` with
    ``eps = -sum_j s_j s'_j - sum_j s'_j s'_{j+1} + 2L >= 0`` (the vertical bonds to the
    next row plus that row's own bonds, shifted by their minimum ``-2L`` so every
    weight is <= 1 and nothing overflows at low T), and ``Z = exp(2 N beta) tr W^L``.
    The trace is done row by row as a dynamic programme from each fixed first row
    ``a`` back to ``a``, carrying for every current row:

    * the weight and its first two energy moments (``sum w``, ``sum w eps``,
      ``sum w eps^2``, updated with ``W``, ``W * eps`` and ``W * eps^2``), giving
      ``<E>`` and ``<E^2>`` exactly, with no numerical derivative;
    * the weight split by the number of up spins so far (a ``2**L x (N + 1)`` table per
      first row), giving the exact distribution of ``M`` and hence ``<|m|>``,
      ``<m^2>``, ``<m^4>``.

    First rows related by a cyclic shift contribute equally (translation symmetry), so
    only one per orbit is run, weighted by the orbit size (36 instead of 256 at L = 8).
    """
    L = check_lattice_size(L, 2, 10)
    t = as_temperatures(T)
    scalar = t.ndim == 0
    t = np.atleast_1d(t)
    N, S = L * L, 2**L
    codes = np.arange(S)
    rows = (2 * ((codes[:, None] >> np.arange(L)) & 1) - 1).astype(np.int64)  # (S, L)
    row_e = -(rows * np.roll(rows, -1, axis=1)).sum(axis=1)
    eps = (-(rows @ rows.T) + row_e[None, :] + 2 * L).astype(np.float64)  # (s, s')
    n_up = ((rows + 1) // 2).sum(axis=1)
    reps, orbit = _row_orbits(L)
    n_rep = len(reps)
    by_up = [np.flatnonzero(n_up == u) for u in range(L + 1)]

    out = {
        k: np.empty(len(t))
        for k in (
            "energy",
            "abs_magnetization",
            "magnetization_sq",
            "specific_heat",
            "susceptibility",
            "binder_cumulant",
            "log_z",
        )
    }
    out["magnetization_distribution"] = np.empty((len(t), N + 1))
    M_values = 2.0 * np.arange(N + 1) - N
    for i, temp in enumerate(t):
        beta = 1.0 / temp
        W = np.exp(-beta * eps)
        We, We2 = W * eps, W * eps * eps
        # Energy moments.
        a0 = np.zeros((n_rep, S))
        a0[np.arange(n_rep), reps] = 1.0
        a1, a2 = np.zeros_like(a0), np.zeros_like(a0)
        for _ in range(L):
            a0, a1, a2 = a0 @ W, a1 @ W + a0 @ We, a2 @ W + 2.0 * (a1 @ We) + a0 @ We2
        z0 = orbit @ a0[np.arange(n_rep), reps]
        z1 = orbit @ a1[np.arange(n_rep), reps]
        z2 = orbit @ a2[np.arange(n_rep), reps]
        mean_eps = z1 / z0
        var_eps = max(z2 / z0 - mean_eps**2, 0.0)
        # Magnetization distribution: b[r, s, u] = weight with current row s and u up spins so far.
        b = np.zeros((n_rep, S, N + 1))
        b[np.arange(n_rep), reps, 0] = 1.0
        for _ in range(L):
            moved = (b.transpose(0, 2, 1).reshape(-1, S) @ W).reshape(n_rep, N + 1, S).transpose(0, 2, 1)
            b = np.zeros_like(b)
            for u, sel in enumerate(by_up):
                b[:, sel, u:] = moved[:, sel, : N + 1 - u]
        pz = orbit @ b[np.arange(n_rep), reps, :]
        p_m = pz / pz.sum()
        am = p_m @ np.abs(M_values) / N
        m2 = p_m @ (M_values / N) ** 2
        m4 = p_m @ (M_values / N) ** 4
        out["energy"][i] = (mean_eps - 2.0 * N) / N
        out["specific_heat"][i] = var_eps / (N * temp**2)
        out["abs_magnetization"][i] = am
        out["magnetization_sq"][i] = m2
        out["susceptibility"][i] = N * (p_m @ (np.abs(M_values) / N - am) ** 2) / temp
        out["binder_cumulant"][i] = 1.0 - m4 / (3.0 * m2**2)
        out["log_z"][i] = math.log(z0) + 2.0 * N * beta
        out["magnetization_distribution"][i] = p_m
    return _scalarize(out, scalar)


# ---------------------------------------------------------------- Onsager
def onsager_energy(T):
    """Energy per spin of the infinite square lattice (Onsager 1944).

    ``u = -coth(2 beta) [1 + (2/pi) (2 tanh^2(2 beta) - 1) K(k)]`` with
    ``k = 2 sinh(2 beta) / cosh^2(2 beta)`` and ``K`` the complete elliptic integral of
    the first kind of *modulus* ``k``. SciPy's ``ellipk(m)`` takes the *parameter*
    ``m = k^2``; near ``Tc`` (``k -> 1``) ``1 - k^2`` would cancel catastrophically, so
    it is computed in closed form, ``1 - k^2 = (1 - sinh^2 2beta)^2 / cosh^4 2beta``,
    and passed to ``ellipkm1(p) = K(m = 1 - p)``. Likewise
    ``2 tanh^2 - 1 = (sinh^2 - 1) / cosh^2``. At ``Tc`` the product of this vanishing
    factor and the log-divergent ``K`` is 0, so ``u(Tc) = -sqrt(2)``.
    """
    t = as_temperatures(T, "T")
    beta = 1.0 / t
    sh, ch = np.sinh(2 * beta), np.cosh(2 * beta)
    p = (1.0 - sh**2) ** 2 / ch**4
    with np.errstate(invalid="ignore", divide="ignore"):
        term = np.where(p > 0, (sh**2 - 1.0) / ch**2 * ellipkm1(np.where(p > 0, p, 1.0)), 0.0)
    u = -(ch / sh) * (1.0 + (2.0 / np.pi) * term)
    return float(u) if u.ndim == 0 else u


def onsager_magnetization(T):
    """Spontaneous magnetization per spin of the infinite lattice (Onsager, Yang 1952):
    ``(1 - sinh(2/T)^-4)^(1/8)`` below ``Tc``, 0 at and above."""
    t = as_temperatures(T, "T")
    with np.errstate(over="ignore"):
        x = 1.0 - np.sinh(2.0 / t) ** -4.0
    m = np.where(t < TC, np.clip(x, 0.0, None) ** 0.125, 0.0)
    return float(m) if m.ndim == 0 else m
