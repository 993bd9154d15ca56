"""Block Gibbs sampling for any model with two conditionals.

`block_gibbs(model, v, k, seed)` runs k steps v -> h -> v for any object that
exposes `sample_hidden(v, seed)` and `sample_visible(h, seed)` (the RBM layers
of `keras_gen.models.rbm`, and any later family with the same two methods).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_gen.core.random import fold_in, seed_tensor


def block_gibbs(model, v, k, seed, unroll=4):
    """k sweeps of block Gibbs sampling v -> h ~ p(h|v) -> v ~ p(v|h).

    `model` exposes `sample_hidden(v, seed)` and `sample_visible(h, seed)`.
    `k` is a Python int (loops of at most `unroll` steps are unrolled; longer
    ones run as a `tf.while_loop`) or an integer tensor (serving). Returns
    `(v_k, h_k)`: the last visible sample and the hidden sample it was drawn
    from (so `visible_mean(h_k)` is the mean of the last step). `k = 0`
    returns `(v, None)`; a tensor `k` always runs at least one sweep.
    """
    seed = seed_tensor(seed)
    v = tf.convert_to_tensor(v)
    if isinstance(k, (int, np.integer)):
        k = int(k)
        if k < 0:
            raise ValueError(f"Gibbs sampling needs k >= 0 steps, got {k}.")
        if k == 0:
            return v, None
        if k <= unroll:
            h = None
            for i in range(k):
                h = model.sample_hidden(v, fold_in(seed, 2 * i))
                v = model.sample_visible(h, fold_in(seed, 2 * i + 1))
            return v, h
    # Tensor k (>= 1): the first sweep outside the loop fixes h's shape.
    k = tf.cast(k, tf.int32)
    h = model.sample_hidden(v, fold_in(seed, 0))
    v = model.sample_visible(h, fold_in(seed, 1))

    def body(i, v, h):
        h = model.sample_hidden(v, fold_in(seed, 2 * i))
        v = model.sample_visible(h, fold_in(seed, 2 * i + 1))
        return i + 1, v, h

    _, v, h = tf.while_loop(lambda i, v, h: i < k, body, (tf.constant(1), v, h))
    return v, h


def gibbs_chains(sampler, n_chains, n_keep, thin, n_burn, seed=0):
    """Spins from long block-Gibbs chains, thinned: shape (n_chains, n_keep, n_visible).

    `sampler(n, seed, gibbs_steps, init)` is a model's `generate_samples`
    (an `RBM`'s with `return_probabilities=False`, or
    `keras_gen.models.ising.IsingRBMs` bound to a temperature, as
    `keras_gen.evaluation.ising.rbm_sampler` makes them): `n_burn` sweeps from
    random spins, then `n_keep` states `thin` sweeps apart (from ordered states
    for `IsingRBMs(start="ordered")`). Samples of one chain are correlated; keep
    them chain-major (reshape to (-1, n_visible)) so the blocked jackknife of
    `keras_gen.physics.observables.observables` puts whole chains in a block.
    """
    seed = seed_tensor(seed)
    v = sampler(n_chains, fold_in(seed, 0), gibbs_steps=n_burn, init=None)
    kept = np.empty((n_chains, n_keep, int(v.shape[-1])), np.float32)
    for i in range(n_keep):
        v = sampler(n_chains, fold_in(seed, i + 1), gibbs_steps=thin, init=v)
        kept[:, i] = np.asarray(v)  # an eager tensor or an array
    return kept
