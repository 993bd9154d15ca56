"""Restricted Boltzmann machines checked against exact results.

Tiny models (a handful of units) are enumerated exhaustively, so free
energies, conditionals, log Z, log-likelihood gradients and stationary
distributions are compared with exact values; statistical tolerances are
derived from the sample sizes. Seeds are fixed, so every run is identical.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from keras_gen import callbacks
from keras_gen.core import random
from keras_gen.core.validation import DataError
from keras_gen.evaluation import likelihood
from keras_gen.models import dbn, rbm
from keras_gen.sampling import ais

MNIST_AVAILABLE = os.path.isdir(os.path.join(os.environ.get("TFDS_DATA_DIR", ""), "mnist"))


# ------------------------------------------------------------------ helpers
def randomize(layer, scale=1.0, seed=0, bias_scale=None):
    """Non-trivial parameters: W ~ N(0, scale²), biases ~ N(0, bias_scale²)."""
    rng = np.random.default_rng(seed)
    bias_scale = scale if bias_scale is None else bias_scale
    layer.kernel.assign(rng.normal(0, scale, (layer.n_visible, layer.n_hidden)).astype("float32"))
    layer.visible_bias.assign(rng.normal(0, bias_scale, layer.n_visible).astype("float32"))
    layer.hidden_bias.assign(rng.normal(0, bias_scale, layer.n_hidden).astype("float32"))
    return layer


def logsumexp(a, axis=None):
    a = np.asarray(a, np.float64)
    m = np.max(a, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))
    return np.squeeze(out, axis=axis) if axis is not None else float(out.squeeze())


def pairs_energy(layer, vs, hs):
    """E(v, h) for every pair (rows: v, columns: h) through layer.energy."""
    nv, nh = len(vs), len(hs)
    v = np.repeat(vs, nh, axis=0).astype("float32")
    h = np.tile(hs, (nv, 1)).astype("float32")
    return np.asarray(layer.energy(v, h), np.float64).reshape(nv, nh)


def exact_marginal(layer):
    """p(v) over all 2^n_visible states of a Bernoulli RBM, in binary_states order."""
    states = likelihood.binary_states(layer.n_visible)
    log_p = -likelihood.free_energy_numpy(layer, states) - likelihood.exact_log_partition(layer)
    return states, np.exp(log_p)


def prototypes_data(n=600, n_visible=10, flip=0.05, seed=0):
    """Three binary prototypes with bit-flip noise: structure an RBM can learn."""
    rng = np.random.default_rng(seed)
    protos = (rng.random((3, n_visible)) < 0.5).astype("float32")
    x = protos[rng.integers(0, 3, n)]
    return np.abs(x - (rng.random(x.shape) < flip)).astype("float32")


# ------------------------------------------------------------ random numbers
def test_threefry_known_answers():
    # Random123 kat_vectors, threefry2x32 with 20 rounds.
    cases = [
        ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x243F6A88, 0x85A308D3), (0x13198A2E, 0x03707344), (0xC4923A9C, 0x483DF7A0)),
    ]
    for ctr, key, expected in cases:
        u = lambda x: tf.constant([x], tf.uint32)  # noqa: E731
        out = random.threefry2x32(u(ctr[0]), u(ctr[1]), tf.constant(key[0], tf.uint32), tf.constant(key[1], tf.uint32))
        assert tuple(int(o[0]) for o in out) == expected


def test_uniform_normal_and_seeds():
    n = 200_000
    u = random.uniform([n], [3, 4]).numpy()
    # 20-bin histogram: chi-square with 19 dof.
    counts = np.bincount((u * 20).astype(int), minlength=20)
    assert stats.chisquare(counts).pvalue > 1e-4
    z = random.standard_normal([n], [3, 4]).numpy()
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / n)
    assert stats.kstest(z[:20_000], "norm").pvalue > 1e-4
    # Same seed, same numbers, compiled or not; different fold-ins differ.
    s = tf.constant([1, 2])
    jit = tf.function(lambda s: random.uniform([7], random.fold_in(s, 5)), jit_compile=True)
    np.testing.assert_array_equal(jit(s).numpy(), random.uniform([7], random.fold_in(s, 5)).numpy())
    assert not np.allclose(random.uniform([7], random.fold_in(s, 6)), jit(s))
    # Integer seeds are stateless; a SeedGenerator advances.
    np.testing.assert_array_equal(random.uniform([3], 7), random.uniform([3], 7))
    gen = keras.random.SeedGenerator(1)
    assert not np.allclose(random.uniform([3], gen), random.uniform([3], gen))


# ------------------------------------------------- energies and conditionals
def test_bernoulli_free_energy_and_conditionals_by_enumeration():
    layer = randomize(rbm.BernoulliRBM(5, 3), scale=1.0, seed=1)
    vs, hs = likelihood.binary_states(5), likelihood.binary_states(3)
    log_joint = -pairs_energy(layer, vs, hs)  # unnormalized log p(v, h)
    free = -logsumexp(log_joint, axis=1)
    np.testing.assert_allclose(layer.free_energy(vs.astype("float32")), free, atol=2e-5)
    np.testing.assert_allclose(likelihood.free_energy_numpy(layer, vs), free, atol=2e-5)
    # p(h_j = 1 | v) = Σ_{h: h_j = 1} p(v, h) / Σ_h p(v, h)
    p_hv = np.exp(log_joint - logsumexp(log_joint, axis=1)[:, None])
    np.testing.assert_allclose(layer.hidden_probabilities(vs.astype("float32")), p_hv @ hs, atol=1e-5)
    # p(v_i = 1 | h) from the joint, column-wise.
    p_vh = np.exp(log_joint - logsumexp(log_joint, axis=0)[None, :])
    np.testing.assert_allclose(layer.visible_mean(hs.astype("float32")), (vs.T @ p_vh).T, atol=1e-5)
    # Sampled states follow those probabilities.
    h = layer.sample_hidden(np.repeat(vs[5:6], 20_000, 0).astype("float32"), seed=3).numpy()
    p = p_hv[5] @ hs
    assert np.all(np.abs(h.mean(0) - p) < 5 * np.sqrt(p * (1 - p) / 20_000) + 1e-9)


def test_gaussian_free_energy_conditionals_and_partition():
    layer = rbm.GaussianBernoulliRBM(3, 4, sigma=[0.5, 1.0, 2.0])
    randomize(layer, scale=0.7, seed=2)
    rng = np.random.default_rng(0)
    vs = rng.normal(0, 1.5, (12, 3)).astype("float32")
    hs = likelihood.binary_states(4)
    log_joint = -pairs_energy(layer, vs, hs)
    np.testing.assert_allclose(layer.free_energy(vs), -logsumexp(log_joint, axis=1), atol=2e-5)
    np.testing.assert_allclose(likelihood.free_energy_numpy(layer, vs), -logsumexp(log_joint, axis=1), atol=2e-5)
    p_hv = np.exp(log_joint - logsumexp(log_joint, axis=1)[:, None])
    np.testing.assert_allclose(layer.hidden_probabilities(vs), p_hv @ hs, atol=1e-5)
    # p(v | h) ∝ exp(-E(v, h)) is N(visible_mean(h), σ²): the energy difference
    # to the mean is exactly the Gaussian quadratic form.
    sigma = np.array([0.5, 1.0, 2.0])
    means = layer.visible_mean(hs.astype("float32")).numpy()
    for j in (0, 5, 15):
        e_v = pairs_energy(layer, vs, hs[j : j + 1])[:, 0]
        e_mean = pairs_energy(layer, means[j : j + 1], hs[j : j + 1])[0, 0]
        np.testing.assert_allclose(e_v - e_mean, (((vs - means[j]) / sigma) ** 2 / 2).sum(1), atol=1e-4)
    n = 50_000
    draws = layer.sample_visible(np.repeat(hs[5:6], n, 0).astype("float32"), seed=4).numpy()
    assert np.all(np.abs(draws.mean(0) - means[5]) < 5 * sigma / math.sqrt(n))
    assert np.all(np.abs(draws.std(0) / sigma - 1) < 5 / math.sqrt(2 * n))
    # log Z (closed-form integral over v) against quadrature on a 2-D grid.
    small = randomize(rbm.GaussianBernoulliRBM(2, 3, sigma=[0.8, 1.3]), scale=0.6, seed=5)
    p = small.numpy_parameters()
    grid = np.linspace(-12, 12, 1201)
    g1, g2 = np.meshgrid(grid, grid, indexing="ij")
    v = np.stack([g1.ravel(), g2.ravel()], 1)
    log_f = -likelihood.free_energy_numpy(small, v)  # Σ_h exp(-E) = exp(-F)
    log_z_grid = logsumexp(log_f) + 2 * np.log(grid[1] - grid[0])
    assert abs(likelihood.exact_log_partition(small) - log_z_grid) < 1e-6
    assert p["sigma"].tolist() == pytest.approx([0.8, 1.3])


def test_exact_log_partition_against_brute_force():
    layer = randomize(rbm.BernoulliRBM(6, 4), scale=1.0, seed=3)
    p = layer.numpy_parameters()
    vs, hs = likelihood.binary_states(6), likelihood.binary_states(4)
    log_joint = (vs @ p["b"])[:, None] + (hs @ p["c"])[None, :] + vs @ p["W"] @ hs.T
    brute = logsumexp(log_joint)
    assert likelihood.exact_log_partition(layer, over="visible") == pytest.approx(brute, abs=1e-10)
    assert likelihood.exact_log_partition(layer, over="hidden") == pytest.approx(brute, abs=1e-10)
    assert likelihood.exact_log_partition(layer, over="visible", batch_size=7) == pytest.approx(brute, abs=1e-10)
    ll = likelihood.exact_log_likelihood(layer, vs)
    assert logsumexp(ll) == pytest.approx(0.0, abs=1e-10)  # a normalized distribution
    with pytest.raises(ValueError, match="AIS"):
        likelihood.exact_log_partition(rbm.BernoulliRBM(30, 30))


# ---------------------------------------------------------------------- AIS
def test_ais_agrees_with_exact_log_partition():
    layer = randomize(rbm.BernoulliRBM(20, 10), scale=0.5, seed=4)
    exact = likelihood.exact_log_partition(layer)
    data = (np.random.default_rng(1).random((500, 20)) < 0.3).astype("float32")
    for base_data in (None, data):
        est = likelihood.ais_log_partition(layer, n_chains=100, betas=2000, base_data=base_data, seed=7)
        assert est["stderr"] < 0.05  # informative, so the comparison can fail
        assert abs(est["log_z"] - exact) < 3 * est["stderr"] + 0.01, (est, exact)
        assert est["log_z_lower"] == pytest.approx(est["log_z"] - 3 * est["stderr"])
    # log_likelihood: "auto" is exact here; "ais" agrees within its error.
    ll_exact = likelihood.log_likelihood(layer, data)
    assert ll_exact["method"] == "exact" and ll_exact["stderr"] == 0
    assert ll_exact["mean"] == pytest.approx(likelihood.exact_log_likelihood(layer, data).mean())
    ll_ais = likelihood.log_likelihood(layer, data, method="ais", n_chains=100, betas=2000, seed=8)
    assert abs(ll_ais["mean"] - ll_exact["mean"]) < 3 * ll_ais["stderr"] + 0.01
    assert ll_ais["conservative"] <= ll_ais["mean"]


def test_ais_warns_when_few_chains_carry_the_estimate():
    """A sharp RBM annealed in 10 temperatures: a handful of chains hold the weight,
    and the result says so; the well-annealed estimate above stays silent."""
    import warnings

    from keras_gen.sampling.ais import AISWarning

    sharp = randomize(rbm.BernoulliRBM(20, 10), scale=3.0, seed=4)
    with pytest.warns(AISWarning, match="effective sample size"):
        est = likelihood.ais_log_partition(sharp, n_chains=100, betas=10, seed=7)
    assert est["effective_sample_size"] < 10
    layer = randomize(rbm.BernoulliRBM(20, 10), scale=0.5, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AISWarning)
        est = likelihood.ais_log_partition(layer, n_chains=100, betas=2000, seed=7)
    assert est["effective_sample_size"] > 50


def test_ais_gaussian_agrees_with_exact_log_partition():
    layer = randomize(rbm.GaussianBernoulliRBM(12, 8, sigma=1.0), scale=0.3, seed=5)
    exact = likelihood.exact_log_partition(layer)
    est = likelihood.ais_log_partition(layer, n_chains=100, betas=2000, seed=9)
    assert est["stderr"] < 0.05
    assert abs(est["log_z"] - exact) < 3 * est["stderr"] + 0.01, (est, exact)


@pytest.mark.slow
def test_raise_agrees_with_exact_log_likelihood_per_example():
    """Reverse AIS estimates each example's log p; with a long path it matches enumeration."""
    data = (np.random.default_rng(1).random((200, 20)) < 0.3).astype("float32")
    layer = randomize(rbm.BernoulliRBM(20, 10), scale=0.5, seed=4)
    gaussian = randomize(rbm.GaussianBernoulliRBM(12, 8, sigma=1.0), scale=0.3, seed=5)
    x_real = np.random.default_rng(2).normal(0, 1, (200, 12)).astype("float32")
    for lay, x in ((layer, data), (gaussian, x_real)):
        exact = likelihood.exact_log_likelihood(lay, x)
        est = ais.raise_log_likelihood(lay, x, n_samples=20, betas=1000, base_data=x, seed=3)
        diff = est["log_p"] - exact
        # 20 chains x 1000 steps: per-example errors of a few hundredths; the mean
        # over 200 examples agrees within 4 of its standard errors.
        assert abs(diff.mean()) < 4 * diff.std(ddof=1) / np.sqrt(len(diff)) + 1e-3, diff.mean()
        assert np.abs(diff).max() < 0.3
    # A one-step path is a different (annealing) model: it must not match.
    short = ais.raise_log_likelihood(layer, data, n_samples=20, betas=np.array([0.0, 1.0]), seed=3)
    assert abs(short["mean"] - likelihood.exact_log_likelihood(layer, data).mean()) > 0.5
    ll = likelihood.log_likelihood(layer, data, method="raise", n_samples=5, betas=300, seed=4)
    assert ll["method"] == "raise" and ll["log_z"] is None and ll["conservative"] == ll["mean"]
    with pytest.raises(ValueError, match="shape"):
        ais.raise_log_likelihood(layer, data[:, :5])


