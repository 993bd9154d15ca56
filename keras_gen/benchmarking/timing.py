"""Timing on a shared CPU: the matmul ceiling, and repetitions in rotating order.

The CPUs the benchmarks run on are shared with other jobs whose load drifts;
many short runs of every contender, in an order that rotates between
repetitions, and their medians compare the contenders under the same
conditions.
"""

from __future__ import annotations

import time


def matmul_ceiling(n=2048, reps=3):
    """Best float32 GFLOP/s of an n x n x n `tf.matmul` (plain and XLA-compiled, best of `reps`)."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    best = 0.0
    for jit in (False, True):
        f = tf.function(lambda a, b: tf.matmul(a, b), jit_compile=jit)
        f(a, b).numpy()
        for _ in range(reps):
            t = time.perf_counter()
            f(a, b).numpy()
            best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def rotate(runs, repeats, on_repetition=None):
    """{name: [result of runs[name]() per repetition]}, each repetition in a rotated
    order so no contender always runs first; `on_repetition(r, results)` after each."""
    results = {name: [] for name in runs}
    order = list(runs)
    for r in range(repeats):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            results[name].append(runs[name]())
        if on_repetition is not None:
            on_repetition(r, results)
    return results
