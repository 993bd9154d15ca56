"""The zoo table: every MNIST model of the zoo judged the same way, as the
`evaluate_zoo` section of BENCHMARKS.md.

For each zoo entry (the domain classifier itself and 2-D toy models
excepted) `evaluate` draws `samples` samples (default 10,000, with the
model's own sampling settings) and reports, against the 10,000 MNIST test
images: the Fréchet distance and KID in the classifier's feature space, the
classifier score, improved precision/recall, the class histogram, the pixel
MMD of note 002, the test-set NLL where the family has one, and the
generation rate. Reference rows (MNIST training images, clean and corrupted)
give the scale. Rows are kept in a JSON file (benchmarks/evaluate_zoo.json in
a checkout), so `only=[NAME]` refreshes one model (`missing=True`: the
entries without a row) and leaves the others' rows as they were measured
(each row carries its own date and command).

`keras-gen evaluate --all` and `benchmarks/evaluate_zoo.py` both call
`evaluate_zoo`.
"""

from __future__ import annotations

import json
import os
import time

from keras_gen import zoo
from keras_gen.benchmarking.report import BenchmarksFile, markdown_table
from keras_gen.core.files import write_text
from keras_gen.evaluation.sample_quality import NotEvaluable, load_classifier, reference_rows
from keras_gen.evaluation.table import CLASS_DEVIATION, FD_FACTOR, SCORE_FRACTION, evaluate, format_row
from keras_gen.models.classifier import CLASSIFIER_NAME
from keras_gen.zoo.publish import now_iso

SECTION = "evaluate_zoo"
REFERENCE_KEY = "_references"


