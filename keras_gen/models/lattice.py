"""Weight tying across the translations of a periodic lattice."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def shape_or_shapes(value):
    """None, one shape as a tuple of ints, or a tuple of such shapes (one per filter)."""
    if value is None:
        return None
    value = tuple(value)
    if value and all(isinstance(v, (int, np.integer)) for v in value):
        return tuple(int(v) for v in value)
    return tuple(tuple(int(n) for n in v) for v in value)


class LatticeTranslations:
    """Ties RBM parameters across the translations of a periodic lattice.

    The visible units are the sites of a periodic lattice (`shape`, sites
    row-major) and the hiddens come in `n_filters` groups of one unit per
    site. A translation-invariant W depends only on the filter and on the
    displacement between the visible site i and the hidden unit's site p:
    W[i, f*N + p] = K[f, (i - p) mod shape]. That is a convolution with
    periodic padding and the kernel K. With `filter_shape`, K[f] is zero
    outside the window of displacements [0, filter_shape[f]): a local filter. `tie_*`
    project onto this subspace (the average over the translation orbit, then
    the window), which is also how a gradient for W becomes the gradient
    for K, up to a constant factor N.
    """

    def __init__(self, shape, n_visible, n_hidden, filter_shape=None):
        shape = tuple(int(n) for n in shape)
        n_sites = int(np.prod(shape))
        if not shape or min(shape) < 1 or n_sites != n_visible:
            raise ValueError(
                f"periodic_lattice {shape} has {n_sites} sites, but the RBM has {n_visible} visible units."
            )
        if n_hidden % n_sites:
            raise ValueError(
                f"With periodic_lattice {shape}, n_hidden must be a multiple of {n_sites} "
                f"(n_filters x sites), got {n_hidden}."
            )
        self.shape, self.n_sites, self.n_filters = shape, n_sites, n_hidden // n_sites
        coords = np.stack(np.unravel_index(np.arange(n_sites), shape), axis=-1)
        displacement = (coords[:, None, :] - coords[None, :, :]) % np.asarray(shape)
        # displacement_index[i, p]: which of the N displacements separates site i from site p.
        self.displacement_index = np.ravel_multi_index(tuple(np.moveaxis(displacement, -1, 0)), shape).astype(np.int32)
        windows = shape_or_shapes(shape if filter_shape is None else filter_shape)
        if not isinstance(windows[0], tuple):
            windows = (windows,) * self.n_filters
        if len(windows) != self.n_filters:
            raise ValueError(f"filter_shape lists {len(windows)} shapes for {self.n_filters} filters.")
        for window in windows:
            if len(window) != len(shape) or any(not 1 <= w <= n for w, n in zip(window, shape)):
                raise ValueError(
                    f"filter_shape must have one size in [1, n] per lattice axis {shape}, got {filter_shape}."
                )
        self.filter_shape = windows
        # window_mask[d, f]: displacement d (coordinates coords[d]) lies in filter f's window.
        self.window_mask = np.stack([np.all(coords < np.asarray(w), axis=-1) for w in windows], 1).astype(np.float32)

    def tie_kernel(self, w):
        n, f = self.n_sites, self.n_filters
        w = tf.transpose(tf.reshape(w, (n, f, n)), (0, 2, 1))  # [i, p, f]
        k = tf.math.unsorted_segment_mean(tf.reshape(w, (n * n, f)), self.displacement_index.reshape(-1), n)
        return self.unfold(k * tf.constant(self.window_mask, k.dtype))

    def unfold(self, k):
        """The dense W (n_sites, n_filters * n_sites) of filters k[d, f] (displacement d, filter f)."""
        n, f = self.n_sites, self.n_filters
        w = tf.gather(tf.convert_to_tensor(k), self.displacement_index)  # [i, p, f]
        return tf.reshape(tf.transpose(w, (0, 2, 1)), (n, f * n))

    def tie_visible(self, b):
        return tf.fill(tf.shape(b), tf.reduce_mean(b))

    def tie_hidden(self, c):
        c = tf.reshape(c, (self.n_filters, self.n_sites))
        return tf.reshape(tf.broadcast_to(tf.reduce_mean(c, axis=1, keepdims=True), tf.shape(c)), (-1,))
