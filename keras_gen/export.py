"""TensorFlow SavedModel export with named serving signatures.

Each family declares `serving_endpoints()`: name -> (function, input specs).
The export is a plain SavedModel: `tf.saved_model.load(path)` serves it with
TensorFlow alone, no keras-gen (and no Keras) import needed.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import keras


def export_saved_model(model, path, overwrite=False):
    """Write `model`'s serving endpoints as a SavedModel at `path`.

    The export is written to a temporary folder beside `path` and moved into
    place only when complete, so an existing export is never left half
    overwritten. Returns the list of signature names.
    """
    endpoints = model.serving_endpoints()
    if not endpoints:
        raise ValueError(f"{type(model).__name__} declares no serving endpoints to export.")
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not overwrite:
        if not (os.path.isdir(path) and not os.listdir(path)):
            raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it.")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (fn, specs) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=specs)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        archive.write_out(staging, verbose=False)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(endpoints)
