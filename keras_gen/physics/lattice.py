"""The square lattice the Ising model lives on: conventions, checks, measurements, symmetries.

Conventions, used identically everywhere in `keras_gen.physics`:

* Hamiltonian ``H = -sum_<ij> s_i s_j`` with ``J = 1``, no field, ``k_B = 1``, periodic
  boundaries in both directions. A configuration's energy is
  ``E = -sum_i s_i (s_{i+x} + s_{i+y})`` (each site's right and down neighbours, so
  every bond counts once; for ``L = 2`` the two bonds between a pair of sites both count).
  ``N = L * L``; per-spin quantities are ``e = E / N`` and ``m = M / N`` with ``M = sum_i s_i``.
* Spins are int8 ±1 inside the physics; models see ``{0, 1}`` (``v = (s + 1) / 2``), and
  :func:`as_pm1` accepts either.

Contents: :data:`TC` and :func:`reference_temperatures`; the argument checks
:func:`as_temperatures` and :func:`check_lattice_size`; per-configuration measurements
(:func:`lattice_energy`, :func:`lattice_magnetization`, :func:`correlation_function`);
the torus's geometry (:func:`neighbours`, :func:`lattice_symmetries`); :func:`as_pm1`.
"""

from __future__ import annotations

import functools
import math

import numpy as np

TC = 2.0 / math.log(1.0 + math.sqrt(2.0))
"""Onsager's critical temperature ``2 / ln(1 + sqrt 2) = 2.269185...`` (``J = k_B = 1``)."""


def reference_temperatures():
    """The eleven temperatures of Torlai & Melko (2016): ``linspace(1.0, 3.54, 11)``
    with its point nearest Tc (2.27) replaced by Tc itself."""
    t = np.linspace(1.0, 3.54, 11)
    t[np.argmin(np.abs(t - TC))] = TC
    return t


def as_temperatures(temperatures, name="temperatures"):
    """``temperatures`` as a float64 array (0-D for a scalar, else 1-D), checked finite and > 0.

    ``name`` is what the error message calls the argument.
    """
    t = np.asarray(temperatures, dtype=np.float64)
    if t.ndim > 1 or t.size == 0:
        raise ValueError(f"{name} must be a scalar or a non-empty 1-D sequence, got shape {t.shape}.")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {t.tolist()}.")
    return t


def check_lattice_size(L, minimum=2, maximum=None, what="L"):
    """``L`` as an int, checked to be an integer in ``[minimum, maximum]``.

    Also used for other positive counts (``what`` names them in the error message).
    """
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)):
        raise ValueError(f"{what} must be an integer, got {L!r}.")
    if L < minimum or (maximum is not None and L > maximum):
        hi = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{what} must be >= {minimum}{hi}, got {L}.")
    return int(L)


def lattice_energy(spins):
    """Total energy ``E`` of each ±1 lattice in ``spins`` (shape ``(..., L, L)``), int64."""
    s = np.asarray(spins)
    # int8 products stay in {-2..2}; only the sum needs a wide type.
    bonds = s * (np.roll(s, -1, axis=-1) + np.roll(s, -1, axis=-2))
    return -bonds.sum(axis=(-2, -1), dtype=np.int64)


def lattice_magnetization(spins):
    """Total magnetization ``M`` of each ±1 lattice in ``spins`` (shape ``(..., L, L)``), int64."""
    return np.asarray(spins).sum(axis=(-2, -1), dtype=np.int64)


def correlation_function(spins):
    """Per-lattice ``G(r)``, ``r = 0 .. L // 2``: ``s_i s_{i+r}`` averaged over sites and
    both axes. ``spins`` is ±1 of shape ``(..., L, L)``; returns ``(..., L // 2 + 1)`` float64."""
    s = np.asarray(spins, dtype=np.float64)
    L = s.shape[-1]
    out = [
        0.5 * (s * np.roll(s, -r, axis=-1) + s * np.roll(s, -r, axis=-2)).mean(axis=(-2, -1)) for r in range(L // 2 + 1)
    ]
    return np.stack(out, axis=-1)


@functools.lru_cache(maxsize=16)
def neighbours(L):
    """Flat indices of the right, left, down, up neighbours of every site, shape (L*L, 4)."""
    i, j = np.divmod(np.arange(L * L), L)
    return np.stack([i * L + (j + 1) % L, i * L + (j - 1) % L, ((i + 1) % L) * L + j, ((i - 1) % L) * L + j], axis=1)


@functools.lru_cache(maxsize=16)
def lattice_symmetries(L):
    """Every symmetry of the L x L torus as a permutation of the flat sites, shape ``(8 L^2, L^2)``.

    Row ``p`` maps a flat configuration ``v`` to ``v[perm[p]]``: the ``L^2``
    translations times the 8 elements of the square's point group (rotations
    and reflections). The Hamiltonian is invariant under all of them and
    under the global flip ``s -> -s``, so Boltzmann samples mapped through any
    of them are Boltzmann samples too: free, exact data augmentation. Row 0 is
    the identity.
    """
    L = check_lattice_size(L)
    grid = np.arange(L * L).reshape(L, L)
    point_group = []
    for flip in (False, True):
        g = grid.T if flip else grid
        for r in range(4):
            point_group.append(np.rot90(g, r))
    perms = [np.roll(g, (dy, dx), axis=(0, 1)).reshape(-1) for g in point_group for dy in range(L) for dx in range(L)]
    return np.stack(perms).astype(np.int32)


def as_pm1(spins):
    """Spins as int8 ±1 of shape ``(n, L, L)``.

    Accepts ``(n, L, L)``, ``(n, L, L, 1)`` or ``(n, L * L)`` (a perfect square), with values all in
    ``{-1, +1}`` or all in ``{0, 1}`` (mapped by ``s = 2 v - 1``; an array of only 1s
    means the same in both). Anything else raises ``ValueError``.
    """
    a = np.asarray(spins)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"spins must be a numeric array, got dtype {a.dtype}.")
    if a.ndim == 4 and a.shape[-1] == 1:  # channels-last images, as Conv2D models see them
        a = a[..., 0]
    if a.ndim == 2:
        n_sites = a.shape[1]
        L = math.isqrt(n_sites)
        if L * L != n_sites:
            raise ValueError(f"Flat spins need L*L columns for a square lattice, got {n_sites}.")
        a = a.reshape(a.shape[0], L, L)
    if a.ndim != 3 or a.shape[1] != a.shape[2] or a.shape[1] < 2:
        raise ValueError(
            f"spins must have shape (n_samples, L, L) or (n_samples, L*L) with L >= 2, got {np.shape(spins)}."
        )
    if a.shape[0] == 0:
        raise ValueError("spins is empty: no samples.")
    if a.dtype == bool:
        return (2 * a.astype(np.int8) - 1).astype(np.int8)
    is_one = a == 1
    if np.all(is_one | (a == -1)):
        return np.where(is_one, 1, -1).astype(np.int8)
    if np.all(is_one | (a == 0)):
        return np.where(is_one, 1, -1).astype(np.int8)
    bad = np.unique(a[~(is_one | (a == -1) | (a == 0))])[:5]
    found = np.unique(a)[:6] if not bad.size else bad
    raise ValueError(
        "spins must take values in {-1, +1} or in {0, 1}; "
        + (f"found values {found.tolist()}." if bad.size else f"found a mix of -1, 0 and 1: {found.tolist()}.")
    )
