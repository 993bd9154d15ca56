"""Recipe: the `ising_rbm_L8` zoo entry.

One Bernoulli RBM (64 visible, 64 hidden) per temperature for the 2-D Ising
model on the 8 x 8 torus, at the eleven temperatures of Torlai & Melko (2016)
(1.0 .. 3.54 with Tc), each trained with `make_rbm` + `fit` by centered CD-20
(`keras_gen.ising_models.train_ising_rbm`, recipe `RBM_RECIPE`) on Monte Carlo
samples of `keras_gen.ising`. Then every RBM is sampled with long thinned
Gibbs chains and its energy, |m|, specific heat and susceptibility are
compared with the exact transfer-matrix values; the numbers go on the card,
the figures to `zoo/figures/`, the weights (all temperatures in one file) to
`saved_models/`.

    python training/ising_rbm.py                    # train all, evaluate, write the card
    python training/ising_rbm.py --evaluate-only    # re-measure the saved weights

Resumable: each temperature's trained RBM is kept in the run folder and
skipped when the command is run again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from keras_gen import ising, ising_models, zoo
from keras_gen.recipes import machine_description, now_iso, write_card
from keras_gen.rbm import make_rbm
from keras_gen.trainer import save_atomically

NAME = "ising_rbm_L8"
L = 8
VARIANT = {
    "name": NAME,
    "recipe": {},  # overrides of ising_models.RBM_RECIPE
    "ordered_start": False,
    "recipe_file": "training/ising_rbm.py",
    "description": ("Eleven Bernoulli RBMs (64 visible, 64 hidden), one per temperature, of the 2-D Ising "
                    "model on the 8x8 torus (Torlai & Melko 2016). "
                    "model.sample(n, seed, temperature=T, gibbs_steps=...) draws {0,1} spins."),
}
"""What distinguishes a zoo entry made by this recipe (`training/ising_bond_rbm.py` is another)."""
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVALUATION = {"n_chains": 1000, "n_keep": 100, "thin": 10, "n_burn": 2000, "seed": 12345}
"""Sampling protocol of the card's numbers: `gibbs_chains(n_chains, n_keep, thin, n_burn, seed + i)`
at temperature index i (chain-major, jackknife over 20 blocks)."""


def architecture(temperatures, n_hidden, variant=VARIANT):
    kwargs = {"temperatures": [float(t) for t in temperatures], "L": L, "n_hidden": int(n_hidden),
              "name": variant["name"]}
    if variant["ordered_start"]:
        kwargs["start"] = "ordered"
    return {"builder": "keras_gen.ising_models.make_ising_rbms", "kwargs": kwargs}


def train(args, temperatures, variant=VARIANT):
    """Train (or reuse) one RBM per temperature; returns the IsingRBMs model and timings."""
    os.makedirs(args.out, exist_ok=True)
    x, _ = ising.load_arrays("train", L=L, temperature=temperatures, n_samples=args.n_samples, flatten=True,
                             seed=args.seed)
    x = x.reshape(len(temperatures), args.n_samples, L * L)
    ensemble = ising_models.make_ising_rbms(temperatures, L=L, n_hidden=args.hidden, seed=args.seed,
                                            start="ordered" if variant["ordered_start"] else "random")
    ensemble.build_for_data()
    seconds = {}
    for i, temp in enumerate(temperatures):
        if args.temperature_indices is not None and i not in args.temperature_indices:
            continue
        path = os.path.join(args.out, f"rbm_T{i:02d}.weights.h5")
        if os.path.exists(path):
            model = make_rbm("bernoulli", L * L, args.hidden, k=ising_models.RBM_RECIPE["k"], persistent=False)
            model.load_weights(path)
            info = path.replace(".weights.h5", ".json")
            if os.path.exists(info):
                with open(info) as f:
                    seconds[f"{temp:.4f}"] = json.load(f)["train_seconds"]
            print(f"T = {temp:.4f}: reusing {path}", flush=True)
        else:
            t0 = time.perf_counter()
            recipe = dict(variant["recipe"], n_hidden=args.hidden, epochs=args.epochs)
            model, _ = ising_models.train_ising_rbm(x[i], seed=args.seed + i, name=f"rbm_T{i:02d}", **recipe)
            seconds[f"{temp:.4f}"] = time.perf_counter() - t0
            # Only the RBM layer matters for the card; save it as a plain, chain-free RBM.
            plain = make_rbm("bernoulli", L * L, args.hidden, k=model.k, persistent=False)
            for dst, src in zip(plain.rbm.weights, model.rbm.weights):
                dst.assign(src)
            save_atomically(plain, path, weights_only=True)
            write_card(path.replace(".weights.h5", ".json"), {"T": float(temp), "train_seconds": seconds[f"{temp:.4f}"]})
            print(f"T = {temp:.4f}: trained in {seconds[f'{temp:.4f}']:.0f} s", flush=True)
        ensemble.set_rbm(temp, model)
    return ensemble, seconds, x


def evaluate(ensemble, temperatures, x=None, variant=VARIANT):
    """Sample every temperature's RBM with the card's protocol; compare with exact values."""
    exact = ising.transfer_matrix(L, temperatures)
    rows, points = [], {"RBM": {"T": list(temperatures)}, "Monte Carlo data": {"T": list(temperatures)}}
    for p in points.values():
        for name in ising_models.COMPARED:
            p[name] = []
    for i, temp in enumerate(temperatures):
        ex_i = {n: exact[n][i] for n in ising_models.COMPARED}
        chains = ising_models.gibbs_chains(
            ising_models.rbm_sampler(ensemble, temp), EVALUATION["n_chains"], EVALUATION["n_keep"],
            EVALUATION["thin"], EVALUATION["n_burn"], seed=EVALUATION["seed"] + i)  # from the model's `start`
        comp = ising_models.compare_with_exact(chains.reshape(-1, L * L), temp, exact=ex_i)
        rows.append(("RBM", temp, comp))
        for name in ising_models.COMPARED:
            points["RBM"][name].append((comp[name]["value"], comp[name]["error"]))
        if x is not None:
            data_comp = ising_models.compare_with_exact(x[i], temp, exact=ex_i)
            for name in ising_models.COMPARED:
                points["Monte Carlo data"][name].append((data_comp[name]["value"], data_comp[name]["error"]))
        print(f"T = {temp:.4f}: " + ", ".join(f"{n} {100 * comp[n]['relative']:+.2f}%" for n in ising_models.COMPARED),
              flush=True)
    if x is None:
        points.pop("Monte Carlo data")
    return rows, points


def main(argv=None, variant=VARIANT, doc=__doc__):
    name = variant["name"]
    recipe = dict(ising_models.RBM_RECIPE, **variant["recipe"])
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=None, help=f"default {recipe['epochs']}")
    parser.add_argument("--hidden", type=int, default=recipe["n_hidden"])
    parser.add_argument("--n-samples", type=int, default=100_000, help="Monte Carlo samples per temperature")
    parser.add_argument("--out", default=os.path.join("runs", name))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate-only", action="store_true", help="measure the saved zoo weights again")
    parser.add_argument("--temperature-indices", type=int, nargs="+", default=None,
                        help="only train these temperatures (0-10) into --out and stop; run again without "
                             "it to evaluate all and write the card (lets several processes share the work)")
    args = parser.parse_args(argv)
    temperatures = ising_models.reference_temperatures()
    start = time.perf_counter()
    if args.evaluate_only:
        ensemble, seconds, x = zoo.load(name), {}, None
    else:
        ensemble, seconds, x = train(args, temperatures, variant)
        if args.temperature_indices is not None:
            return None
    t_eval = time.perf_counter()
    rows, points = evaluate(ensemble, temperatures, x, variant)
    eval_seconds = time.perf_counter() - t_eval
    figures_dir = os.path.join(ROOT, "zoo", "figures")
    figures = ising_models.plot_observables(points, L, figures_dir, prefix=name)
    table = ising_models.results_table(rows)
    print(table)
    if args.evaluate_only:
        return rows

    weights = os.path.join(ROOT, "saved_models", f"{name}.weights.h5")
    save_atomically(ensemble, weights, weights_only=True)
    metrics = {}
    for _, temp, comp in rows:
        metrics[f"T={temp:.4f}"] = {
            n: {"value": round(comp[n]["value"], 5), "error": round(comp[n]["error"], 5),
                "exact": round(comp[n]["exact"], 5), "relative": round(comp[n]["relative"], 5)}
            for n in ising_models.COMPARED}
    n_ok = sum(all(c[n]["ok"] for n in ising_models.COMPARED) for _, _, c in rows)
    card = {
        "name": name,
        "family": "rbm",
        "description": variant["description"],
        "architecture": architecture(temperatures, args.hidden, variant),
        "dataset": {"name": "ising", "L": L, "temperatures": [float(t) for t in temperatures],
                    "n_samples": args.n_samples, "split": "train", "seed": args.seed,
                    "load": f"keras_gen.data.load_arrays('ising', 'train', L={L}, temperature=T, "
                            f"n_samples={args.n_samples}, seed={args.seed}, flatten=True)"},
        "recipe": variant["recipe_file"],
        "weights": {"file": f"{name}.weights.h5", "sha256": zoo.sha256(weights)},
        "metrics": {
            "temperatures_within_target": n_ok,
            "targets": "relative error vs exact: E and |m| within 1%, C and chi within 5%",
            "evaluation": dict(EVALUATION, ordered_start=variant["ordered_start"],
                               note="ising_models.gibbs_chains at temperature index i with seed + i "
                                    "(ordered_start: half the chains from all up, half from all down); "
                                    "ising.observables with 20 jackknife blocks"),
            "per_temperature": metrics,
        },
        "training": {
            "recipe": dict(recipe, n_hidden=args.hidden, **({"epochs": args.epochs} if args.epochs else {})),
            "seconds_per_temperature": {k: round(v) for k, v in seconds.items()},
            "seconds": round(sum(seconds.values())) if seconds else None,
            "evaluation_seconds": round(eval_seconds),
            "seconds_note": "the CPU was shared with other jobs",
            "machine": machine_description(),
            "date": now_iso(),
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        },
        "figures": [os.path.relpath(f, ROOT) for f in figures],
    }
    write_card(os.path.join(ROOT, "zoo", f"{name}.json"), card)
    print(json.dumps({"temperatures_within_target": n_ok, "wall_s": round(time.perf_counter() - start)}))
    return rows


if __name__ == "__main__":
    main()