# --------------------------------------------------------- learning signal
def _exact_nll_gradient(layer, data):
    """Gradient of mean -log p(data) w.r.t. (W, b, c), by enumeration."""
    p = layer.numpy_parameters()
    states, p_v = exact_marginal(layer)
    s_model = 1 / (1 + np.exp(-(p["c"] + states @ p["W"])))
    s_data = 1 / (1 + np.exp(-(p["c"] + data @ p["W"])))
    g_w = -(data.T @ s_data) / len(data) + states.T @ (p_v[:, None] * s_model)
    g_b = -data.mean(0) + p_v @ states
    g_c = -s_data.mean(0) + p_v @ s_model
    return np.concatenate([g_w.ravel(), g_b, g_c])


def test_centered_update_is_a_step_in_the_centered_parameters():
    """center_gradients maps the exact plain gradient to the exact gradient of the
    centered parametrization (W, b~ = b + Wλ, c~ = c + Wᵀμ), pulled back to (W, b, c)."""
    model = rbm.make_rbm("bernoulli", 6, 4, k=1, persistent=False, centering=True, seed=0)
    layer = randomize(model.layer, scale=1.0, seed=6)
    data = prototypes_data(40, 6, seed=1).astype(np.float64)
    model.set_offsets_from_data(data)
    mu, lam = model.visible_offset.numpy().astype(np.float64), model.hidden_offset.numpy().astype(np.float64)
    np.testing.assert_allclose(mu, data.mean(0), atol=1e-6)
    p = layer.numpy_parameters()
    w, b, c = p["W"], p["b"], p["c"]

    def mean_log_likelihood(W, bt, ct):  # in centered coordinates, exact by enumeration
        states = likelihood.binary_states(6)
        bb, cc = bt - W @ lam, ct - W.T @ mu
        log_f = states @ bb + np.logaddexp(0, cc + states @ W).sum(1)
        log_z = logsumexp(log_f)
        return np.mean(data @ bb + np.logaddexp(0, cc + data @ W).sum(1)) - log_z

    theta = [w, b + w @ lam, c + w.T @ mu]
    numeric = []
    for i, t in enumerate(theta):
        g = np.zeros_like(t)
        for j in np.ndindex(t.shape):
            up, down = [a.copy() for a in theta], [a.copy() for a in theta]
            up[i][j] += 1e-5
            down[i][j] -= 1e-5
            g[j] = (mean_log_likelihood(*up) - mean_log_likelihood(*down)) / 2e-5
        numeric.append(g)
    g_w, g_bt, g_ct = numeric
    expected = {"W": -g_w, "b": -(g_bt - g_w @ lam), "c": -(g_ct - g_w.T @ mu)}  # loss = -log-likelihood
    plain = dict(zip(("W", "b", "c"), np.split(_exact_nll_gradient(layer, data), [24, 30])))
    by_name = {id(layer.kernel): "W", id(layer.visible_bias): "b", id(layer.hidden_bias): "c"}
    grads = [tf.constant(plain[by_name[id(v)]].reshape(v.shape), tf.float32) for v in model.trainable_weights]
    for v, g in zip(model.trainable_weights, model.center_gradients(grads)):
        name = by_name[id(v)]
        np.testing.assert_allclose(g.numpy().ravel(), expected[name].ravel(), atol=2e-5, err_msg=name)
    assert rbm.RBM.from_config(model.get_config()).centering
    with pytest.raises(ValueError, match="Bernoulli"):
        rbm.make_rbm("gaussian", 4, 2, centering=True)


