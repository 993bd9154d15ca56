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
date and command). The procedure is `keras_gen.evaluation.zoo_table`.

    TFDS_DATA_DIR=... python benchmarks/evaluate_zoo.py [--samples 10000] [--only vae_mnist ... | --missing]
        [--sample-cache DIR]
    keras-gen evaluate --all        # the same, from a checkout's root
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS_JSON = os.path.join(HERE, "evaluate_zoo.json")
BENCHMARKS = os.path.join(os.path.dirname(HERE), "BENCHMARKS.md")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", help="evaluate only these zoo entries (keep the other rows)")
    parser.add_argument(
        "--missing",
        action="store_true",
        help="evaluate only zoo entries without a stored row (keep the others and the references)",
    )
    parser.add_argument("--no-references", action="store_true", help="keep the stored reference rows")
    parser.add_argument("--nll-images", type=int, default=1000)
    parser.add_argument("--iwae-k", type=int, default=1000)
    parser.add_argument("--ais-chains", type=int, default=100)
    parser.add_argument("--table-only", action="store_true", help="rewrite the section from the stored rows")
    parser.add_argument(
        "--sample-cache",
        metavar="DIR",
        help="keep the samples in DIR batch by batch (a stopped run resumes); a zoo recipe's finalize "
        "step given the same DIR has already drawn its entry's samples",
    )
    args = parser.parse_args(argv)

    from keras_gen.evaluation.zoo_table import SECTION, evaluate_zoo

    path = evaluate_zoo(
        ROWS_JSON,
        BENCHMARKS,
        samples=args.samples,
        seed=args.seed,
        only=args.only,
        missing=args.missing,
        references=not args.no_references,
        nll_images=args.nll_images,
        iwae_k=args.iwae_k,
        ais_chains=args.ais_chains,
        table_only=args.table_only,
        sample_cache=args.sample_cache,
    )
    print(f"wrote section {SECTION!r} of {path}")


if __name__ == "__main__":
    main()
