"""Tests of the evaluation harness: the metric maths against closed forms and
known distributions, then the shipped domain classifier on real and
corrupted MNIST digits, the callback and one evaluated model end to end."""

import json
import math
import os
import shutil

import keras
import numpy as np
import pytest
from conftest import EVALUATION_ROW
from scipy import linalg

from keras_gen import evaluation, zoo
from keras_gen.evaluation import metrics

# By name: the package's `sample_quality` is the function of that name, and
# `classifier` is the fixture below.
from keras_gen.evaluation.sample_quality import BLUR_SIGMAS, NOISE_LEVELS, add_noise, blur, corruptions
from keras_gen.models.classifier import CLASSIFIER_NAME, FEATURE_DIM


# ===================================================================== Fréchet
def test_frechet_distance_matches_the_closed_form_of_gaussians():
    rng = np.random.default_rng(0)
    d = 6
    a, b = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    sigma1, sigma2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    # The textbook form with a general matrix square root.
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1 + sigma2 - 2 * linalg.sqrtm(sigma1 @ sigma2).real)
    assert metrics.frechet_distance_gaussians(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)
    # One dimension: (m1 - m2)² + (s1 - s2)².
    assert metrics.frechet_distance_gaussians([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    assert metrics.frechet_distance_gaussians(mu1, sigma1, mu1, sigma1) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_of_samples():
    rng = np.random.default_rng(1)
    d, n = 4, 5000
    # E[FD] of two samples of N(0, I): 2d/n from the means plus, to leading
    # order, (d² + d)/(2n) from the covariances.
    bias = 2 * d / n + (d * d + d) / (2 * n)
    same = [metrics.frechet_distance(rng.standard_normal((n, d)), rng.standard_normal((n, d))) for _ in range(20)]
    assert 0.6 * bias < np.mean(same) < 1.5 * bias
    # A shift of 1 along one axis: FD = 1 + bias, sampling sd ≈ 2 sqrt(2/n) = 0.04.
    shifted = rng.standard_normal((n, d)) + np.eye(d)[0]
    assert metrics.frechet_distance(rng.standard_normal((n, d)), shifted) == pytest.approx(1 + bias, abs=0.15)
    # Correlated Gaussians: the sample estimate converges to the closed form.
    mix = np.array([[1.0, 0.5, 0, 0], [0, 1.0, 0.3, 0], [0, 0, 2.0, 0], [0, 0, 0, 0.5]])
    mu2 = np.array([0.5, -0.5, 0.0, 1.0])
    x = rng.standard_normal((n, d))
    y = rng.standard_normal((n, d)) @ mix.T + mu2
    exact = metrics.frechet_distance_gaussians(np.zeros(d), np.eye(d), mu2, mix @ mix.T)
    assert metrics.frechet_distance(x, y) == pytest.approx(exact + bias, abs=0.1 * exact)


def test_metric_inputs_are_checked():
    with pytest.raises(ValueError, match="different feature sizes"):
        metrics.frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.precision_recall(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="2-D"):
        metrics.kernel_inception_distance(np.zeros(5), np.zeros(5))


# ================================================== classifier score, histogram
def test_classifier_score_and_class_histogram():
    one_hot = np.eye(10)[np.arange(1000) % 10]
    assert metrics.classifier_score(one_hot)["score"] == pytest.approx(10, rel=1e-6)
    assert metrics.classifier_score(np.eye(10)[np.zeros(100, int)])["score"] == pytest.approx(1)
    assert metrics.classifier_score(np.full((100, 10), 0.1))["score"] == pytest.approx(1)
    # Confident, but only 5 classes used: the score is the number of classes used.
    assert metrics.classifier_score(np.eye(10)[np.arange(1000) % 5])["score"] == pytest.approx(5, rel=1e-6)
    hist = metrics.class_histogram(np.eye(10)[np.r_[np.zeros(130, int), np.arange(870) % 9 + 1]])
    assert hist["fractions"][0] == pytest.approx(0.13)
    assert hist["max_deviation"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="probability"):
        metrics.classifier_score(np.ones((10, 10)))


# ======================================================================== KID
def test_kid_is_unbiased_for_the_same_distribution_and_positive_for_different():
    rng = np.random.default_rng(2)
    kids = [
        metrics.kernel_inception_distance(
            rng.standard_normal((300, 4)), rng.standard_normal((300, 4)), subsets=5, subset_size=300, seed=i
        )["kid"]
        for i in range(40)
    ]
    sem = np.std(kids, ddof=1) / math.sqrt(len(kids))
    assert abs(np.mean(kids)) < 3 * sem
    # The V-statistic (diagonal kept) on the same data is biased upwards by
    # many standard errors: the test above can tell the two apart.
    a, b = rng.standard_normal((300, 4)), rng.standard_normal((300, 4))
    kxx, kyy = metrics.polynomial_kernel(a, a), metrics.polynomial_kernel(b, b)
    biased = kxx.mean() + kyy.mean() - 2 * metrics.polynomial_kernel(a, b).mean()
    assert biased > 10 * sem
    one = metrics.kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=200)
    assert one["kid"] > 10 * one["std"] / math.sqrt(20) and one["std"] > 0


# ======================================================= precision and recall
def test_precision_recall_of_known_distributions():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1000, 2))
    assert metrics.precision_recall(x, x) == {"precision": 1.0, "recall": 1.0, "k": 3}
    same = metrics.precision_recall(x, rng.standard_normal((1000, 2)))
    assert same["precision"] > 0.9 and same["recall"] > 0.9
    far = metrics.precision_recall(x, rng.standard_normal((1000, 2)) + 20.0)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    # Generated digits of one mode out of four: precise, recall about 1/4.
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]])
    real = centres[rng.integers(0, 4, 4000)] + rng.standard_normal((4000, 2))
    one_mode = centres[0] + rng.standard_normal((1000, 2))
    pr = metrics.precision_recall(real, one_mode)
    assert pr["precision"] > 0.9
    assert 0.15 < pr["recall"] < 0.3


