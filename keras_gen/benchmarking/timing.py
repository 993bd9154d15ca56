"""Timing on a shared CPU: the matmul ceiling, repetitions in rotating order,
and background jobs paused while the clock runs.

The CPUs the benchmarks run on are shared with other jobs whose load drifts;
many short runs of every contender, in an order that rotates between
repetitions, and their medians compare the contenders under the same
conditions. A long job known to compete for the cores (a training run on a
2-core machine takes half of the CPU from whichever contender runs) can be
stopped for the measurements only (`paused`).
"""

from __future__ import annotations

import contextlib
import os
import signal
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


@contextlib.contextmanager
def paused(pids):
    """Other processes stopped (SIGSTOP) for the duration of the block and resumed
    (SIGCONT) after it, also when it ends by an exception, Ctrl-C, SIGTERM or
    SIGHUP: a benchmark must never leave someone's training run stopped."""

    def terminate(signum, frame):
        raise SystemExit(128 + signum)  # unwinds through the `finally` below

    handlers = {s: signal.signal(s, terminate) for s in (signal.SIGTERM, signal.SIGHUP)}
    stopped = []
    try:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # a job that has ended needs no pause
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        yield
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        for s, handler in handlers.items():
            signal.signal(s, handler)
