"""Datasets by name as `tf.data` pipelines.

MNIST comes through `tfds.load("mnist")` exactly as a user would load it (set
`TFDS_DATA_DIR` to use a prepared offline copy). The 2-D toy distributions are
generated here from a seed and need no download; they are the embedded
default for demos and tests.

A local `.npy` or `.npz` file is a dataset too: its name is its path. A `.npy`
holds the train split; a `.npz` holds `x_train` (or `train`, or a single
array) and optionally `x_test`/`x_validation` and labels `y_train`, ... (the
keras.datasets layout). Arrays of shape (n, d) are points, like the toy sets
(real values, preprocessing does not apply); arrays (n, H, W) or (n, H, W, C)
are images, uint8 in [0, 255] or floats in [0, 1], preprocessed like MNIST.
Each split is checked when it is read (numbers, shape, finite, range) and a
problem raises `DataError` naming the file.

Preprocessings (the `preprocessing=` argument):
  * "unit"              -- float32 intensities in [0, 1]
  * "symmetric"         -- float32 in [-1, 1], for tanh generators
  * "binarized"         -- dynamic binarization: each pass draws x ~ Bernoulli(intensity)
  * "binarized_static"  -- one fixed Bernoulli draw per image (seeded), the same every epoch
  * "thresholded"       -- x > 0.5, deterministic
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np
import tensorflow as tf

from keras_gen.core.errors import DataError

PREPROCESSINGS = ("unit", "symmetric", "binarized", "binarized_static", "thresholded")
IMAGE_DATASETS = {"mnist": (28, 28, 1)}
TOY_DATASETS = ("ring8", "grid25")

# The 8-Gaussian ring of note 004 (as in Metz et al. 2017): radius 2, std 0.02.
RING8_RADIUS = 2.0
RING8_STD = 0.02
GRID25_STD = 0.05
FILE_SUFFIXES = (".npy", ".npz")
SPLITS = ("train", "test", "validation")


def available():
    return sorted(IMAGE_DATASETS) + list(TOY_DATASETS)


def is_file(name):
    """Whether `name` names a local .npy/.npz file rather than a built-in set."""
    return isinstance(name, (str, os.PathLike)) and os.fspath(name).endswith(FILE_SUFFIXES)


def is_points(name):
    """Whether the dataset is points (n, d) rather than images: the toy sets, or a file of 2-D arrays."""
    return name in TOY_DATASETS or (is_file(name) and _file_arrays(name, "train")[0].ndim == 2)


def splits(name):
    """The splits a dataset has (a file: those it holds)."""
    if is_file(name):
        return [split for split in SPLITS if f"x_{split}" in _file_contents(name)]
    return ["train", "test"]


# ------------------------------------------------------------------ toy data
def toy_modes(name):
    """The mode centres of a toy distribution, shape (n_modes, 2), and its std."""
    if name == "ring8":
        angles = 2 * np.pi * np.arange(8) / 8
        return RING8_RADIUS * np.stack([np.cos(angles), np.sin(angles)], 1), RING8_STD
    if name == "grid25":
        g = np.arange(-2, 3, dtype=np.float64)
        xx, yy = np.meshgrid(g, g)
        return np.stack([xx.ravel(), yy.ravel()], 1), GRID25_STD
    raise KeyError(f"Unknown toy dataset {name!r}; known: {list(TOY_DATASETS)}.")


def toy_2d(name="ring8", n=10_000, seed=0):
    """n points of a 2-D Gaussian mixture with equal weights (float32)."""
    modes, std = toy_modes(name)
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(modes), size=n)
    points = modes[which] + std * rng.standard_normal((n, 2))
    return points.astype(np.float32)


def mode_coverage(samples, name="ring8", n_sigma=3.0, min_count=None):
    """Modes covered and fraction of high-quality samples of a toy mixture.

    A sample is high quality if it lies within `n_sigma` standard deviations
    of its nearest mode; a mode is covered if it receives at least
    `min_count` high-quality samples (default: a fifth of its fair share).
    """
    modes, std = toy_modes(name)
    samples = np.asarray(samples, dtype=np.float64)
    d = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
    nearest = d.argmin(1)
    good = d.min(1) <= n_sigma * std
    counts = np.bincount(nearest[good], minlength=len(modes))
    if min_count is None:
        min_count = max(1, int(0.2 * len(samples) / len(modes)))
    return {
        "modes_covered": int((counts >= min_count).sum()),
        "n_modes": len(modes),
        "high_quality_fraction": float(good.mean()),
        "counts": counts.tolist(),
    }


# -------------------------------------------------------------- local files
def _file_contents(path):
    """{"x_train": array, ...} of a .npy/.npz file (no pickles: a file is data, never code)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"Dataset file {path!r} not found.")
    stat = os.stat(path)
    return _read_file(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_file(path, mtime_ns, size):
    """The arrays of a file, read once while it is unchanged (its time and size are part of
    the cache's key); read-only, since they are shared."""
    arrays = _read_arrays(path)
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def _read_arrays(path):
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"Dataset file {path}: not a readable {os.path.splitext(path)[1]} file ({err}).") from None
    if path.endswith(".npy"):
        return {"x_train": loaded}
    with loaded:
        arrays = {key: loaded[key] for key in loaded.files}
    if len(arrays) == 1:
        return {"x_train": next(iter(arrays.values()))}
    return {f"x_{key}" if key in SPLITS else key: value for key, value in arrays.items()}


