"""The command line a newcomer meets first: help and the zoo answer without TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LIGHT_COMMANDS = """
import sys
from keras_gen import cli

for argv in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["zoo", "list"], ["zoo", "show", "vae_mnist"]):
    try:
        cli.main(argv)
    except SystemExit as stop:
        assert stop.code in (0, None), (argv, stop.code)
print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
"""


def test_help_and_the_zoo_do_not_import_tensorflow(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", LIGHT_COMMANDS], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", "imported by help or zoo: " + result.stdout[-200:]
