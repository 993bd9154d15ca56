"""Tests of keras_gen.physics: exact references against each other and against Onsager,
and the Monte Carlo simulator against the exact finite-lattice results; then the
Ising models (keras_gen.models.ising), their training (keras_gen.recipes.ising) and
their measurement against exact results (keras_gen.evaluation.ising)."""

import math
import os

import numpy as np
import pytest
from scipy import signal, stats
from scipy.integrate import quad

from keras_gen import physics
from keras_gen.physics import datasets
from keras_gen.physics.observables import observables

SCALARS = (
    "energy",
    "abs_magnetization",
    "magnetization_sq",
    "specific_heat",
    "susceptibility",
    "binder_cumulant",
    "log_z",
)


# ---------------------------------------------------------------- exact references
@pytest.mark.parametrize("L", [3, 4])
def test_enumeration_matches_transfer_matrix(L):
    T = np.array([0.7, 1.5, 2.0, physics.TC, 2.6, 4.0, 10.0])
    enum, tm = physics.exact_enumeration(L, T), physics.transfer_matrix(L, T)
    for name in SCALARS:
        np.testing.assert_allclose(tm[name], enum[name], rtol=1e-10, atol=1e-10, err_msg=name)
    # P(M) from the transfer matrix against the enumerated density of states.
    E, M, g = physics.density_of_states(L)
    logw = np.log(g) - E / T[:, None]
    p = np.exp(logw - logw.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    N = L * L
    p_m = np.stack([p[:, M == mm].sum(axis=1) for mm in range(-N, N + 1, 2)], axis=1)
    np.testing.assert_allclose(tm["magnetization_distribution"], p_m, atol=1e-12)


def test_exact_enumeration_limits_and_identities():
    L, N = 4, 16
    hot = physics.exact_enumeration(L, 1e8)
    assert hot["log_z"] == pytest.approx(N * math.log(2), abs=1e-6)
    assert abs(hot["energy"]) < 1e-6
    cold = physics.exact_enumeration(L, 0.2)  # two ground states, gap 8 -> corrections ~e^-40
    assert cold["log_z"] == pytest.approx(math.log(2) + 2 * N / 0.2, rel=1e-12)
    assert cold["energy"] == pytest.approx(-2.0, abs=1e-12)
    assert cold["abs_magnetization"] == pytest.approx(1.0, abs=1e-12)
    # G(0) = 1 and nearest-neighbour G(1) = -e/2 (each site has two bonds, one per axis).
    r = physics.exact_enumeration(L, [1.5, 3.0])
    np.testing.assert_allclose(r["correlation"][:, 0], 1.0)
    np.testing.assert_allclose(r["correlation"][:, 1], -r["energy"] / 2, rtol=1e-12)


def _onsager_energy_by_quadrature(T):
    """Onsager's energy from his double-integral free energy, independently of the
    elliptic-integral form: -ln Z/N = -ln 2 - (1/2pi) int_0^pi ln((a + sqrt(a^2 - s^2))/2)
    with a = cosh^2(2b) - s cos(theta), s = sinh(2b) (one integral done in closed form);
    e = -d(ln Z/N)/db, the derivative taken analytically under the integral."""
    b = 1.0 / T
    s, ds = math.sinh(2 * b), 2 * math.cosh(2 * b)
    dc2 = 2 * math.sinh(4 * b)

    def integrand(th):
        a = math.cosh(2 * b) ** 2 - s * math.cos(th)
        da = dc2 - ds * math.cos(th)
        r = math.sqrt(a * a - s * s)
        return (da + (a * da - s * ds) / r) / (a + r)

    return -0.5 * quad(integrand, 0, math.pi, epsabs=1e-13, epsrel=1e-13, limit=200)[0] / math.pi


def test_onsager_known_values():
    assert physics.TC == pytest.approx(2.269185314213022, rel=1e-15)
    assert physics.onsager_energy(physics.TC) == pytest.approx(-math.sqrt(2), abs=1e-14)
    # Continuous through Tc (the elliptic singularity is only in C): ~ (T-Tc) log|T-Tc|.
    assert physics.onsager_energy(physics.TC * (1 + 1e-9)) == pytest.approx(-math.sqrt(2), abs=1e-7)
    assert physics.onsager_energy(physics.TC * (1 - 1e-9)) == pytest.approx(-math.sqrt(2), abs=1e-7)
    for T in (0.8, 1.5, 2.0, 2.2, 2.26, 2.28, 2.4, 3.0, 5.0):  # measured: <= 3e-14
        assert physics.onsager_energy(T) == pytest.approx(_onsager_energy_by_quadrature(T), abs=1e-11)
    # High-T series e = -2 tanh(b) - 4 tanh^3(b) (...): at T = 100 the t^3 term is 4e-6.
    t = math.tanh(0.01)
    assert physics.onsager_energy(100.0) == pytest.approx(-2 * t - 4 * t**3, abs=1e-9)
    assert physics.onsager_magnetization(physics.TC) == 0.0
    assert physics.onsager_magnetization(3.0) == 0.0
    assert physics.onsager_magnetization(1.0) == pytest.approx((1 - math.sinh(2.0) ** -4) ** 0.125)
    np.testing.assert_allclose(
        physics.onsager_energy([1.0, 4.0]), [physics.onsager_energy(1.0), physics.onsager_energy(4.0)]
    )


def test_transfer_matrix_L8_against_onsager():
    """Off criticality the torus converges to Onsager exponentially, ~exp(-L/xi): at
    T = 1 (xi << 1) L = 8 agrees to ~1e-12, at T = 4 (xi ~ 1) only to ~1e-3. We check
    the size of the L = 8 deviation *and* the geometric convergence from L = 6, so a
    wrong Onsager or a wrong transfer matrix cannot pass by a generous tolerance.
    At Tc the corrections are power laws, checked separately below."""
    T = np.array([1.0, 4.0])
    r6, r8 = physics.transfer_matrix(6, T), physics.transfer_matrix(8, T)
    e_inf = physics.onsager_energy(T)
    d6, d8 = np.abs(r6["energy"] - e_inf), np.abs(r8["energy"] - e_inf)
    assert d8[0] < 1e-10 and d6[0] / d8[0] > 100  # measured: 1.7e-12, ratio 1000
    assert d8[1] < 2e-3 and d6[1] / d8[1] > 4  # measured: 1.2e-3, ratio 7.3
    m_inf = physics.onsager_magnetization(1.0)
    assert abs(r8["abs_magnetization"][0] - m_inf) < 1e-10


def test_transfer_matrix_finite_size_scaling_at_tc():
    """At Tc: e_L = -sqrt2 + a/L, C_L ~ (8/pi) beta_c^2 ln L, <|m|> ~ L^(-1/8)."""
    r = {L: physics.transfer_matrix(L, physics.TC) for L in (6, 8)}
    a6, a8 = [(r[L]["energy"] + math.sqrt(2)) * L for L in (6, 8)]
    assert a6 < 0 and abs(a8 / a6 - 1) < 0.02  # measured a = -0.616, -0.619
    slope = (r[8]["specific_heat"] - r[6]["specific_heat"]) / math.log(8 / 6)
    assert slope == pytest.approx(8 / math.pi / physics.TC**2, rel=0.1)  # measured 5% above
    m6, m8 = [r[L]["abs_magnetization"] * L**0.125 for L in (6, 8)]
    assert abs(m8 / m6 - 1) < 0.01


# ---------------------------------------------------------------- simulator vs exact
@pytest.fixture(scope="module")
def l4_run():
    T = np.array([1.8, physics.TC, 3.2])
    spins, meta = physics.simulate(4, T, 4000, seed=2024)
    return T, spins, meta


def test_simulate_output_and_metadata(l4_run):
    T, spins, meta = l4_run
    assert spins.shape == (3, 4000, 4, 4) and spins.dtype == np.int8
    assert set(np.unique(spins)) == {-1, 1}
    assert meta["algorithm"] == ["wolff+metropolis", "wolff+metropolis", "metropolis"]
    tau = max(max(meta["tau_abs_m"]), max(meta["tau_energy"]))
    assert meta["spacing"] >= 2 * tau
    assert meta["n_pilot"] >= 50 * tau
    # Kept samples are effectively independent: tau in units of samples ~ 0.5.
    assert max(meta["tau_abs_m_samples"] + meta["tau_energy_samples"]) < 0.8
    # Reproducible from the seed.
    again, _ = physics.simulate(4, T[:1], 64, seed=7, n_chains=8, n_equilibrate=20, n_pilot=40)
    same, _ = physics.simulate(4, T[:1], 64, seed=7, n_chains=8, n_equilibrate=20, n_pilot=40)
    np.testing.assert_array_equal(again, same)


def test_simulate_matches_exact_enumeration(l4_run):
    T, spins, _ = l4_run
    exact = physics.exact_enumeration(4, T)
    limits = {"energy": 4, "abs_magnetization": 4, "specific_heat": 5, "susceptibility": 5, "binder_cumulant": 5}
    for i, temp in enumerate(T):
        obs = observables(spins[i], temp)
        for name, k in limits.items():
            value, error = obs[name]
            assert error > 0
            assert abs(value - exact[name][i]) < k * error, (temp, name, value, error, exact[name][i])
        g, g_err = obs["correlation"]
        assert g[0] == 1.0 and g_err[0] == 0.0
        np.testing.assert_array_less(np.abs(g[1:] - exact["correlation"][i, 1:]), 4 * g_err[1:])
        assert g[1] == pytest.approx(-obs["energy"][0] / 2)


def test_simulate_magnetization_distribution_signed(l4_run):
    """The signed magnetization of the kept samples follows the exact P(M), + and -
    balanced (the observables above only see |m|, blind to a sign stuck per chain)."""
    T, spins, _ = l4_run
    E, M, g = physics.density_of_states(4)
    for i, temp in enumerate(T):
        logw = np.log(g) - E / temp
        w = np.exp(logw - logw.max())
        p_m = np.array([w[M == m].sum() for m in range(-16, 17, 2)]) / w.sum()
        observed = (physics.lattice_magnetization(spins[i]) + 16) // 2
        assert _chi_square_pvalue(observed, p_m) > 1e-3, temp


def _chi_square_pvalue(observed_classes, class_probs):
    n = len(observed_classes)
    counts = np.bincount(observed_classes, minlength=len(class_probs))
    expected = n * class_probs
    big = expected >= 5
    # Pool the rare classes into one bin so every bin has enough expected counts.
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] < 5:
        obs, exp = obs[:-1], exp[:-1]
    chi2 = ((obs - exp) ** 2 / exp).sum()
    return stats.chi2.sf(chi2, len(obs) - 1)


