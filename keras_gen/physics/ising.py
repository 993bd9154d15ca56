"""The 2-D Ising model on an L x L square lattice: simulator, observables, exact results.

Conventions, used identically everywhere in this module:

* Hamiltonian ``H = -sum_<ij> s_i s_j`` with ``J = 1``, no field, ``k_B = 1``, periodic
  boundaries in both directions. A configuration's energy is
  ``E = -sum_i s_i (s_{i+x} + s_{i+y})`` (each site's right and down neighbours, so
  every bond counts once; for ``L = 2`` the two bonds between a pair of sites both count).
  ``N = L * L``; per-spin quantities are ``e = E / N`` and ``m = M / N`` with ``M = sum_i s_i``.
* Observables (finite lattice, no symmetry breaking, so ``|m|`` replaces ``m``):

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

Parts:

* Simulator -- :func:`metropolis_sweep` (checkerboard, vectorized over temperatures
  and chains), :func:`wolff_update` (single-cluster, vectorized over temperatures and
  chains), :func:`simulate` (equilibration, measured autocorrelation time, decorrelated
  samples), :func:`load_or_simulate` (disk cache), :func:`dataset` (``tf.data``), and the
  named dataset behind ``keras_gen.data.load("ising", ...)``: :func:`load` and
  :func:`load_arrays` (train/validation/test splits as independent simulations).
* Symmetries of the torus -- :func:`lattice_symmetries` (translations and the point
  group as site permutations: exact data augmentation).
* Observables with jackknife errors -- :func:`observables`, and the autocorrelation
  estimator :func:`integrated_autocorrelation_time`.
* Exact references -- :func:`exact_enumeration` (``L <= 4``), :func:`transfer_matrix`
  (``L <= 10``; exact on the torus, including the magnetization distribution),
  :func:`onsager_energy`, :func:`onsager_magnetization` and :data:`TC` (infinite lattice).

This module imports TensorFlow only inside :func:`dataset`; the physics itself needs only
numpy and scipy (the ``keras_gen`` package ``__init__`` may still import TensorFlow).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import tempfile
import time

import numpy as np
from scipy.special import ellipkm1, logsumexp

TC = 2.0 / math.log(1.0 + math.sqrt(2.0))
"""Onsager's critical temperature ``2 / ln(1 + sqrt 2) = 2.269185...`` (``J = k_B = 1``)."""

WOLFF_MAX_T = 2.6
"""Default highest temperature at which :func:`simulate` adds Wolff cluster flips."""

OBSERVABLES = (
    "energy",
    "abs_magnetization",
    "magnetization_sq",
    "specific_heat",
    "susceptibility",
    "binder_cumulant",
    "correlation",
)

# Part of every cache key: bump when a change to the simulator changes its output.
_CACHE_VERSION = 2


# ---------------------------------------------------------------- helpers
def _temperatures(temperatures, name="temperatures"):
    t = np.asarray(temperatures, dtype=np.float64)
    if t.ndim > 1 or t.size == 0:
        raise ValueError(f"{name} must be a scalar or a non-empty 1-D sequence, got shape {t.shape}.")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {t.tolist()}.")
    return t


def _check_L(L, minimum=2, maximum=None, what="L"):
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
        0.5 * (s * np.roll(s, -r, axis=-1) + s * np.roll(s, -r, axis=-2)).mean(axis=(-2, -1))
        for r in range(L // 2 + 1)
    ]
    return np.stack(out, axis=-1)


def _check_lattices(spins, temperatures):
    if not isinstance(spins, np.ndarray) or spins.dtype != np.int8 or spins.ndim != 4:
        raise ValueError("spins must be an int8 array of shape (n_temperatures, n_chains, L, L).")
    if spins.shape[-1] != spins.shape[-2]:
        raise ValueError(f"Lattices must be square, got {spins.shape[-2:]}.")
    t = _temperatures(temperatures)
    if t.shape != (spins.shape[0],):
        raise ValueError(
            f"Need one temperature per leading entry of spins: {spins.shape[0]} lattices' "
            f"temperatures, got {t.shape}."
        )
    return t


