"""Compile once, call many times: tf.functions cached on the object they serve.

A compiled sampler or evaluation step belongs to one model (its variables are
captured when it is traced), so it is cached on that model, keyed by whatever
changes the traced program (a setting, a chunk size). The cache lives in the
object's `__dict__`, out of sight of Keras's attribute tracking, which would
otherwise wrap the dict and try to save the functions with the model.
"""

from __future__ import annotations

import tensorflow as tf

_CACHE = "_keras_gen_compiled"


def compiled_once(owner, key, fn, jit_compile=True):
    """`tf.function(fn, jit_compile=jit_compile)`, built on the first call for
    (`owner`, `key`) and returned as is afterwards."""
    cache = owner.__dict__.setdefault(_CACHE, {})
    full_key = (key, jit_compile)
    if full_key not in cache:
        cache[full_key] = tf.function(fn, jit_compile=jit_compile, reduce_retracing=True)
    return cache[full_key]


def forget_compiled(owner):
    """Drop `owner`'s cached functions (after a change that needs a retrace)."""
    owner.__dict__.pop(_CACHE, None)
