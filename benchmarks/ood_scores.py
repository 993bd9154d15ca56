"""Out-of-distribution detection on MNIST with each family's log-density.

For every zoo model with a tractable score (`log_density`: the EBM's -E, the
RBM's -F, the VAE's ELBO), the AUROC of separating MNIST test digits from
uniform noise, inverted digits and digits rotated by 90 degrees
(`keras_gen.evaluation.ood`). Error bars: the standard deviation of the AUROC
over `--splits` disjoint halves of the test digits (and their outliers),
divided by sqrt(splits), a direct measure of its sampling noise.

    python benchmarks/ood_scores.py [--n 4000] [--models ebm_mnist vae_mnist rbm_mnist]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from keras_gen import data, zoo
from keras_gen.benchmarking.report import BenchmarksFile
from keras_gen.evaluation import ood

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = BenchmarksFile(os.path.join(ROOT, "BENCHMARKS.md"))
SCORES = {"ebm": "-E(x) (energy)", "rbm": "-F(x) (free energy)", "vae": "ELBO (one z draw)"}


def measure(model, x, splits, seed):
    inliers = ood.log_densities(model, x)
    sets = {name: ood.log_densities(model, images) for name, images in ood.outliers(x, seed).items()}
    out = {}
    for name, scores in sets.items():
        parts = [ood.auroc(a, b) for a, b in zip(np.array_split(inliers, splits), np.array_split(scores, splits))]
        out[name] = (ood.auroc(inliers, scores), float(np.std(parts, ddof=1) / np.sqrt(splits)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["ebm_mnist", "vae_mnist", "rbm_mnist"])
    parser.add_argument("--n", type=int, default=4000, help="test digits (and images per outlier set)")
    parser.add_argument("--splits", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    x, _ = data.load_arrays("mnist", "test", preprocessing="unit")
    x = x[: args.n]
    rows, skipped = [], []
    for name in args.models:
        try:
            model = zoo.load(name)
        except KeyError:
            skipped.append(name)
            continue
        start = time.perf_counter()
        result = measure(model, x, args.splits, args.seed)
        family = zoo.card(name).family
        row = {"model": f"`{name}`", "score": SCORES.get(family, "log_density")}
        row.update({k: f"{v:.3f} ± {e:.3f}" for k, (v, e) in result.items()})
        row["seconds"] = f"{time.perf_counter() - start:.0f}"
        rows.append(row)
        print(row, flush=True)
    columns = ["model", "score", *ood.OUTLIER_SETS, "seconds"]
    lines = [
        BENCHMARKS.header("Out-of-distribution detection by log-density (AUROC)"),
        f"- inliers: the first {args.n} MNIST test digits (intensities in [0, 1], each model's own input format); "
        "outliers: the same number of uniform-noise images, the same digits inverted (1 - x) and rotated by 90 "
        "degrees; AUROC of test digits scoring higher (1: perfect, 0.5: chance, below 0.5: the outliers look "
        f"likelier); ± its standard error from {args.splits} disjoint splits",
        "" if not skipped else f"- not in the zoo yet: {', '.join(skipped)}",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    BENCHMARKS.write_section("ood_scores", "\n".join(lines))


if __name__ == "__main__":
    main()