def test_knn_radii():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_allclose(metrics.knn_radii(x, k=1), [1, 1, 4, 16])
    np.testing.assert_allclose(metrics.knn_radii(x, k=2), [9, 4, 9, 36])
    with pytest.raises(ValueError, match="k must be"):
        metrics.knn_radii(x, k=4)


# =============================================================== Gaussian MMD
def _gaussian_mmd2(d, s, h, shift):
    """Exact MMD² of N(0, s²I) and N(shift, s²I) under exp(-‖x-y‖²/(2h²))."""
    c = (h * h / (h * h + 2 * s * s)) ** (d / 2)
    return 2 * c * (1 - math.exp(-(shift**2) / (2 * (h * h + 2 * s * s)))), c


def test_gaussian_mmd_matches_the_closed_form():
    rng = np.random.default_rng(4)
    d, s, h, shift, n = 3, 1.0, 1.5, 1.0, 300
    exact, c = _gaussian_mmd2(d, s, h, shift)
    unbiased, biased = [], []
    for _ in range(30):
        x = s * rng.standard_normal((n, d))
        y = s * rng.standard_normal((n, d)) + shift * np.eye(d)[0]
        unbiased.append(metrics.gaussian_mmd(x, y, bandwidth=h, unbiased=True)["mmd2"])
        biased.append(metrics.gaussian_mmd(x, y, bandwidth=h)["mmd2"])
    sem = np.std(unbiased, ddof=1) / math.sqrt(len(unbiased))
    assert np.mean(unbiased) == pytest.approx(exact, abs=3 * sem)
    # The note's V-statistic keeps the diagonal: E = MMD² + 2 (1 - c) / n.
    assert np.mean(biased) == pytest.approx(exact + 2 * (1 - c) / n, abs=3 * sem)
    # Paired on the same draws, the bias stands out far above the noise.
    gap = np.subtract(biased, unbiased)
    gap_sem = np.std(gap, ddof=1) / math.sqrt(len(gap))
    assert np.mean(gap) == pytest.approx(2 * (1 - c) / n, abs=3 * gap_sem)
    assert 2 * (1 - c) / n > 10 * gap_sem
    # The note's default bandwidth: h² = σ² × mean squared distance ≈ σ² 2 d s².
    out = metrics.gaussian_mmd(s * rng.standard_normal((2000, d)), rng.standard_normal((2000, d)), sigma=0.5)
    assert out["bandwidth"] == pytest.approx(0.5 * math.sqrt(2 * d) * s, rel=0.05)
    with pytest.raises(ValueError, match="bandwidth"):
        metrics.gaussian_mmd(np.ones((10, 2)), np.zeros((10, 2)))


