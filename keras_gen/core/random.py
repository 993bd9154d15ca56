"""Random numbers for compiled samplers and distributed training steps.

Every sampler takes `seed` as a `keras.random.SeedGenerator` (the owning
model's generator: one draw advances it), a Python int (stateless: same int,
same draw) or an int32 tensor of shape (2,) (a stateless seed, as serving
functions and compiled loops pass it). `seed_tensor` turns any of them into
an int32 (2,) key; `fold_in` derives independent per-step keys from one, so
loops never touch a variable and compile under XLA. The random numbers
themselves come from a counter-based generator (Threefry-2x32-20, below)
written to fuse well under XLA.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from keras_gen.core import compat


# ---------------------------------------------------------------------- seeds
def seed_tensor(seed):
    """A SeedGenerator, int, None or (2,) tensor -> int32 stateless seed (2,).

    A SeedGenerator is advanced by one draw (so, inside a compiled
    `train_step`, this is the step's only touch of the generator state).
    """
    if isinstance(seed, keras.random.SeedGenerator):
        return tf.cast(seed.next(), tf.int32)
    if seed is None or isinstance(seed, (int, np.integer)):
        return tf.cast(compat.draw_seed(None if seed is None else int(seed)), tf.int32)
    seed = tf.convert_to_tensor(seed)
    if seed.dtype != tf.int32:
        seed = tf.cast(seed, tf.int32)
    return seed


# ------------------------------------------------- counter-based random numbers
# Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as
# easy as 1, 2, 3", SC 2011; the generator JAX uses), written with uint32
# add/rotate/xor so that XLA fuses a whole draw into one vectorized loop.
# Why not tf.random.stateless_*: their XLA CPU kernels are 10-300x slower than
# this (measured: ~30 ns/number for Philox and ~500 ns/number for the default
# algorithm, against ~3 ns here), which made random numbers, not matrix
# products, the cost of a compiled Gibbs sweep. Output element i of a draw is
# the first word of Threefry-2x32-20(key=seed, counter=(i, 0)); its known
# answer tests (Random123's kat_vectors) are in tests/test_rbm.py.
_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
_PARITY = 0x1BD11BDA


def _u32(x):
    return tf.constant(x, tf.uint32)


def _rotl(x, r):
    return tf.bitwise.bitwise_or(tf.bitwise.left_shift(x, _u32(r)), tf.bitwise.right_shift(x, _u32(32 - r)))


def threefry2x32(x0, x1, k0, k1, rounds=20):
    """The Threefry-2x32 block function on uint32 tensors (counter x, key k)."""
    ks = (k0, k1, tf.bitwise.bitwise_xor(tf.bitwise.bitwise_xor(k0, k1), _u32(_PARITY)))
    x0 = x0 + k0
    x1 = x1 + k1
    for r in range(rounds):
        x0 = x0 + x1
        x1 = tf.bitwise.bitwise_xor(_rotl(x1, _ROTATIONS[r % 8]), x0)
        if r % 4 == 3:
            s = r // 4 + 1
            x0 = x0 + ks[s % 3]
            x1 = x1 + ks[(s + 1) % 3] + _u32(s)
    return x0, x1


def _counter_block(counter, k0, k1):
    return threefry2x32(counter, tf.zeros_like(counter), k0, k1)


# The same block function compiled on its own: a model trained without XLA
# (convolutional models on a CPU, see `base.xla_by_default`) would otherwise
# run the 20 rounds as ~150 separate element-wise kernels over the whole draw
# (measured: +47% CPU time per DCGAN step). Inside an XLA-compiled step this
# function is inlined, so the numbers are the same either way.
_fused_counter_block = tf.function(_counter_block, jit_compile=True, autograph=False, reduce_retracing=True)


def counter_words(counter, seed):
    """Threefry-2x32-20 words (x0, x1) for the uint32 `counter` under the key `seed`."""
    k0, k1 = _key(seed)
    return _fused_counter_block(counter, k0, k1)


def _key(seed):
    seed = seed_tensor(seed)
    key = tf.bitcast(seed, tf.uint32)
    return key[0], key[1]


def _words(shape, seed, both=False):
    shape = tf.convert_to_tensor(shape, tf.int32)
    counter = tf.bitcast(tf.range(tf.reduce_prod(shape), dtype=tf.int32), tf.uint32)
    x0, x1 = counter_words(counter, seed)
    if both:
        return tf.reshape(x0, shape), tf.reshape(x1, shape)
    return tf.reshape(x0, shape)


def _to_unit(words, dtype, open_left=False):
    # The top 24 bits as a float in [0, 1) (or (0, 1] with open_left).
    top = tf.cast(tf.bitwise.right_shift(words, _u32(8)), dtype)
    if open_left:
        top = top + 1.0
    return top * (1.0 / 16777216.0)


def uniform(shape, seed, dtype=tf.float32):
    """Uniform [0, 1) floats (24 random bits each) from a stateless seed."""
    return _to_unit(_words(shape, seed), dtype)


def standard_normal(shape, seed, dtype=tf.float32):
    """N(0, 1) floats by Box-Muller from the two words of each block."""
    w0, w1 = _words(shape, seed, both=True)
    radius = tf.sqrt(-2.0 * tf.math.log(_to_unit(w0, dtype, open_left=True)))
    return radius * tf.cos((2.0 * math.pi) * _to_unit(w1, dtype))


def fold_in(seed, i):
    """A seed derived from `seed` and the integer `i` (an independent stream)."""
    k0, k1 = _key(seed)
    i = tf.bitcast(tf.cast(i, tf.int32), tf.uint32)
    x0, x1 = threefry2x32(i, _u32(0x5EED), k0, k1)
    return tf.bitcast(tf.stack([x0, x1]), tf.int32)


def bernoulli(probabilities, seed):
    """A {0, 1} sample with the dtype of `probabilities`."""
    p = tf.convert_to_tensor(probabilities)
    u = uniform(tf.shape(p), seed, dtype=p.dtype)
    return tf.cast(u < p, p.dtype)


def normal(mean, std, seed):
    mean = tf.convert_to_tensor(mean)
    return mean + std * standard_normal(tf.shape(mean), seed, dtype=mean.dtype)