def _boltzmann_classes(L, T):
    """Exact probabilities of the (E, |M|) classes, and a lookup from (E, M) to class."""
    E, M, g = physics.density_of_states(L)
    keys = np.stack([E, np.abs(M)], axis=1)
    classes, inverse = np.unique(keys, axis=0, return_inverse=True)
    logw = np.log(g) - E / T
    w = np.exp(logw - logw.max())
    probs = np.bincount(inverse.ravel(), weights=w) / w.sum()
    return classes, probs


def _class_index(classes, spins):
    e, am = physics.lattice_energy(spins), np.abs(physics.lattice_magnetization(spins))
    lookup = {(int(a), int(b)): i for i, (a, b) in enumerate(classes)}
    return np.array([lookup[(int(a), int(b))] for a, b in zip(e, am)])


@pytest.mark.parametrize("algorithm,L", [("wolff", 3), ("metropolis", 4)])
def test_update_samples_boltzmann(algorithm, L):
    """Each update alone, from a random start, on many independent chains: the final
    (E, |M|) histogram must match the exact Boltzmann probabilities (chi-square)."""
    rng = np.random.default_rng(11)
    T = np.array([1.5, physics.TC, 3.0])
    spins = physics.random_lattices(len(T), 6000, L, rng)
    for _ in range(25):
        if algorithm == "wolff":
            physics.wolff_update(spins, T, rng)
        else:
            physics.metropolis_sweep(spins, T, rng)
    for i, temp in enumerate(T):
        classes, probs = _boltzmann_classes(L, temp)
        p = _chi_square_pvalue(_class_index(classes, spins[i]), probs)
        assert p > 1e-3, (algorithm, temp, p)