# ====================================================== images the metrics see
def test_to_images_maps_domains_and_refuses_other_shapes():
    flat = np.linspace(-1, 1, 2 * 784, dtype=np.float32).reshape(2, 784)
    images = evaluation.to_images(flat, domain="symmetric")
    assert images.shape == (2, 28, 28, 1)
    assert images.min() == 0.0 and images.max() == 1.0
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*symmetric"):
        evaluation.to_images(flat, domain="unit")
    with pytest.raises(evaluation.NotEvaluable, match="toy"):
        evaluation.to_images(np.zeros((5, 2)))


def test_corruptions_are_what_they_say():
    rng = np.random.default_rng(5)
    images = rng.random((4, 28, 28, 1)).astype(np.float32)
    noisy = add_noise(np.full((200, 28, 28, 1), 0.5, np.float32), 0.1, seed=0)
    assert noisy.std() == pytest.approx(0.1, rel=0.02)
    blurred = blur(images, 1.0)
    assert blurred.shape == images.shape and blurred.std() < images.std()
    # Blur acts within each image, never across images or channels.
    np.testing.assert_allclose(blur(images[:1], 1.0), blurred[:1], atol=1e-6)


# ============================================== with the shipped domain classifier
MNIST_AVAILABLE = os.path.isdir(os.path.join(os.environ.get("TFDS_DATA_DIR", ""), "mnist"))
needs_classifier = pytest.mark.skipif(
    not (evaluation.classifier_available() and MNIST_AVAILABLE),
    reason="needs the domain classifier saved_models/mnist_classifier.weights.h5 (train it with "
    "training/mnist_classifier.py) and MNIST (TFDS_DATA_DIR with a prepared copy)",
)


@pytest.fixture(scope="module")
def classifier():
    return evaluation.load_classifier()


@needs_classifier
def test_shipped_classifier_is_accurate(classifier):
    from keras_gen import data

    x, labels = data.load_arrays("mnist", "test", preprocessing="unit")
    test = evaluation.mnist_set("test", classifier)
    accuracy = (test.probabilities.argmax(1) == labels).mean()
    assert accuracy >= 0.993
    assert test.features.shape == (10_000, FEATURE_DIM)
    # The test set's own score is close to the 10 classes it holds.
    assert metrics.classifier_score(test.probabilities)["score"] > 9.5


