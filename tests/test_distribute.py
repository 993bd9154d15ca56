"""Every family under tf.distribute: same weights as one device, global metrics.

Each check runs in a fresh Python process, because the CPU must be split
into logical devices before TensorFlow initialises (and a multi-worker run
needs processes of its own). A process trains the same model on the same
global batches several ways and prints what it measured as JSON:

* one device vs MirroredStrategy over 2 logical CPUs (XLA on, the default):
  weights, optimizer state, seed state, persistent chains, epoch metrics,
  `evaluate`, and a weights file written by the 2-replica model;
* XLA vs no XLA on one device;
* a real MultiWorkerMirroredStrategy run: two worker processes on localhost
  with TF_CONFIG, trained through `fit_with_artifacts` (chief-only writes),
  against a single-process run.

The optimizer is plain SGD with momentum: its update is linear in the
gradient, so a gradient scaled wrongly for the global batch (the classic
per-replica-mean bug, N times too large) changes the weights by as much as
the training itself did. Adam would hide it (its update is scale-free).
Tolerances: the runs differ only in float32 summation order, a relative
error of order 1e-6 per step; weights must agree to 1e-4 of how far training
moved them, so a wrong scaling (error ~1) or mismatched noise fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The shared part of every child process: tiny models, fixed data, one fit.
COMMON = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tensorflow as tf

    def data(family, n=64):
        rng = np.random.default_rng(0)
        prototypes = rng.random((2, 12)) < 0.5
        x = prototypes[rng.integers(0, 2, n)] ^ (rng.random((n, 12)) < 0.1)
        return x.astype("float32")

    def dataset(family, batch=16):
        return tf.data.Dataset.from_tensor_slices(data(family)).batch(batch)

    def build(family):
        import keras
        keras.utils.set_random_seed(0)  # the layers' initializers draw from the global seed
        if family == "vae":
            from keras_gen.models.vae import make_vae
            model = make_vae("dense", (12,), latent_dim=2, seed=3, encoder_kwargs={"hidden": [16]},
                             decoder_kwargs={"hidden": [16]}, name="vae")
        elif family == "rbm":  # PCD-2: persistent chains, a Gibbs loop, the monitor metrics
            from keras_gen.models.rbm import make_rbm
            model = make_rbm("bernoulli", 12, 8, k=2, persistent=True, n_chains=16, weight_stddev=0.3,
                             seed=3, name="rbm")
        elif family == "rbm-cd":  # CD-1, centered: noise from the data shard itself, offsets averaged over replicas
            from keras_gen.models.rbm import make_rbm
            model = make_rbm("bernoulli", 12, 8, k=1, persistent=False, weight_stddev=0.3, centering=True, seed=3,
                             name="rbm")
        elif family.startswith("gan"):
            from keras_gen.models import gan
            model = gan.tiny_gan_for_tests(data_dim=12, seed=3)
        elif family == "diffusion":  # per-example steps and noise, the weights' EMA
            from keras_gen.models.diffusion import make_diffusion
            model = make_diffusion("mlp", (12,), steps=50, ema_momentum=0.9, seed=3,
                                   network_kwargs={"hidden": [16, 16]}, name="diffusion")
        elif family == "ebm":  # Langevin negatives, the replay buffer written by every replica
            from keras_gen.models.ebm import make_ebm
            model = make_ebm("mlp", (12,), data_domain="unit", buffer_size=48, langevin_steps=3, step_size=0.05,
                             noise_scale=None, gradient_clip=0.5, seed=3, network_kwargs={"hidden": [16, 16]},
                             name="ebm")
        else:
            raise SystemExit(f"unknown family {family}")
        model.build_for_data()
        return model

    def compile(model, family, jit):
        import keras
        rules = {"gan-wgan-gp": {"objective": "wasserstein", "n_critic": 2, "gradient_penalty": 10.0}}
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.5), jit_compile=jit,
                      **rules.get(family, {}))

    def state(model):
        import keras
        # Keyed by position and name: auto-generated paths differ between two models.
        def as_numpy(v):
            a = np.asarray(keras.ops.convert_to_numpy(v))
            return a.astype(np.float64 if np.issubdtype(a.dtype, np.floating) else np.int64)
        return {f"{i:03d} {v.name}": as_numpy(v) for i, v in enumerate(model.variables)}

    def moved(model, before, after):
        # How far training moved the trainable weights: the scale of the tolerances.
        trainable = {id(v) for v in model.trainable_variables}
        keys = [k for k, v in zip(before, model.variables) if id(v) in trainable]
        return max(float(np.max(np.abs(after[k] - before[k]))) for k in keys)

    def max_diff(a, b):
        keys = sorted(set(a) | set(b))
        missing = [k for k in keys if k not in a or k not in b]
        if missing:
            raise SystemExit(f"variables differ between runs: {missing}")
        return max(float(np.max(np.abs(a[k] - b[k]))) for k in keys)
    """
)