def test_wolff_preserves_exact_boltzmann_distribution():
    """Stationarity: chains started from exact Boltzmann draws stay Boltzmann after
    Wolff updates (no burn-in to hide behind)."""
    L, T, n = 3, np.array([physics.TC]), 20000
    rng = np.random.default_rng(5)
    codes = np.arange(2 ** (L * L))
    states = (2 * ((codes[:, None] >> np.arange(L * L)) & 1) - 1).astype(np.int8).reshape(-1, L, L)
    logw = -physics.lattice_energy(states) / T[0]
    p = np.exp(logw - logw.max())
    draws = states[rng.choice(len(states), size=n, p=p / p.sum())][None].copy()
    physics.wolff_update(draws, T, rng, n_updates=2)
    classes, probs = _boltzmann_classes(L, T[0])
    assert _chi_square_pvalue(_class_index(classes, draws[0]), probs) > 1e-3


def test_metropolis_refuses_odd_L():
    spins = np.ones((1, 2, 3, 3), dtype=np.int8)
    with pytest.raises(ValueError, match="even L"):
        physics.metropolis_sweep(spins, [2.0], np.random.default_rng(0))


# ---------------------------------------------------------------- autocorrelation
@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8, 0.9])
def test_autocorrelation_time_ar1(phi):
    rng = np.random.default_rng(3)
    n_chains, n, burn = 4, 50_000, 2_000
    # x_t = phi x_{t-1} + noise_t; the burn-in (phi^2000 ~ 0) makes the start stationary.
    x = signal.lfilter([1.0], [1.0, -phi], rng.standard_normal((n_chains, n + burn)), axis=1)[:, burn:]
    tau = (1 + phi) / (2 * (1 - phi))
    assert physics.integrated_autocorrelation_time(x) == pytest.approx(tau, rel=0.1)
    assert physics.integrated_autocorrelation_time(x[0]) == pytest.approx(tau, rel=0.15)