@pytest.mark.slow
def test_translation_tied_rbm_follows_the_exact_gradient_of_its_filters():
    """On a 3 x 2 periodic lattice with two filters, W[i, f*6 + p] = K[f, (i - p) mod (3, 2)],
    b = β·1, c_f = γ_f: the tied gradients are the exact gradients of (K, β, γ) by
    enumeration (divided by the 6 sites), training keeps the model translation
    invariant, and the configuration round-trips."""
    shape, n = (3, 2), 6
    model = rbm.make_rbm("bernoulli", n, 2 * n, k=1, persistent=False, centering=True, periodic_lattice=shape, seed=0)
    t = model.translations
    rng = np.random.default_rng(3)
    kernel, beta, gamma = rng.normal(0, 0.8, (2, n)), -0.3, np.array([0.4, -0.2])
    coords = np.stack(np.unravel_index(np.arange(n), shape), -1)
    d = np.ravel_multi_index(tuple(np.moveaxis((coords[:, None] - coords[None]) % shape, -1, 0)), shape)

    def unfold(K, b, c):  # the dense parameters of the tied ones, written out independently
        return (np.concatenate([K[f][d] for f in range(2)], axis=1), np.full(n, b), np.repeat(c, n))

    W, b, c = unfold(kernel, beta, gamma)
    for var, value in zip((model.layer.kernel, model.layer.visible_bias, model.layer.hidden_bias), (W, b, c)):
        var.assign(value.astype("float32"))
    for tie, value in ((t.tie_kernel, W), (t.tie_visible, b), (t.tie_hidden, c)):  # tied values are fixed points
        np.testing.assert_allclose(tie(tf.constant(value, tf.float32)).numpy(), value, atol=1e-6)
    data = prototypes_data(60, n, seed=2).astype(np.float64)

    def nll(K, b, c):
        Wd, bd, cd = unfold(K, b, c)

        def log_f(v):
            return v @ bd + np.logaddexp(0, cd + v @ Wd).sum(1)

        return -(np.mean(log_f(data)) - logsumexp(log_f(likelihood.binary_states(n))))

    def numeric(i, shape_):
        theta = [kernel, np.float64(beta), gamma]
        g = np.zeros(shape_)
        for j in np.ndindex(shape_):
            up, down = [np.array(a, np.float64) for a in theta], [np.array(a, np.float64) for a in theta]
            up[i][j] += 1e-5
            down[i][j] -= 1e-5
            g[j] = (nll(*up) - nll(*down)) / 2e-5
        return g

    g_kernel, g_beta, g_gamma = numeric(0, (2, n)), numeric(1, ()), numeric(2, (2,))
    plain = dict(zip(("W", "b", "c"), np.split(_exact_nll_gradient(model.layer, data), [n * 2 * n, n * 2 * n + n])))
    by_name = {id(model.layer.kernel): "W", id(model.layer.visible_bias): "b", id(model.layer.hidden_bias): "c"}
    grads = [tf.constant(plain[by_name[id(v)]].reshape(v.shape), tf.float32) for v in model.trainable_weights]
    tied = {by_name[id(v)]: g.numpy() for v, g in zip(model.trainable_weights, model.tie_gradients(grads))}
    expected_w, expected_b, expected_c = unfold(g_kernel / n, g_beta / n, g_gamma / n)
    np.testing.assert_allclose(tied["W"], expected_w, atol=2e-6)
    np.testing.assert_allclose(tied["b"], expected_b, atol=2e-6)
    np.testing.assert_allclose(tied["c"], expected_c, atol=2e-6)

    # Training (centered, momentum) keeps every parameter tied: F is invariant under translations.
    model.initialize_from_data(data)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(data.astype("float32"), epochs=2, batch_size=20, verbose=0)
    v = data[:8].astype("float32")
    free = model.layer.free_energy(v).numpy()
    for dy, dx in ((1, 0), (0, 1), (2, 1)):
        moved = np.roll(v.reshape(-1, *shape), (dy, dx), axis=(1, 2)).reshape(-1, n)
        np.testing.assert_allclose(model.layer.free_energy(moved).numpy(), free, rtol=1e-5, atol=1e-5)
    assert np.ptp(model.layer.visible_bias.numpy()) == 0 and np.ptp(model.visible_offset.numpy()) == 0
    clone = rbm.RBM.from_config(model.get_config())
    assert clone.periodic_lattice == shape and clone.get_config() == model.get_config()
    with pytest.raises(ValueError, match="multiple of 6"):
        rbm.make_rbm("bernoulli", n, 7, periodic_lattice=shape)
    with pytest.raises(ValueError, match="6 sites"):
        rbm.make_rbm("bernoulli", 8, 8, periodic_lattice=shape)
    with pytest.raises(ValueError, match="2 filters"):
        rbm.make_rbm("bernoulli", n, 2 * n, periodic_lattice=shape, filter_shape=[(1, 2)] * 3)
    with pytest.raises(ValueError, match="one size in"):
        rbm.make_rbm("bernoulli", n, n, periodic_lattice=shape, filter_shape=(4, 1))

    # Per-filter windows: filter 0 sees two sites along axis 1, filter 1 the whole lattice.
    local = rbm.make_rbm("bernoulli", n, 2 * n, periodic_lattice=shape, filter_shape=[(1, 2), shape], seed=1)
    w = local.layer.kernel.numpy()
    assert np.count_nonzero(w[:, :n]) == 2 * n and np.count_nonzero(w[:, n:]) == n * n
    np.testing.assert_array_equal(np.flatnonzero(w[:, 0]), [0, 1])  # the unit at site 0 sees sites (0,0), (0,1)
    assert rbm.RBM.from_config(local.get_config()).filter_shape == ((1, 2), shape)