@needs_classifier
def test_classifier_is_refused_when_its_weights_do_not_match(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "zoo").mkdir(parents=True)
    (home / "saved_models").mkdir()
    card = zoo.card(CLASSIFIER_NAME)
    source = zoo.weights_path(CLASSIFIER_NAME)
    target = home / "saved_models" / card.weights.file
    shutil.copy(source, target)
    with open(target, "r+b") as f:  # flip one byte in the middle
        f.seek(os.path.getsize(target) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    (home / "zoo" / f"{card.name}.json").write_text(json.dumps(card.to_dict()))
    monkeypatch.setenv("KERAS_GEN_HOME", str(home))
    with pytest.raises(zoo.WeightsIntegrityError, match="sha256"):
        evaluation.load_classifier()


@pytest.mark.slow
@needs_classifier
def test_fd_floor_and_corruptions_in_the_right_order(classifier):
    n = 1000
    test = evaluation.mnist_set("test", classifier)
    train = evaluation.mnist_set("train", classifier, n=n, seed=0)
    reference = evaluation.ImageSet(test.images[:n], classifier)
    floor = metrics.frechet_distance(train.features, reference.features)
    fd = {
        label: metrics.frechet_distance(evaluation.ImageSet(images, classifier).features, reference.features)
        for label, images in corruptions(train.images, seed=0).items()
    }
    noise = [fd[f"noise std {s}"] for s in NOISE_LEVELS]
    blurs = [fd[f"blur sigma {s} px"] for s in BLUR_SIGMAS]
    assert noise == sorted(noise) and blurs == sorted(blurs)  # worse with every step
    assert floor < min(noise[0], blurs[0])
    assert noise[-1] > 20 * floor  # heavy noise is far from the digits

    # The kernel distance orders the same way, and is ≈ 0 for train vs test.
    def kid(x):
        return metrics.kernel_inception_distance(
            x.features,
            reference.features,
            subsets=10,  # noqa: E731
            subset_size=1000,
        )

    kid_floor = kid(train)
    assert (
        abs(kid_floor["kid"])
        < 3 * kid_floor["std"] + 1e-3 * kid(evaluation.ImageSet(add_noise(train.images, 0.6), classifier))["kid"]
    )


@needs_classifier
def test_evaluate_a_small_model_end_to_end(classifier):
    from keras_gen.models.vae import make_vae

    vae = make_vae(
        "dense",
        (784,),
        latent_dim=2,
        encoder_kwargs={"hidden": [32]},
        decoder_kwargs={"hidden": [32]},
        seed=0,
        name="tiny_vae",
    )
    vae.build_for_data()
    row = evaluation.evaluate(
        vae,
        n_samples=300,
        classifier=classifier,
        nll_images=40,
        iwae_k=4,
        n_reference=1000,
        kid_subsets=5,
        kid_subset_size=200,
        mmd_samples=300,
    )
    assert row["model"] == "tiny_vae" and row["family"] == "vae"
    assert row["n_samples"] == 300 and row["n_reference"] == 1000
    for key in ("fd", "score", "kid", "precision", "recall", "mmd", "samples_per_second", "nll", "nll_err"):
        assert np.isfinite(row[key]), key
    # An untrained decoder makes grey blobs: nowhere near the digits, and the
    # NLL of binarized digits is hundreds of nats (784 log 2 = 543 at p = 1/2).
    assert not row["targets_met"] and row["fd"] > 10 * row["fd_train_test"]
    assert 300 < row["nll"] < 1000 and "IWAE" in row["nll_method"] and row["nll_units"] == "nats per image"
    assert "FD" in evaluation.format_row(row)


@needs_classifier
@pytest.mark.slow
def test_a_quality_sweep_finds_the_sampler_setting_that_mixes(classifier):
    from keras_gen import zoo

    model = zoo.load("rbm_mnist")
    settings = {"1 sweep": {"gibbs_steps": 1}, "300 sweeps": {"gibbs_steps": 300}}
    table = evaluation.quality_sweep(model, settings, n_samples=300, classifier=classifier, seed=1)
    assert table["n_samples"] == 300 and table["seed"] == 1 and set(table["rows"]) == set(settings)
    # One sweep from random states is still noise; 300 reach digits.
    assert table["best"] == "300 sweeps"
    assert table["rows"]["1 sweep"]["fd"] > 3 * table["rows"]["300 sweeps"]["fd"]
    assert table["rows"]["300 sweeps"]["score"] > 5
    assert all(row["samples_per_second"] > 0 for row in table["rows"].values())


def test_rbm_test_likelihood_reports_ais_and_reverse_ais():
    """An RBM's NLL comes with both sides: AIS (optimistic when chains miss modes) and RAISE."""
    pytest.importorskip("tensorflow_datasets")
    from keras_gen.models.rbm import make_rbm

    model = make_rbm("bernoulli", 784, 8, seed=0, name="tiny_rbm")
    rng = np.random.default_rng(0)
    model.layer.kernel.assign(rng.normal(0, 0.05, (784, 8)).astype("float32"))
    from keras_gen.sampling.ais import AISWarning

    try:
        # A test's budget: a few chains carry the log Z estimate, and AIS says so.
        with pytest.warns(AISWarning, match="effective sample size"):
            nll = evaluation.mnist_test_nll(model, n_images=20, ais_chains=200, ais_betas=500)
    except Exception as err:  # no MNIST on this machine (a failed pytest.warns is not an Exception)
        pytest.skip(f"MNIST unavailable: {err}")
    # Weak weights: both estimators converge quickly and agree within AIS's
    # error (RAISE's own per-image noise is a few hundredths here), and
    # independent pixels at p = 1/2 cost about 784 log 2 = 543 nats.
    assert nll["nll_err"] < 0.5
    assert abs(nll["nll"] - nll["nll_conservative"]) < 3 * nll["nll_err"] + 0.1, nll
    assert 300 < nll["nll"] < 700 and "RAISE" in nll["nll_method"]


def test_a_sample_cache_resumes_with_the_samples_of_an_uninterrupted_run(tmp_path):
    """`generate` with a SampleCache: batches kept as drawn, read back by a later
    run (only missing or damaged ones drawn again), the same samples either way."""
    from keras_gen.evaluation import SampleCache
    from keras_gen.models.rbm import make_rbm

    model = make_rbm("bernoulli", 6, 3, seed=0)
    model.layer.kernel.assign(np.random.default_rng(0).normal(0, 1, (6, 3)).astype("float32"))
    drawn = []
    sample = model.sample

    def counted(n, seed=None, **kwargs):
        drawn.append(seed)
        return sample(n, seed=seed, **kwargs)

    model.sample = counted
    cache = SampleCache(tmp_path / "cache", model_id="tiny")
    whole, _ = evaluation.generate(model, 10, seed=3, batch_size=4, gibbs_steps=2)
    first, rate = evaluation.generate(model, 10, seed=3, batch_size=4, cache=cache, gibbs_steps=2)
    np.testing.assert_allclose(first, whole, atol=1e-3)  # probabilities in float16: 11 bits
    (folder,) = (tmp_path / "cache").iterdir()
    assert sorted(f.name for f in folder.iterdir()) == [
        "batch_00000_of_4.npz",
        "batch_00001_of_4.npz",
        "batch_00002_of_2.npz",
        "settings.json",
    ]
    assert json.loads((folder / "settings.json").read_text())["seed"] == 3 and rate > 0
    drawn.clear()
    (folder / "batch_00001_of_4.npz").unlink()  # stopped while drawing batch 1
    (folder / "batch_00002_of_2.npz").write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="batch_00002_of_2.npz: unreadable"):
        again, _ = evaluation.generate(model, 10, seed=3, batch_size=4, cache=cache, gibbs_steps=2)
    assert drawn == [3 + 10_000, 3 + 1, 3 + 2]  # a warm-up, then only the missing batches
    np.testing.assert_array_equal(again, first)
    drawn.clear()
    evaluation.generate(model, 10, seed=3, batch_size=4, cache=cache, gibbs_steps=2)
    assert drawn == []  # all kept: nothing drawn, nothing traced
    evaluation.generate(model, 10, seed=3, batch_size=4, cache=cache, gibbs_steps=3)
    assert len(list((tmp_path / "cache").iterdir())) == 2  # other settings, another folder


