"""Monte Carlo simulation of the 2-D Ising model, vectorized over temperatures and chains.

:func:`metropolis_sweep` (checkerboard), :func:`wolff_update` (single-cluster), and
:func:`simulate`: equilibration, a measured autocorrelation time, decorrelated samples.
Only numpy: the simulator runs without TensorFlow.
"""

from __future__ import annotations

import math
import time

import numpy as np

from keras_gen.physics.lattice import (
    as_temperatures,
    check_lattice_size,
    lattice_energy,
    lattice_magnetization,
    neighbours,
)
from keras_gen.physics.observables import integrated_autocorrelation_time

WOLFF_MAX_T = 2.6
"""Default highest temperature at which :func:`simulate` adds Wolff cluster flips."""

SIMULATION_VERSION = 2
"""Version of :func:`simulate`'s output, part of every cache key of
:func:`keras_gen.physics.datasets.load_or_simulate`: bump it when a change to the
simulator changes its output, so stale cached samples are not reused."""


def _check_lattices(spins, temperatures):
    if not isinstance(spins, np.ndarray) or spins.dtype != np.int8 or spins.ndim != 4:
        raise ValueError("spins must be an int8 array of shape (n_temperatures, n_chains, L, L).")
    if spins.shape[-1] != spins.shape[-2]:
        raise ValueError(f"Lattices must be square, got {spins.shape[-2:]}.")
    t = as_temperatures(temperatures)
    if t.shape != (spins.shape[0],):
        raise ValueError(
            f"Need one temperature per leading entry of spins: {spins.shape[0]} lattices' temperatures, got {t.shape}."
        )
    return t


def random_lattices(n_temperatures, n_chains, L, rng):
    """Independent uniformly random ±1 lattices, int8 of shape ``(n_temperatures, n_chains, L, L)``."""
    return (2 * rng.integers(0, 2, size=(n_temperatures, n_chains, L, L), dtype=np.int8) - 1).astype(np.int8)


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
    nb = neighbours(L)
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
    which is what the blocked jackknife of
    :func:`keras_gen.physics.observables.observables` expects.

    ``metadata`` keys: ``L``, ``temperatures``, ``n_samples``, ``seed``, ``n_chains``,
    ``n_equilibrate``, ``n_pilot`` (actual length), ``wolff_max_t``, ``algorithm``
    (per temperature), ``clusters_per_sweep``, ``mean_cluster_size``,
    ``tau_abs_m`` and ``tau_energy`` (pilot, in sweeps), ``spacing`` (sweeps),
    ``tau_abs_m_samples`` and ``tau_energy_samples`` (of the kept samples, in units
    of samples: about 0.5 means they are effectively independent), ``acceptance``
    (Metropolis, per temperature), ``n_sweeps`` (total), ``wall_time_s``, ``version``.
    """
    start = time.perf_counter()
    L = check_lattice_size(L)
    if L % 2:
        raise ValueError(f"simulate needs an even L (checkerboard Metropolis), got L={L}.")
    t = as_temperatures(temperatures)
    t = np.atleast_1d(t)
    n_samples = check_lattice_size(n_samples, 1, what="n_samples")
    n_chains = check_lattice_size(n_chains, 1, what="n_chains")
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
        "version": SIMULATION_VERSION,
    }
    return out, metadata