def test_cd_gradient_points_along_exact_gradient():
    model = rbm.make_rbm("bernoulli", 6, 4, k=100, persistent=False, seed=0)
    layer = randomize(model.layer, scale=1.0, seed=6)
    data = prototypes_data(40, 6, seed=1).astype(np.float64)
    v = tf.constant(np.repeat(data, 250, axis=0), tf.float32)  # 10,000 chains
    weights = [layer.kernel, layer.visible_bias, layer.hidden_bias]
    v_model = model.negative_samples(v, seed=11)
    with tf.GradientTape(persistent=True) as tape:
        fused, *_ = model.surrogate_loss(v, v_model)
        x_data = layer.hidden_activation(v)
        split, *_ = model.surrogate_loss(v, v_model, x_data=x_data)
    g_fused = np.concatenate([np.ravel(g) for g in tape.gradient(fused, weights)])
    g_split = np.concatenate([np.ravel(g) for g in tape.gradient(split, weights)])
    # Equal up to float32 summation order over 20,000 rows: the worst-case relative error of such
    # a sum is about n * eps = 2e4 * 6e-8 ~ 1e-3 (seen: 2e-4 with oneDNN's blocking on AVX-512).
    np.testing.assert_allclose(g_fused, g_split, rtol=1e-3, atol=1e-5)
    # The surrogate's gradient is exactly positive minus negative phase with
    # hidden probabilities, on these negative samples.
    vm = v_model.numpy().astype(np.float64)
    p = layer.numpy_parameters()
    sd = 1 / (1 + np.exp(-(p["c"] + data @ p["W"])))
    sm = 1 / (1 + np.exp(-(p["c"] + vm @ p["W"])))
    manual = np.concatenate(
        [
            (-(data.T @ sd) / len(data) + vm.T @ sm / len(vm)).ravel(),
            -data.mean(0) + vm.mean(0),
            -sd.mean(0) + sm.mean(0),
        ]
    )
    np.testing.assert_allclose(g_fused, manual, rtol=1e-3, atol=2e-5)
    exact = _exact_nll_gradient(layer, data)
    cosine = g_fused @ exact / (np.linalg.norm(g_fused) * np.linalg.norm(exact))
    assert cosine > 0.99, cosine  # CD-100 from 10,000 chains: nearly exact