def test_toy_models_are_not_evaluated_on_mnist_metrics():
    from keras_gen.models.vae import make_vae

    toy = make_vae("dense", (2,), latent_dim=2, likelihood="gaussian", seed=0)
    with pytest.raises(evaluation.NotEvaluable, match="not MNIST images"):
        evaluation.evaluate(toy, n_samples=10)


@pytest.mark.slow
@needs_classifier
def test_frechet_distance_callback_logs_a_metric_checkpoints_can_monitor(classifier, tmp_path):
    from keras_gen import data
    from keras_gen.callbacks import FrechetDistance
    from keras_gen.models.vae import make_vae

    keras.utils.set_random_seed(0)  # initial weights independent of the tests run before
    x, _ = data.load_arrays("mnist", "train", preprocessing="binarized", flatten=True)
    validation, _ = data.load_arrays("mnist", "test", preprocessing="unit")
    vae = make_vae(
        "dense",
        (784,),
        latent_dim=4,
        encoder_kwargs={"hidden": [64]},
        decoder_kwargs={"hidden": [64]},
        seed=0,
        name="tiny_vae",
    )
    vae.compile(optimizer=keras.optimizers.Adam(3e-3))
    best = tmp_path / "best.weights.h5"
    # On the epoch without a measurement the checkpoint has nothing to compare and says so.
    with pytest.warns(UserWarning, match="val_fd available"):
        history = vae.fit(
            x,
            batch_size=256,
            epochs=3,
            verbose=0,
            callbacks=[
                FrechetDistance(validation[:500], every=2, n_samples=300, classifier=classifier, kid_subset_size=300),
                keras.callbacks.ModelCheckpoint(
                    best, monitor="val_fd", mode="min", save_best_only=True, save_weights_only=True
                ),
            ],
        ).history
    # Computed on the first epoch and every second one after: epochs 1 and 2 of 3.
    assert len(history["val_fd"]) == 2 and len(history["val_kid"]) == 2
    assert all(np.isfinite(history["val_fd"])) and best.is_file()
    # Training moves samples towards the digits (by far more than the
    # measurement's noise: 234 steps per epoch, not a handful).
    assert history["val_fd"][1] < 0.9 * history["val_fd"][0], history["val_fd"]


