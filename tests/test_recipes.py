"""The MNIST zoo recipes' `--finalize` end to end, on tiny models.

A finalize step runs once, after many CPU-hours of training: a bug in it
costs a session. Here each recipe finalizes a tiny untrained model of its
architecture (shrunk in the recipe's module: its sweeps and its network)
into a scratch root, and the card it writes is read back through the zoo.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

from keras_gen import evaluation

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not evaluation.classifier_available(), reason="needs the shipped domain classifier"),
]
pytest.importorskip("tensorflow_datasets")
TRAINING = Path(__file__).parents[1] / "training"


def recipe(name, monkeypatch, **shrunk):
    """The recipe's namespace with the given globals replaced (its sweeps, its network)."""
    namespace = runpy.run_path(str(TRAINING / f"{name}.py"), run_name=f"recipe_{name}")
    finalize = namespace["finalize"]
    for key, value in shrunk.items():
        monkeypatch.setitem(finalize.__globals__, key, value)
    return namespace


def finalize(namespace, model, tmp_path, *argv):
    path = tmp_path / "model.keras"
    model.save(path)
    (tmp_path / "zoo").mkdir(exist_ok=True)
    namespace["main"](["--finalize", str(path), "--root", str(tmp_path), "--out", str(tmp_path / "run"), *argv])
    card = json.loads((tmp_path / "zoo" / f"{namespace['NAME']}.json").read_text())
    for figure in card["figures"]:
        assert (tmp_path / figure).stat().st_size > 1000, figure
    return card


def add_epoch_grids(run, epochs):
    from keras_gen import plots

    for epoch in epochs:
        images = np.random.default_rng(epoch).random((4, 28, 28, 1))
        plots.save_samples(images, run / "samples" / f"epoch_{epoch:03d}.png", title=f"epoch {epoch}")


def test_ddpm_mnist_finalizes_with_its_guidance_and_steps_sweeps(tmp_path, monkeypatch):
    from keras_gen.models.diffusion import make_diffusion

    kwargs = {"widths": [8, 16], "block_depth": 1, "attention": False, "groups": 4}
    namespace = recipe("ddpm_mnist", monkeypatch, STEPS_COMPARED=(2, 4), GUIDANCE_SWEEP=(0.0, 1.0), CLASS_SAMPLES=4)
    architecture = namespace["ARCHITECTURE"]
    architecture = {**architecture, "kwargs": {**architecture["kwargs"], "network_kwargs": kwargs}}
    monkeypatch.setitem(namespace["finalize"].__globals__, "ARCHITECTURE", architecture)
    model = make_diffusion(**architecture["kwargs"], seed=0)
    # The run's per-epoch grids (the epochs figure) and its judged epochs (onto the card).
    record = {"protocol": {"samples": 10}, "floor": {"fd": 1.0}, "rows": [{"epoch": 2, "fd": 3.0}]}
    state = tmp_path / "saved_models" / "training_state" / "ddpm_mnist"
    state.mkdir(parents=True)
    (state / "progress.json").write_text(json.dumps(record))
    add_epoch_grids(tmp_path / "run", (1, 2))
    argv = ["--samples", "40", "--steps-samples", "30", "--sample-cache", str(tmp_path / "cache")]
    card = finalize(namespace, model, tmp_path, *argv)
    metrics = card["metrics"]
    assert metrics["quality_by_training_epoch"] == record
    assert "zoo/figures/ddpm_mnist_epochs.png" in card["figures"]
    # Finalizing again (a stopped finalize, or one carried to another machine with
    # its cache) reads every sample back: the same numbers, no batch drawn again.
    kept = {path: path.stat().st_mtime_ns for path in (tmp_path / "cache").rglob("batch_*.npz")}
    by_class = metrics["conditional_class_accuracy"]
    assert len(kept) == 3 + 2 + 1 + 10 * len(by_class)  # guidance and steps rows, the headline, per class
    again = finalize(namespace, model, tmp_path, *argv)
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "cache").rglob("batch_*.npz")} == kept
    assert again["metrics"]["fd_by_sampling_steps"] == metrics["fd_by_sampling_steps"]
    guidance = metrics["fd_by_guidance"]
    assert set(guidance["rows"]) == {"unconditional", "0", "1"} and guidance["n_samples"] == 30
    assert guidance["best"] in (0.0, 1.0)
    assert card["sample_kwargs"] == {"steps": 50, "eta": 0.0, "label": "random", "guidance": guidance["best"]}
    assert set(metrics["fd_by_sampling_steps"]["rows"]) == {"2", "4"}
    assert metrics["sample_quality"]["n_samples"] == 40 and np.isfinite(metrics["sample_quality"]["fd"])
    assert set(metrics["conditional_class_accuracy"]) >= {"guidance_0"}