def test_gibbs_sampling_reaches_exact_marginal():
    model = rbm.make_rbm("bernoulli", 4, 3, k=1, persistent=False, seed=0)
    randomize(model.layer, scale=1.0, seed=7)
    states, p_exact = exact_marginal(model.layer)
    n = 20_000
    v = model.sample(n, seed=5, gibbs_steps=100, return_probabilities=False)
    assert set(np.unique(v)) <= {0.0, 1.0}
    codes = (v @ (2 ** np.arange(4))).astype(int)  # binary_states order
    counts = np.bincount(codes, minlength=16)
    chi2 = np.sum((counts - n * p_exact) ** 2 / (n * p_exact))
    assert chi2 < stats.chi2.ppf(0.999, df=15), chi2
    tv = 0.5 * np.abs(counts / n - p_exact).sum()
    assert tv < 0.03, tv
    # The layer's own Gibbs method runs the same kernel from a given state.
    v0 = np.zeros((n, 4), np.float32)
    v1 = model.layer.gibbs(v0, k=30, seed=6).numpy()
    counts1 = np.bincount((v1 @ (2 ** np.arange(4))).astype(int), minlength=16)
    assert np.sum((counts1 - n * p_exact) ** 2 / (n * p_exact)) < stats.chi2.ppf(0.999, df=15)


def test_pseudo_log_likelihood_is_unbiased():
    layer = randomize(rbm.BernoulliRBM(8, 5), scale=1.0, seed=8)
    v = prototypes_data(1, 8, seed=2)
    # Exact Σ_i log p(v_i | v_-i) = Σ_i log sigmoid(F(v with bit i flipped) - F(v)).
    flipped = np.abs(np.repeat(v, 8, 0) - np.eye(8))
    f, f_flip = likelihood.free_energy_numpy(layer, v), likelihood.free_energy_numpy(layer, flipped)
    exact = np.sum(-np.logaddexp(0, -(f_flip - f)))
    n = 8000
    est = rbm.pseudo_log_likelihood(layer, np.repeat(v, n, 0), seed=3).numpy()
    assert abs(est.mean() - exact) < 5 * est.std() / math.sqrt(n) + 1e-4


