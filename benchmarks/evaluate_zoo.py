"""The zoo table: every MNIST model of the zoo judged the same way.

For each zoo entry (the domain classifier itself and 2-D toy models
excepted) `keras_gen.evaluation.evaluate` draws `--samples` samples (default
10,000, with the model's own sampling settings) and reports, against the
10,000 MNIST test images: the Fréchet distance and KID in the classifier's
feature space, the classifier score, improved precision/recall, the class
histogram, the pixel MMD of note 002, the test-set NLL where the family has
one, and the generation rate. Reference rows (MNIST training images, clean
and corrupted) give the scale. Rows are kept in benchmarks/evaluate_zoo.json,
so `--only NAME` refreshes one model (`--missing`: the entries without a row)
and leaves the others' rows as they were measured (each row carries its own
date and command).

    TFDS_DATA_DIR=... python benchmarks/evaluate_zoo.py [--samples 10000] [--only vae_mnist ... | --missing]
    keras-gen evaluate --all        # the same
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import report  # noqa: E402

SECTION = "evaluate_zoo"
ROWS_JSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluate_zoo.json")
REFERENCE_KEY = "_references"


def load_rows():
    if os.path.exists(ROWS_JSON):
        with open(ROWS_JSON) as f:
            return json.load(f)
    return {}


def save_rows(rows):
    tmp = ROWS_JSON + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rows, f, indent=1, default=float)
        f.write("\n")
    os.replace(tmp, ROWS_JSON)


def stamp(row, command):
    from keras_gen.recipes import now_iso

    row["date"] = now_iso()
    row["command"] = command
    return row


def evaluate_entries(names, args, rows):
    from keras_gen import evaluation, zoo

    classifier = evaluation.load_classifier()
    for name in names:
        entry = zoo.card(name)
        if entry.get("family") == "classifier":
            continue
        command = f"keras-gen evaluate {name} --samples {args.samples} --seed {args.seed}"
        if entry.get("family") == "vae":
            command += f" --nll-images {args.nll_images} --iwae-k {args.iwae_k}"
        elif entry.get("family") == "rbm":
            command += f" --nll-images {args.nll_images}"
        started = time.perf_counter()
        try:
            row = evaluation.evaluate(name, n_samples=args.samples, seed=args.seed, classifier=classifier,
                                      nll_images=args.nll_images, iwae_k=args.iwae_k,
                                      ais_chains=args.ais_chains)
        except evaluation.NotEvaluable as err:
            row = {"model": name, "family": entry.get("family"), "note": str(err)}
        row["seconds"] = time.perf_counter() - started
        rows[name] = stamp(row, command)
        save_rows(rows)
        print(evaluation.format_row(row) if "fd" in row else f"{name}: {row['note']}", flush=True)


def evaluate_references(args, rows):
    from keras_gen import evaluation

    command = f"python benchmarks/evaluate_zoo.py --samples {args.samples} --seed {args.seed} (reference rows)"
    references = evaluation.reference_rows(n=args.samples, seed=args.seed)
    rows[REFERENCE_KEY] = [stamp(r, command) for r in references]
    save_rows(rows)
    for r in references:
        print(f"{r['model']}: FD {r['fd']:.3g}, score {r['score']:.3f}, KID {r['kid']:.2e}, "
              f"P {r['precision']:.3f}, R {r['recall']:.3f}", flush=True)


def _pm(value, err, fmt):
    if value is None:
        return None
    return f"{format(value, fmt)} ± {format(err, fmt)}" if err is not None else format(value, fmt)


def table_row(row):
    if "fd" not in row:
        return {"model": row["model"], "note": row.get("note"), "date": row.get("date"),
                "command": f"`{row.get('command')}`"}
    nll = None
    if row.get("nll") is not None:
        nll = f"{row['nll']:.2f} ± {row['nll_err']:.2f} ({row['nll_method'].split(' (')[0]})"
        if row.get("nll_conservative") is not None:
            nll += f"; RAISE {row['nll_conservative']:.2f} ± {row['nll_conservative_err']:.2f}"
    targets = None
    if "targets_met" in row:
        failed = [label for key, label in (("score_ok", "score"), ("fd_ok", "FD"), ("classes_ok", "classes"))
                  if not row[key]]
        targets = "met" if not failed else "short: " + ", ".join(failed)
    return {
        "model": row["model"],
        "fd": f"{row['fd']:.3g}",
        "score": f"{row['score']:.3f}",
        "kid": _pm(row["kid"], row["kid_std"], ".3g"),
        "precision": f"{row['precision']:.3f}",
        "recall": f"{row['recall']:.3f}",
        "classes": f"±{row['class_max_deviation']:.0%}",
        "mmd": f"{row['mmd']:.3f}",
        "nll": nll,
        "rate": None if row.get("samples_per_second") is None else f"{row['samples_per_second']:,.0f}",
        "targets": targets,
        "date": row.get("date"),
        "command": f"`{row.get('command')}`",
    }


COLUMNS = [("model", "model"), ("fd", "FD"), ("score", "score"), ("kid", "KID"),
           ("precision", "precision"), ("recall", "recall"), ("classes", "classes vs uniform"),
           ("mmd", "pixel MMD"), ("nll", "test NLL, nats"), ("rate", "samples/s"), ("targets", "targets"),
           ("date", "date"), ("command", "command")]


def histogram_table(model_rows):
    lines = ["| model | " + " | ".join(str(d) for d in range(10)) + " |", "|---|" + "---|" * 10]
    for row in model_rows:
        if "class_fractions" in row:
            lines.append(f"| {row['model']} | " + " | ".join(f"{100 * f:.1f}" for f in row["class_fractions"]) + " |")
    return "\n".join(lines)


def write_table(rows, args):
    from keras_gen import evaluation, zoo

    names = [n for n in zoo.list() if zoo.card(n).get("family") != "classifier"]
    model_rows = [rows[n] for n in names if n in rows]
    missing = [n for n in names if n not in rows]
    references = rows.get(REFERENCE_KEY, [])
    classifier = zoo.card(evaluation.CLASSIFIER_NAME)
    first = next((r for r in model_rows + references if "settings" in r), None)
    settings = first["settings"] if first else {}
    test = next((r for r in model_rows if "test_score" in r), None)
    md = [report.header("Zoo evaluation: sample quality and likelihood",
                        command="keras-gen evaluate --all  (= python benchmarks/evaluate_zoo.py)"), ""]
    md.append(
        f"Every MNIST model of the zoo against the 10,000 MNIST test images, with "
        f"{args.samples:,} generated samples per model (each row's command says what was used). "
        f"Features: the penultimate layer `{settings.get('feature_layer', 'features')}` of the zoo's "
        f"domain classifier `{evaluation.CLASSIFIER_NAME}` (test accuracy "
        f"{classifier['metrics']['test_accuracy']:.2%}, `training/mnist_classifier.py`). "
        "FD: Fréchet distance of the Gaussians fitted to the features (lower is better; biased upwards at "
        "finite n, so compare rows of the same sample count). Score: exp(E KL(p(y|x) ‖ p(y))) of the "
        f"classifier (at most 10). KID: unbiased cubic-kernel MMD² (in the features' units, which are not "
        "unit-normalized, hence values far from the ~10⁻³ of Inception features), ± std over "
        f"{settings.get('kid_subsets', 100)} subsets of {settings.get('kid_subset_size', 1000)}. "
        f"Precision/recall: k-NN manifolds, k = {settings.get('pr_k', 3)} (Kynkäänniemi et al. 2019). "
        "Classes: largest deviation of a predicted-class fraction from 10%. Pixel MMD: Gaussian kernel "
        f"on raw pixels, note 002's biased estimate, first {settings.get('mmd_samples', 2000):,} images "
        "of each set, bandwidth² = mean squared distance between test images. Test NLL: nats per image on "
        "the MNIST test set binarized once (seed 0), VAE by the importance-weighted bound, RBM by AIS "
        "(± its error); none for GANs. Samples/s: wall time of generating the samples, after a warm-up "
        "batch, on the shared CPU (other jobs running)."
    )
    if test:
        md.append("")
        md.append(f"Targets for the image models: score ≥ 0.97 × the test set's own score "
                  f"({test['test_score']:.3f}, so ≥ {0.97 * test['test_score']:.3f}), FD ≤ 2 × FD(train, test) "
                  f"({test['fd_train_test']:.3g}, so ≤ {2 * test['fd_train_test']:.3g}), every class within ±30% "
                  "of uniform.")
    md += ["", "### Models", "", report.markdown_table([table_row(r) for r in model_rows if "fd" in r], COLUMNS)]
    for row in model_rows:
        if row.get("nll_method"):
            nll = "; ".join(part for part in (row["nll_method"], row.get("nll_data")) if part)
            md.append(f"- {row['model']}: NLL {nll}. Sampling: {row.get('sampling')}.")
        if row.get("note"):
            md.append(f"- {row['model']}: not in the table: {row['note']}")
    if missing:
        md.append(f"- Not evaluated yet: {', '.join(missing)} (run `python benchmarks/evaluate_zoo.py --missing`).")
    md += ["", "### Reference rows", "",
           "MNIST training images against the test set (the floor at this sample count), and training images "
           "corrupted by Gaussian pixel noise (clipped to [0, 1]) and by Gaussian blur: FD, KID, score, recall "
           "and pixel MMD get worse step by step. Precision need not: heavily blurred digits collapse into a "
           "small region of feature space that lies inside the real digits' k-NN balls (a known blind spot of "
           "precision alone; recall and the class histogram expose it).", "",
           report.markdown_table([table_row(r) for r in references], [c for c in COLUMNS if c[0] not in
                                                                       ("nll", "rate", "targets")])]
    md += ["", "### Class histograms (% of samples per predicted digit)", "",
           histogram_table(model_rows + references[:1])]
    report.write_section(SECTION, "\n".join(md))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", help="evaluate only these zoo entries (keep the other rows)")
    parser.add_argument("--missing", action="store_true",
                        help="evaluate only zoo entries without a stored row (keep the others and the references)")
    parser.add_argument("--no-references", action="store_true", help="keep the stored reference rows")
    parser.add_argument("--nll-images", type=int, default=1000)
    parser.add_argument("--iwae-k", type=int, default=1000)
    parser.add_argument("--ais-chains", type=int, default=100)
    parser.add_argument("--table-only", action="store_true", help="rewrite the section from the stored rows")
    args = parser.parse_args(argv)

    from keras_gen import zoo

    rows = load_rows()
    if not args.table_only:
        names = args.only or zoo.list()
        for name in names:
            zoo.card(name)  # unknown names fail here, before any work
        if args.missing:
            names = [n for n in names if n not in rows]
        if not (args.no_references or args.only or args.missing) or REFERENCE_KEY not in rows:
            evaluate_references(args, rows)
        evaluate_entries(names, args, rows)
    write_table(rows, args)
    print(f"wrote section {SECTION!r} of {report.BENCHMARKS_MD}")


if __name__ == "__main__":
    main()
