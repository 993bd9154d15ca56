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

A run carried between machines (`--save-state`/`--resume-from`) keeps only its
newest backup, not its checkpoints, so each machine judges the epochs it trained:
`--record FILE` keeps the judged rows with their protocol (e.g. in the carried
state's folder), judges only the epochs it does not hold yet, the newest backup
included, and writes the table from all of them. A record refuses another protocol.
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


def read_record(path, protocol, parser):
    """(floor row or None, {epoch: row}) of the record at `path` (empty if there is none yet)."""
    if not os.path.exists(path):
        return None, {}
    with open(path) as f:
        record = json.load(f)
    if record["protocol"] != protocol:
        parser.error(f"{path} was judged with {record['protocol']}, not {protocol}: use another --record")
    return record.get("floor"), {int(row.pop("epoch")): row for row in record["rows"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a training run's output folder")
    parser.add_argument("--epochs", type=int, nargs="+", help="checkpoints to judge (default: all)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--sample", type=json_object, default={}, help="the sampler's settings, as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record", help="a JSON file of judged epochs, kept between machines (see above)")
    args = parser.parse_args(argv)

    from keras_gen import evaluation
    from keras_gen.core.files import write_json
    from keras_gen.evaluation.sample_quality import mnist_set, sample_quality
    from keras_gen.runs import epoch_files, read_history

    # The newest backup is a whole model too: the only file left of the epoch a
    # carried run was saved at.
    checkpoints = dict(epoch_files(os.path.join(args.run, "backup"), ".keras"))
    checkpoints.update(epoch_files(os.path.join(args.run, "checkpoints"), ".keras"))
    protocol = {"samples": args.samples, "sample": args.sample, "seed": args.seed}
    floor, record = read_record(args.record, protocol, parser) if args.record else (None, {})
    epochs = sorted(args.epochs or set(checkpoints) - set(record))
    missing = [e for e in epochs if e not in checkpoints]
    if missing:
        parser.error(f"{args.run} has no checkpoint of epoch {missing} (it has {sorted(checkpoints)})")
    seconds = np.asarray(read_history(os.path.join(args.run, "history.csv"))["epoch_seconds"], float)
    if epochs or floor is None:
        classifier = evaluation.load_classifier()
        test = mnist_set("test", classifier, seed=args.seed)
    if floor is None:  # as many real training images, judged the same way: the best a model can do here
        train = mnist_set("train", classifier, n=args.samples, seed=args.seed)
        floor = {k: float(v) for k, v in sample_quality(train, test, seed=args.seed).items() if k in dict(COLUMNS)}

    def keep():  # after each judged epoch: a judging run may be stopped
        if args.record:
            rows = [{"epoch": e, **r} for e, r in sorted(record.items())]
            write_json(args.record, {"protocol": protocol, "floor": floor, "rows": rows})

    keep()
    for epoch in epochs:
        start = time.perf_counter()
        record[epoch] = judge(checkpoints[epoch], args.samples, args.sample, classifier, test, args.seed)
        keep()
        print(
            {k: round(v, 3) if isinstance(v, float) else v for k, v in record[epoch].items()},
            f"epoch {epoch} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    rows = [{**floor, "epoch": f"MNIST train ({args.samples}): the floor"}]
    for epoch in sorted(record):
        rows.append(
            {
                **record[epoch],
                "epoch": epoch,
                "hours": float(np.sum(seconds[:epoch])) / 3600,
                "median_hours": epoch * float(np.median(seconds)) / 3600,
            }
        )
    name = os.path.basename(os.path.normpath(args.run))
    text = "\n".join(
        [
            BENCHMARKS.header(f"{name}: sample quality against hours of training"),
            f"- protocol: {args.samples} samples per checkpoint, sampler {json.dumps(args.sample)}, seed "
            f"{args.seed}, against the MNIST test set (10,000) on the project's classifier; FD at this sample "
            "count is biased upwards: compare rows, and the floor row of real training images, not other tables' "
            "FD; samples/s is the judging run's own, on a machine that may be training meanwhile",
            f"- training time: history.csv of the run; median epoch {np.median(seconds) / 60:.1f} min on 2 shared "
            "cores, the measured column includes epochs slowed by other work on the machine",
            "",
            markdown_table(rows, COLUMNS),
        ]
    )
    BENCHMARKS.write_section(f"training_progress_{name}", text)


if __name__ == "__main__":
    main()