def test_autocorrelation_time_constant_series():
    assert physics.integrated_autocorrelation_time(np.ones(100)) == 0.5


# ---------------------------------------------------------------- input validation
def test_observables_input_validation():
    rng = np.random.default_rng(0)
    pm1 = 2 * rng.integers(0, 2, size=(40, 4, 4)) - 1
    binary = (pm1 + 1) // 2
    a, b = observables(pm1, 2.0), observables(binary.astype(np.float32), 2.0)
    for name in physics.OBSERVABLES:
        np.testing.assert_allclose(a[name][0], b[name][0])
    flat = observables(pm1.reshape(40, 16), 2.0)
    assert flat["energy"] == a["energy"]
    with pytest.raises(ValueError, match=r"values in \{-1, \+1\} or in \{0, 1\}"):
        observables(pm1 * 2, 2.0)
    with pytest.raises(ValueError, match="mix of -1, 0 and 1"):
        observables(np.where(binary == 0, 0, pm1) * np.sign(rng.standard_normal((40, 4, 4))), 2.0)
    with pytest.raises(ValueError, match=r"values in"):
        observables(pm1 * 0.5, 2.0)
    with pytest.raises(ValueError, match=r"values in"):
        observables(np.full((40, 4, 4), np.nan), 2.0)
    with pytest.raises(ValueError, match="L\\*L columns"):
        observables(pm1.reshape(40, 16)[:, :15], 2.0)
    with pytest.raises(ValueError, match="shape"):
        observables(pm1[0, 0], 2.0)
    with pytest.raises(ValueError, match="shape"):
        observables(pm1[:, :, :3], 2.0)
    with pytest.raises(ValueError, match="n_blocks"):
        observables(pm1[:10], 2.0, n_blocks=20)
    with pytest.raises(ValueError, match="temperature"):
        observables(pm1, -1.0)
    with pytest.raises(ValueError):
        physics.exact_enumeration(5, 2.0)
    with pytest.raises(ValueError):
        physics.transfer_matrix(11, 2.0)
    with pytest.raises(ValueError, match="even L"):
        physics.simulate(5, [2.0], 10)
    with pytest.raises(ValueError, match="> 0"):
        physics.simulate(4, [0.0, 2.0], 10)
    with pytest.raises(ValueError, match="integer seed"):
        datasets.load_or_simulate(4, [2.0], 10, seed=None)


# ---------------------------------------------------------------- cache and tf.data
SMALL = dict(n_chains=8, n_equilibrate=20, n_pilot=40)


def test_load_or_simulate_caches_atomically(tmp_path, monkeypatch):
    a, meta = datasets.load_or_simulate(4, [2.0, 3.0], 32, seed=1, cache_dir=tmp_path, **SMALL)
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith(".npz") and not files[0].startswith(".tmp")

    def fail(*args, **kwargs):
        raise AssertionError("simulate called despite a cache hit")

    monkeypatch.setattr(datasets, "simulate", fail)
    b, meta_b = datasets.load_or_simulate(4, [2.0, 3.0], 32, seed=1, cache_dir=tmp_path, **SMALL)
    np.testing.assert_array_equal(a, b)
    assert meta_b["cache_key"] == meta["cache_key"] and meta_b["spacing"] == meta["spacing"]
    # Any parameter change, including a default spelled out, maps to its own key.
    key = datasets._cache_key(4, [2.0, 3.0], 32, 1, SMALL)[0]
    assert key == datasets._cache_key(4, [2.0, 3.0], 32, 1, dict(SMALL, wolff_max_t=physics.WOLFF_MAX_T))[0]
    assert key != datasets._cache_key(4, [2.0, 3.0], 32, 2, SMALL)[0]
    assert key != datasets._cache_key(4, [2.0, 3.0 + 1e-12], 32, 1, SMALL)[0]


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_GEN_CACHE", str(tmp_path))
    assert datasets.default_cache_dir() == os.path.join(str(tmp_path), "ising")
    monkeypatch.delenv("KERAS_GEN_CACHE")
    assert datasets.default_cache_dir().endswith(os.path.join(".cache", "keras_gen", "ising"))


