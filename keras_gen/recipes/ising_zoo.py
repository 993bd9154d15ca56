"""The Ising zoo entries: one RBM per temperature, trained, measured and published.

`training/ising_rbm.py` (`ising_rbm_L8`) and `training/ising_bond_rbm.py`
(`ising_bond_rbm_L8`) differ only in their *variant*, a dict:

* ``name``: the zoo entry;
* ``recipe``: overrides of `keras_gen.recipes.ising.RBM_RECIPE`;
* ``ordered_start``: whether the model's chains start ordered (`IsingRBMs(start="ordered")`);
* ``recipe_file``: the script, as the card names it;
* ``description``: the card's description.

Both call `main` here with their variant. `make_zoo_entry` trains (or reuses)
the RBM of each of the eleven `reference_temperatures()` on Monte Carlo samples,
measures every one with the cards' protocol
(`keras_gen.evaluation.ising.measure_ising_rbms`), and writes the weights, the
figures and the card under the repository root. Resumable: each temperature's
trained RBM is kept in the run folder and reused when the command is run again.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from keras_gen import zoo
from keras_gen.cli import positive_int
from keras_gen.core.files import save_atomically, write_json
from keras_gen.evaluation.ising import (
    COMPARED,
    SAMPLING_PROTOCOL,
    measure_ising_rbms,
    plot_observables,
    results_table,
)
from keras_gen.models.ising import make_ising_rbms
from keras_gen.models.rbm import make_rbm
from keras_gen.physics.datasets import load_arrays
from keras_gen.physics.lattice import reference_temperatures
from keras_gen.recipes.ising import RBM_RECIPE, train_ising_rbm
from keras_gen.zoo.publish import publish

L = 8
"""The zoo entries' lattice is 8 x 8."""


def architecture(temperatures, n_hidden, variant):
    """The card's `architecture`: the builder and its arguments."""
    kwargs = {
        "temperatures": [float(t) for t in temperatures],
        "L": L,
        "n_hidden": int(n_hidden),
        "name": variant["name"],
    }
    if variant["ordered_start"]:
        kwargs["start"] = "ordered"
    return {"factory": "ising_rbms", "kwargs": kwargs}


def train_ising_rbms(
    variant, temperatures, out, n_samples=100_000, hidden=None, epochs=None, seed=0, temperature_indices=None
):
    """Train (or reuse, from `out`) one RBM per temperature; returns the `IsingRBMs` model,
    the training seconds per temperature and the Monte Carlo data, (n_T, n_samples, L*L).

    `temperature_indices`: train only these; the other slots keep their initial weights.
    """
    hidden = dict(RBM_RECIPE, **variant["recipe"])["n_hidden"] if hidden is None else hidden
    os.makedirs(out, exist_ok=True)
    x, _ = load_arrays("train", L=L, temperature=temperatures, n_samples=n_samples, flatten=True, seed=seed)
    x = x.reshape(len(temperatures), n_samples, L * L)
    ensemble = make_ising_rbms(
        temperatures, L=L, n_hidden=hidden, seed=seed, start="ordered" if variant["ordered_start"] else "random"
    )
    ensemble.build_for_data()
    seconds = {}
    for i, temp in enumerate(temperatures):
        if temperature_indices is not None and i not in temperature_indices:
            continue
        path = os.path.join(out, f"rbm_T{i:02d}.weights.h5")
        if os.path.exists(path):
            model = make_rbm("bernoulli", L * L, hidden, k=RBM_RECIPE["k"], persistent=False)
            model.load_weights(path)
            info = path.replace(".weights.h5", ".json")
            if os.path.exists(info):
                with open(info) as f:
                    seconds[f"{temp:.4f}"] = json.load(f)["train_seconds"]
            print(f"T = {temp:.4f}: reusing {path}", flush=True)
        else:
            t0 = time.perf_counter()
            # Without --epochs, `epochs=None` replaces the variant's own epochs by
            # RBM_RECIPE's (60) although the card records the variant's (30 for the bond
            # entry). Kept as the published entries' recipe ran; settle it on retraining.
            recipe = dict(variant["recipe"], n_hidden=hidden, epochs=epochs)
            model, _ = train_ising_rbm(x[i], seed=seed + i, name=f"rbm_T{i:02d}", **recipe)
            seconds[f"{temp:.4f}"] = time.perf_counter() - t0
            # Only the RBM layer matters for the card; save it as a plain, chain-free RBM.
            plain = make_rbm("bernoulli", L * L, hidden, k=model.k, persistent=False)
            for dst, src in zip(plain.layer.weights, model.layer.weights):
                dst.assign(src)
            save_atomically(plain, path, weights_only=True)
            write_json(
                path.replace(".weights.h5", ".json"), {"T": float(temp), "train_seconds": seconds[f"{temp:.4f}"]}
            )
            print(f"T = {temp:.4f}: trained in {seconds[f'{temp:.4f}']:.0f} s", flush=True)
        ensemble.set_rbm(temp, model)
    return ensemble, seconds, x