def _file_arrays(path, split):
    """(x, labels) of `split` in a local file, checked: numbers, at least one example,
    the train split's shape, finite; images uint8 in [0, 255] or floats in [0, 1]."""
    path = os.fspath(path)
    arrays = _file_contents(path)
    if f"x_{split}" not in arrays:
        raise DataError(
            f"Dataset file {path}: no {split} split (it holds {', '.join(sorted(arrays))}); a .npy is the train "
            "split, a .npz holds x_train and optionally x_test, x_validation and labels y_train, y_test, ..."
        )
    where = f"Dataset file {path}, x_{split}"
    x = arrays[f"x_{split}"]
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{where}: expected real numbers, got dtype {x.dtype}.")
    if x.ndim not in (2, 3, 4) or len(x) == 0:
        raise DataError(
            f"{where}: expected shape (n, d) for points or (n, H, W[, C]) for images with n >= 1, got {x.shape}."
        )
    train_shape = arrays["x_train"].shape[1:] if "x_train" in arrays else x.shape[1:]
    if x.shape[1:] != train_shape:
        raise DataError(f"{where}: examples of shape {x.shape[1:]}, but x_train's are {train_shape}.")
    if not np.issubdtype(x.dtype, np.integer) and x.dtype != bool and not np.all(np.isfinite(x)):
        raise DataError(f"{where}: contains NaN or infinite values.")
    if x.ndim == 2:
        x = x.astype(np.float32)
    else:
        x = x[..., None] if x.ndim == 3 else x
        low, high = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
        if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
            if low < 0 or high > 255:
                raise DataError(f"{where}: integer images must lie in [0, 255], got values in [{low:g}, {high:g}].")
            x = x.astype(np.uint8)
        elif low < 0 or high > 1:
            raise DataError(f"{where}: float images must lie in [0, 1], got values in [{low:.3g}, {high:.3g}].")
        else:
            x = x.astype(np.float32)
    labels = arrays.get(f"y_{split}")
    if labels is None:
        labels = np.full(len(x), -1, dtype=np.int64)
    elif labels.shape != (len(x),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"Dataset file {path}, y_{split}: expected {len(x)} integer labels, got {labels.dtype}{labels.shape}."
        )
    return x, labels.astype(np.int64)


# -------------------------------------------------------------------- images
def _full_scale(images):
    """What an image array's brightest pixel is: 255 for uint8 (MNIST, image files), 1 for floats."""
    return 255.0 if images.dtype == np.uint8 else 1.0