def test_dataset_feeds_keras_fit(tmp_path):
    import keras
    import tensorflow as tf

    kw = dict(cache_dir=tmp_path, **SMALL)
    ds = datasets.dataset(4, [2.0, 3.0], 32, seed=1, batch_size=16, **kw)
    x = np.concatenate([b.numpy() for b in ds])
    assert x.shape == (64, 16) and x.dtype == np.float32 and set(np.unique(x)) <= {0.0, 1.0}
    pm1 = datasets.dataset(
        4,
        [2.0, 3.0],
        32,
        seed=1,
        spins="pm1",
        flatten=False,
        shuffle=False,
        temperature_index=1,
        batch_size=32,
        with_temperature=True,
        **kw,
    )
    xb, tb = next(iter(pm1))
    assert xb.shape == (32, 4, 4, 1) and set(np.unique(xb.numpy())) == {-1.0, 1.0}
    np.testing.assert_allclose(tb.numpy(), 3.0)
    raw, _ = datasets.load_or_simulate(4, [2.0, 3.0], 32, seed=1, **kw)
    np.testing.assert_array_equal(xb.numpy()[..., 0], raw[1])
    with pytest.raises(ValueError, match="binary"):
        datasets.dataset(4, [2.0], 32, spins="ising", **kw)

    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(16, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    history = model.fit(ds.map(lambda v: (v, v)), epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    assert isinstance(ds, tf.data.Dataset)


def test_named_dataset_through_keras_gen_data(tmp_path):
    """data.load("ising", ...) is keras_gen.physics.datasets.load: splits are independent simulations,
    spins come as {0, 1} or ±1, labels are temperatures, MNIST-style options are kept."""
    from keras_gen import data

    kw = dict(L=4, temperature=[1.5, 3.0], n_samples=32, cache_dir=tmp_path, **SMALL)
    train = np.concatenate([b.numpy() for b in data.load("ising", "train", shuffle=False, batch_size=64, **kw)])
    assert train.shape == (64, 4, 4, 1) and set(np.unique(train)) <= {0.0, 1.0}
    x, t = data.load_arrays("ising", "train", **kw)
    np.testing.assert_array_equal(x, train)
    np.testing.assert_array_equal(t, np.repeat(np.float32([1.5, 3.0]), 32))
    test, _ = data.load_arrays("ising", "test", **kw)
    assert not np.array_equal(test, train)  # another simulation
    pm1, _ = data.load_arrays("ising", "train", spins="pm1", flatten=True, **kw)
    np.testing.assert_array_equal(pm1, 2 * train.reshape(64, 16) - 1)
    # Observables read every layout the pipeline produces: (n, L, L, 1) {0, 1} and flat ±1.
    assert observables(train[:32], 1.5)["energy"] == observables(pm1[:32], 1.5)["energy"]
    xb, tb = next(iter(data.load("ising", "train", with_labels=True, shuffle=False, batch_size=64, **kw)))
    np.testing.assert_array_equal(tb.numpy(), t)
    # Shuffled batches are a permutation of the split, the same for the same seed.
    a = np.concatenate([b.numpy() for b in data.load("ising", "train", batch_size=16, **kw)])
    b = np.concatenate([b.numpy() for b in data.load("ising", "train", batch_size=16, **kw)])
    np.testing.assert_array_equal(a, b)
    assert sorted(map(bytes, a)) == sorted(map(bytes, train)) and not np.array_equal(a, train)
    with pytest.raises(ValueError, match="split"):
        data.load("ising", "holdout", **kw)
    with pytest.raises(TypeError, match="no options"):
        data.load("ring8", L=4)


def test_lattice_symmetries_and_augmentation_preserve_the_measure():
    """Every torus symmetry is a distinct site permutation preserving each configuration's
    energy; the augmented pipeline keeps energies and |M| and really moves the spins."""
    import tensorflow as tf

    from keras_gen.recipes.ising import symmetry_augment

    for L in (3, 4, 8):
        perms = physics.lattice_symmetries(L)
        assert perms.shape == (8 * L * L, L * L)
        assert len({tuple(p) for p in perms}) == len(perms)  # L >= 3: all 8 L^2 are distinct
        assert (perms[0] == np.arange(L * L)).all() and (np.sort(perms, axis=1) == np.arange(L * L)).all()
        rng = np.random.default_rng(L)
        s = rng.choice([-1, 1], size=(5, L * L)).astype(np.int8)
        e = physics.lattice_energy(s.reshape(5, L, L))
        for p in perms[rng.integers(0, len(perms), 20)]:
            np.testing.assert_array_equal(physics.lattice_energy(s[:, p].reshape(5, L, L)), e)
    v = (np.random.default_rng(0).random((64, 64)) < 0.3).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices(v).batch(16).repeat(2)
    out = np.concatenate([b.numpy() for b in symmetry_augment(batches, 8, seed=3)])
    pm1 = lambda a: (2 * a - 1).reshape(-1, 8, 8)  # noqa: E731
    np.testing.assert_array_equal(physics.lattice_energy(pm1(out)), np.tile(physics.lattice_energy(pm1(v)), 2))
    np.testing.assert_array_equal(
        np.abs(physics.lattice_magnetization(pm1(out))), np.tile(np.abs(physics.lattice_magnetization(pm1(v))), 2)
    )
    assert (out != np.tile(v, (2, 1))).any(axis=1).mean() > 0.9  # nearly every configuration moved
    flipped = np.sign(physics.lattice_magnetization(pm1(out))) != np.tile(
        np.sign(physics.lattice_magnetization(pm1(v))), 2
    )
    assert 0.3 < flipped.mean() < 0.7  # the global flip, with probability 1/2
    again = np.concatenate([b.numpy() for b in symmetry_augment(batches, 8, seed=3)])
    np.testing.assert_array_equal(out, again)  # seeded: reproducible


def test_correlation_function_known_configurations():
    L = 6
    up = np.ones((1, L, L), np.int8)
    np.testing.assert_array_equal(physics.correlation_function(up)[0], np.ones(L // 2 + 1))
    i, j = np.indices((L, L))
    checker = ((-1) ** (i + j)).astype(np.int8)[None]
    np.testing.assert_array_equal(physics.correlation_function(checker)[0], (-1.0) ** np.arange(L // 2 + 1))
    # Stripes along x: fully correlated along y, alternating along x; G averages the two axes.
    stripes = ((-1) ** j).astype(np.int8)[None]
    r = np.arange(L // 2 + 1)
    np.testing.assert_array_equal(physics.correlation_function(stripes)[0], 0.5 * (1 + (-1.0) ** r))
    # Translation and global flip leave G unchanged.
    rng = np.random.default_rng(0)
    s = physics.random_lattices(1, 5, L, rng)[0]
    g = physics.correlation_function(s)
    np.testing.assert_allclose(physics.correlation_function(np.roll(-s, (2, 3), axis=(1, 2))), g)


def test_correlation_function_exact_limits():
    """Exact G(r) on L = 4: G(0) = 1; at high T, G(1) = tanh(beta) to first order
    (the one-bond path) and G(2) ~ 2 tanh^2(beta) (two two-bond paths); G(r) decays with r."""
    T = np.array([20.0, 3.0, 1.0])
    G = physics.exact_enumeration(4, T)["correlation"]
    np.testing.assert_allclose(G[:, 0], 1.0)
    t = np.tanh(1 / T[0])
    assert G[0, 1] == pytest.approx(t, rel=0.01)
    assert G[0, 2] == pytest.approx(2 * t**2, rel=0.05)
    assert np.all(np.diff(G[:2], axis=1) < 0)
    assert G[2, 2] > 0.99  # ordered: long-range order


def test_periodic_padding_is_a_torus():
    """A conv after PeriodicPad2D commutes with lattice translations (on the torus),
    unlike zero padding; the padded border holds the opposite edge."""
    import keras

    from keras_gen.models.ising import PeriodicPad2D

    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    p = keras.ops.convert_to_numpy(PeriodicPad2D(1)(x))[0, :, :, 0]
    assert p.shape == (6, 6)
    np.testing.assert_array_equal(p[0, 1:-1], x[0, -1, :, 0])
    np.testing.assert_array_equal(p[1:-1, 0], x[0, :, -1, 0])
    assert p[0, 0] == x[0, -1, -1, 0]
    conv = keras.Sequential([keras.Input((4, 4, 1)), PeriodicPad2D(1), keras.layers.Conv2D(2, 3)])
    rng = np.random.default_rng(1)
    z = rng.standard_normal((3, 4, 4, 1)).astype(np.float32)
    shifted = np.roll(z, (1, 2), axis=(1, 2))
    np.testing.assert_allclose(conv(shifted), np.roll(conv(z), (1, 2), axis=(1, 2)), atol=1e-5)


def _rbm_exact_observables(layer, T):
    """Exact observables of an RBM's visible distribution p(v) ~ exp(-F(v)) over all
    2^16 states of a 4 x 4 lattice (no sampling)."""
    from keras_gen.evaluation.likelihood import binary_states, free_energy_numpy

    v = binary_states(16)
    logp = -free_energy_numpy(layer, v)
    p = np.exp(logp - logp.max())
    p /= p.sum()
    s = (2 * v - 1).astype(np.int8).reshape(-1, 4, 4)
    e = physics.lattice_energy(s) / 16
    am = np.abs(physics.lattice_magnetization(s)) / 16
    return {
        "energy": p @ e,
        "abs_magnetization": p @ am,
        "specific_heat": 16 * (p @ e**2 - (p @ e) ** 2) / T**2,
        "susceptibility": 16 * (p @ am**2 - (p @ am) ** 2) / T,
    }


@pytest.mark.parametrize("T", [1.0, physics.TC, 3.5])
def test_exact_ising_rbm_is_the_boltzmann_distribution(T):
    """The bond RBM's free energy is E(s)/T up to a constant on all 2^16 states of
    a 4 x 4 torus, so its exact observables are the Ising model's; it is symmetric
    under the global flip and translation-tied."""
    from keras_gen.evaluation.likelihood import binary_states, free_energy_numpy
    from keras_gen.models.ising import exact_ising_rbm

    model = exact_ising_rbm(4, T)
    v = binary_states(16)
    free = free_energy_numpy(model.layer, v)
    energy = physics.lattice_energy((2 * v - 1).astype(np.int8).reshape(-1, 4, 4))
    offset = free - energy / T
    # The weights are float32: a carries a relative rounding of ~6e-8, which moves each
    # of the 32 bonds' log-weights by ~1e-6 at most.
    assert np.ptp(offset) < 1e-4, np.ptp(offset)
    np.testing.assert_allclose(free_energy_numpy(model.layer, 1 - v), free, rtol=0, atol=1e-4)
    learned, exact = _rbm_exact_observables(model.layer, T), physics.exact_enumeration(4, T)
    for name, value in learned.items():
        assert value == pytest.approx(exact[name], rel=1e-4), name
    assert model.periodic_lattice == (4, 4) and model.filter_shape == ((1, 2), (2, 1))
    with pytest.raises(ValueError, match="temperature"):
        exact_ising_rbm(4, 0.0)


@pytest.mark.slow
def test_rbm_learns_ising_end_to_end(tmp_path):
    """Data pipeline -> train_ising_rbm (make_rbm + fit) -> Gibbs chains -> observables.

    L = 4 makes the trained RBM's own distribution exactly computable (2^16 visible
    states), which separates two questions. (1) Did the RBM learn the Ising model?
    An untrained RBM has E ~ 0 and |m| ~ 0.2; after this short centered CD-10 run
    (measured: E -6.2%, |m| +0.6% of exact; -10.1% and -0.2% without centering) its
    exact E must be within 20% and |m| within 3% of the exact Ising values.
    (2) Do sampled chains measure the RBM correctly? Their
    observables must match the RBM's exact ones within 4 jackknife errors."""
    from keras_gen.evaluation.ising import COMPARED, compare_with_exact, rbm_sampler
    from keras_gen.recipes.ising import train_ising_rbm
    from keras_gen.sampling.gibbs import gibbs_chains

    T = 2.5
    x, _ = datasets.load_arrays(
        "train",
        L=4,
        temperature=T,
        n_samples=4000,
        flatten=True,
        seed=0,
        cache_dir=tmp_path,
        n_chains=16,
        n_equilibrate=100,
        n_pilot=200,
    )
    exact = physics.exact_enumeration(4, T)
    model, _ = train_ising_rbm(
        x, n_hidden=32, k=10, epochs=10, batch_size=50, learning_rate=0.1, persistent=False, seed=0
    )
    learned = _rbm_exact_observables(model.layer, T)
    assert abs(learned["energy"] / exact["energy"] - 1) < 0.2, learned
    assert abs(learned["abs_magnetization"] / exact["abs_magnetization"] - 1) < 0.03, learned

    chains = gibbs_chains(rbm_sampler(model), n_chains=200, n_keep=40, thin=5, n_burn=200, seed=3)
    assert chains.shape == (200, 40, 16) and set(np.unique(chains)) <= {0.0, 1.0}
    rows = compare_with_exact(chains.reshape(-1, 16), T, exact=learned)
    for name in COMPARED:
        assert abs(rows[name]["sigma"]) < 4, (name, rows[name])


def test_ising_rbms_holds_one_rbm_per_temperature():
    from keras_gen.models.ising import make_ising_rbms
    from keras_gen.models.rbm import make_rbm

    model = make_ising_rbms([1.5, 3.0], L=4, n_hidden=8, seed=0)
    model.build_for_data()
    trained = make_rbm("bernoulli", 16, 8, persistent=False, seed=5)
    model.set_rbm(3.0, trained)
    np.testing.assert_array_equal(model.rbm_layers[1].kernel.numpy(), trained.layer.kernel.numpy())
    assert not np.array_equal(model.rbm_layers[0].kernel.numpy(), trained.layer.kernel.numpy())
    s = model.sample(7, seed=1, temperature=3.0, gibbs_steps=3)
    assert s.shape == (7, 16) and set(np.unique(s)) <= {0.0, 1.0}
    np.testing.assert_array_equal(s, model.sample(7, seed=1, temperature=3.0, gibbs_steps=3))
    with pytest.raises(ValueError, match="No RBM for T"):
        model.sample(2, temperature=2.0)
    with pytest.raises(ValueError, match="does not fit"):
        model.set_rbm(1.5, make_rbm("bernoulli", 16, 4, persistent=False))


SERVE_ISING_WITHOUT_KERAS_GEN = """
import sys, numpy as np, tensorflow as tf
sig = tf.saved_model.load(sys.argv[1]).signatures
out = {name: fn(n=tf.constant(6), seed=tf.constant(3), gibbs_steps=tf.constant(5))["spins"].numpy()
       for name, fn in sig.items()}
assert not any(m == "keras_gen" or m.startswith("keras_gen.") for m in sys.modules), "keras_gen imported"
np.savez(sys.argv[2], **out)
"""


@pytest.mark.slow
def test_ising_rbms_export_serves_without_keras_gen(tmp_path):
    """One `sample_T...` signature per temperature; with start="ordered" the served
    chains start ordered, so at T = 0.3 (the exact bond RBM) they stay ordered."""
    import subprocess
    import sys

    from keras_gen.models.ising import exact_ising_rbm, make_ising_rbms

    model = make_ising_rbms([0.3, 2.0], L=4, n_hidden=32, start="ordered", seed=0)
    model.build_for_data()
    for temp in (0.3, 2.0):
        model.set_rbm(temp, exact_ising_rbm(4, temp))
    model.export_saved_model(str(tmp_path / "export"))
    (tmp_path / "serve.py").write_text(SERVE_ISING_WITHOUT_KERAS_GEN)
    result = subprocess.run(
        [sys.executable, str(tmp_path / "serve.py"), str(tmp_path / "export"), str(tmp_path / "spins.npz")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    spins = dict(np.load(tmp_path / "spins.npz"))
    assert {"sample_T0p3000", "sample_T2p0000"} <= set(spins)
    np.testing.assert_array_equal(spins["sample_T0p3000"].mean(axis=1), [1.0] * 3 + [0.0] * 3)
    assert spins["sample_T2p0000"].shape == (6, 16) and set(np.unique(spins["sample_T2p0000"])) <= {0.0, 1.0}


def test_ising_rbms_start_chains_ordered_when_asked():
    """At T = 0.3 the exact bond RBM keeps an ordered start ordered (a flip costs
    e^{-8/0.3}), while random starts stay disordered after a few sweeps."""
    from keras_gen.models.ising import IsingRBMs, exact_ising_rbm, make_ising_rbms

    exact = exact_ising_rbm(4, 0.3)
    for start in ("ordered", "random"):
        model = make_ising_rbms([0.3], L=4, n_hidden=32, start=start, seed=0)
        model.build_for_data()
        model.set_rbm(0.3, exact)
        s = model.sample(10, seed=2, temperature=0.3, gibbs_steps=5)
        magnetization = s.mean(axis=1)
        if start == "ordered":
            np.testing.assert_array_equal(magnetization, [1.0] * 5 + [0.0] * 5)
        else:
            assert np.any((magnetization > 0) & (magnetization < 1))
    assert IsingRBMs.from_config(model.get_config()).start == "random"
    with pytest.raises(ValueError, match="start must be"):
        make_ising_rbms([1.0], L=4, start="cold")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ising_rbm_L8", "ising_bond_rbm_L8"])
def test_zoo_ising_rbms_reproduce_their_card(name):
    """The zoo entry loads (sha256 checked) and its samples reproduce the card's
    numbers at Tc and at T = 1.0 within the combined errors (a shorter run than the
    card's: 300 chains instead of 1000, same burn-in and thinning; the start is the
    model's own, from its card)."""
    from keras_gen import zoo
    from keras_gen.evaluation.ising import COMPARED, compare_with_exact, rbm_sampler
    from keras_gen.sampling.gibbs import gibbs_chains

    if name not in zoo.list():
        pytest.skip(f"the {name} zoo entry has not been trained in this checkout")
    model = zoo.load(name)
    card = model.zoo_card
    protocol = card["metrics"]["evaluation"]
    for temp in (physics.TC, 1.0):
        i = model.index(temp)
        chains = gibbs_chains(
            rbm_sampler(model, temp), 300, protocol["n_keep"], protocol["thin"], protocol["n_burn"], seed=99 + i
        )
        rows = compare_with_exact(chains.reshape(-1, 64), temp)
        recorded = card["metrics"]["per_temperature"][f"T={model.temperatures[i]:.4f}"]
        for observable in COMPARED:
            combined = math.hypot(rows[observable]["error"], recorded[observable]["error"])
            assert abs(rows[observable]["value"] - recorded[observable]["value"]) < 4 * combined, (
                temp,
                observable,
                rows[observable],
                recorded[observable],
            )
