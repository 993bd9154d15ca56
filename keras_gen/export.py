"""TensorFlow SavedModel export with named serving signatures.

Each family declares `serving_endpoints()`: name -> (function, input specs).
The export is a plain SavedModel: `tf.saved_model.load(path)` serves it with
TensorFlow alone, no keras-gen (and no Keras) import needed. Every input is
checked against its spec before any work (a wrong shape raises an
InvalidArgumentError naming the expected one), and an argument with a Python
default is optional (`core.validation.checked_endpoint`). Keras's own
`model.export(path)` writes the model's `call` alone, as `serve`.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from keras_gen.core.base import serving_archive
from keras_gen.core.files import current_umask, write_json

MARKER = "keras_gen_export.json"
# What a SavedModel folder written by `export_saved_model` holds: only such a
# folder is ever replaced.
EXPORT_ENTRIES = {"saved_model.pb", "fingerprint.pb", "variables", "assets", MARKER}


def _replaceable(path):
    """Why the existing `path` must not be replaced by an export, or None if it may."""
    if not os.path.isdir(path):
        return "it is not a folder"
    if os.path.realpath(os.getcwd()).startswith(os.path.realpath(path)):
        return "it holds the current directory"
    entries = set(os.listdir(path))
    if not entries:
        return None
    if MARKER not in entries:
        return f"it was not written by keras-gen's export (no {MARKER})"
    extra = sorted(entries - EXPORT_ENTRIES)
    if extra:
        return f"it holds files an export does not write ({', '.join(extra[:3])})"
    return None


def _exchange(a, b):
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False if unavailable."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def export_saved_model(model, path, overwrite=False):
    """Write `model`'s serving endpoints as a SavedModel at `path`.

    The export is written to a temporary folder beside `path` and swapped into
    place only when complete (one atomic exchange where the system has one),
    so a reader sees the old export or the new one, never a mixture, and a
    run killed midway leaves the old one whole. `overwrite=True` replaces only
    an empty folder or one this function wrote (it holds `keras_gen_export.json`
    and nothing an export does not write): never a folder with other files, nor
    one that holds the current directory. Files and folders get the user's
    umask. Returns the list of signature names.
    """
    endpoints = model.serving_endpoints()
    if not endpoints:
        raise ValueError(f"{type(model).__name__} declares no serving endpoints to export.")
    path = os.path.abspath(os.fspath(path))
    exists = os.path.lexists(path)
    if exists:
        reason = _replaceable(path)
        empty = reason is None and not os.listdir(path)
        if reason is not None:
            raise FileExistsError(f"{path} exists and will not be replaced: {reason}.")
        if not empty and not overwrite:
            raise FileExistsError(f"{path} exists (an export); pass overwrite=True (CLI: --overwrite) to replace it.")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    archive = serving_archive(model, endpoints)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        archive.write_out(staging, verbose=False)
        write_json(
            os.path.join(staging, MARKER),
            {"model": model.name, "class": type(model).__name__, "signatures": sorted(endpoints)},
        )
        # mkdtemp makes a private (0700) folder; an export gets the user's usual permissions.
        os.chmod(staging, 0o777 & ~current_umask())
        if exists and _exchange(staging, path):
            shutil.rmtree(staging)  # now the old export
        else:
            if exists:
                os.rmdir(path) if not os.listdir(path) else shutil.rmtree(path)
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(endpoints)
