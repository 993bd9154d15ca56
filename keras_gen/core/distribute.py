"""Training on many devices and many hosts with `tf.distribute`.

keras-gen trains with TensorFlow's own distributed engine: build and compile a
model inside `strategy.scope()` and call `fit` as usual. This module holds what
the families and the command line share for that:

* Strategies by name (`make_strategy("mirrored" | "multi-worker" | "default")`,
  multi-worker read from `TF_CONFIG`), `split_cpu(n)` to try MirroredStrategy
  on a CPU-only machine (n logical devices), and `is_chief()` so that only one
  worker writes checkpoints and artifacts.

* Random numbers that do not depend on the number of replicas. Under a
  strategy every replica sees a consecutive, equal shard of the global batch
  and every replica's seed generator holds the same state, so a plain draw
  would hand each replica the *same* noise for different examples. The
  `replica_*` draws below use the counter-based generator of
  `keras_gen.core.random` with counters offset by the replica's position in the
  global batch: element i of replica r's draw is element r * size + i of the
  draw a single device makes for the whole batch. Training on N replicas then
  sees exactly the noise of the single-device run, and a step on N devices
  equals a step on one (up to float summation order).

* Sharded persistent state: `replica_shard(x)` is this replica's block of rows
  of a replicated tensor (e.g. the persistent chains of an RBM); after a step
  `gather_replicas(block)` reassembles the whole tensor on every replica, so
  the variable's copies stay identical and are saved whole.
"""

from __future__ import annotations

import json
import math
import os

import tensorflow as tf

from keras_gen.core import compat
from keras_gen.core import random as samplers

STRATEGIES = ("default", "mirrored", "multi-worker")


# --------------------------------------------------------------- strategies
def split_cpu(n):
    """Split the first CPU into `n` logical devices (before TensorFlow starts).

    MirroredStrategy then has n replicas on a machine without accelerators:
    how the tests and benchmarks exercise multi-device code on a laptop.
    Raises RuntimeError once TensorFlow has initialised its devices.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"split_cpu needs n >= 1 devices, got {n}.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == n:
        return tf.config.list_logical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as err:
        raise RuntimeError(
            f"Cannot split the CPU into {n} devices: TensorFlow has already initialised its devices. "
            "Call split_cpu before any other TensorFlow work (e.g. at the top of the script)."
        ) from err
    return tf.config.list_logical_devices("CPU")


def read_tf_config():
    """The parsed `TF_CONFIG` environment variable, checked, or None if unset."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        task_type, task_index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            'TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", ...]}, '
            f'"task": {{"type": "worker", "index": 0}}}}; got {raw!r} ({err}).'
        ) from err
    hosts = config["cluster"].get(task_type)
    if not hosts or not 0 <= task_index < len(hosts):
        raise ValueError(f"TF_CONFIG task {task_type}:{task_index} is not in the cluster {config['cluster']}.")
    if not workers:
        raise ValueError("TF_CONFIG lists no workers.")
    return config


def make_strategy(name="default", devices=None):
    """A `tf.distribute.Strategy` by name.

    * "default": no distribution (one device).
    * "mirrored": synchronous data parallelism over this machine's GPUs (or
      `devices`, e.g. the logical CPUs of `split_cpu`).
    * "multi-worker": synchronous data parallelism over the hosts listed in
      `TF_CONFIG` (every worker runs the same program with its own
      `task.index`); each host's local devices are replicas.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            cpus = tf.config.list_logical_devices("CPU")
            devices = [d.name for d in (gpus or cpus)]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi-worker":
        if read_tf_config() is None:
            raise ValueError(
                "The multi-worker strategy needs TF_CONFIG: set it on every worker to the same "
                'cluster ({"cluster": {"worker": ["host1:port", "host2:port"]}}) and that '
                'worker\'s task ({"task": {"type": "worker", "index": i}}).'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")


def is_distributed(strategy=None):
    """True under any strategy other than TensorFlow's default (one device)."""
    return not compat.is_default_strategy(strategy or tf.distribute.get_strategy())