MIRRORED = COMMON + textwrap.dedent(
    """
    from keras_gen.core import distribute
    distribute.split_cpu(2)
    out, families = sys.argv[1], sys.argv[2:]
    import traceback
    import keras

    def run(family, strategy, jit, epochs=2):
        with strategy.scope():
            model = build(family)
            compile(model, family, jit)
        before = state(model)
        history = model.fit(dataset(family), epochs=epochs, verbose=0, shuffle=False).history
        evaluation = model.evaluate(dataset(family, 32), verbose=0, return_dict=True)
        return model, before, state(model), history, evaluation

    def per_replica_copies_agree(model):
        worst = 0.0
        for v in model.variables:
            inner = getattr(v, "value", v)
            copies = getattr(inner, "values", None)
            if copies and len(copies) > 1:
                arrays = [np.asarray(c.numpy(), np.float64) for c in copies]
                worst = max(worst, max(float(np.max(np.abs(a - arrays[0]))) for a in arrays))
        return worst

    def compare(family):
        one_model, initial, one, one_history, one_eval = run(family, tf.distribute.get_strategy(), True)
        two_model, initial2, two, two_history, two_eval = run(family, mirrored, True)
        _, _, eager, _, _ = run(family, tf.distribute.get_strategy(), False)

        # A weights file written by the 2-replica model restores the whole
        # state (seed generators, chains, optimizer) into a one-device model.
        path = os.path.join(os.path.dirname(out), f"{family}.weights.h5")
        two_model.save_weights(path)
        restored = build(family)
        compile(restored, family, True)
        restored.optimizer.build(restored.trainable_variables)
        restored.load_weights(path)
        restored_state = {k: v for k, v in state(restored).items() if k in two}
        return {
            "replicas": mirrored.num_replicas_in_sync,
            "moved": moved(one_model, initial, one),
            "initial_diff": max_diff(initial, initial2),
            "mirrored_diff": max_diff(one, two),
            "xla_diff": max_diff(one, eager),
            "restored_diff": max_diff(restored_state, {k: two[k] for k in restored_state}),
            "restored_keys": sorted(restored_state),
            "replica_copies_diff": per_replica_copies_agree(two_model),
            "one_history": one_history, "two_history": two_history,
            "one_eval": one_eval, "two_eval": two_eval,
            "seed_state": [one[k].tolist() for k in sorted(one) if k.endswith("seed_generator_state")],
        }

    # One strategy for the process: strategies made one after another would
    # reuse their collectives' instance keys.
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {}
    for family in families:
        try:
            results[family] = compare(family)
        except BaseException:
            results[family] = {"error": traceback.format_exc()}
    json.dump(results, open(out, "w"))
    """
)


def run_child(code, args, tmp_path, env=None, timeout=300):
    script = tmp_path / "child.py"
    script.write_text(code)
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ), timeout


def finish(proc_timeout, out_path):
    proc, timeout = proc_timeout
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError(f"child process timed out:\n{output[-4000:]}") from None
    assert proc.returncode == 0, output[-4000:]
    with open(out_path) as f:
        return json.load(f)


FAMILIES = ["vae", "rbm", "rbm-cd", "gan", "gan-wgan-gp", "diffusion", "ebm"]


@pytest.fixture(scope="module")
def mirrored_results(tmp_path_factory):
    """One child process trains every family the three ways (one TensorFlow start-up)."""
    tmp_path = tmp_path_factory.mktemp("mirrored")
    out = tmp_path / "results.json"
    return finish(run_child(MIRRORED, [str(out), *FAMILIES], tmp_path, timeout=900), out)


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_mirrored_two_replicas_equal_one_device(family, mirrored_results):
    r = mirrored_results[family]
    assert "error" not in r, r.get("error")
    assert r["replicas"] == 2
    assert r["initial_diff"] == 0.0  # same initial weights, chains and seeds
    assert r["moved"] > 1e-2, "training must move the weights for the comparison to mean anything"
    tolerance = 1e-4 * r["moved"]
    assert r["mirrored_diff"] <= tolerance, r
    # The compiled (XLA) and uncompiled steps agree.
    assert r["xla_diff"] <= tolerance, r
    # Every replica holds the same copy of every mirrored variable (chains, seed state, weights).
    assert r["replica_copies_diff"] == 0.0, r
    # A 2-replica checkpoint restores exactly into one device, seed state and chains included.
    assert r["restored_diff"] == 0.0, r
    assert any("seed_generator_state" in k for k in r["restored_keys"])
    if family == "rbm":
        assert any("persistent_chains" in k for k in r["restored_keys"])
    if family == "ebm":
        assert any("replay_buffer" in k for k in r["restored_keys"])
    # The model's own seed generator (the first variable) drew at least once in each of the 8 steps.
    assert r["seed_state"][0][1] >= 8, r["seed_state"]
    # Reported metrics are global: the same numbers as on one device.
    for key, values in r["one_history"].items():
        np.testing.assert_allclose(r["two_history"][key], values, rtol=1e-4, atol=1e-5, err_msg=key)
    for key, value in r["one_eval"].items():
        np.testing.assert_allclose(r["two_eval"][key], value, rtol=1e-4, atol=1e-5, err_msg=key)