# ------------------------------------------------------------------ training
DATA = prototypes_data(600, 10, seed=0)


@pytest.fixture(scope="module")
def trained():
    """CD-1 and PCD-1 models trained under XLA (the compile default)."""
    out = {}
    for name, persistent in (("cd", False), ("pcd", True)):
        model = rbm.make_rbm("bernoulli", 10, 6, k=1, persistent=persistent, seed=3, name=name)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        before = likelihood.log_likelihood(model, DATA)["mean"]
        history = model.fit(DATA, epochs=8, batch_size=20, shuffle=False, verbose=0)
        out[name] = dict(model=model, before=before, history=history.history)
    return out


def test_fit_under_xla_improves_exact_likelihood(trained):
    for name in ("cd", "pcd"):
        model = trained[name]["model"]
        assert model.jit_compile is True
        after = likelihood.log_likelihood(model, DATA)
        assert after["method"] == "exact"
        # Random init is ~ -10 log 2 = -6.93 nats; the data entropy is ~3.1.
        assert after["mean"] > trained[name]["before"] + 1.5, (name, trained[name]["before"], after)
        history = trained[name]["history"]
        assert set(history) == {"loss", "reconstruction_error", "pseudo_log_likelihood"}
        assert history["reconstruction_error"][-1] < history["reconstruction_error"][0]
        assert history["pseudo_log_likelihood"][-1] > history["pseudo_log_likelihood"][0]