def test_auroc_is_the_mann_whitney_statistic():
    from keras_gen.evaluation.ood import auroc

    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1.0, 1.0, 200).round(1), rng.normal(0.0, 1.0, 150).round(1)  # rounded: ties
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert abs(auroc(pos, neg) - pairs) < 1e-12
    assert auroc([2.0, 3.0], [0.0, 1.0]) == 1.0 and auroc([0.0], [1.0]) == 0.0 and auroc([1.0], [1.0]) == 0.5


def test_every_density_family_scores_inputs_for_ood_detection():
    """log_density exists for the EBM, RBM and VAE, in each one's own input format."""
    from keras_gen.evaluation import ood
    from keras_gen.models.ebm import make_ebm
    from keras_gen.models.rbm import make_rbm
    from keras_gen.models.vae import make_vae

    x = np.random.default_rng(1).random((6, 28, 28, 1)).astype("float32")
    models = [
        make_ebm("conv", (28, 28, 1), buffer_size=8, seed=0),
        make_rbm("bernoulli", 784, 8, seed=0),
        make_vae("conv", (28, 28, 1), latent_dim=2, seed=0),
    ]
    for model in models:
        model.build_for_data()
        scores = ood.log_densities(model, x)
        assert scores.shape == (6,) and np.isfinite(scores).all(), type(model).__name__
        np.testing.assert_array_equal(scores, ood.log_densities(model, x))  # deterministic
        table = ood.ood_scores(model, x)
        assert set(table) == set(ood.OUTLIER_SETS) and all(0.0 <= v <= 1.0 for v in table.values())
    ebm = models[0]
    np.testing.assert_allclose(ood.log_densities(ebm, x), -ebm.energy(2 * x - 1).numpy(), rtol=1e-6)
    rbm = models[1]
    np.testing.assert_allclose(ood.log_densities(rbm, x), -rbm.layer.free_energy(x.reshape(6, -1)).numpy(), rtol=1e-5)


