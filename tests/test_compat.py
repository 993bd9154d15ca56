"""Every private Keras/TensorFlow API keras-gen uses, through `keras_gen.core.compat`.

Each test fails by name when a Keras or TensorFlow release changes what the
library relies on.
"""

import inspect
import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import tensorflow as tf

from keras_gen.callbacks import AtomicModelCheckpoint
from keras_gen.core import compat


def test_flatten_layers_walks_nested_models():
    inner = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)], name="inner")
    inputs = keras.Input((8, 8, 1))
    outer = keras.Model(inputs, keras.layers.Flatten()(inner(inputs)))
    found = compat.flatten_layers(outer)
    assert found[0] is outer
    assert any(isinstance(layer, keras.layers.Conv2D) for layer in found)
    assert not any(isinstance(layer, keras.layers.Conv2D) for layer in outer.layers)


# Splitting the CPU into two devices must happen before TensorFlow initialises:
# the strategy checks run in a fresh process and report what they saw.
STRATEGY_PROBES = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    from keras_gen.core import compat
    from keras_gen.core.distribute import split_cpu

    split_cpu(2)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out = {"default_is_default": compat.is_default_strategy(tf.distribute.get_strategy()),
           "mirrored_is_default": compat.is_default_strategy(mirrored),
           "mirrored_multi_worker": compat.in_multi_worker_mode(mirrored),
           "has_probe": hasattr(mirrored.extended, "_in_multi_worker_mode")}
    for name, strategy in (("default", tf.distribute.get_strategy()), ("mirrored", mirrored)):
        with strategy.scope():
            v = tf.Variable(1.0)

        def replica_fn():
            def update(strategy, var):
                strategy.extended.update(var, lambda x: x.assign(x * 3.0), group=False)

            compat.merge_call(update, v)

        strategy.run(tf.function(replica_fn))
        out["merge_" + name] = [float(t) for t in strategy.experimental_local_results(v)]
    print(json.dumps(out))
    """
)


def test_strategy_probes_and_merge_call():
    result = subprocess.run([sys.executable, "-c", STRATEGY_PROBES], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["default_is_default"] and not out["mirrored_is_default"]
    assert out["mirrored_multi_worker"] is False and out["has_probe"]
    assert out["merge_default"] == [3.0]
    assert out["merge_mirrored"] == [3.0, 3.0]  # every replica's copy updated once


def test_draw_seed_matches_keras_stateless_seeds():
    assert np.array_equal(keras.ops.convert_to_numpy(compat.draw_seed(5)), [5, 0])
    keras.utils.set_random_seed(3)
    first = keras.ops.convert_to_numpy(compat.draw_seed(None))
    keras.utils.set_random_seed(3)
    assert np.array_equal(first, keras.ops.convert_to_numpy(compat.draw_seed(None)))
    assert first.shape == (2,)
    # The same draw keras.random makes for the same int seed: Keras's TensorFlow
    # backend feeds the drawn seed to the stateless TensorFlow op.
    a = keras.random.uniform((4,), seed=7)
    b = tf.random.stateless_uniform((4,), seed=compat.draw_seed(7))
    assert np.array_equal(keras.ops.convert_to_numpy(a), b.numpy())


def test_make_step_function_wraps_a_step():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    params = list(inspect.signature(model._make_function).parameters)
    assert params == ["step_function"], params
    fn = compat.make_step_function(model, lambda data: {"total": tf.reduce_sum(data)})
    dataset = tf.data.Dataset.from_tensor_slices(np.ones((4, 2), np.float32)).batch(4)
    logs = fn(iter(dataset))
    assert float(logs["total"]) == 8.0


def test_model_checkpoint_hooks(tmp_path):
    for name in (compat.MODEL_CHECKPOINT_SAVE_METHOD, "_get_file_path", "_should_save_model"):
        assert hasattr(keras.callbacks.ModelCheckpoint, name), name
    assert list(inspect.signature(keras.callbacks.ModelCheckpoint._save_model).parameters) == [
        "self",
        "epoch",
        "batch",
        "logs",
    ]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    callback = AtomicModelCheckpoint(str(tmp_path / "m_{epoch:02d}.keras"), monitor="loss", save_best_only=True)
    x = np.ones((8, 2), np.float32)
    model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[callback])
    assert (tmp_path / "m_01.keras").exists() or (tmp_path / "m_02.keras").exists()
    # After fit the callback knows its best loss: it asks to save only on an improvement.
    path = compat.checkpoint_path(callback, 4, None, {"loss": 1.0})
    assert path.endswith("m_05.keras")
    assert compat.checkpoint_should_save(callback, 4, None, {"loss": callback.best - 1.0}, path)
    assert not compat.checkpoint_should_save(callback, 4, None, {"loss": callback.best + 1.0}, path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
