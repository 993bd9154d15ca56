"""Ising samples as data: the disk cache, ``tf.data`` pipelines and the named dataset.

:func:`load_or_simulate` caches :func:`~keras_gen.physics.monte_carlo.simulate` on disk;
:func:`dataset` makes a batched ``tf.data.Dataset`` for Keras ``fit``; :func:`load` and
:func:`load_arrays` are the named dataset behind ``keras_gen.data.load("ising", ...)``
(train/validation/test splits as independent simulations). TensorFlow is imported only
inside :func:`dataset`, so the cache works without it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import tempfile

import numpy as np

from keras_gen.physics.lattice import TC, as_temperatures
from keras_gen.physics.monte_carlo import SIMULATION_VERSION, simulate

# Bound at import so cache keys do not change if `simulate` is wrapped or patched.
_SIMULATE_SIGNATURE = inspect.signature(simulate)


def default_cache_dir():
    """``$KERAS_GEN_CACHE/ising`` if ``KERAS_GEN_CACHE`` is set, else ``~/.cache/keras_gen/ising``."""
    root = os.environ.get("KERAS_GEN_CACHE")
    if root:
        return os.path.join(os.path.expanduser(root), "ising")
    return os.path.join(os.path.expanduser("~"), ".cache", "keras_gen", "ising")


def _cache_key(L, temperatures, n_samples, seed, simulate_kwargs):
    bound = _SIMULATE_SIGNATURE.bind(L, temperatures, n_samples, seed, **simulate_kwargs)
    bound.apply_defaults()
    params = dict(bound.arguments)
    params.pop("verbose", None)
    # float.hex: the exact temperatures, so 2.2691853 and TC do not share a file.
    params["temperatures"] = [float(x).hex() for x in np.atleast_1d(as_temperatures(temperatures))]
    params = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}
    params["version"] = SIMULATION_VERSION
    text = json.dumps(params, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest(), text


def load_or_simulate(L, temperatures, n_samples, seed=0, cache_dir=None, **simulate_kwargs):
    """:func:`simulate`, cached on disk as ``.npz`` keyed by a hash of all parameters.

    ``cache_dir`` defaults to :func:`default_cache_dir`. The file is written to a
    temporary name in the same directory and moved into place with ``os.replace``,
    so concurrent users never see a half-written file. A cached file that cannot be
    read (or does not match its key) is recomputed and overwritten.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"load_or_simulate needs an integer seed to key the cache, got {seed!r}.")
    key, key_text = _cache_key(L, temperatures, n_samples, int(seed), simulate_kwargs)
    cache_dir = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
    path = os.path.join(cache_dir, f"ising_L{int(L)}_{key[:20]}.npz")
    if os.path.exists(path):
        try:
            with np.load(path, allow_pickle=False) as f:
                spins, meta = f["spins"], json.loads(str(f["metadata"]))
            if meta.get("cache_key") == key and spins.dtype == np.int8:
                return spins, meta
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass
    spins, meta = simulate(L, temperatures, n_samples, seed, **simulate_kwargs)
    meta["cache_key"] = key
    meta["cache_params"] = key_text
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-ising-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, spins=spins, metadata=np.array(json.dumps(meta)))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return spins, meta


