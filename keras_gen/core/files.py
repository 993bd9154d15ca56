"""Files written whole or not at all.

Every file keras-gen writes (checkpoints, models, weights, cards) goes through
a temporary file in the target's folder, an fsync and a rename (then an fsync
of the folder): a reader never sees a half-written file, an interruption
leaves the old one intact, and a power cut cannot reorder the rename before
the data. Temporary files are named `.tmp-*`; `remove_temporaries` clears
those a killed writer left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile


def save_atomically(model, path, weights_only=None):
    """`model.save(path)` (or `save_weights` for `.weights.h5`) via a temporary
    file and a rename: a reader never sees a half-written model, and an
    interruption leaves the old file intact."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    if weights_only and not path.endswith(".weights.h5"):
        raise ValueError(f"Weights-only checkpoints must end in .weights.h5, got {path!r}.")
    suffix = ".weights.h5" if path.endswith(".weights.h5") else os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    os.remove(tmp)  # Keras refuses to overwrite without asking; let it create the file.
    try:
        if suffix == ".weights.h5":
            model.save_weights(tmp)
        else:
            model.save(tmp)
        _commit(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_text(path, text):
    """Write `text` to `path`, atomically."""
    return write_bytes(path, text.encode())


def write_bytes(path, data):
    """Write `data` (bytes) to `path`, atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        _commit(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def copy_atomically(source, path):
    """Copy file `source` to `path`, atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        _commit(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _commit(tmp, path):
    """fsync `tmp`, rename it to `path`, fsync the folder: durable and atomic.
    The file gets the mode of any file the user creates (mkstemp makes 0600)."""
    os.chmod(tmp, 0o666 & ~current_umask())
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_directory(os.path.dirname(os.path.abspath(path)))


def current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def fsync_directory(directory):
    """Make the renames and deletions in `directory` durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. a platform that cannot open folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(directory):
    """Delete the `.tmp-*` files a killed writer left in `directory`; return their names."""
    if not os.path.isdir(directory):
        return []
    removed = [name for name in sorted(os.listdir(directory)) if name.startswith(".tmp-")]
    for name in removed:
        os.remove(os.path.join(directory, name))
    return removed


def write_json(path, obj):
    """Write `obj` as indented JSON to `path`, atomically."""
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def sha256(path, chunk=1 << 20):
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
