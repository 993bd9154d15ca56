"""Generative models of the 2-D Ising model (8 x 8 torus) against exact thermodynamics.

For each of the eleven temperatures of Torlai & Melko (2016) (1.0 .. 3.54 with Tc):

* RBM: the zoo entry `ising_rbm_L8` (one RBM per temperature, centered CD-20, recipe
  `training/ising_rbm.py`), sampled with the card's protocol (1000 Gibbs chains,
  2000 burn-in sweeps, 100 states 10 sweeps apart). `--train-rbm` retrains it first.
* bond RBM: the zoo entry `ising_bond_rbm_L8` (translation-tied RBM, hidden units on
  the bonds, CD-20, recipe `training/ising_bond_rbm.py`), same protocol with chains
  started from the two ordered states.
* VAE: `keras_gen.models.ising.make_ising_vae` (torus convolutions, latent 4, Bernoulli
  decoder) trained per temperature; spins drawn as z ~ N(0, I), s ~ Bernoulli(decoder).
* GAN: `keras_gen.models.gan.make_gan("mlp")` on ±1 spins (tanh output) trained per
  temperature; spins drawn as s ~ Bernoulli((G(z) + 1) / 2).
* diffusion: one class-conditional `make_diffusion("mlp")` for all temperatures (label =
  the temperature's index) on spins as real numbers +-1; spins are the signs of its
  ancestral (DDPM) samples (`keras_gen.recipes.ising.train_ising_diffusion`).

Each model's E/N, <|m|>, C and chi (jackknife errors) are compared with the exact
transfer-matrix values and with the Monte Carlo training data; one PNG per
observable against T; the table goes to the `ising_models` section of BENCHMARKS.md.

    python benchmarks/ising_models.py [--families rbm bond vae gan diffusion] [--train-rbm]

A family left out of ``--families`` keeps the rows of the last run that measured it
(``benchmarks/figures/ising_models.json``, dated in the section).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import numpy as np

from keras_gen import zoo
from keras_gen.benchmarking.report import BenchmarksFile
from keras_gen.evaluation.ising import (
    COMPARED,
    bernoulli_spins,
    compare_with_exact,
    measure_ising_rbms,
    plot_observables,
    results_table,
    vae_spins,
)
from keras_gen.physics import reference_temperatures, transfer_matrix
from keras_gen.physics.datasets import load_arrays
from keras_gen.recipes.ising import (
    DIFFUSION_RECIPE,
    RBM_RECIPE,
    VAE_RECIPE,
    diffusion_spins,
    train_ising_diffusion,
    train_ising_vae,
)

L = 8
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = BenchmarksFile(os.path.join(ROOT, "BENCHMARKS.md"))
FIGURES = os.path.join(ROOT, "benchmarks", "figures")
RECIPE_FILES = {"ising_rbm_L8": "training/ising_rbm.py", "ising_bond_rbm_L8": "training/ising_bond_rbm.py"}
FAMILY_LABELS = ("Monte Carlo data", "RBM", "bond RBM", "VAE", "GAN", "diffusion")
GAN_RECIPE = {"latent_dim": 16, "hidden": [128, 128], "epochs": 20, "batch_size": 256, "learning_rate": 2e-4}


def rbm_rows(temperatures, name, train=False, label="RBM"):
    """The zoo entry `name` measured with its card's sampling protocol; `train` first
    reruns its recipe in `training/` (in its own process, as from the command line)."""
    if train:
        subprocess.run([sys.executable, os.path.join(ROOT, RECIPE_FILES[name])], cwd=ROOT, check=True)
    model = zoo.load(name)
    rows, _ = measure_ising_rbms(model, temperatures)
    card = zoo.card(name)
    return [(label, t, c) for _, t, c in rows], card["training"].get("seconds")


def vae_rows(temperatures, x, exact, seed=0, n_train=20_000, subset=None, epochs=None):
    rows, seconds = [], 0.0
    for i, temp in enumerate(temperatures):
        if subset is not None and i not in subset:
            continue
        t0 = time.perf_counter()
        model, _ = train_ising_vae(x[i][:n_train], L=L, epochs=epochs, seed=seed + i, name=f"ising_vae_{i}")
        seconds += time.perf_counter() - t0
        spins = vae_spins(model, 100_000, seed=seed + 1000 + i)
        rows.append(("VAE", temp, compare_with_exact(spins, temp, {n: exact[n][i] for n in exact})))
        print(f"VAE T = {temp:.4f}: " + _summary(rows[-1][2]), flush=True)
    return rows, seconds


def gan_rows(temperatures, x, exact, seed=0, n_train=20_000, subset=None, epochs=None):
    import keras
    import tensorflow as tf

    from keras_gen.models.gan import make_gan

    rows, seconds = [], 0.0
    r = dict(GAN_RECIPE, **({"epochs": epochs} if epochs else {}))
    for i, temp in enumerate(temperatures):
        if subset is not None and i not in subset:
            continue
        t0 = time.perf_counter()
        model = make_gan(
            "mlp",
            (L * L,),
            latent_dim=r["latent_dim"],
            data_domain="symmetric",
            generator_kwargs={"hidden": r["hidden"]},
            discriminator_kwargs={"hidden": r["hidden"], "dropout": 0.0},
            seed=seed + i,
            name=f"ising_gan_{i}",
        )
        model.compile(
            d_optimizer=keras.optimizers.Adam(r["learning_rate"], beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(r["learning_rate"], beta_1=0.5),
        )
        pm1 = 2.0 * x[i][:n_train] - 1.0
        data = (
            tf.data.Dataset.from_tensor_slices(pm1)
            .shuffle(len(pm1), seed=seed + i)
            .batch(r["batch_size"], drop_remainder=True)
        )
        model.fit(data, epochs=r["epochs"], verbose=0)
        seconds += time.perf_counter() - t0
        means = (model.sample(100_000, seed=seed + 1000 + i) + 1.0) / 2.0
        spins = bernoulli_spins(np.clip(means, 0.0, 1.0), seed=seed + 2000 + i)
        rows.append(("GAN", temp, compare_with_exact(spins, temp, {n: exact[n][i] for n in exact})))
        print(f"GAN T = {temp:.4f}: " + _summary(rows[-1][2]), flush=True)
    return rows, seconds


def diffusion_rows(temperatures, x, exact, seed=0, n_train=20_000, epochs=None, n_samples=10_000):
    """One class-conditional diffusion model for every temperature (`train_ising_diffusion`),
    its samples' signs compared with the exact values."""
    t0 = time.perf_counter()
    model, _ = train_ising_diffusion(x[:, :n_train], L=L, epochs=epochs, seed=seed, verbose=2)
    seconds = time.perf_counter() - t0
    rows = []
    for i, temp in enumerate(temperatures):
        spins = diffusion_spins(model, n_samples, i, seed=seed + 3000 + i)
        rows.append(("diffusion", temp, compare_with_exact(spins, temp, {n: exact[n][i] for n in exact})))
        print(f"diffusion T = {temp:.4f}: " + _summary(rows[-1][2]), flush=True)
    return rows, seconds


