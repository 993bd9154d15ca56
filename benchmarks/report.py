"""The old home of BENCHMARKS.md section writing, kept only for the Ising
benchmarks (benchmarks/ising_*.py) until they import
`keras_gen.benchmarking.report` like the other benchmarks; remove it then.
"""

from __future__ import annotations

from pathlib import Path

from keras_gen.benchmarking.report import BenchmarksFile, markdown_table  # noqa: F401

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
header = BenchmarksFile(BENCHMARKS_MD).header


def write_section(name, markdown, path=BENCHMARKS_MD):
    return BenchmarksFile(path).write_section(name, markdown)