@functools.lru_cache(maxsize=8)
def _image_arrays(name, split):
    import tensorflow_datasets as tfds

    try:
        ds = tfds.load(name, split=split, batch_size=-1, as_supervised=True)
    except Exception as err:  # tfds raises many kinds; say what to do.
        raise RuntimeError(
            f"Could not load the {name!r} dataset with tensorflow-datasets ({err}). "
            "Offline, point TFDS_DATA_DIR at a prepared copy (see README)."
        ) from err
    images, labels = tfds.as_numpy(ds)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _binarize_static(images, seed):
    rng = np.random.default_rng(seed)
    return (rng.random(images.shape, dtype=np.float32) < images / np.float32(_full_scale(images))).astype(np.float32)


def _preprocess_numpy(images, preprocessing, seed):
    x = images.astype(np.float32) / np.float32(_full_scale(images))
    if preprocessing == "unit":
        return x
    if preprocessing == "symmetric":
        return x * 2 - 1
    if preprocessing in ("binarized", "binarized_static"):
        return _binarize_static(images, seed)
    if preprocessing == "thresholded":
        return (x > 0.5).astype(np.float32)
    raise ValueError(f"Unknown preprocessing {preprocessing!r}; expected one of {PREPROCESSINGS}.")


def load_arrays(name="mnist", split="train", preprocessing="unit", flatten=False, seed=0, **options):
    """Whole split as numpy: (x float32, labels int64).

    With preprocessing="binarized" the arrays are one Bernoulli draw (seeded):
    this is how test sets are binarized for likelihood evaluation.
    "ising" returns (spins, temperatures) from `keras_gen.physics.datasets.load_arrays`,
    which takes the `options` (L, temperature, n_samples, spins, ...).
    """
    if name == "ising":
        from keras_gen.physics import datasets

        return datasets.load_arrays(split, flatten=flatten, seed=seed, **options)
    _no_options(name, options)
    if name in TOY_DATASETS:
        n = {"train": 50_000, "test": 10_000, "validation": 10_000}.get(split, 10_000)
        offset = {"train": 0, "test": 1, "validation": 2}.get(split, 3)
        x = toy_2d(name, n, seed=1000 * seed + offset)
        return x, np.full(len(x), -1, dtype=np.int64)
    if is_file(name) and is_points(name):
        return _file_arrays(name, split)
    _check_preprocessing(preprocessing)
    images, labels = _images(name, split)
    x = _preprocess_numpy(images, preprocessing, seed)
    if flatten:
        x = x.reshape(len(x), -1)
    return x, np.asarray(labels)


def data_shape(name, flatten=False):
    if name in TOY_DATASETS:
        return (2,)
    if is_file(name):
        shape = _file_arrays(name, "train")[0].shape[1:]
    else:
        _check_name(name)
        shape = IMAGE_DATASETS[name]
    return (math.prod(shape),) if flatten else tuple(shape)


def data_domain(preprocessing):
    return {
        "unit": "unit",
        "symmetric": "symmetric",
        "binarized": "binary",
        "binarized_static": "binary",
        "thresholded": "binary",
    }[preprocessing]


def load(
    name="mnist",
    split="train",
    preprocessing="unit",
    flatten=False,
    batch_size=128,
    shuffle=True,
    seed=0,
    with_labels=False,
    drop_remainder=False,
    **options,
):
    """A batched, prefetched `tf.data.Dataset` of a named dataset.

    Images are held as uint8 in memory and converted per batch (vectorized);
    dynamic binarization draws fresh pixels every epoch from a seeded stream,
    so a run is reproducible and still sees new binarizations each epoch.
    Each pass over the dataset is a new epoch of `load_epochs` (same arguments),
    whose data order is a function of the seed and the epoch alone.

    "ising" is the 2-D Ising model simulated on the fly (no download; cached):
    `load("ising", "train", L=8, temperature=2.27, n_samples=10000,
    spins="binary" | "pm1")`, see `keras_gen.physics.datasets.load` (labels: temperatures;
    `preprocessing` does not apply, `spins` chooses {0, 1} or ±1).
    """
    if name == "ising":
        from keras_gen.physics import datasets

        return datasets.load(
            split,
            flatten=flatten,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            with_labels=with_labels,
            drop_remainder=drop_remainder,
            **options,
        )
    epochs = load_epochs(
        name,
        split,
        preprocessing=preprocessing,
        flatten=flatten,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        with_labels=with_labels,
        drop_remainder=drop_remainder,
        **options,
    )
    return epochs.dataset()