def test_the_verdict_names_each_target_its_value_and_the_failures():
    ROW = EVALUATION_ROW
    lines = evaluation.format_verdict(ROW).splitlines()
    assert lines[0] == "targets:"
    score, fd, classes = lines[1:4]
    assert score.split()[:3] == ["classifier", "score", "8.252"] and "9.588" in score and score.endswith("FAIL")
    assert fd.split()[:3] == ["Fréchet", "distance", "50.7"] and "≤ 1.84" in fd and fd.endswith("FAIL")
    assert classes.split()[:3] == ["class", "balance", "±26%"] and "±30%" in classes and classes.endswith("pass")
    assert lines[4] == "verdict: 1 of 3 targets met; not met: classifier score, Fréchet distance"
    assert evaluation.format_row(ROW).endswith("; targets NOT met: classifier score, Fréchet distance")
    assert "targets" not in evaluation.format_row(ROW, targets=False)

    met = {**ROW, "score_ok": True, "fd_ok": True, "targets_met": True}
    assert evaluation.format_verdict(met).splitlines()[-1] == "verdict: all 3 targets met"
    assert evaluation.format_row(met).endswith("; targets met")
    # The checks and the verdict share one set of thresholds.
    assert [passed for *_, passed in evaluation.verdict(ROW)] == [False, False, True]


@needs_classifier
def test_restoration_table_measures_corruptions_and_keeps_known_pixels(classifier):
    """Each task corrupts what it says; inpainting never touches a known pixel; a
    denoising chain of no steps returns its input."""
    from keras_gen import data
    from keras_gen.evaluation import restoration
    from keras_gen.models.ebm import make_ebm

    x, labels = data.load_arrays("mnist", "test", preprocessing="unit")
    x, labels = x[:40], labels[:40]
    tasks = restoration.corrupt(x, seed=0)
    noisy_task = restoration.TASKS[0]
    noisy, none = tasks[noisy_task]
    assert none is None and 0.02 < restoration.corrupted_mse(noisy, x, None)[0] < 0.09  # clipped N(0, 0.3^2)
    half, upper = tasks["lower half missing"]
    assert upper[:, :14].all() and not upper[:, 14:].any() and np.all(half[:, 14:] == 0)
    scattered, known = tasks["70% of pixels missing"]
    assert abs(known.mean() - 0.3) < 5 * np.sqrt(0.21 / known.size)
    np.testing.assert_array_equal(scattered[known], x[known])
    assert restoration.corrupted_mse(x, x, known) == (0.0, 0.0)

    model = make_ebm("conv", (28, 28, 1), buffer_size=8, network_kwargs={"widths": [4, 4], "hidden": 8}, seed=0)
    filled = restoration.restore(model, scattered, known, batch_size=16, steps=3)
    np.testing.assert_allclose(filled[known], x[known], atol=1e-6)  # clamped (through [-1, 1] and back)
    assert not np.allclose(filled[~known], 0.0)  # the missing pixels moved
    rows = restoration.restoration_table(model, x, labels, classifier, steps=(0, 2))
    assert [(r["task"], r["steps"]) for r in rows[:4]] == [("clean digits", None)] + [
        (noisy_task, k) for k in (None, 0, 2)
    ]
    assert rows[0]["accuracy"] > 0.9
    before, unmoved = rows[1], rows[2]
    assert abs(before["mse"] - unmoved["mse"]) < 1e-6 and before["accuracy"] == unmoved["accuracy"]
    assert len(rows) == 1 + 3 * 3
