"""Input checks shared by every family: refuse bad data with a clear message
before any training, sampling or writing happens."""

from __future__ import annotations

import inspect

import numpy as np
import tensorflow as tf

from keras_gen.core.errors import DataError

DOMAINS = {
    "binary": "binary values {0, 1}",
    "unit": "values in [0, 1]",
    "symmetric": "values in [-1, 1]",
    "real": "finite real values",
}


def _first_x(data):
    if isinstance(data, (tuple, list)) and len(data) in (1, 2, 3) and not np.isscalar(data[0]):
        # (x,), (x, y) or (x, y, sample_weight) as Keras accepts them.
        return data[0]
    if isinstance(data, dict):
        raise DataError("Dict inputs are not supported; pass an array or a dataset of arrays.")
    return data


# The largest magnitude data may have: models compute in float32, and the
# gradient of a squared loss (~x^2), squared again by Adam's second moment
# (~x^4), overflows beyond float32's largest value to the power 1/4 (~4.3e9):
# the optimizer's state turns inf and the weights NaN a step later.
LARGEST = float(np.finfo(np.float32).max) ** 0.25


def check_data(data, shape, domain="real", owner="model", max_rows=None):
    """Check `data` (array, tensor, tf.data.Dataset, or (x, y) tuple).

    `shape` is the per-example shape (no batch axis); `domain` one of DOMAINS.
    Datasets are checked on their static element spec and their first batch.
    """
    if domain not in DOMAINS:
        raise ValueError(f"Unknown data domain {domain!r}; expected one of {sorted(DOMAINS)}.")
    if data is None:
        raise DataError(f"{owner}: no data given.")
    if isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        x_spec = spec[0] if isinstance(spec, tuple) else spec
        if isinstance(x_spec, dict):
            raise DataError(f"{owner}: dataset elements are dicts; map them to an array first.")
        if not (x_spec.dtype.is_floating or x_spec.dtype.is_integer or x_spec.dtype == tf.bool):
            raise DataError(f"{owner}: expected numeric data, got dtype {x_spec.dtype.name}.")
        static = tuple(x_spec.shape)
        if len(static) != len(shape) + 1 or any(s is not None and s != e for s, e in zip(static[1:], shape)):
            raise DataError(
                f"{owner}: expected batches of shape (batch, {_fmt(shape)}), "
                f"the dataset yields {_fmt_shape(static)}. Batch the dataset "
                "and reshape examples to the model's data shape."
            )
        for element in data.take(1):
            x = element[0] if isinstance(element, tuple) else element
            _check_array(np.asarray(x), shape, domain, owner)
            return
        raise DataError(f"{owner}: the dataset is empty (it yields no batch).")
    x = _first_x(data)
    if isinstance(x, tf.Tensor):
        x = x.numpy()
    x = np.asarray(x)
    if max_rows is not None:
        x = x[:max_rows]
    _check_array(x, shape, domain, owner)


def _check_array(x, shape, domain, owner):
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{owner}: expected numeric data, got dtype {x.dtype}.")
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        raise DataError(f"{owner}: expected data of shape (batch, {_fmt(shape)}), got {_fmt_shape(x.shape)}.")
    if x.shape[0] == 0:
        raise DataError(f"{owner}: the data is empty.")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            kind = "NaN" if np.isnan(x).any() else "infinite"
            raise DataError(f"{owner}: data contains {kind} values ({int(bad.sum())} of {x.size} entries).")
    lo, hi = float(x.min()), float(x.max())
    if domain == "binary":
        if not np.all((x == 0) | (x == 1)):
            hint = " Binarize it first (e.g. keras_gen.data preprocessing='binarized')." if hi <= 1 else ""
            raise DataError(
                f"{owner}: Bernoulli visible units need binary data {{0, 1}}; "
                f"got values in [{lo:g}, {hi:g}] that are not all 0 or 1.{hint}"
            )
    elif domain == "unit":
        if lo < 0 or hi > 1:
            hint = " It looks like raw 0-255 pixels: divide by 255." if hi > 1.5 and hi <= 255 else ""
            raise DataError(f"{owner}: a Bernoulli likelihood needs data in [0, 1]; got [{lo:g}, {hi:g}].{hint}")
    elif domain == "symmetric":
        if lo < -1 - 1e-6 or hi > 1 + 1e-6:
            raise DataError(
                f"{owner}: a tanh output needs data in [-1, 1]; got [{lo:g}, {hi:g}]. "
                "Use keras_gen.data preprocessing='symmetric'."
            )
    if max(-lo, hi) > LARGEST:
        raise DataError(
            f"{owner}: data holds values up to {max(-lo, hi):g} in magnitude, too large for float32 training "
            f"(beyond {LARGEST:.2g} a squared loss's gradient, squared again by the optimizer, overflows). "
            "Standardize the data first."
        )


