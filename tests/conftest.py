"""Fixtures shared by the test modules.

No TensorFlow here: with workers (setup.cfg) the controlling process reads
this file too, and importing TensorFlow there only prints its start-up log."""

import os
import subprocess
import sys
import textwrap

import pytest


def _run_without_keras_gen(body, folder):
    """Run `body` (Python; `d` is `folder`, `np`, `tf`, `served` the SavedModel in
    folder/export) in a fresh interpreter that never imports keras_gen; its stdout."""
    script = (
        textwrap.dedent(
            """
        import sys, os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np, tensorflow as tf
        d = sys.argv[1]
        served = tf.saved_model.load(os.path.join(d, "export"))
        """
        )
        + textwrap.dedent(body)
        + '\nassert "keras_gen" not in sys.modules\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        capture_output=True,
        text=True,
        cwd=str(folder),
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture
def serve_without_keras_gen():
    """`serve_without_keras_gen(body, folder)`: check an export from a process without keras_gen."""
    return _run_without_keras_gen


# A row as `evaluate` returns it: numbers, the targets' floors and their checks.
EVALUATION_ROW = {
    "model": "some_gan",
    "family": "gan",
    "fd": 50.7,
    "fd_train_test": 0.918,
    "score": 8.252,
    "test_score": 9.885,
    "kid": 14.9,
    "kid_std": 1.9,
    "precision": 0.628,
    "recall": 0.813,
    "class_max_deviation": 0.255,
    "mmd": 0.027,
    "samples_per_second": 1800.0,
    "n_samples": 2000,
    "n_reference": 2000,
    "nll": None,
    "score_ok": False,
    "fd_ok": False,
    "classes_ok": True,
    "targets_met": False,
}


try:  # the fuzz tests' settings: the same examples on every run, no per-example deadline,
    # and no shrinking (each retried example retraces TensorFlow functions: minutes).
    from hypothesis import Phase, settings

    settings.register_profile(
        "keras-gen", derandomize=True, deadline=None, database=None, phases=(Phase.explicit, Phase.generate)
    )
    settings.load_profile("keras-gen")
except ImportError:  # hypothesis is in the dev extra; only tests/test_fuzz.py needs it
    pass


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (setup.cfg): one worker per usable core, at most four. Each worker imports
    TensorFlow and holds up to about 3 GB, and more workers than modules in flight only add
    start-ups."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cores or 1))
