"""The thermodynamics of a generative model of Ising spins, against exact results.

* Getting spins out of a model: `rbm_sampler` (for `gibbs_chains`, long thinned
  block-Gibbs chains of an RBM), `bernoulli_spins` (spin draws from a VAE's or
  GAN's pixel probabilities), `vae_spins`.
* Judging them: `compare_with_exact` (E, |m|, C, chi with jackknife errors
  against the exact finite-lattice values of `keras_gen.physics.exact`), on the
  observables `COMPARED` with the accuracy `TARGETS`; `measure_ising_rbms`, the
  zoo cards' protocol (`SAMPLING_PROTOCOL`) at every temperature of an `IsingRBMs`.
* Showing them: `results_table` (markdown), `plot_observables` (one figure per
  observable against T, with the exact curve of `exact_curve`).
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import tensorflow as tf

from keras_gen.core.random import bernoulli, seed_tensor
from keras_gen.models.ising import IsingRBMs
from keras_gen.physics.exact import transfer_matrix
from keras_gen.physics.lattice import TC, as_pm1
from keras_gen.physics.observables import observables
from keras_gen.sampling.gibbs import gibbs_chains

COMPARED = ("energy", "abs_magnetization", "specific_heat", "susceptibility")
"""The observables a model is judged on (names of `keras_gen.physics.observables.OBSERVABLES`)."""

TARGETS = {"energy": 0.01, "abs_magnetization": 0.01, "specific_heat": 0.05, "susceptibility": 0.05}
"""Relative accuracy a model must reach against the exact values (the physics targets)."""

SAMPLING_PROTOCOL = {"n_chains": 1000, "n_keep": 100, "thin": 10, "n_burn": 2000, "seed": 12345}
"""Sampling protocol of the Ising zoo cards' numbers (`measure_ising_rbms`):
`gibbs_chains(n_chains, n_keep, thin, n_burn, seed + i)` at temperature index i
(chain-major, jackknife over 20 blocks)."""


# =========================================================== spins of a model
def rbm_sampler(model, temperature=None):
    """A `gibbs_chains` sampler of an `RBM` model, or of `IsingRBMs` at `temperature`."""
    if isinstance(model, IsingRBMs):
        return lambda n, seed, gibbs_steps, init: model.generate_samples(
            n, seed, temperature=temperature, gibbs_steps=gibbs_steps, init=init
        )
    return lambda n, seed, gibbs_steps, init: model.generate_samples(
        n, seed, gibbs_steps=gibbs_steps, init=init, return_probabilities=False
    )


def bernoulli_spins(probabilities, seed=0):
    """{0, 1} spins drawn independently from per-spin probabilities (a VAE's or a
    GAN's output), flattened to (n, L*L)."""
    p = tf.convert_to_tensor(np.asarray(probabilities, np.float32).reshape(len(probabilities), -1))
    return keras.ops.convert_to_numpy(bernoulli(p, seed_tensor(seed)))


def vae_spins(model, n, seed=0):
    """n spin configurations of a VAE: z ~ N(0, I), then every spin ~ Bernoulli(decoder)."""
    probabilities = model.sample(n, seed=seed)
    return bernoulli_spins(probabilities, seed=seed + 1)


# ======================================================= against exact values
def compare_with_exact(spins, T, exact=None, n_blocks=20):
    """Observables of `spins` (n, L*L) or (n, L, L) at T against the exact torus values.

    Returns {name: {"value", "error", "exact", "relative", "sigma", "target", "ok"}}
    for the names in `COMPARED`: `relative` = value / exact - 1, `sigma` =
    (value - exact) / error, `ok` = |relative| within the target of `TARGETS`.
    `exact` defaults to `keras_gen.physics.exact.transfer_matrix(L, T)` (L <= 10).
    """
    s = as_pm1(spins)
    obs = observables(s, T, n_blocks=n_blocks)
    if exact is None:
        exact = transfer_matrix(s.shape[-1], float(T))
    out = {}
    for name in COMPARED:
        value, error = obs[name]
        ref = float(np.asarray(exact[name]))
        out[name] = {
            "value": value,
            "error": error,
            "exact": ref,
            "relative": value / ref - 1.0,
            "sigma": (value - ref) / error if error > 0 else math.inf,
            "target": TARGETS[name],
            "ok": abs(value / ref - 1.0) <= TARGETS[name],
        }
    out["correlation"] = obs["correlation"]
    return out


def measure_ising_rbms(model, temperatures, x=None, protocol=SAMPLING_PROTOCOL):
    """Sample every temperature's RBM of `model` (`IsingRBMs`) with `protocol` and compare with exact values.

    Chains start as the model's `start` says. `x`: the Monte Carlo training data,
    shape (n_temperatures, n, L*L), measured alongside when given. Returns
    `(rows, points)`: `rows` of (label, T, `compare_with_exact` result) for
    `results_table`, `points` for `plot_observables` ("RBM" and, with `x`,
    "Monte Carlo data").
    """
    L = int(model.L)
    exact = transfer_matrix(L, temperatures)
    rows, points = [], {"RBM": {"T": list(temperatures)}, "Monte Carlo data": {"T": list(temperatures)}}
    for p in points.values():
        for name in COMPARED:
            p[name] = []
    for i, temp in enumerate(temperatures):
        ex_i = {n: exact[n][i] for n in COMPARED}
        chains = gibbs_chains(
            rbm_sampler(model, temp),
            protocol["n_chains"],
            protocol["n_keep"],
            protocol["thin"],
            protocol["n_burn"],
            seed=protocol["seed"] + i,
        )  # from the model's `start`
        comp = compare_with_exact(chains.reshape(-1, L * L), temp, exact=ex_i)
        rows.append(("RBM", temp, comp))
        for name in COMPARED:
            points["RBM"][name].append((comp[name]["value"], comp[name]["error"]))
        if x is not None:
            data_comp = compare_with_exact(x[i], temp, exact=ex_i)
            for name in COMPARED:
                points["Monte Carlo data"][name].append((data_comp[name]["value"], data_comp[name]["error"]))
        print(f"T = {temp:.4f}: " + ", ".join(f"{n} {100 * comp[n]['relative']:+.2f}%" for n in COMPARED), flush=True)
    if x is None:
        points.pop("Monte Carlo data")
    return rows, points


def results_table(rows):
    """Markdown table of `compare_with_exact` results: rows of (label, T, comparison)."""
    head = (
        "| model | T | E/N (rel.) | <\\|m\\|> (rel.) | C (rel.) | chi (rel.) | all within target |\n"
        "|---|---:|---:|---:|---:|---:|:---:|"
    )
    lines = [head]
    for label, T, comp in rows:
        cells = [
            f"{comp[n]['value']:.4f} ± {comp[n]['error']:.4f} ({100 * comp[n]['relative']:+.1f}%)" for n in COMPARED
        ]
        ok = all(comp[n]["ok"] for n in COMPARED)
        lines.append(f"| {label} | {T:.3f} | " + " | ".join(cells) + f" | {'yes' if ok else 'no'} |")
    return "\n".join(lines)


# ==================================================================== figures
OBSERVABLE_LABELS = {
    "energy": ("energy per spin $E/N$", "energy"),
    "abs_magnetization": (r"magnetization $\langle|m|\rangle$", "abs_magnetization"),
    "specific_heat": ("specific heat $C$", "specific_heat"),
    "susceptibility": (r"susceptibility $\chi$", "susceptibility"),
}


def exact_curve(L, t_min, t_max, n=40):
    """Exact torus observables on a temperature grid (transfer matrix), for plots."""
    grid = np.linspace(t_min, t_max, n)
    return grid, transfer_matrix(L, grid)


def plot_observables(points, L, out_dir, prefix="ising", curve=None, title_suffix=""):
    """One PNG per observable against T: the exact curve and points with error bars.

    `points` maps a label ("Monte Carlo", "RBM", ...) to a dict
    {"T": [...], name: [(value, error), ...]} for the names in `COMPARED`.
    Returns the paths. `curve` = (T grid, transfer-matrix dict), computed if None.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_t = np.concatenate([np.asarray(p["T"], float) for p in points.values()])
    if curve is None:
        curve = exact_curve(L, all_t.min() * 0.95, all_t.max() * 1.02)
    grid, exact = curve
    os.makedirs(out_dir, exist_ok=True)
    styles = ["o", "s", "^", "D", "v"]
    paths = []
    for name in COMPARED:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        ax.plot(grid, exact[name], "k-", lw=1.2, label=f"exact (L = {L})")
        ax.axvline(TC, color="0.8", lw=0.8, ls="--", zorder=0)
        ax.annotate(
            "$T_c$",
            (TC, 0.02),
            xycoords=("data", "axes fraction"),
            xytext=(3, 0),
            textcoords="offset points",
            color="0.5",
            fontsize=8,
        )
        # The axis follows the exact curve: a model far off (a VAE's C can be 100x too
        # large) is drawn as a triangle on the edge instead of squashing the curve flat.
        lo, hi = float(np.min(exact[name])), float(np.max(exact[name]))
        if lo >= 0:
            y_lo, y_hi = 0.0, 1.3 * hi
        else:
            y_lo, y_hi = lo - 0.3 * (hi - lo), max(0.0, hi + 0.15 * (hi - lo))
        for j, (label, p) in enumerate(points.items()):
            t = np.asarray(p["T"], float)
            vals = np.array([v for v, _ in p[name]])
            errs = np.array([e for _, e in p[name]])
            # Offsets keep overlapping error bars apart; the true T is the tick.
            shift = (j - (len(points) - 1) / 2) * 0.012
            inside = (vals >= y_lo) & (vals <= y_hi)
            bars = ax.errorbar(
                t[inside] + shift,
                vals[inside],
                yerr=errs[inside],
                fmt=styles[j % len(styles)],
                ms=4,
                capsize=2,
                mfc="none" if j else None,
                label=label,
            )
            for above, marker in ((True, "^"), (False, "v")):
                off = (vals > y_hi) if above else (vals < y_lo)
                if off.any():
                    ax.plot(
                        t[off] + shift,
                        np.full(off.sum(), y_hi if above else y_lo),
                        marker,
                        color=bars[0].get_color(),
                        ms=7,
                        clip_on=False,
                        label=f"{label}, off scale",
                    )
        ax.set_ylim(y_lo, y_hi)
        ax.set_xlabel("temperature $T$")
        ax.set_ylabel(OBSERVABLE_LABELS[name][0])
        ax.set_title(f"{OBSERVABLE_LABELS[name][0]}, {L}x{L} torus{title_suffix}", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{prefix}_{OBSERVABLE_LABELS[name][1]}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
