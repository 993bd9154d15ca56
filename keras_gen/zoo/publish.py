"""Helpers shared by the zoo recipes in `training/` and the benchmarks:
describing the machine, stamping dates, writing cards atomically."""

from __future__ import annotations

import datetime
import json
import os
import platform
import tempfile


def machine_description():
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, TensorFlow {tf.__version__}")


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write_card(path, card):
    """Write a zoo card (JSON) atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=directory)
    with os.fdopen(fd, "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    return path


def run_history(out_dir):
    """What a finished run left in `out_dir/history.csv`: (history, epochs, training seconds)."""
    import numpy as np

    from keras_gen.runs import read_history

    history = read_history(os.path.join(out_dir, "history.csv"))
    epochs = len(history.get("loss", [])) or None
    seconds = float(np.nansum(history["epoch_seconds"])) if history.get("epoch_seconds") else None
    return history, epochs, seconds