# ---------------------------------------------------------------- simulator
def random_lattices(n_temperatures, n_chains, L, rng):
    """Independent uniformly random ±1 lattices, int8 of shape ``(n_temperatures, n_chains, L, L)``."""
    return (2 * rng.integers(0, 2, size=(n_temperatures, n_chains, L, L), dtype=np.int8) - 1).astype(
        np.int8
    )


def metropolis_sweep(spins, temperatures, rng, n_sweeps=1):
    """Checkerboard Metropolis sweeps, in place, on every lattice at once.

    ``spins``: int8 ±1 of shape ``(n_temperatures, n_chains, L, L)``; ``temperatures``:
    shape ``(n_temperatures,)``; ``rng``: a ``numpy.random.Generator``.

    Sites of one checkerboard colour have all their neighbours in the other colour, so
    a whole colour can be updated simultaneously and each flip still sees a fixed
    environment -- that is what makes the vectorized update a valid Metropolis chain.
    With periodic boundaries this needs an even ``L`` (for odd ``L`` the wrap-around
    joins two sites of the same colour), so odd ``L`` is refused. Returns the mean
    acceptance rate per temperature.
    """
    t = _check_lattices(spins, temperatures)
    L = spins.shape[-1]
    if L % 2:
        raise ValueError(f"Checkerboard Metropolis needs an even L with periodic boundaries, got L={L}.")
    # Acceptance min(1, exp(-beta dE)), dE = 2 s h with s h in {-4, -2, 0, 2, 4}: a table
    # lookup is much cheaper than an exp per site.
    sh = np.arange(-4, 5, 2)
    table = np.minimum(1.0, np.exp(-2.0 * sh[None, :] / t[:, None])).astype(np.float32)
    t_index = np.arange(len(t))[:, None, None, None]
    ii, jj = np.indices((L, L))
    colours = [((ii + jj) % 2) == c for c in (0, 1)]
    accepted = np.zeros(len(t))
    for _ in range(n_sweeps):
        for colour in colours:
            h = (
                np.roll(spins, 1, axis=-1)
                + np.roll(spins, -1, axis=-1)
                + np.roll(spins, 1, axis=-2)
                + np.roll(spins, -1, axis=-2)
            )
            prob = table[t_index, (spins * h + 4) // 2]
            flip = (rng.random(spins.shape, dtype=np.float32) < prob) & colour
            np.negative(spins, out=spins, where=flip)
            accepted += flip.sum(axis=(1, 2, 3))
    return accepted / (n_sweeps * spins[0].size)


@functools.lru_cache(maxsize=16)
def _neighbours(L):
    """Flat indices of the right, left, down, up neighbours of every site, shape (L*L, 4)."""
    i, j = np.divmod(np.arange(L * L), L)
    return np.stack(
        [i * L + (j + 1) % L, i * L + (j - 1) % L, ((i + 1) % L) * L + j, ((i - 1) % L) * L + j], axis=1
    )


def wolff_update(spins, temperatures, rng, n_updates=1):
    """Wolff single-cluster flips, in place, one cluster per lattice per update.

    ``spins``: int8 ±1 of shape ``(n_temperatures, n_chains, L, L)`` (any ``L >= 2``);
    ``temperatures``: shape ``(n_temperatures,)``. Each lattice picks a uniformly random
    seed site; the cluster grows breadth-first, each bond from a newly added site to an
    aligned neighbour outside the cluster being activated once with probability
    ``1 - exp(-2 / T)``; the whole cluster is then flipped.

    All lattices grow their clusters together, and only the BFS frontier is touched:
    one pass of the loop takes the frontier sites of every lattice as one flat index
    array, looks up their 4 neighbours, and activates the candidate bonds. The Python
    loop thus runs (cluster diameter) times per update and the work is proportional to
    the cluster sizes, not to the lattice volume. Each (frontier site, neighbour) pair is
    a distinct bond and is tried exactly once, as in the sequential algorithm; a site
    reached by several bonds is added once (``np.unique``). For ``L = 2`` the two bonds
    joining a pair of sites are tried separately, which is right for that double bond.
    Returns cluster sizes, shape ``(n_updates, n_temperatures, n_chains)``.
    """
    t = _check_lattices(spins, temperatures)
    n_t, n_c, L, _ = spins.shape
    n_sites, n_lat = L * L, n_t * n_c
    nb = _neighbours(L)
    flat = spins.reshape(-1)  # a view for C-contiguous input, else a copy written back below
    p_lat = np.repeat(-np.expm1(-2.0 / t), n_c)
    sizes = np.zeros((n_updates, n_t, n_c), dtype=np.int64)
    for u in range(n_updates):
        frontier = np.arange(n_lat) * n_sites + rng.integers(0, n_sites, size=n_lat)
        seed_spin = flat[frontier]
        in_cluster = np.zeros(flat.size, dtype=bool)
        in_cluster[frontier] = True
        while frontier.size:
            lat = frontier // n_sites
            cand = (nb[frontier - lat * n_sites] + (lat * n_sites)[:, None]).ravel()
            cand_lat = np.repeat(lat, 4)
            ok = ~in_cluster[cand] & (flat[cand] == seed_spin[cand_lat])
            cand, cand_lat = cand[ok], cand_lat[ok]
            frontier = np.unique(cand[rng.random(cand.size) < p_lat[cand_lat]])
            in_cluster[frontier] = True
        np.negative(flat, out=flat, where=in_cluster)
        sizes[u] = in_cluster.reshape(n_t, n_c, n_sites).sum(axis=2)
    if not np.shares_memory(flat, spins):
        spins[...] = flat.reshape(spins.shape)
    return sizes


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


def _sweep_unit(spins, temperatures, rng, clusters_per_sweep):
    """One simulation sweep, in place: ``clusters_per_sweep[i]`` Wolff flips at
    temperature ``i`` (none where it is 0), then one Metropolis sweep everywhere.
    Returns (summed cluster sizes, number of clusters, Metropolis acceptance), each
    per temperature."""
    n_t = len(temperatures)
    size_sum, size_cnt = np.zeros(n_t), np.zeros(n_t)
    for k in range(int(clusters_per_sweep.max(initial=0))):
        active = np.flatnonzero(clusters_per_sweep > k)
        sub = spins[active]
        sizes = wolff_update(sub, temperatures[active], rng)[0]
        spins[active] = sub
        size_sum[active] += sizes.sum(axis=1)
        size_cnt[active] += sizes.shape[1]
    acceptance = metropolis_sweep(spins, temperatures, rng)
    return size_sum, size_cnt, acceptance


def simulate(
    L,
    temperatures,
    n_samples,
    seed=0,
    n_chains=32,
    n_equilibrate=200,
    n_pilot=400,
    wolff_max_t=WOLFF_MAX_T,
    spacing_factor=2.0,
    min_spacing=1,
    verbose=False,
):
    """Equilibrium samples of the 2-D Ising model at several temperatures.

    Returns ``(spins, metadata)``: ``spins`` is int8 ±1 of shape
    ``(n_temperatures, n_samples, L, L)``; ``metadata`` a JSON-able dict (below).

    Algorithm. All temperatures and ``n_chains`` independent chains per temperature
    are simulated together, vectorized. One *sweep* (the time unit throughout) is:

    * for ``T <= wolff_max_t`` (default 2.6): ``n_c(T)`` Wolff cluster flips, with
      ``n_c = round(N / <cluster size>)`` measured during equilibration so that a
      sweep flips about ``N`` spins, followed by one checkerboard Metropolis sweep.
      Near and below ``Tc`` Metropolis alone decorrelates slowly (``tau ~ L^2.17`` at
      ``Tc``, and at low T the sign of ``m`` practically never flips), while Wolff
      clusters are large and cheap; the Metropolis sweep adds local moves that the big
      clusters of low T rarely make.
    * for ``T > wolff_max_t``: one Metropolis sweep only -- clusters there are small,
      so Wolff costs many flips per sweep for little gain, and Metropolis decorrelates
      in a few sweeps.

    Steps: random start; ``n_equilibrate`` sweeps (one cluster per sweep until the
    mean cluster size has been measured, in the second quarter); a pilot run of
    ``n_pilot`` sweeps (doubled up to three times until it is longer than ``50 tau``)
    measuring
    ``tau = max(tau(|m|), tau(E))`` per temperature with
    :func:`integrated_autocorrelation_time`; then ``ceil(n_samples / n_chains)``
    samples per chain, ``spacing = max(min_spacing, ceil(spacing_factor * max_T tau))``
    sweeps apart. One spacing is shared by all temperatures because they are
    simulated in lockstep anyway, so the slowest temperature sets the cost.

    Sample order: chain-major (all of chain 0's samples, then chain 1's, ...), truncated
    to ``n_samples``; contiguous blocks of samples then come mostly from single chains,
    which is what the blocked jackknife of :func:`observables` expects.

    ``metadata`` keys: ``L``, ``temperatures``, ``n_samples``, ``seed``, ``n_chains``,
    ``n_equilibrate``, ``n_pilot`` (actual length), ``wolff_max_t``, ``algorithm``
    (per temperature), ``clusters_per_sweep``, ``mean_cluster_size``,
    ``tau_abs_m`` and ``tau_energy`` (pilot, in sweeps), ``spacing`` (sweeps),
    ``tau_abs_m_samples`` and ``tau_energy_samples`` (of the kept samples, in units
    of samples: about 0.5 means they are effectively independent), ``acceptance``
    (Metropolis, per temperature), ``n_sweeps`` (total), ``wall_time_s``, ``version``.
    """
    start = time.perf_counter()
    L = _check_L(L)
    if L % 2:
        raise ValueError(f"simulate needs an even L (checkerboard Metropolis), got L={L}.")
    t = _temperatures(temperatures)
    t = np.atleast_1d(t)
    n_samples = _check_L(n_samples, 1, what="n_samples")
    n_chains = _check_L(n_chains, 1, what="n_chains")
    n_t, n_sites = len(t), L * L
    rng = np.random.default_rng(seed)
    spins = random_lattices(n_t, n_chains, L, rng)
    use_wolff = t <= wolff_max_t

    # Equilibration. Cluster sizes are measured in its second quarter -- late enough
    # that the random start has ordered at low T -- to fix the Wolff flips per sweep.
    clusters = use_wolff.astype(np.int64)
    q0, q1 = n_equilibrate // 4, max(n_equilibrate // 4 + 1, n_equilibrate // 2)
    size_sum, size_cnt = np.zeros(n_t), np.zeros(n_t)
    for step in range(n_equilibrate):
        ssum, scnt, _ = _sweep_unit(spins, t, rng, clusters)
        if q0 <= step < q1:
            size_sum += ssum
            size_cnt += scnt
        if step == q1 - 1:
            mean_size = size_sum / np.maximum(size_cnt, 1)
            clusters = np.where(
                use_wolff, np.clip(np.rint(n_sites / np.maximum(mean_size, 1.0)), 1, n_sites), 0
            ).astype(np.int64)
    mean_size = size_sum / np.maximum(size_cnt, 1)

    # Pilot run: measure the autocorrelation times at the final cluster schedule.
    def run_series(n_sweeps):
        abs_m = np.empty((n_t, n_chains, n_sweeps))
        energy = np.empty((n_t, n_chains, n_sweeps))
        for k in range(n_sweeps):
            _sweep_unit(spins, t, rng, clusters)
            abs_m[:, :, k] = np.abs(lattice_magnetization(spins)) / n_sites
            energy[:, :, k] = lattice_energy(spins) / n_sites
        return abs_m, energy

    pilot_m, pilot_e = run_series(max(int(n_pilot), 20))
    for extension in range(4):
        tau_m = np.array([integrated_autocorrelation_time(pilot_m[i]) for i in range(n_t)])
        tau_e = np.array([integrated_autocorrelation_time(pilot_e[i]) for i in range(n_t)])
        tau_max = float(max(tau_m.max(), tau_e.max()))
        # Sokal's estimate is only trustworthy for runs much longer than tau.
        if pilot_m.shape[-1] >= 50 * tau_max or extension == 3:
            break
        more_m, more_e = run_series(pilot_m.shape[-1])
        pilot_m = np.concatenate([pilot_m, more_m], axis=-1)
        pilot_e = np.concatenate([pilot_e, more_e], axis=-1)
    spacing = max(int(min_spacing), int(math.ceil(spacing_factor * tau_max)))
    if verbose:
        print(f"[ising] L={L}: tau(|m|)={np.round(tau_m, 2)}, tau(E)={np.round(tau_e, 2)}, spacing={spacing}")

    # Production.
    per_chain = -(-n_samples // n_chains)
    kept = np.empty((n_t, n_chains, per_chain, L, L), dtype=np.int8)
    accept = np.zeros(n_t)
    for k in range(per_chain):
        for _ in range(spacing):
            accept += _sweep_unit(spins, t, rng, clusters)[2]
        # Flipping every spin is an exact symmetry without a field, so doing it with
        # probability 1/2 is a valid move. It decorrelates the sign of m, which the
        # autocorrelation times above (of |m| and E) do not see: at low T a Wolff
        # cluster is nearly the whole lattice, so without this the sign flips almost
        # deterministically each sweep and kept samples of one chain share their sign.
        flip = rng.random((n_t, n_chains)) < 0.5
        spins[flip] = -spins[flip]
        kept[:, :, k] = spins
    out = kept.reshape(n_t, n_chains * per_chain, L, L)[:, :n_samples]

    m_series = np.abs(lattice_magnetization(kept)) / n_sites
    e_series = lattice_energy(kept) / n_sites
    tau_m_s = [integrated_autocorrelation_time(m_series[i]) if per_chain > 1 else 0.5 for i in range(n_t)]
    tau_e_s = [integrated_autocorrelation_time(e_series[i]) if per_chain > 1 else 0.5 for i in range(n_t)]
    n_pilot_done = int(pilot_m.shape[-1])
    metadata = {
        "L": L,
        "temperatures": t.tolist(),
        "n_samples": n_samples,
        "seed": int(seed) if isinstance(seed, (int, np.integer)) else repr(seed),
        "n_chains": n_chains,
        "n_equilibrate": int(n_equilibrate),
        "n_pilot": n_pilot_done,
        "wolff_max_t": float(wolff_max_t),
        "algorithm": ["wolff+metropolis" if w else "metropolis" for w in use_wolff],
        "clusters_per_sweep": clusters.tolist(),
        "mean_cluster_size": mean_size.tolist(),
        "tau_abs_m": tau_m.tolist(),
        "tau_energy": tau_e.tolist(),
        "spacing": spacing,
        "tau_abs_m_samples": [float(x) for x in tau_m_s],
        "tau_energy_samples": [float(x) for x in tau_e_s],
        "acceptance": (accept / (per_chain * spacing)).tolist(),
        "n_sweeps": int(n_equilibrate + n_pilot_done + per_chain * spacing),
        "wall_time_s": time.perf_counter() - start,
        "version": _CACHE_VERSION,
    }
    return out, metadata


# Bound at import so cache keys do not change if `simulate` is wrapped or patched.
_SIMULATE_SIGNATURE = inspect.signature(simulate)


# ---------------------------------------------------------------- caching and tf.data
def default_cache_dir():
    """``$KERAS_GEN_CACHE/ising`` if ``KERAS_GEN_CACHE`` is set, else ``~/.cache/keras_gen/ising``."""
    root = os.environ.get("KERAS_GEN_CACHE")
    if root:
        return os.path.join(os.path.expanduser(root), "ising")
    return os.path.join(os.path.expanduser("~"), ".cache", "keras_gen", "ising")


def _cache_key(L, temperatures, n_samples, seed, simulate_kwargs):
    bound = _SIMULATE_SIGNATURE.bind(L, temperatures, n_samples, seed, **simulate_kwargs)
    bound.apply_defaults()
    params = dict(bound.arguments)
    params.pop("verbose", None)
    # float.hex: the exact temperatures, so 2.2691853 and TC do not share a file.
    params["temperatures"] = [float(x).hex() for x in np.atleast_1d(_temperatures(temperatures))]
    params = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}
    params["version"] = _CACHE_VERSION
    text = json.dumps(params, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest(), text


def load_or_simulate(L, temperatures, n_samples, seed=0, cache_dir=None, **simulate_kwargs):
    """:func:`simulate`, cached on disk as ``.npz`` keyed by a hash of all parameters.

    ``cache_dir`` defaults to :func:`default_cache_dir`. The file is written to a
    temporary name in the same directory and moved into place with ``os.replace``,
    so concurrent users never see a half-written file. A cached file that cannot be
    read (or does not match its key) is recomputed and overwritten.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"load_or_simulate needs an integer seed to key the cache, got {seed!r}.")
    key, key_text = _cache_key(L, temperatures, n_samples, int(seed), simulate_kwargs)
    cache_dir = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
    path = os.path.join(cache_dir, f"ising_L{int(L)}_{key[:20]}.npz")
    if os.path.exists(path):
        try:
            with np.load(path, allow_pickle=False) as f:
                spins, meta = f["spins"], json.loads(str(f["metadata"]))
            if meta.get("cache_key") == key and spins.dtype == np.int8:
                return spins, meta
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass
    spins, meta = simulate(L, temperatures, n_samples, seed, **simulate_kwargs)
    meta["cache_key"] = key
    meta["cache_params"] = key_text
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-ising-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, spins=spins, metadata=np.array(json.dumps(meta)))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return spins, meta


def dataset(
    L,
    temperatures,
    n_samples,
    seed=0,
    spins="binary",
    flatten=True,
    batch_size=128,
    shuffle=True,
    temperature_index=None,
    with_temperature=False,
    drop_remainder=False,
    cache_dir=None,
    shuffle_seed=None,
    **simulate_kwargs,
):
    """A batched ``tf.data.Dataset`` of Ising configurations for Keras ``fit``.

    Samples come from :func:`load_or_simulate` (cached). Elements are float32 spins,
    ``{0, 1}`` (``spins="binary"``, ``v = (s + 1) / 2``) or ``±1`` (``spins="pm1"``),
    of shape ``(L * L,)`` if ``flatten`` else ``(L, L, 1)`` (channels-last for Conv2D).
    ``temperature_index``: ``None`` pools all temperatures, an int or a list of ints
    selects some. ``with_temperature=True`` yields ``(x, T)`` pairs (float32 ``T``)
    for conditional models. Shuffling is seeded by ``shuffle_seed`` (default ``seed``)
    and reshuffles each epoch.
    """
    import tensorflow as tf

    if spins not in ("binary", "pm1"):
        raise ValueError(f"spins must be 'binary' or 'pm1', got {spins!r}.")
    data, meta = load_or_simulate(L, temperatures, n_samples, seed, cache_dir=cache_dir, **simulate_kwargs)
    temps = np.asarray(meta["temperatures"], dtype=np.float32)
    if temperature_index is None:
        index = np.arange(len(temps))
    else:
        index = np.atleast_1d(np.asarray(temperature_index))
        if index.dtype.kind not in "iu" or np.any(index < -len(temps)) or np.any(index >= len(temps)):
            raise ValueError(f"temperature_index must index {len(temps)} temperatures, got {temperature_index!r}.")
    x = data[index].reshape(-1, L, L).astype(np.float32)
    t_lab = np.repeat(temps[index], data.shape[1])
    if spins == "binary":
        x = 0.5 * (x + 1.0)
    x = x.reshape(len(x), L * L) if flatten else x[..., None]
    ds = tf.data.Dataset.from_tensor_slices((x, t_lab) if with_temperature else x)
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed if shuffle_seed is None else shuffle_seed,
                        reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


SPLIT_SEED_OFFSETS = {"train": 0, "validation": 1, "test": 2}
"""Simulation seed of a split of the named dataset: ``1000 * seed + offset``, so the
splits are independent simulations and none shares a random stream with another."""


def _split_seed(split, seed):
    if split not in SPLIT_SEED_OFFSETS:
        raise ValueError(f"split must be one of {sorted(SPLIT_SEED_OFFSETS)}, got {split!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return 1000 * int(seed) + SPLIT_SEED_OFFSETS[split]


def load_arrays(split="train", L=8, temperature=TC, n_samples=10_000, spins="binary", flatten=True, seed=0,
                cache_dir=None, **simulate_kwargs):
    """The named ``"ising"`` dataset as numpy: ``(x float32, T float32)``, the way
    ``keras_gen.data.load_arrays("ising", ...)`` returns it.

    ``temperature``: one temperature or a sequence; ``n_samples`` per temperature;
    ``x`` holds all temperatures' samples in order (temperature-major), ``T`` the
    temperature of each row. ``spins``/``flatten`` as in :func:`dataset`.
    """
    if spins not in ("binary", "pm1"):
        raise ValueError(f"spins must be 'binary' or 'pm1', got {spins!r}.")
    data, meta = load_or_simulate(L, temperature, n_samples, _split_seed(split, seed), cache_dir=cache_dir,
                                  **simulate_kwargs)
    x = data.reshape(-1, L, L).astype(np.float32)
    if spins == "binary":
        x = 0.5 * (x + 1.0)
    x = x.reshape(len(x), L * L) if flatten else x[..., None]
    t = np.repeat(np.asarray(meta["temperatures"], np.float32), data.shape[1])
    return x, t


def load(split="train", L=8, temperature=TC, n_samples=10_000, spins="binary", flatten=True, batch_size=128,
         shuffle=True, seed=0, with_labels=False, drop_remainder=False, cache_dir=None, **simulate_kwargs):
    """The named ``"ising"`` dataset as a batched ``tf.data.Dataset``: what
    ``keras_gen.data.load("ising", split, L=8, temperature=T, spins="binary")`` returns.

    Splits are independent simulations (seeds ``1000 * seed + {train: 0,
    validation: 1, test: 2}``), cached on disk by :func:`load_or_simulate`.
    ``with_labels=True`` yields ``(x, T)`` pairs, the temperature as the label.
    Shuffling is seeded by ``seed`` and reshuffles every epoch.
    """
    return dataset(L, temperature, n_samples, seed=_split_seed(split, seed), spins=spins, flatten=flatten,
                   batch_size=batch_size, shuffle=shuffle, shuffle_seed=seed, with_temperature=with_labels,
                   drop_remainder=drop_remainder, cache_dir=cache_dir, **simulate_kwargs)


# ---------------------------------------------------------------- symmetries
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
    L = _check_L(L)
    grid = np.arange(L * L).reshape(L, L)
    point_group = []
    for flip in (False, True):
        g = grid.T if flip else grid
        for r in range(4):
            point_group.append(np.rot90(g, r))
    perms = [np.roll(g, (dy, dx), axis=(0, 1)).reshape(-1) for g in point_group
             for dy in range(L) for dx in range(L)]
    return np.stack(perms).astype(np.int32)


# ---------------------------------------------------------------- observables
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


# ---------------------------------------------------------------- exact: enumeration
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
    L = _check_L(L, 2, 4)
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

    ``T`` scalar or 1-D. Returns a dict with the :data:`OBSERVABLES` (same definitions
    as :func:`observables`; ``correlation`` has a trailing axis over
    ``r = 0 .. L // 2``) and ``log_z``. Boltzmann weights are handled in log space with
    ``logsumexp`` so low temperatures do not overflow.
    """
    L = _check_L(L, 2, 4)
    t = _temperatures(T)
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


# ---------------------------------------------------------------- exact: transfer matrix
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
    ``binder_cumulant`` (same definitions as :func:`observables`), ``log_z``, and
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
    L = _check_L(L, 2, 10)
    t = _temperatures(T)
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

    out = {k: np.empty(len(t)) for k in ("energy", "abs_magnetization", "magnetization_sq",
                                         "specific_heat", "susceptibility", "binder_cumulant", "log_z")}
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


# ---------------------------------------------------------------- exact: Onsager
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
    t = _temperatures(T, "T")
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
    t = _temperatures(T, "T")
    with np.errstate(over="ignore"):
        x = 1.0 - np.sinh(2.0 / t) ** -4.0
    m = np.where(t < TC, np.clip(x, 0.0, None) ** 0.125, 0.0)
    return float(m) if m.ndim == 0 else m