def make_zoo_entry(
    variant,
    root,
    epochs=None,
    hidden=None,
    n_samples=100_000,
    out=None,
    seed=0,
    evaluate_only=False,
    temperature_indices=None,
):
    """Train the entry of `variant`, measure it, and write it under `root` (the repository):
    weights to `saved_models/`, figures to `zoo/figures/`, the card to `zoo/`.

    `evaluate_only`: measure the published weights again (nothing is written but the
    figures). `temperature_indices`: only train these temperatures into `out` and stop
    (returns None), so several processes can share the work. Returns the
    `measure_ising_rbms` rows.
    """
    name = variant["name"]
    recipe = dict(RBM_RECIPE, **variant["recipe"])
    hidden = recipe["n_hidden"] if hidden is None else hidden
    out = os.path.join("runs", name) if out is None else out
    temperatures = reference_temperatures()
    start = time.perf_counter()
    if evaluate_only:
        ensemble, seconds, x = zoo.load(name), {}, None
    else:
        ensemble, seconds, x = train_ising_rbms(
            variant,
            temperatures,
            out,
            n_samples=n_samples,
            hidden=hidden,
            epochs=epochs,
            seed=seed,
            temperature_indices=temperature_indices,
        )
        if temperature_indices is not None:
            return None
    t_eval = time.perf_counter()
    rows, points = measure_ising_rbms(ensemble, temperatures, x)
    eval_seconds = time.perf_counter() - t_eval
    figures = plot_observables(points, L, os.path.join(root, "zoo", "figures"), prefix=name)
    print(results_table(rows))
    if evaluate_only:
        return rows

    metrics = {}
    for _, temp, comp in rows:
        metrics[f"T={temp:.4f}"] = {
            n: {
                "value": round(comp[n]["value"], 5),
                "error": round(comp[n]["error"], 5),
                "exact": round(comp[n]["exact"], 5),
                "relative": round(comp[n]["relative"], 5),
            }
            for n in COMPARED
        }
    n_ok = sum(all(c[n]["ok"] for n in COMPARED) for _, _, c in rows)
    publish(
        ensemble,
        root,
        name,
        family="rbm",
        description=variant["description"],
        architecture=architecture(temperatures, hidden, variant),
        dataset={
            "name": "ising",
            "L": L,
            "temperatures": [float(t) for t in temperatures],
            "n_samples": n_samples,
            "split": "train",
            "seed": seed,
            "load": f"keras_gen.data.load_arrays('ising', 'train', L={L}, temperature=T, "
            f"n_samples={n_samples}, seed={seed}, flatten=True)",
        },
        metrics={
            "temperatures_within_target": n_ok,
            "targets": "relative error vs exact: E and |m| within 1%, C and chi within 5%",
            "evaluation": dict(
                SAMPLING_PROTOCOL,
                ordered_start=variant["ordered_start"],
                note="keras_gen.sampling.gibbs.gibbs_chains at temperature index i with seed + i "
                "(ordered_start: half the chains from all up, half from all down); "
                "keras_gen.physics.observables.observables with 20 jackknife blocks",
            ),
            "per_temperature": metrics,
        },
        training={
            "recipe": dict(recipe, n_hidden=hidden, **({"epochs": epochs} if epochs else {})),
            "seconds_per_temperature": {k: round(v) for k, v in seconds.items()},
            "seconds": round(sum(seconds.values())) if seconds else None,
            "evaluation_seconds": round(eval_seconds),
            "seconds_note": "the CPU was shared with other jobs",
        },
        command=f"python {variant['recipe_file']}",
        script=variant["recipe_file"],
        figures=[os.path.relpath(f, root) for f in figures],
    )
    print(json.dumps({"temperatures_within_target": n_ok, "wall_s": round(time.perf_counter() - start)}))
    return rows


def main(variant, root, argv=None, doc=None):
    """The command line of a zoo recipe in `training/`: arguments to `make_zoo_entry`."""
    recipe = dict(RBM_RECIPE, **variant["recipe"])
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=positive_int, default=None, help=f"default {recipe['epochs']}")
    parser.add_argument("--hidden", type=positive_int, default=recipe["n_hidden"])
    parser.add_argument("--n-samples", type=positive_int, default=100_000, help="Monte Carlo samples per temperature")
    parser.add_argument("--out", default=os.path.join("runs", variant["name"]))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--evaluate-only", action="store_true", help="measure the saved zoo weights again")
    parser.add_argument(
        "--temperature-indices",
        type=int,
        nargs="+",
        default=None,
        help="only train these temperatures (0-10) into --out and stop; run again without "
        "it to evaluate all and write the card (lets several processes share the work)",
    )
    args = parser.parse_args(argv)
    return make_zoo_entry(
        variant,
        root,
        epochs=args.epochs,
        hidden=args.hidden,
        n_samples=args.n_samples,
        out=args.out,
        seed=args.seed,
        evaluate_only=args.evaluate_only,
        temperature_indices=args.temperature_indices,
    )