def _summary(comp):
    return ", ".join(f"{n} {100 * comp[n]['relative']:+.2f}%" for n in COMPARED)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--families",
        nargs="+",
        default=["rbm", "bond", "vae", "gan", "diffusion"],
        choices=["rbm", "bond", "vae", "gan", "diffusion"],
    )
    parser.add_argument("--train-rbm", action="store_true", help="retrain the zoo RBMs first (recipes)")
    parser.add_argument("--n-samples", type=int, default=100_000, help="Monte Carlo samples per temperature")
    parser.add_argument(
        "--n-train",
        type=int,
        default=20_000,
        help="training samples per temperature for the VAE and GAN (the RBM uses its card's)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="VAE and GAN epochs (default: their recipes')")
    parser.add_argument(
        "--subset",
        type=int,
        nargs="+",
        default=None,
        help="indices (0-10) of the temperatures at which to train the VAE and GAN (default all)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    vae_recipe = dict(VAE_RECIPE, **({"epochs": args.epochs} if args.epochs else {}))
    gan_recipe = dict(GAN_RECIPE, **({"epochs": args.epochs} if args.epochs else {}))

    start = time.perf_counter()
    temperatures = reference_temperatures()
    exact = {n: v for n, v in transfer_matrix(L, temperatures).items() if n in COMPARED}
    x, _ = load_arrays("train", L=L, temperature=temperatures, n_samples=args.n_samples, flatten=True, seed=args.seed)
    x = x.reshape(len(temperatures), args.n_samples, L * L)
    rows = {
        "Monte Carlo data": [
            ("Monte Carlo data", t, compare_with_exact(x[i], t, {n: exact[n][i] for n in exact}))
            for i, t in enumerate(temperatures)
        ]
    }
    seconds = {}
    if "rbm" in args.families:
        t0 = time.perf_counter()
        rows["RBM"], train_s = rbm_rows(temperatures, "ising_rbm_L8", train=args.train_rbm)
        seconds["RBM"] = (train_s, time.perf_counter() - t0)
    if "bond" in args.families:
        t0 = time.perf_counter()
        rows["bond RBM"], train_s = rbm_rows(temperatures, "ising_bond_rbm_L8", train=args.train_rbm, label="bond RBM")
        seconds["bond RBM"] = (train_s, time.perf_counter() - t0)
    if "vae" in args.families:
        t0 = time.perf_counter()
        rows["VAE"], train_s = vae_rows(
            temperatures, x, exact, seed=args.seed, n_train=args.n_train, subset=args.subset, epochs=args.epochs
        )
        seconds["VAE"] = (train_s, time.perf_counter() - t0)
    if "gan" in args.families:
        t0 = time.perf_counter()
        rows["GAN"], train_s = gan_rows(
            temperatures, x, exact, seed=args.seed, n_train=args.n_train, subset=args.subset, epochs=args.epochs
        )
        seconds["GAN"] = (train_s, time.perf_counter() - t0)

    if "diffusion" in args.families:
        t0 = time.perf_counter()
        rows["diffusion"], train_s = diffusion_rows(
            temperatures, x, exact, seed=args.seed, n_train=args.n_train, epochs=args.epochs
        )
        seconds["diffusion"] = (train_s, time.perf_counter() - t0)

    # Families not run this time keep the rows of the last run that measured them.
    os.makedirs(FIGURES, exist_ok=True)
    results_path = os.path.join(FIGURES, "ising_models.json")
    previous = {}
    if os.path.exists(results_path):
        with open(results_path) as f:
            previous = json.load(f)
    measured_at = {label: date for label, date in previous.get("measured_at", {}).items()}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    for label in list(rows):
        measured_at[label] = now
    for label in FAMILY_LABELS[1:]:
        if label not in rows and label in previous.get("rows", {}):
            rows[label] = [(label, r["T"], {**{n: r[n] for n in COMPARED}}) for r in previous["rows"][label]]
            seconds[label] = tuple(previous.get("seconds", {}).get(label, (None, 0.0)))
    rows = {label: rows[label] for label in FAMILY_LABELS if label in rows}

    points = {}
    for label, family_rows in rows.items():
        p = {"T": [t for _, t, _ in family_rows]}
        for n in COMPARED:
            p[n] = [(c[n]["value"], c[n]["error"]) for _, _, c in family_rows]
        points[label] = p
    figures = plot_observables(points, L, FIGURES, prefix="ising_models")
    wall = time.perf_counter() - start

    lines = [
        BENCHMARKS.header("Generative models of the 8x8 Ising model vs exact thermodynamics"),
        f"- wall time: {wall / 60:.1f} min in total; per family (training s, training + sampling s): "
        + ", ".join(f"{k} ({'zoo' if v[0] is None else f'{v[0]:.0f}'}, {v[1]:.0f})" for k, v in seconds.items()),
        "- data: `keras_gen.data.load_arrays('ising', 'train', L=8, temperature=T, n_samples="
        f"{args.n_samples}, seed={args.seed})` per temperature (Wolff + Metropolis, decorrelated)",
        "- exact: `keras_gen.physics.transfer_matrix(8, T)`; errors: jackknife over 20 blocks (chains kept "
        "whole for the RBM); relative = model / exact - 1; targets: E and |m| within 1%, C and chi within 5%",
        f"- RBM: zoo `ising_rbm_L8` (64 hidden, {RBM_RECIPE}); bond RBM: zoo "
        "`ising_bond_rbm_L8` (`training/ising_bond_rbm.py`, chains started ordered); VAE: torus-conv, "
        f"{vae_recipe}; GAN: MLP, {gan_recipe}; diffusion: one class-conditional model (label = T), MLP "
        f"denoiser on +-1 spins, signs of its samples, {DIFFUSION_RECIPE}",
        "- measured: "
        + ", ".join(f"{k} {v}" for k, v in measured_at.items() if k in rows)
        + " (a family left out of `--families` keeps its last measurement)",
        "- figures: " + ", ".join(f"`{os.path.relpath(f, ROOT)}`" for f in figures),
        "",
    ]
    summary = []
    for label, family_rows in rows.items():
        ok = {n: sum(c[n]["ok"] for _, _, c in family_rows) for n in COMPARED}
        worst = {n: max(abs(c[n]["relative"]) for _, _, c in family_rows) for n in COMPARED}
        summary.append(
            f"| {label} | "
            + " | ".join(f"{ok[n]}/{len(family_rows)} (worst {100 * worst[n]:.1f}%)" for n in COMPARED)
            + " |"
        )
    lines += [
        "Temperatures within target (of those measured), and the largest relative error over T:",
        "",
        "| model | E/N | <\\|m\\|> | C | chi |",
        "|---|---:|---:|---:|---:|",
        *summary,
        "",
        "Exact values:",
        "",
        "| T | E/N | <\\|m\\|> | C | chi |",
        "|---:|---:|---:|---:|---:|",
    ]
    for i, t in enumerate(temperatures):
        lines.append(f"| {t:.4f} | " + " | ".join(f"{exact[n][i]:.5f}" for n in COMPARED) + " |")
    lines += [
        "",
        "Per temperature (value ± error, relative deviation from exact):",
        "",
        results_table([r for family_rows in rows.values() for r in family_rows]),
    ]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    BENCHMARKS.write_section("ising_models", markdown)
    with open(results_path, "w") as f:
        json.dump(
            {
                "rows": {
                    label: [{"T": t, **{n: c[n] for n in COMPARED}} for _, t, c in fr] for label, fr in rows.items()
                },
                "seconds": seconds,
                "measured_at": measured_at,
            },
            f,
            indent=1,
            default=float,
        )


if __name__ == "__main__":
    main()