# ------------------------------------------------------- every batch, in the graph
MARK = "keras-gen data check"
_PROBLEMS = {
    "real": (f"values beyond ±{LARGEST:.2g} (float32 training overflows)", lambda x: tf.abs(x) <= LARGEST),
    "binary": ("values that are not 0 or 1 (Bernoulli units need binary data)", lambda x: (x == 0.0) | (x == 1.0)),
    "unit": ("values outside [0, 1]", lambda x: (x >= 0.0) & (x <= 1.0)),
    "symmetric": ("values outside [-1, 1]", lambda x: (x >= -1.0 - 1e-6) & (x <= 1.0 + 1e-6)),
}


def checked_dataset(dataset, domain="real", owner="model"):
    """`dataset` with every batch's x cast to float32 and checked inside the graph
    (finite; in the model's domain), so a bad batch anywhere in an epoch stops
    `fit` before the step that would use it. The checks are one fused reduction
    per batch (their cost is measured in BENCHMARKS.md). `fit_error` turns the
    failure into a one-line `DataError`."""

    def check(index, element):
        x, rest = (element[0], element[1:]) if isinstance(element, tuple) else (element, None)
        x = tf.cast(x, tf.float32)
        problems = [("non-finite values (NaN or inf)", tf.reduce_all(tf.math.is_finite(x)))]
        if domain in _PROBLEMS:
            what, ok = _PROBLEMS[domain]
            problems.append((what, tf.reduce_all(ok(x))))
        asserts = [
            tf.debugging.Assert(ok, [f"{MARK}: {owner}: batch", index + 1, f"of the dataset has {what}"])
            for what, ok in problems
        ]
        with tf.control_dependencies(asserts):
            x = tf.identity(x)
        return x if rest is None else (x, *rest)

    return dataset.enumerate().map(check)  # in order: a map without parallel calls is deterministic


def fit_error(err, epoch=None, step=None):
    """A `DataError` for an error raised by `checked_dataset`'s checks, or None;
    `epoch` and `step` (1-based, where `fit` was) are named when given."""
    import re

    # One line: "[MARK: owner: batch] [n] [of the dataset has ...]" (greedy: "what" may hold brackets).
    match = re.search(r"\[" + MARK + r": (.*?)\] \[(\d+)\] \[(of the dataset has .*)\]", str(err))
    if not match:
        return None
    owner_batch, number, what = match.groups()
    if epoch is not None and step is not None:
        owner, _, batch = owner_batch.rpartition(": ")
        owner_batch = f"{owner}: epoch {epoch}, step {step}: {batch}"
    return DataError(f"{owner_batch} {number} {what}; training stopped before using it.")


# ------------------------------------------------------- exported signatures
def checked_endpoint(fn, specs):
    """`fn` as a SavedModel endpoint whose inputs are checked before any work.

    TensorFlow does not check a signature's inputs against its specs: a tensor
    of the wrong rank reaches the first kernel, and some kernels (oneDNN's
    convolutions) abort the whole process on it. Here every input passes
    `tf.ensure_shape` first, and `fn` sees only the checked tensors, so a
    wrong shape fails with an `InvalidArgumentError` that names the expected
    shape (a wrong dtype is refused when the signature binds its inputs).

    A Python default of `fn` (by position, e.g. `gibbs_steps=1000`) becomes a
    default-valued input: optional in the SignatureDef (TF Serving may omit
    it) and in the restored function (`served.sample(n=..., seed=...)`).
    """
    parameters = list(inspect.signature(fn).parameters.values())
    if len(parameters) != len(specs):
        raise ValueError(f"{fn.__name__} takes {len(parameters)} inputs, its signature lists {len(specs)}.")

    def checked(*args):
        args = [tf.ensure_shape(arg, spec.shape, name=f"check_{spec.name}") for arg, spec in zip(args, specs)]
        return fn(*args)

    checked.__name__ = getattr(fn, "__name__", "endpoint")
    checked.__signature__ = inspect.Signature(
        [
            inspect.Parameter(
                spec.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=inspect.Parameter.empty if p.default is p.empty else tf.constant(p.default, spec.dtype),
            )
            for p, spec in zip(parameters, specs)
        ]
    )
    return checked


def _fmt(shape):
    return ", ".join(str(s) for s in shape)


def _fmt_shape(shape):
    return "(" + ", ".join("batch" if s is None else str(s) for s in shape) + ")"