def is_chief(strategy=None):
    """Whether this process writes checkpoints and artifacts.

    Always true on one host. Under MultiWorkerMirroredStrategy the chief is
    the "chief" task if the cluster has one, else worker 0.
    """
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not compat.in_multi_worker_mode(strategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


# ---------------------------------------------------- replicas and their shards
def replica_index():
    """(this replica's index in the global batch, number of replicas).

    (0, 1) outside a strategy and in cross-replica context.
    """
    context = tf.distribute.get_replica_context()
    if context is None:
        return 0, 1
    index = context.replica_id_in_sync_group
    # MirroredStrategy hands each replica a constant tensor made outside the
    # step's graph; captured inside the `while`/`cond` of
    # `steps_per_execution > 1` it becomes an unfed placeholder. Its value is
    # known when the step is traced, so use the Python number.
    static = tf.get_static_value(index)
    return (int(static) if static is not None else index), context.num_replicas_in_sync


def replica_shard(x):
    """This replica's consecutive block of the rows of `x` (all of them on one device)."""
    index, replicas = replica_index()
    if replicas == 1:
        return x
    rows = x.shape[0]
    if rows is None or rows % replicas:
        raise ValueError(f"{rows} rows cannot be split evenly over {replicas} replicas.")
    size = rows // replicas
    return x[index * size : (index + 1) * size]


def gather_replicas(x):
    """Every replica's `x` concatenated along axis 0, in replica order, on every replica.

    A synchronisation point: call it in `train_step` outside the replica's
    compiled computation (see `GenerativeModel.replica_compiled`).
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return x
    return context.all_gather(x, axis=0)


# ---------------------------------------------- draws invariant to the replicas
def _replica_words(shape, seed, both=False):
    shape = tf.convert_to_tensor(shape, tf.int32)
    size = tf.reduce_prod(shape)
    index, _ = replica_index()
    counter = tf.range(size, dtype=tf.int32) + tf.cast(index, tf.int32) * size
    x0, x1 = samplers.counter_words(tf.bitcast(counter, tf.uint32), seed)
    if both:
        return tf.reshape(x0, shape), tf.reshape(x1, shape)
    return tf.reshape(x0, shape)


def replica_uniform(shape, seed, dtype=tf.float32):
    """Uniform [0, 1) numbers for this replica's shard of a global batch.

    `shape` is the local shape (leading axis: the examples of this replica).
    Equal to the matching rows of `samplers.uniform(global_shape, seed)`;
    on one device, equal to it.
    """
    return samplers._to_unit(_replica_words(shape, seed), dtype)


def replica_normal(shape, seed, dtype=tf.float32):
    """N(0, 1) numbers for this replica's shard (as `samplers.standard_normal`)."""
    w0, w1 = _replica_words(shape, seed, both=True)
    radius = tf.sqrt(-2.0 * tf.math.log(samplers._to_unit(w0, dtype, open_left=True)))
    return radius * tf.cos((2.0 * math.pi) * samplers._to_unit(w1, dtype))


def replica_bernoulli(probabilities, seed):
    """A {0, 1} sample of this replica's shard (as `samplers.bernoulli`)."""
    p = tf.convert_to_tensor(probabilities)
    return tf.cast(replica_uniform(tf.shape(p), seed, dtype=p.dtype) < p, p.dtype)


def update_variables(variables, update, *sources):
    """update(variable, *the matching source variables) for every variable, applied as
    an optimizer applies its updates: in cross-replica context under tf.distribute,
    so every replica's copy gets the same new value."""
    variables = [getattr(v, "value", v) for v in variables]
    sources = [[getattr(v, "value", v) for v in vs] for vs in sources]

    def update_all(strategy, variables, *sources):
        for i, v in enumerate(variables):
            strategy.extended.update(v, update, args=tuple(s[i] for s in sources), group=False)

    compat.merge_call(update_all, variables, *sources)


def apply_if_finite(optimizer, grads, variables):
    """`optimizer.apply(grads, variables)`, skipped when any gradient, on any
    replica, holds a NaN or an infinity; returns whether it was applied.

    A non-finite step then leaves the weights and the optimizer's state (its
    `iterations` included) as they were after the last finite step, and the
    run's guard (`callbacks.NonFiniteGuard`) stops training with them. Every
    replica takes the same branch: the count of bad values is summed across
    replicas first. Under a strategy that synchronises through `merge_call`
    (MirroredStrategy) the branch is taken in cross-replica context, since a
    `cond` in replica context cannot hold the optimizer's own `merge_call`
    (the pattern of Keras's `LossScaleOptimizer`).
    """
    grads = list(grads)
    variables = list(variables)
    bad = tf.add_n([tf.reduce_sum(tf.cast(~tf.math.is_finite(g), tf.int32)) for g in grads if g is not None])
    context = tf.distribute.get_replica_context()
    replicas = context.num_replicas_in_sync if context is not None else 1
    if replicas > 1:
        bad = context.all_reduce(tf.distribute.ReduceOp.SUM, bad)
    finite = tf.equal(bad, 0)

    def apply():
        optimizer.apply(grads, variables)
        return tf.constant(True)

    # Any strategy, even with one replica, applies through merge_call (unless it says it needs none).
    if not tf.distribute.has_strategy() or tf.__internal__.distribute.strategy_supports_no_merge_call():
        return tf.cond(finite, apply, lambda: tf.constant(False))

    def in_cross_replica(strategy, finite, grads):
        # Every replica's flag is the same (the count was all-reduced).
        finite = strategy.experimental_local_results(finite)[0]

        def apply_on_replicas():
            strategy.extended.call_for_each_replica(lambda g: optimizer.apply(g, variables), args=(grads,))
            return tf.constant(True)

        return tf.cond(finite, apply_on_replicas, lambda: tf.constant(False))

    return compat.merge_call(in_cross_replica, finite, grads)