def test_pcd_chains_are_state_and_resume_exactly(tmp_path):
    model = rbm.make_rbm("bernoulli", 10, 6, k=1, persistent=True, seed=5)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    first, rest = DATA[:300], DATA[300:]
    model.fit(first[:20], epochs=1, batch_size=20, shuffle=False, verbose=0)  # builds 20 chains
    assert model.n_chains == 20 and model.persistent_chains.shape == (20, 10)
    chains0 = model.persistent_chains.numpy().copy()
    model.fit(first, epochs=1, batch_size=20, shuffle=False, verbose=0)
    chains1 = model.persistent_chains.numpy()
    assert set(np.unique(chains1)) <= {0.0, 1.0}
    assert (chains1 != chains0).mean() > 0.1  # the chains moved

    path = tmp_path / "pcd.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, rbm.RBM) and loaded.persistent and loaded.n_chains == 20
    np.testing.assert_array_equal(loaded.persistent_chains.numpy(), chains1)
    np.testing.assert_array_equal(loaded.seed_generator.state.numpy(), model.seed_generator.state.numpy())
    np.testing.assert_allclose(loaded.layer.free_energy(DATA), model.layer.free_energy(DATA), atol=1e-6)
    # Continuing after a save/load round trip equals continuing without it.
    model.fit(rest, epochs=1, batch_size=20, shuffle=False, verbose=0)
    loaded.fit(rest, epochs=1, batch_size=20, shuffle=False, verbose=0)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)
    np.testing.assert_array_equal(loaded.persistent_chains.numpy(), model.persistent_chains.numpy())


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.full((20, 10), 0.5, np.float32), "binary"),
        (np.zeros((20, 11), np.float32), "shape"),
        (np.where(np.eye(20, 10) > 0, np.nan, 0).astype(np.float32), "NaN"),
    ],
)
def test_bad_data_is_refused_before_training(bad, match):
    model = rbm.make_rbm("bernoulli", 10, 6, k=1, persistent=True, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    kernel = model.layer.kernel.numpy().copy()
    with pytest.raises(DataError, match=match):
        model.fit(bad, epochs=1, verbose=0)
    with pytest.raises(DataError, match=match):
        model.fit(tf.data.Dataset.from_tensor_slices(bad).batch(5), epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 0
    np.testing.assert_array_equal(model.layer.kernel.numpy(), kernel)
    assert model.persistent_chains is None  # nothing was built either


def test_gaussian_rbm_accepts_real_data_and_refuses_nan():
    model = rbm.make_rbm("gaussian", 3, 2, k=1, persistent=False, seed=0)
    assert model.data_domain == "real"
    model.validate_data(np.random.default_rng(0).normal(size=(5, 3)).astype("float32"))
    with pytest.raises(DataError, match="NaN"):
        model.validate_data(np.array([[0.0, np.nan, 1.0]], np.float32))


@pytest.mark.slow
@pytest.mark.parametrize("settings", ["learned_sigma", "fixed_unit_sigma_high_lr"])
def test_gaussian_rbm_default_training_is_stable(settings):
    """Gaussian RBMs diverge with careless settings; ours must not.

    "learned_sigma": the settings of the command line's and the zoo recipe's
    real-valued models (log sigma learned from 0.5, weights at the data
    scale, PCD-10, Adam 3e-3) must keep every parameter finite and sigma
    bounded, and raise the exact held-out likelihood. "fixed_unit_sigma_high_lr":
    `make_rbm("gaussian", ...)` with its own defaults (sigma fixed at 1, for
    standardised data) at 30x the command line's learning rate must stay
    finite and not lose likelihood. (From W ~ 0 on standardised data the
    first-order gradient vanishes, E_data[vv'] = E_model[vv'] = I, so that
    model moves slowly; the test asks for stability, not progress.)
    """
    from keras_gen import data

    x, _ = data.load_arrays("ring8", "train")
    x_test, _ = data.load_arrays("ring8", "test")
    x, x_test = x[:2000], x_test[:2000]
    if settings == "learned_sigma":
        model = rbm.make_rbm(
            "gaussian", 2, 8, k=10, persistent=True, sigma=0.5, learn_sigma=True, weight_stddev=0.5, seed=0
        )
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
    else:
        scale = x.std()
        x, x_test = x / scale, x_test / scale
        model = rbm.make_rbm("gaussian", 2, 8, seed=0)
        model.compile(optimizer=keras.optimizers.Adam(3e-2))
    before = likelihood.log_likelihood(model, x_test)["mean"]
    model.fit(x, epochs=6, batch_size=100, verbose=0)
    for w in model.weights:
        assert np.all(np.isfinite(w.numpy())), w.path
    sigma = model.layer.sigma.numpy()
    assert np.all((sigma > 0.05) & (sigma < 2.0)), sigma
    after = likelihood.log_likelihood(model, x_test)
    assert after["method"] == "exact" and np.isfinite(after["mean"])
    if settings == "learned_sigma":
        # The held-out standard error of the difference is ~0.02 nats.
        assert after["mean"] > before + 0.3, (before, after["mean"])
    else:
        assert after["mean"] > before - 0.01, (before, after["mean"])


@pytest.mark.slow
def test_cli_trains_rbm_with_checkpoints_and_samples(tmp_path, monkeypatch):
    from keras_gen import cli

    monkeypatch.chdir(tmp_path)
    cli.main(
        [
            "train",
            "rbm",
            "--dataset",
            "ring8",
            "--epochs",
            "2",
            "--steps-per-epoch",
            "5",
            "--hidden",
            "6",
            "--k",
            "2",
            "--out",
            "run",
            "--verbose",
            "0",
        ]
    )
    for name in (
        "model.keras",
        "checkpoints/epoch_002.keras",
        "samples/epoch_002.png",
        "history.csv",
        "loss_curves.png",
    ):
        assert (tmp_path / "run" / name).exists(), name
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    assert isinstance(model.layer, rbm.GaussianBernoulliRBM) and model.layer.learn_sigma and model.k == 2
    assert model.persistent_chains.shape[1] == 2
    assert int(model.optimizer.iterations.numpy()) == 10


def test_free_energy_gap_callback(trained):
    model = trained["pcd"]["model"]
    train, val = DATA[:200], prototypes_data(200, 10, seed=9)
    callback = callbacks.FreeEnergyGap(train, val, n=200)
    history = model.fit(DATA[:40], epochs=1, batch_size=20, verbose=0, callbacks=[callback])
    expected = likelihood.free_energy_numpy(model, val).mean() - likelihood.free_energy_numpy(model, train).mean()
    assert history.history["free_energy_gap"][0] == pytest.approx(expected, abs=1e-4)


# ------------------------------------------------------- config and export
def test_config_round_trip_and_make_rbm():
    for kwargs in (
        dict(visible="bernoulli", n_visible=784, n_hidden=500, k=1, persistent=True, monitor=False, seed=3),
        dict(
            visible="gaussian",
            n_visible=5,
            n_hidden=4,
            k=3,
            persistent=False,
            sigma=0.5,
            learn_sigma=True,
            n_chains=7,
            seed=1,
        ),
    ):
        model = rbm.make_rbm(**kwargs)
        config = model.get_config()
        clone = rbm.RBM.from_config(config)
        assert clone.get_config() == config
        assert clone.data_shape == (kwargs["n_visible"],)
        assert clone.layer.n_hidden == kwargs["n_hidden"] and clone.k == kwargs["k"]
        assert type(clone.layer) is type(model.layer)
    gauss = rbm.make_rbm("gaussian", 5, 4, sigma=0.5, learn_sigma=True)
    assert gauss.layer.log_sigma.trainable and len(gauss.trainable_weights) == 4
    assert not rbm.make_rbm("gaussian", 5, 4).layer.log_sigma.trainable
    with pytest.raises(ValueError):
        rbm.make_rbm("softmax", 5, 4)


SERVE_WITHOUT_KERAS_GEN = """
import sys, numpy as np, tensorflow as tf
path, out = sys.argv[1], sys.argv[2]
sig = tf.saved_model.load(path).signatures
v = tf.constant(np.load(out + "/v.npy"))
np.save(out + "/free_energy.npy", sig["free_energy"](v=v)["free_energy"].numpy())
np.save(out + "/hidden.npy", sig["hidden_probabilities"](v=v)["hidden_probabilities"].numpy())
s = sig["sample"](n=tf.constant(6), seed=tf.constant(3), gibbs_steps=tf.constant(5))
np.save(out + "/probabilities.npy", s["probabilities"].numpy())
np.save(out + "/sample.npy", s["sample"].numpy())
assert not any(m == "keras_gen" or m.startswith("keras_gen.") for m in sys.modules), "keras_gen imported"
print(",".join(sorted(sig.keys())))
"""


def serve_in_fresh_process(export_dir, v, tmp_path):
    """Run the exported signatures in a process that never imports keras_gen."""
    np.save(tmp_path / "v.npy", np.asarray(v, np.float32))
    script = tmp_path / "serve.py"
    script.write_text(SERVE_WITHOUT_KERAS_GEN)
    result = subprocess.run(
        [sys.executable, str(script), str(export_dir), str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    names = set(result.stdout.strip().splitlines()[-1].split(","))
    return names, {k: np.load(tmp_path / f"{k}.npy") for k in ("free_energy", "hidden", "probabilities", "sample")}


@pytest.mark.slow
def test_export_serves_the_same_functions_without_keras_gen(trained, tmp_path):
    from keras_gen import export

    model = trained["pcd"]["model"]
    path = tmp_path / "rbm_savedmodel"
    names = export.export_saved_model(model, str(path))
    assert set(names) >= {"sample", "free_energy", "hidden_probabilities"}
    v = DATA[:16]
    served_names, out = serve_in_fresh_process(path, v, tmp_path)
    assert served_names >= {"sample", "free_energy", "hidden_probabilities"}
    np.testing.assert_allclose(out["free_energy"], model.layer.free_energy(v), atol=1e-5)
    np.testing.assert_allclose(out["hidden"], model.layer.hidden_probabilities(v), atol=1e-6)
    assert out["probabilities"].shape == (6, 10) and out["sample"].shape == (6, 10)
    np.testing.assert_allclose(out["probabilities"], model.sample(6, seed=3, gibbs_steps=5), atol=1e-5)
    np.testing.assert_array_equal(out["sample"], model.sample(6, seed=3, gibbs_steps=5, return_probabilities=False))


def _rbm_mnist_available():
    from keras_gen import zoo

    try:
        return zoo.weights_path("rbm_mnist").is_file() and MNIST_AVAILABLE
    except zoo.ZooError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _rbm_mnist_available(), reason="needs the rbm_mnist zoo weights and MNIST (TFDS_DATA_DIR)")
def test_zoo_rbm_mnist_reproduces_its_card_and_serves(tmp_path):
    from keras_gen import data, export, zoo

    model = zoo.load("rbm_mnist")
    metrics = model.zoo_card["metrics"]
    # The card's test log-likelihood is -F(v) - log Z on the fixed binarization
    # it names; the loaded weights must give it back (F is exact, log Z from the card).
    x_test, _ = data.load_arrays("mnist", "test", preprocessing="binarized", flatten=True, seed=0)
    ll = -likelihood.free_energy_numpy(model, x_test).mean() - metrics["log_z"]
    assert ll == pytest.approx(metrics["test_log_likelihood_nats"], abs=0.02)
    path = tmp_path / "rbm_mnist_savedmodel"
    export.export_saved_model(model, str(path))
    _, out = serve_in_fresh_process(path, x_test[:8], tmp_path)
    np.testing.assert_allclose(out["free_energy"], model.layer.free_energy(x_test[:8]), rtol=1e-5, atol=1e-3)
    assert out["sample"].shape == (6, 784) and set(np.unique(out["sample"])) <= {0.0, 1.0}


@pytest.mark.slow
def test_gibbs_steps_schedule_switches_k_between_epochs():
    def run(schedule=None, manual=False):
        model = rbm.make_rbm("bernoulli", 10, 6, k=1, persistent=True, n_chains=20, seed=7)
        # The schedule does not depend on XLA (exercised above); skip its compiles.
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
        if manual:  # the same switch done by hand between two fits
            model.fit(DATA[:200], epochs=1, batch_size=20, shuffle=False, verbose=0)
            model.k = 3
            model.make_train_function(force=True)
            model.fit(DATA[:200], epochs=1, batch_size=20, shuffle=False, verbose=0)
            return model, None
        schedules = [callbacks.GibbsStepsSchedule(schedule)] if schedule else []
        history = model.fit(DATA[:200], epochs=2, batch_size=20, shuffle=False, verbose=0, callbacks=schedules)
        return model, history.history

    scheduled, history = run({0: 1, 1: 3})
    assert history["gibbs_steps"] == [1.0, 3.0] and scheduled.k == 3
    by_hand, _ = run(manual=True)
    constant, _ = run()
    for a, b in zip(scheduled.weights, by_hand.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)
    # ... and k = 3 really ran: PCD-1 throughout ends elsewhere.
    assert np.abs(constant.layer.kernel.numpy() - scheduled.layer.kernel.numpy()).max() > 1e-3
    assert callbacks.GibbsStepsSchedule(lambda e: 2 + e).k_at(3) == 5
    with pytest.raises(ValueError, match="epoch 0"):
        callbacks.GibbsStepsSchedule({2: 3})


# ---------------------------------------------------------------------- DBN
@pytest.mark.slow
def test_dbn_greedy_training_and_sampling():
    deep = dbn.make_dbn((10, 8, 6), k=1, persistent=True, seed=2)
    initial = [layer.kernel.numpy().copy() for layer in deep.rbm_layers]
    # XLA is exercised above; here it would only add two compiles.
    histories = deep.fit(DATA, epochs=3, batch_size=20, verbose=0, jit_compile=False)
    assert len(histories) == 2
    for layer, w0 in zip(deep.rbm_layers, initial):
        assert np.abs(layer.kernel.numpy() - w0).max() > 1e-3  # every layer trained
    # The second layer learned its input, the data's hidden probabilities: it
    # gives them lower free energy than the features of random inputs.
    top = deep.rbm_layers[1]
    features = deep.rbm_layers[0].hidden_probabilities(DATA)
    noise = deep.rbm_layers[0].hidden_probabilities(prototypes_data(600, 10, flip=0.5, seed=4))
    assert float(tf.reduce_mean(top.free_energy(features))) < float(tf.reduce_mean(top.free_energy(noise)))
    assert "reconstruction_error" in histories[1].history
    samples = deep.sample(7, seed=1, gibbs_steps=20)
    assert samples.shape == (7, 10) and samples.min() >= 0 and samples.max() <= 1
    binary = deep.sample(7, seed=1, gibbs_steps=20, return_probabilities=False)
    assert set(np.unique(binary)) <= {0.0, 1.0}
    assert deep.transform(DATA[:3]).shape == (3, 6)
    clone = dbn.DBN.from_config(deep.get_config())
    assert [(l.n_visible, l.n_hidden) for l in clone.rbm_layers] == [(10, 8), (8, 6)]
    with pytest.raises(DataError):
        deep.fit(DATA * 0.5, verbose=0)