MULTI_WORKER = COMMON + textwrap.dedent(
    """
    out, run_root, families = sys.argv[1], sys.argv[2], sys.argv[3:]
    from keras_gen import runs
    from keras_gen.core import distribute
    import keras
    if os.environ.get("TF_CONFIG"):
        strategy = distribute.make_strategy("multi-worker")
    else:
        strategy = distribute.make_strategy("default")
    results = {"chief": distribute.is_chief(strategy), "replicas": strategy.num_replicas_in_sync}
    for family in families:
        with strategy.scope():
            model = build(family)
            compile(model, family, True)
        before = state(model)
        runs.fit_with_artifacts(model, dataset(family), os.path.join(run_root, family), epochs=2,
                                   n_samples=16, verbose=0,
                                   sample_kwargs={"gibbs_steps": 5} if family.startswith("rbm") else None)
        after = state(model)
        np.savez(f"{out}.{family}.npz", **after)
        results[family] = moved(model, before, after)
    json.dump(results, open(out, "w"))
    """
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_on_localhost_equal_one_process(tmp_path):
    """MultiWorkerMirroredStrategy, two processes, the VAE and the RBM: same
    weights as one process, and only the chief writes the run folder."""
    families = ["vae", "rbm"]
    workers = [f"localhost:{free_port()}", f"localhost:{free_port()}"]
    procs, outs = [], []
    for index in range(2):
        wdir = tmp_path / f"worker{index}"
        wdir.mkdir()
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        outs.append(str(wdir / "result.json"))
        procs.append(
            run_child(
                MULTI_WORKER,
                [outs[-1], str(tmp_path / "run"), *families],
                wdir,
                env={"TF_CONFIG": tf_config},
                timeout=900,
            )
        )
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    single_out = str(single_dir / "result.json")
    single = run_child(
        MULTI_WORKER, [single_out, str(single_dir / "run"), *families], single_dir, env={"TF_CONFIG": ""}, timeout=900
    )
    results = [finish(p, o) for p, o in zip(procs, outs)]
    reference = finish(single, single_out)

    assert [r["chief"] for r in results] == [True, False]
    assert all(r["replicas"] == 2 for r in results) and reference["replicas"] == 1
    for family in families:
        assert reference[family] > 1e-2, family
        ref = np.load(f"{single_out}.{family}.npz")
        for out in outs:
            got = np.load(f"{out}.{family}.npz")
            assert sorted(got.files) == sorted(ref.files)
            worst = max(float(np.max(np.abs(got[k] - ref[k]))) for k in ref.files)
            assert worst <= 1e-4 * reference[family], (family, out, worst)
        # Only the chief wrote the run folder: one history, its checkpoints, the final model.
        run = tmp_path / "run" / family
        assert (run / "model.keras").is_file()
        assert sorted(os.listdir(run / "checkpoints")) == ["epoch_001.keras", "epoch_002.keras"]
        with open(run / "history.csv") as f:
            assert len(f.read().strip().splitlines()) == 3  # header + 2 epochs, written once
    # The non-chief left nothing behind in its own folder either.
    assert sorted(os.listdir(tmp_path / "worker1")) == sorted(
        ["child.py", "result.json"] + [f"result.json.{f}.npz" for f in families]
    )


def test_cli_multi_worker_without_tf_config_is_refused_before_any_work(tmp_path, monkeypatch):
    from keras_gen import cli

    monkeypatch.delenv("TF_CONFIG", raising=False)
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match="needs TF_CONFIG"):
        cli.main(["train", "vae", "--strategy", "multi-worker", "--epochs", "1", "--out", str(out)])
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker"}}')
    with pytest.raises(SystemExit, match="TF_CONFIG must be JSON like"):
        cli.main(["train", "vae", "--strategy", "multi-worker", "--epochs", "1", "--out", str(out)])
    assert not out.exists()