def load_epochs(
    name="mnist",
    split="train",
    preprocessing="unit",
    flatten=False,
    batch_size=128,
    shuffle=True,
    seed=0,
    with_labels=False,
    drop_remainder=False,
    **options,
):
    """The named dataset as `Epochs`: what `load` gives, with the data order of
    every epoch a function of (seed, epoch), so a resumed run sees the batches an
    uninterrupted one would (`keras_gen.runs.fit_with_artifacts` streams them)."""
    _no_options(name, options)
    if is_points(name):
        x, labels = load_arrays(name, split, seed=seed)
        transform = None if with_labels else _first
        return Epochs(
            (x, labels), batch_size, seed=seed, shuffle=shuffle, drop_remainder=drop_remainder, transform=transform
        )
    _check_preprocessing(preprocessing)
    images, labels = _images(name, split)
    scale = _full_scale(images)
    source = _binarize_static(images, seed) if preprocessing == "binarized_static" else images
    if flatten:
        source = source.reshape(len(source), -1)
    if preprocessing == "binarized":
        transform = _dynamic_binarize(with_labels, scale)
    elif preprocessing == "binarized_static":
        transform = None if with_labels else _first
    else:
        transform = _scale(preprocessing, with_labels, scale)
    return Epochs(
        (source, labels), batch_size, seed=seed, shuffle=shuffle, drop_remainder=drop_remainder, transform=transform
    )


def _first(x, y, seed):
    return x


class Epochs:
    """Arrays as a sequence of epochs whose batches depend on (seed, epoch) alone.

    `tf.data`'s `shuffle(reshuffle_each_iteration=True)` draws each epoch's
    order from a stream that restarts with the process, so a run resumed at
    epoch k would replay epoch 0's order. Here epoch e's order is a stateless
    permutation seeded by (seed, e), and each batch's own randomness (dynamic
    binarization) by (seed, e, batch): any epoch can be rebuilt on its own.

    * `epoch(e)`: the batches of epoch e (e may be a tensor).
    * `stream(start_batch)`: epochs 0, 1, 2, ... back to back, from batch
      `start_batch` of that stream on (what `fit(steps_per_epoch=...)` reads;
      a run resumed after k epochs of s steps starts at batch k * s).
    * `dataset()`: one pass that is a new epoch each time it is iterated,
      like a reshuffling `tf.data` pipeline.

    `transform(x, y, seed)` maps a batch of the arrays (and a stateless seed)
    to what the model is fed; by default the batch is `(x, y)`.
    """

    def __init__(self, arrays, batch_size, seed=0, shuffle=True, drop_remainder=False, transform=None):
        arrays = tuple(np.asarray(a) for a in (arrays if isinstance(arrays, (tuple, list)) else (arrays,)))
        sizes = {len(a) for a in arrays}
        if len(sizes) != 1:
            raise ValueError(f"Epochs needs arrays of one length, got lengths {sorted(sizes)}.")
        self.size = sizes.pop()
        if self.size == 0:
            raise ValueError("Epochs needs at least one example, got an empty array.")
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        if drop_remainder and self.size < self.batch_size:
            raise ValueError(f"{self.size} examples make no full batch of {self.batch_size}.")
        self.arrays = arrays
        self._tensors = tuple(tf.constant(a) for a in arrays)
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.drop_remainder = bool(drop_remainder)
        self.transform = transform

    @property
    def steps(self):
        """Batches per epoch."""
        if self.drop_remainder:
            return self.size // self.batch_size
        return -(-self.size // self.batch_size)

    def order(self, epoch):
        """The permutation of the examples in `epoch` (identity without shuffling)."""
        if not self.shuffle:
            return tf.range(self.size, dtype=tf.int64)
        key = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(epoch, tf.int64)])
        return tf.cast(tf.argsort(tf.random.stateless_uniform([self.size], seed=key), stable=True), tf.int64)

    def epoch(self, epoch):
        """The batches of `epoch`, as a `tf.data.Dataset`."""
        epoch = tf.cast(epoch, tf.int64)
        indices = tf.data.Dataset.from_tensor_slices(self.order(epoch))
        batches = indices.batch(self.batch_size, drop_remainder=self.drop_remainder).enumerate()
        return batches.map(lambda b, idx: (epoch, b, idx))

    def _batches(self, epochs):
        # Eager tensors, made once: a numpy array captured by a tf.data function
        # is copied into every call (measured 25x slower per epoch of MNIST).
        arrays = self._tensors
        transform = self.transform

        def load(epoch, batch, idx):
            x, *rest = (tf.gather(a, idx) for a in arrays)
            if transform is None:
                return (x, *rest) if rest else x
            key = tf.stack([tf.constant(self.seed, tf.int64), epoch * (1 << 20) + batch])
            return transform(x, rest[0] if rest else None, key)

        return epochs.flat_map(self.epoch).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def stream(self, start_batch=0):
        """Every epoch back to back (endless), from batch `start_batch` on."""
        start_epoch, skip = divmod(int(start_batch), self.steps)
        epochs = tf.data.Dataset.counter(start_epoch)
        return self._batches(epochs).skip(skip).prefetch(tf.data.AUTOTUNE)

    def dataset(self):
        """One epoch per iteration, a new one each time (keys drawn from a seeded stream)."""
        key = tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True).take(1)
        batches = self._batches(key.map(lambda k: k % (1 << 40)))
        # Known length: Keras sizes progress bars by it and ends an epoch without a warning.
        return batches.apply(tf.data.experimental.assert_cardinality(self.steps)).prefetch(tf.data.AUTOTUNE)