def load_rows(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def save_rows(rows, path):
    write_text(path, json.dumps(rows, indent=1, default=float) + "\n")


def stamp(row, command):
    row["date"] = now_iso()
    row["command"] = command
    return row


def evaluate_entries(
    names, rows, rows_path, samples=10_000, seed=0, nll_images=1000, iwae_k=1000, ais_chains=100, sample_cache=None
):
    """A row for each zoo entry in `names` (stored in `rows_path` as soon as it is measured).
    `sample_cache`: a directory of kept samples (see `SampleCache`), e.g. a recipe's
    `--sample-cache`, whose headline samples are then read back, not drawn again."""
    classifier = load_classifier()
    for name in names:
        family = zoo.card(name).family
        if family == "classifier":
            continue
        command = f"keras-gen evaluate {name} --samples {samples} --seed {seed}"
        if family == "vae":
            command += f" --nll-images {nll_images} --iwae-k {iwae_k}"
        elif family == "rbm":
            command += f" --nll-images {nll_images}"
        started = time.perf_counter()
        try:
            row = evaluate(
                name,
                n_samples=samples,
                seed=seed,
                classifier=classifier,
                nll_images=nll_images,
                iwae_k=iwae_k,
                ais_chains=ais_chains,
                cache=sample_cache,
            )
        except NotEvaluable as err:
            row = {"model": name, "family": family, "note": str(err)}
        row["seconds"] = time.perf_counter() - started
        rows[name] = stamp(row, command)
        save_rows(rows, rows_path)
        print(format_row(row) if "fd" in row else f"{name}: {row['note']}", flush=True)


def evaluate_references(rows, rows_path, samples=10_000, seed=0):
    command = f"python benchmarks/evaluate_zoo.py --samples {samples} --seed {seed} (reference rows)"
    references = reference_rows(n=samples, seed=seed)
    rows[REFERENCE_KEY] = [stamp(r, command) for r in references]
    save_rows(rows, rows_path)
    for r in references:
        print(
            f"{r['model']}: FD {r['fd']:.3g}, score {r['score']:.3f}, KID {r['kid']:.2e}, "
            f"P {r['precision']:.3f}, R {r['recall']:.3f}",
            flush=True,
        )


def _pm(value, err, fmt):
    if value is None:
        return None
    return f"{format(value, fmt)} ± {format(err, fmt)}" if err is not None else format(value, fmt)


def table_row(row):
    if "fd" not in row:
        return {
            "model": row["model"],
            "note": row.get("note"),
            "date": row.get("date"),
            "command": f"`{row.get('command')}`",
        }
    nll = None
    if row.get("nll") is not None:
        nll = f"{row['nll']:.2f} ± {row['nll_err']:.2f} ({row['nll_method'].split(' (')[0]})"
        if row.get("nll_conservative") is not None:
            nll += f"; RAISE {row['nll_conservative']:.2f} ± {row['nll_conservative_err']:.2f}"
    targets = None
    if "targets_met" in row:
        failed = [
            label for key, label in (("score_ok", "score"), ("fd_ok", "FD"), ("classes_ok", "classes")) if not row[key]
        ]
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


COLUMNS = [
    ("model", "model"),
    ("fd", "FD"),
    ("score", "score"),
    ("kid", "KID"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("classes", "classes vs uniform"),
    ("mmd", "pixel MMD"),
    ("nll", "test NLL, nats"),
    ("rate", "samples/s"),
    ("targets", "targets"),
    ("date", "date"),
    ("command", "command"),
]


def histogram_table(model_rows):
    lines = ["| model | " + " | ".join(str(d) for d in range(10)) + " |", "|---|" + "---|" * 10]
    for row in model_rows:
        if "class_fractions" in row:
            lines.append(f"| {row['model']} | " + " | ".join(f"{100 * f:.1f}" for f in row["class_fractions"]) + " |")
    return "\n".join(lines)


def write_table(rows, benchmarks_path, samples):
    report = BenchmarksFile(benchmarks_path)
    names = [n for n in zoo.names() if zoo.card(n).family != "classifier"]
    model_rows = [rows[n] for n in names if n in rows]
    missing = [n for n in names if n not in rows]
    references = rows.get(REFERENCE_KEY, [])
    classifier = zoo.card(CLASSIFIER_NAME)
    first = next((r for r in model_rows + references if "settings" in r), None)
    settings = first["settings"] if first else {}
    test = next((r for r in model_rows if "test_score" in r), None)
    md = [
        report.header(
            "Zoo evaluation: sample quality and likelihood",
            command="keras-gen evaluate --all  (= python benchmarks/evaluate_zoo.py)",
        ),
        "",
    ]
    md.append(
        f"Every MNIST model of the zoo against the 10,000 MNIST test images, with "
        f"{samples:,} generated samples per model (each row's command says what was used). "
        f"Features: the penultimate layer `{settings.get('feature_layer', 'features')}` of the zoo's "
        f"domain classifier `{CLASSIFIER_NAME}` (test accuracy "
        f"{classifier.metrics['test_accuracy']:.2%}, `training/mnist_classifier.py`). "
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
        md.append(
            f"Targets for the image models: score ≥ {SCORE_FRACTION:g} × the test set's own score "
            f"({test['test_score']:.3f}, so ≥ {SCORE_FRACTION * test['test_score']:.3f}), "
            f"FD ≤ {FD_FACTOR:g} × FD(train, test) ({test['fd_train_test']:.3g}, so ≤ "
            f"{FD_FACTOR * test['fd_train_test']:.3g}), every class within ±{CLASS_DEVIATION:.0%} of uniform."
        )
    md += ["", "### Models", "", markdown_table([table_row(r) for r in model_rows if "fd" in r], COLUMNS)]
    for row in model_rows:
        if row.get("nll_method"):
            nll = "; ".join(part for part in (row["nll_method"], row.get("nll_data")) if part)
            md.append(f"- {row['model']}: NLL {nll}. Sampling: {row.get('sampling')}.")
        if row.get("note"):
            md.append(f"- {row['model']}: not in the table: {row['note']}")
    if missing:
        md.append(f"- Not evaluated yet: {', '.join(missing)} (run `python benchmarks/evaluate_zoo.py --missing`).")
    md += [
        "",
        "### Reference rows",
        "",
        "MNIST training images against the test set (the floor at this sample count), and training images "
        "corrupted by Gaussian pixel noise (clipped to [0, 1]) and by Gaussian blur: FD, KID, score, recall "
        "and pixel MMD get worse step by step. Precision need not: heavily blurred digits collapse into a "
        "small region of feature space that lies inside the real digits' k-NN balls (a known blind spot of "
        "precision alone; recall and the class histogram expose it).",
        "",
        markdown_table(
            [table_row(r) for r in references], [c for c in COLUMNS if c[0] not in ("nll", "rate", "targets")]
        ),
    ]
    md += [
        "",
        "### Class histograms (% of samples per predicted digit)",
        "",
        histogram_table(model_rows + references[:1]),
    ]
    report.write_section(SECTION, "\n".join(md))


def evaluate_zoo(
    rows_path,
    benchmarks_path,
    samples=10_000,
    seed=0,
    only=None,
    missing=False,
    references=True,
    nll_images=1000,
    iwae_k=1000,
    ais_chains=100,
    table_only=False,
    sample_cache=None,
):
    """Evaluate the zoo (all entries, `only` these, or the `missing` ones), keep the rows in
    `rows_path`, and write the table as the `evaluate_zoo` section of `benchmarks_path`."""
    rows = load_rows(rows_path)
    if not table_only:
        names = list(only or zoo.names())
        for name in names:
            zoo.card(name)  # unknown names fail here, before any work
        if missing:
            names = [n for n in names if n not in rows]
        if (references and not (only or missing)) or REFERENCE_KEY not in rows:
            evaluate_references(rows, rows_path, samples=samples, seed=seed)
        evaluate_entries(
            names,
            rows,
            rows_path,
            samples=samples,
            seed=seed,
            nll_images=nll_images,
            iwae_k=iwae_k,
            ais_chains=ais_chains,
            sample_cache=sample_cache,
        )
    write_table(rows, benchmarks_path, samples)
    return benchmarks_path