def dataset(
    L,
    temperatures,
    n_samples,
    seed=0,
    spins="binary",
    flatten=True,
    batch_size=128,
    shuffle=True,
    temperature_index=None,
    with_temperature=False,
    drop_remainder=False,
    cache_dir=None,
    shuffle_seed=None,
    **simulate_kwargs,
):
    """A batched ``tf.data.Dataset`` of Ising configurations for Keras ``fit``.

    Samples come from :func:`load_or_simulate` (cached). Elements are float32 spins,
    ``{0, 1}`` (``spins="binary"``, ``v = (s + 1) / 2``) or ``±1`` (``spins="pm1"``),
    of shape ``(L * L,)`` if ``flatten`` else ``(L, L, 1)`` (channels-last for Conv2D).
    ``temperature_index``: ``None`` pools all temperatures, an int or a list of ints
    selects some. ``with_temperature=True`` yields ``(x, T)`` pairs (float32 ``T``)
    for conditional models. Shuffling is seeded by ``shuffle_seed`` (default ``seed``)
    and reshuffles each epoch.
    """
    import tensorflow as tf

    if spins not in ("binary", "pm1"):
        raise ValueError(f"spins must be 'binary' or 'pm1', got {spins!r}.")
    data, meta = load_or_simulate(L, temperatures, n_samples, seed, cache_dir=cache_dir, **simulate_kwargs)
    temps = np.asarray(meta["temperatures"], dtype=np.float32)
    if temperature_index is None:
        index = np.arange(len(temps))
    else:
        index = np.atleast_1d(np.asarray(temperature_index))
        if index.dtype.kind not in "iu" or np.any(index < -len(temps)) or np.any(index >= len(temps)):
            raise ValueError(f"temperature_index must index {len(temps)} temperatures, got {temperature_index!r}.")
    x = data[index].reshape(-1, L, L).astype(np.float32)
    t_lab = np.repeat(temps[index], data.shape[1])
    if spins == "binary":
        x = 0.5 * (x + 1.0)
    x = x.reshape(len(x), L * L) if flatten else x[..., None]
    ds = tf.data.Dataset.from_tensor_slices((x, t_lab) if with_temperature else x)
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed if shuffle_seed is None else shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


SPLIT_SEED_OFFSETS = {"train": 0, "validation": 1, "test": 2}
"""Simulation seed of a split of the named dataset: ``1000 * seed + offset``, so the
splits are independent simulations and none shares a random stream with another."""


def _split_seed(split, seed):
    if split not in SPLIT_SEED_OFFSETS:
        raise ValueError(f"split must be one of {sorted(SPLIT_SEED_OFFSETS)}, got {split!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return 1000 * int(seed) + SPLIT_SEED_OFFSETS[split]


def load_arrays(
    split="train",
    L=8,
    temperature=TC,
    n_samples=10_000,
    spins="binary",
    flatten=True,
    seed=0,
    cache_dir=None,
    **simulate_kwargs,
):
    """The named ``"ising"`` dataset as numpy: ``(x float32, T float32)``, the way
    ``keras_gen.data.load_arrays("ising", ...)`` returns it.

    ``temperature``: one temperature or a sequence; ``n_samples`` per temperature;
    ``x`` holds all temperatures' samples in order (temperature-major), ``T`` the
    temperature of each row. ``spins``/``flatten`` as in :func:`dataset`.
    """
    if spins not in ("binary", "pm1"):
        raise ValueError(f"spins must be 'binary' or 'pm1', got {spins!r}.")
    data, meta = load_or_simulate(
        L, temperature, n_samples, _split_seed(split, seed), cache_dir=cache_dir, **simulate_kwargs
    )
    x = data.reshape(-1, L, L).astype(np.float32)
    if spins == "binary":
        x = 0.5 * (x + 1.0)
    x = x.reshape(len(x), L * L) if flatten else x[..., None]
    t = np.repeat(np.asarray(meta["temperatures"], np.float32), data.shape[1])
    return x, t


def load(
    split="train",
    L=8,
    temperature=TC,
    n_samples=10_000,
    spins="binary",
    flatten=True,
    batch_size=128,
    shuffle=True,
    seed=0,
    with_labels=False,
    drop_remainder=False,
    cache_dir=None,
    **simulate_kwargs,
):
    """The named ``"ising"`` dataset as a batched ``tf.data.Dataset``: what
    ``keras_gen.data.load("ising", split, L=8, temperature=T, spins="binary")`` returns.

    Splits are independent simulations (seeds ``1000 * seed + {train: 0,
    validation: 1, test: 2}``), cached on disk by :func:`load_or_simulate`.
    ``with_labels=True`` yields ``(x, T)`` pairs, the temperature as the label.
    Shuffling is seeded by ``seed`` and reshuffles every epoch.
    """
    return dataset(
        L,
        temperature,
        n_samples,
        seed=_split_seed(split, seed),
        spins=spins,
        flatten=flatten,
        batch_size=batch_size,
        shuffle=shuffle,
        shuffle_seed=seed,
        with_temperature=with_labels,
        drop_remainder=drop_remainder,
        cache_dir=cache_dir,
        **simulate_kwargs,
    )