def test_ebm_mnist_finalizes_with_its_chain_length_sweep(tmp_path, monkeypatch):
    from keras_gen.models.ebm import make_ebm

    namespace = recipe("ebm_mnist", monkeypatch, CHAIN_LENGTHS=(2, 8), CHAIN_STEPS=(0, 2, 4))
    architecture = namespace["ARCHITECTURE"]
    architecture = {
        **architecture,
        "kwargs": {**architecture["kwargs"], "buffer_size": 64, "network_kwargs": {"widths": [4, 4], "hidden": 8}},
    }
    monkeypatch.setitem(namespace["finalize"].__globals__, "ARCHITECTURE", architecture)
    model = make_ebm(**architecture["kwargs"], seed=0)
    cache = tmp_path / "cache"
    argv = ["--samples", "40", "--sweep-samples", "30", "--sample-cache", str(cache)]
    card = finalize(namespace, model, tmp_path, *argv)
    assert "zoo/figures/ebm_mnist_epochs.png" not in card["figures"]  # the run kept no grids
    sweep = card["metrics"]["fd_by_chain_length"]
    assert set(sweep["rows"]) == {"2", "8"} and sweep["best"] in ("2", "8") and sweep["seed"] == 1
    assert card["sample_kwargs"] == {"steps": int(sweep["best"])}
    headline = card["metrics"]["sample_quality"]
    assert headline["n_samples"] == 40
    # The zoo table's row of the published entry, given the same cache, reads the
    # finalize's samples back (the zoo's copy of the weights finds them): no batch
    # is drawn again, and the sample metrics are the card's.
    from keras_gen.evaluation.zoo_table import evaluate_entries

    kept = {path: path.stat().st_mtime_ns for path in cache.rglob("batch_*.npz")}
    monkeypatch.setenv("KERAS_GEN_HOME", str(tmp_path))
    rows = {}
    evaluate_entries(["ebm_mnist"], rows, tmp_path / "rows.json", samples=40, sample_cache=str(cache))
    assert {path: path.stat().st_mtime_ns for path in cache.rglob("batch_*.npz")} == kept
    assert rows["ebm_mnist"]["fd"] == headline["fd"] and rows["ebm_mnist"]["score"] == headline["score"]


def test_training_progress_keeps_a_record_between_machines(tmp_path, monkeypatch):
    """A carried run has only its newest backup: each machine judges the epochs it
    trained, and the record gives the table of all of them, under one protocol."""
    import keras

    from keras_gen.benchmarking.report import BenchmarksFile
    from keras_gen.models.vae import make_vae

    progress = runpy.run_path(str(TRAINING.parent / "benchmarks" / "training_progress.py"), run_name="progress")
    main = progress["main"]
    monkeypatch.setitem(main.__globals__, "BENCHMARKS", BenchmarksFile(tmp_path / "BENCHMARKS.md"))
    judged = []
    judge = progress["judge"]

    def counting_judge(path, *args):
        judged.append(Path(path).name)
        return judge(path, *args)

    monkeypatch.setitem(main.__globals__, "judge", counting_judge)
    keras.utils.set_random_seed(0)
    model = make_vae("conv", (28, 28, 1), latent_dim=2)
    model.build_for_data()
    run = tmp_path / "run"
    (run / "backup").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "history.csv").write_text("epoch,epoch_seconds\n0,3600\n1,1800\n2,1800\n3,1800\n")
    model.save(run / "backup" / "epoch_0002.keras")  # the carried state: epoch 2's backup only
    model.save(run / "checkpoints" / "epoch_003.keras")  # this machine's epoch
    record = tmp_path / "progress.json"
    argv = ["--run", str(run), "--samples", "40", "--record", str(record)]
    main(argv)
    assert judged == ["epoch_0002.keras", "epoch_003.keras"]
    model.save(run / "checkpoints" / "epoch_004.keras")  # the next machine's epoch
    (run / "checkpoints" / "epoch_003.keras").unlink()
    main(argv)
    assert judged[2:] == ["epoch_004.keras"]  # the recorded epochs are not judged again
    kept = json.loads(record.read_text())
    rows = kept["rows"]
    assert [row["epoch"] for row in rows] == [2, 3, 4] and all(np.isfinite(row["fd"]) for row in rows)
    # The floor, 40 training images judged the same way, beats an untrained model.
    assert kept["floor"]["fd"] < rows[0]["fd"] and kept["floor"]["score"] > 5
    table = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| MNIST train (40): the floor |" in table
    assert "| 4 | 2.5 |" in table  # hours: 1 + 0.5 + 0.5 + 0.5, from the history
    with pytest.raises(SystemExit):  # another protocol needs another record
        main([*argv[:-2], "--samples", "50", "--record", str(record)])
