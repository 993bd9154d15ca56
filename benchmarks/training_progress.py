"""Sample quality against hours of training, from a run's per-epoch checkpoints.

Every `checkpoints/epoch_NNN.keras` a training run (`keras_gen.runs.fit_with_artifacts`,
every recipe under training/) leaves behind is judged with one protocol: the
same number of samples, the same sampler settings and seed, the same MNIST
test set and classifier (`keras_gen.evaluation.sample_quality`). Training time
is read from the run's history.csv: the measured wall time up to that epoch
(a shared machine: epochs under heavier load take longer) and, for a fair
reading, epochs times the run's median epoch.

    python benchmarks/training_progress.py --run runs/ddpm_mnist --epochs 1 2 5 10 20 \\
        --sample '{"steps": 50, "eta": 0.0, "label": "random"}'
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from keras_gen.benchmarking.report import BenchmarksFile, markdown_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = BenchmarksFile(os.path.join(ROOT, "BENCHMARKS.md"))
COLUMNS = [
    ("epoch", "epochs"),
    ("hours", "wall hours (measured)"),
    ("median_hours", "hours at the median epoch"),
    ("fd", "FD"),
    ("score", "score"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("class_max_deviation", "classes vs uniform"),
    ("samples_per_second", "samples/s"),
]


def json_object(text):
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"--sample takes a JSON object, got {text!r}")
    return value


def judge(path, n, sample_kwargs, classifier, test, seed):
    import keras

    import keras_gen.models  # noqa: F401  (registers the families)
    from keras_gen import evaluation
    from keras_gen.evaluation.sample_quality import ImageSet, sample_quality, to_images

    model = keras.saving.load_model(path)
    samples, rate = evaluation.generate(model, n, seed=seed, batch_size=250, **sample_kwargs)
    quality = sample_quality(ImageSet(to_images(samples, model.data_domain), classifier), test, seed=seed)
    row = {k: float(quality[k]) for k, _ in COLUMNS if k in quality}
    row["samples_per_second"] = rate
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a training run's output folder")
    parser.add_argument("--epochs", type=int, nargs="+", help="checkpoints to judge (default: all)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--sample", type=json_object, default={}, help="the sampler's settings, as JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from keras_gen import evaluation
    from keras_gen.evaluation.sample_quality import mnist_set
    from keras_gen.runs import epoch_files, read_history

    checkpoints = dict(epoch_files(os.path.join(args.run, "checkpoints"), ".keras"))
    epochs = sorted(args.epochs or checkpoints)
    missing = [e for e in epochs if e not in checkpoints]
    if missing:
        parser.error(f"{args.run}/checkpoints has no epoch {missing} (it has {sorted(checkpoints)})")
    seconds = np.asarray(read_history(os.path.join(args.run, "history.csv"))["epoch_seconds"], float)
    classifier = evaluation.load_classifier()
    test = mnist_set("test", classifier, seed=args.seed)
    rows = []
    for epoch in epochs:
        start = time.perf_counter()
        row = judge(checkpoints[epoch], args.samples, args.sample, classifier, test, args.seed)
        row.update(
            epoch=epoch,
            hours=float(np.sum(seconds[:epoch])) / 3600,
            median_hours=epoch * float(np.median(seconds)) / 3600,
        )
        rows.append(row)
        print(
            {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()},
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    name = os.path.basename(os.path.normpath(args.run))
    text = "\n".join(
        [
            BENCHMARKS.header(f"{name}: sample quality against hours of training"),
            f"- protocol: {args.samples} samples per checkpoint, sampler {json.dumps(args.sample)}, seed "
            f"{args.seed}, against the MNIST test set (10,000) on the project's classifier; FD at this sample "
            "count is biased upwards (compare rows, not other tables' FD at 10,000)",
            f"- training time: history.csv of the run; median epoch {np.median(seconds) / 60:.1f} min on 2 shared "
            "cores, the measured column includes epochs slowed by other work on the machine",
            "",
            markdown_table(rows, COLUMNS),
        ]
    )
    BENCHMARKS.write_section(f"training_progress_{name}", text)


if __name__ == "__main__":
    main()
