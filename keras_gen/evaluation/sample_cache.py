"""Samples of a long evaluation, kept batch by batch so that it can stop and resume.

Judging a zoo model can take longer than a machine lives: ten thousand
diffusion samples of 1,000 steps each are hours of CPU. `generate` (and so
`evaluate`, `quality_sweep`, `conditional_accuracy`) takes a `SampleCache`:
each batch is written to disk as soon as it is drawn, and a later run with
the same model, seed, batch size and sampler settings reads it back instead
of drawing it again. Batches are seeded by their index, so a resumed
evaluation sees exactly the samples an uninterrupted one would.

Samples are kept as float16 (8 times finer than the 1/255 steps of MNIST's
own pixels) and every batch, fresh or read back, goes through that rounding,
so the result does not depend on where a run was stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings

import numpy as np

from keras_gen.core.files import write_bytes, write_json


class SampleCache:
    """Batches of samples of the model identified by `model_id` (see `for_model`)
    under `directory`, one folder per (seed, batch size, settings)."""

    def __init__(self, directory, model_id):
        self.directory = os.fspath(directory)
        self.model_id = str(model_id)

    @classmethod
    def for_model(cls, directory, model):
        """A cache for `model`, identified by its variables' values in order: the same
        weights saved twice, on another machine, or loaded from the zoo (whose layers
        may be named otherwise) find the same samples. Seed generators' states are
        left out: samples are drawn with integer seeds, which do not read them."""
        digest = hashlib.sha256()
        for variable in model.variables:
            if variable.path.endswith("seed_generator_state"):
                continue
            value = np.asarray(variable.numpy())
            digest.update(f"{value.dtype}:{value.shape};".encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        return cls(directory, digest.hexdigest())

    def folder(self, seed, batch_size, settings):
        """The folder of one sampling protocol; its `settings.json` says which."""
        protocol = {"model": self.model_id, "seed": seed, "batch_size": batch_size, "sample": settings}
        text = json.dumps(protocol, sort_keys=True, default=str)
        folder = os.path.join(self.directory, hashlib.sha256(text.encode()).hexdigest()[:16])
        if not os.path.exists(os.path.join(folder, "settings.json")):
            write_json(os.path.join(folder, "settings.json"), json.loads(text))
        return folder

    def load(self, folder, index, count):
        """(samples, seconds) of batch `index` if it is kept whole, else None."""
        path = _batch_path(folder, index, count)
        if not os.path.exists(path):
            return None
        try:
            with np.load(path) as kept:
                samples, seconds = kept["samples"].astype(np.float32), float(kept["seconds"])
        except Exception as err:  # a damaged file is drawn again, not trusted
            warnings.warn(f"{path}: unreadable ({err}); drawing this batch again.", stacklevel=2)
            return None
        if len(samples) != count:
            warnings.warn(f"{path}: {len(samples)} samples, not {count}; drawing this batch again.", stacklevel=2)
            return None
        return samples, seconds

    def save(self, folder, index, samples, seconds):
        """Keep batch `index` and return it as `load` will: (float16-rounded samples, seconds)."""
        rounded = np.asarray(samples, dtype=np.float16)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, samples=rounded, seconds=np.float64(seconds))
        write_bytes(_batch_path(folder, index, len(rounded)), buffer.getvalue())
        return rounded.astype(np.float32), float(seconds)


def _batch_path(folder, index, count):
    return os.path.join(folder, f"batch_{index:05d}_of_{count}.npz")