def _images(name, split):
    """(images, labels) of a split of a built-in image set or an image file."""
    if is_file(name):
        return _file_arrays(name, split)
    _check_name(name)
    return _image_arrays(name, split)


def _scale(preprocessing, with_labels, scale=255.0):
    def fn(x, y, seed):
        x = tf.cast(x, tf.float32) / scale
        if preprocessing == "symmetric":
            x = x * 2.0 - 1.0
        elif preprocessing == "thresholded":
            x = tf.cast(x > 0.5, tf.float32)
        return (x, y) if with_labels else x

    return fn


def from_unit_interval(x, domain):
    """[0, 1] intensities as a model of `domain` takes them: the "symmetric"
    preprocessing maps them to [-1, 1]; other domains take them as they are."""
    x = np.asarray(x, np.float32)
    return 2.0 * x - 1.0 if domain == "symmetric" else x


def to_unit_interval(x, domain):
    """Images in a model's data domain as [0, 1] intensities (not clipped): the
    inverse of the "symmetric" preprocessing; other domains are [0, 1] already."""
    x = np.asarray(x, np.float32)
    return (x + 1.0) / 2.0 if domain == "symmetric" else x


def _dynamic_binarize(with_labels, scale=255.0):
    def fn(x, y, seed):
        p = tf.cast(x, tf.float32) / scale
        u = tf.random.stateless_uniform(tf.shape(p), seed=seed)
        x = tf.cast(u < p, tf.float32)
        return (x, y) if with_labels else x

    return fn


def _no_options(name, options):
    if options:
        raise TypeError(f"Dataset {name!r} takes no options {sorted(options)} (only 'ising' has extra options).")


def _check_name(name):
    if name not in IMAGE_DATASETS:
        raise KeyError(f"Unknown dataset {name!r}; known: {available()}.")


def _check_preprocessing(preprocessing):
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(f"Unknown preprocessing {preprocessing!r}; expected one of {PREPROCESSINGS}.")
