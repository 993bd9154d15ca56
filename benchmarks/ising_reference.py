"""Ising simulator vs exact transfer-matrix results on the 8 x 8 torus.

Temperatures: ``np.linspace(1.0, 3.54, 11)`` (step 0.254) with its point closest to
Tc, 2.27 (0.0008 above Tc), replaced by Tc = 2/ln(1 + sqrt 2) = 2.26919 itself, so
there are exactly 11 temperatures and Tc is one of them.

Runs ``keras_gen.physics.simulate(8, temperatures, n_samples, seed)`` (no cache, so the
wall time is the simulator's) for several independent seeds and compares E/N, <|m|>,
C and chi (jackknife errors, ``observables`` with 20 blocks) with
``transfer_matrix(8, T)``. Three checks, because one run cannot tell a biased
simulator from an unlucky draw or from underestimated errors:

* per seed: deviations (simulation - exact) / error, which should look like draws of a
  t distribution with 19 degrees of freedom (the jackknife's);
* error calibration: the spread of the values over the seeds divided by the mean
  jackknife error (1 when the errors are right);
* bias: all seeds' samples pooled (n_seeds x n_samples per temperature), compared with
  exact, plus a chi-square test of the whole magnetization distribution P(M) against
  the exact one from the transfer matrix.

Writes the ``ising_reference`` section of BENCHMARKS.md.

    python benchmarks/ising_reference.py [--n-samples 20000] [--seeds 0 1 2 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy import stats

from keras_gen.benchmarking.report import BenchmarksFile
from keras_gen.physics import TC, lattice_magnetization, reference_temperatures, simulate, transfer_matrix
from keras_gen.physics.observables import observables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = BenchmarksFile(os.path.join(ROOT, "BENCHMARKS.md"))

NAMES = {
    "energy": "E/N",
    "abs_magnetization": r"<\|m\|>",
    "specific_heat": "C",
    "susceptibility": "chi",
}


def magnetization_chi2(spins, p_exact):
    """Chi-square test of the histogram of M against the exact P(M) (bins with >= 5 expected)."""
    N = spins.shape[-1] * spins.shape[-2]
    counts = np.bincount((lattice_magnetization(spins) + N) // 2, minlength=N + 1)
    expected = len(spins) * p_exact
    use = expected >= 5
    chi2 = float(((counts[use] - expected[use]) ** 2 / expected[use]).sum())
    dof = int(use.sum()) - 1
    return chi2, dof, float(stats.chi2.sf(chi2, dof))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--L", type=int, default=8)
    parser.add_argument("--n-samples", type=int, default=20000, help="samples per temperature and seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--n-chains", type=int, default=32)
    args = parser.parse_args(argv)
    if len(args.seeds) < 2:
        parser.error("give at least two seeds (the error calibration compares them)")

    T = reference_temperatures()
    t0 = time.perf_counter()
    exact = transfer_matrix(args.L, T)
    t_exact = time.perf_counter() - t0
    runs, metas, sim_seconds = [], [], []
    for seed in args.seeds:
        t1 = time.perf_counter()
        spins, meta = simulate(args.L, T, args.n_samples, seed=seed, n_chains=args.n_chains)
        sim_seconds.append(time.perf_counter() - t1)
        runs.append(spins)
        metas.append(meta)
    # obs[s][i][name] = (value, error)
    obs = [[observables(spins[i], T[i]) for i in range(len(T))] for spins in runs]
    wall = time.perf_counter() - t0
    n_seeds = len(args.seeds)

    meta = metas[0]
    lines = [
        BENCHMARKS.header(f"Ising simulator vs exact transfer matrix, L = {args.L} torus"),
        f"- wall time: {wall:.0f} s (simulation {np.median(sim_seconds):.0f} s per seed, median of "
        f"{n_seeds}; transfer matrix {t_exact:.0f} s; the CPU was shared with other jobs)",
        f"- temperatures: np.linspace(1.0, 3.54, 11) with 2.27 replaced by Tc = {TC:.6f}",
        f"- samples: {args.n_samples} per temperature and seed, seeds {args.seeds}, {meta['n_chains']} chains, "
        f"{meta['spacing']} sweeps apart (2 x max tau, rounded up; seed {args.seeds[0]}); Wolff + Metropolis for "
        f"T <= {meta['wolff_max_t']}, Metropolis above",
        "- errors: jackknife over 20 blocks; deviation = (simulation - exact) / error",
        "",
    ]

    # 1. Error calibration and per-seed deviations.
    devs = np.array(
        [
            [[(obs[s][i][k][0] - exact[k][i]) / obs[s][i][k][1] for k in NAMES] for i in range(len(T))]
            for s in range(n_seeds)
        ]
    )  # (seed, T, obs)
    values = np.array([[[obs[s][i][k][0] for k in NAMES] for i in range(len(T))] for s in range(n_seeds)])
    errors = np.array([[[obs[s][i][k][1] for k in NAMES] for i in range(len(T))] for s in range(n_seeds)])
    ratio = values.std(axis=0, ddof=1) / errors.mean(axis=0)  # (T, obs)
    t19 = stats.t(19)
    n_dev = devs.size
    lines += [
        f"**Per-seed deviations** ({n_dev} comparisons): rms {np.sqrt((devs**2).mean()):.2f} "
        f"(t19: {np.sqrt(19 / 17):.2f}); beyond 2 σ: {int((np.abs(devs) > 2).sum())} "
        f"(t19 expects {n_dev * 2 * t19.sf(2):.1f}); beyond 3 σ: {int((np.abs(devs) > 3).sum())} "
        f"(expects {n_dev * 2 * t19.sf(3):.1f}). The four observables at one temperature come from the same "
        "samples and move together, so one fluctuation counts up to four times.",
        "",
        f"**Error calibration**: spread of the {n_seeds} seeds' values / mean jackknife error, per observable "
        f"(median over T; 1 = errors right; with {n_seeds} seeds a single ratio is uncertain by about "
        f"{100 / np.sqrt(2 * (n_seeds - 1)):.0f}%): "
        + ", ".join(f"{label} {np.median(ratio[:, j]):.2f}" for j, label in enumerate(NAMES.values()))
        + f"; over all {ratio.size}: median {np.median(ratio):.2f}, rms {np.sqrt((ratio**2).mean()):.2f}.",
        "",
    ]

    # 2. Pooled samples: bias.
    lines += [
        "**Pooled** (all seeds, "
        f"{n_seeds * args.n_samples} samples per temperature; jackknife over 20 blocks; P(M) chi-square "
        "test against the exact magnetization distribution):",
        "",
        "| T | observable | simulation (pooled) | exact (L = 8) | deviation (σ) | per-seed deviations (σ) |",
        "|---:|---|---:|---:|---:|---|",
    ]
    pooled_devs, pvals = [], []
    for i, temp in enumerate(T):
        pooled = np.concatenate([spins[i] for spins in runs])
        o = observables(pooled, temp)
        for j, (key, label) in enumerate(NAMES.items()):
            value, error = o[key]
            dev = (value - exact[key][i]) / error
            pooled_devs.append(dev)
            per_seed = " ".join(f"{d:+.1f}" for d in devs[:, i, j])
            lines.append(
                f"| {temp:.4f} | {label} | {value:.5f} ± {error:.5f} | {exact[key][i]:.5f} | {dev:+.2f} | {per_seed} |"
            )
        pvals.append(magnetization_chi2(pooled, exact["magnetization_distribution"][i]))
    pooled_devs = np.array(pooled_devs)
    lines += [
        "",
        f"Pooled: max |deviation| {np.abs(pooled_devs).max():.2f} σ, rms {np.sqrt((pooled_devs**2).mean()):.2f}; "
        f"{int((np.abs(pooled_devs) > 2).sum())} of {pooled_devs.size} beyond 2 σ "
        f"(t19 expects {pooled_devs.size * 2 * t19.sf(2):.1f}).",
        "",
        "P(M) chi-square tests (pooled): "
        + "; ".join(f"T={temp:.3f}: χ²={c:.0f}/{d}, p={p:.2g}" for temp, (c, d, p) in zip(T, pvals))
        + f". Smallest p {min(p for _, _, p in pvals):.2g} over {len(T)} tests "
        f"(Bonferroni threshold for 1%: {0.01 / len(T):.1g}).",
        "",
        f"Simulator diagnostics (seed {args.seeds[0]}; tau in sweeps, from the pilot run; tau of the kept samples "
        "in units of samples, 0.5 = independent):",
        "",
        "| T | algorithm | clusters/sweep | mean cluster size | tau(\\|m\\|) | tau(E) | tau(\\|m\\|), kept | "
        "Metropolis acceptance |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, temp in enumerate(T):
        lines.append(
            f"| {temp:.4f} | {meta['algorithm'][i]} | {meta['clusters_per_sweep'][i]} | "
            f"{meta['mean_cluster_size'][i]:.1f} | {meta['tau_abs_m'][i]:.2f} | {meta['tau_energy'][i]:.2f} | "
            f"{meta['tau_abs_m_samples'][i]:.2f} | {meta['acceptance'][i]:.3f} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    BENCHMARKS.write_section("ising_reference", report)


if __name__ == "__main__":
    main()
