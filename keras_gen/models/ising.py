"""Generative models of 2-D Ising configurations, and their thermodynamics.

Reads top to bottom:

1. Layers: `PeriodicPad2D`, the wrap-around padding that makes a convolution
   see the torus the spins live on.
2. Builders: `make_ising_vae` (a convolutional VAE with periodic padding and a
   Bernoulli decoder) and `train_ising_rbm` (an RBM from `keras_gen.rbm.make_rbm`
   trained by PCD with the recipe of the Ising zoo entry).
3. `IsingRBMs`: one Bernoulli RBM per temperature in one model, the zoo entry
   `ising_rbm_L8` (`zoo.load("ising_rbm_L8").sample(1000, temperature=2.269)`).
4. Measuring a model's thermodynamics: `gibbs_chains` (long, thinned Gibbs
   chains of an RBM), `bernoulli_spins` (spin draws from a VAE or GAN's pixel
   probabilities), and `compare_with_exact` (E, |m|, C, chi with jackknife
   errors against the exact finite-lattice values of `keras_gen.ising`).

Spins enter the models as {0, 1} (`ising.load(..., spins="binary")`,
v = (s + 1) / 2) and come out the same way; `keras_gen.ising.observables`
accepts either convention.
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_gen.core.base import GenerativeModel, register
from keras_gen.core.random import bernoulli, fold_in, seed_tensor
from keras_gen.models.rbm import BernoulliRBM, make_rbm
from keras_gen.models.vae import VAE
from keras_gen.physics import ising
from keras_gen.sampling.gibbs import block_gibbs

COMPARED = ("energy", "abs_magnetization", "specific_heat", "susceptibility")
"""The observables a model is judged on (names of `keras_gen.ising.observables`)."""

TARGETS = {"energy": 0.01, "abs_magnetization": 0.01, "specific_heat": 0.05, "susceptibility": 0.05}
"""Relative accuracy a model must reach against the exact values (the physics targets)."""


def reference_temperatures():
    """The eleven temperatures of Torlai & Melko (2016): ``linspace(1.0, 3.54, 11)``
    with its point nearest Tc (2.27) replaced by Tc itself."""
    t = np.linspace(1.0, 3.54, 11)
    t[np.argmin(np.abs(t - ising.TC))] = ising.TC
    return t


# ===================================================================== layers
@register
class PeriodicPad2D(layers.Layer):
    """Pads (batch, H, W, C) maps by wrapping around both spatial axes.

    A 3x3 convolution after `PeriodicPad2D(1)` with "valid" padding is a
    convolution on the torus: every site, including the edges, sees its true
    lattice neighbours, as the Ising Hamiltonian does.
    """

    def __init__(self, pad=1, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)
        if self.pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}.")

    def call(self, x):
        p = self.pad
        if p == 0:
            return x
        x = keras.ops.concatenate([x[:, -p:], x, x[:, :p]], axis=1)
        return keras.ops.concatenate([x[:, :, -p:], x, x[:, :, :p]], axis=2)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        grow = lambda d: None if d is None else d + 2 * self.pad  # noqa: E731
        return (b, grow(h), grow(w), c)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


# =================================================================== builders
def build_periodic_encoder(L=8, latent_dim=4, filters=(32, 64), hidden=128):
    """Torus convolutions (wrap padding, 3x3, the second and later strided by 2),
    a dense layer, then z_mean and z_log_var."""
    inputs = keras.Input(shape=(L, L, 1), name="x")
    x = inputs
    for i, f in enumerate(filters):
        x = PeriodicPad2D(1)(x)
        x = layers.Conv2D(f, 3, strides=1 if i == 0 else 2, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(hidden, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_periodic_decoder(L=8, latent_dim=4, filters=(32, 32), hidden=128):
    """Dense to an (L, L, filters[0]) map, torus convolutions, then a torus 3x3
    convolution to one logit per spin (p(v = 1 | z) = sigmoid(logit))."""
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(hidden, activation="relu")(inputs)
    x = layers.Dense(L * L * filters[0], activation="relu")(x)
    x = layers.Reshape((L, L, filters[0]))(x)
    for f in filters[1:]:
        x = PeriodicPad2D(1)(x)
        x = layers.Conv2D(f, 3, activation="relu")(x)
    x = PeriodicPad2D(1)(x)
    outputs = layers.Conv2D(1, 3, name="logits")(x)
    return keras.Model(inputs, outputs, name="decoder")


def make_ising_vae(L=8, latent_dim=4, beta=1.0, seed=None, name="ising_vae", **sizes):
    """A convolutional VAE on the L x L torus with a Bernoulli decoder.

    `sizes` may hold `encoder_filters`, `decoder_filters` and `hidden`.
    Data: {0, 1} spins of shape (L, L, 1) (`ising.load(..., flatten=False)`).
    """
    L = ising._check_L(L)
    hidden = sizes.pop("hidden", 128)
    enc = build_periodic_encoder(L, latent_dim, sizes.pop("encoder_filters", (32, 64)), hidden)
    dec = build_periodic_decoder(L, latent_dim, sizes.pop("decoder_filters", (32, 32)), hidden)
    if sizes:
        raise TypeError(f"Unknown VAE size arguments {sorted(sizes)}.")
    return VAE(enc, dec, likelihood="bernoulli", beta=beta, seed=seed, name=name)


# Recipe of the Ising RBMs (zoo entry `ising_rbm_L8` and the `keras-gen ising` demo).
RBM_RECIPE = {
    "n_hidden": 64,
    "k": 20,
    "batch_size": 100,
    "epochs": 60,
    "learning_rate": 0.02,
    "momentum": 0.9,
    "final_learning_rate_fraction": 0.02,
    "persistent": False,
    "weight_stddev": 0.01,
    "optimizer": "sgd",
    "augment": False,
    "centering": True,
    "translation_tied": False,
    "filter_shape": None,
}


def train_ising_rbm(x, n_hidden=None, k=None, epochs=None, batch_size=None, learning_rate=None, momentum=None,
                    final_learning_rate_fraction=None, persistent=None, weight_stddev=None, optimizer=None, augment=None,
                    centering=None, translation_tied=None, filter_shape=None, seed=0, verbose=0, name="ising_rbm"):
    """A Bernoulli RBM (`make_rbm`) fitted to {0, 1} spins `x` of shape (n, L*L) by CD-k or PCD-k.

    The recipe (`RBM_RECIPE`) is centered CD-20: the centered gradient
    (Montavon & Mueller 2012) removes the mean activities from the update,
    which is what lets the energy converge at high T, where plain CD/PCD
    lagged the data by 2-7% within any affordable budget. The negative phase
    starts at the data (not persistent): at low T, persistent chains over-
    or under-shoot the rare single-spin excitations that set C and chi
    (T = 1: C -44% with centered PCD, +44% with plain CD, -2% centered CD).
    SGD with momentum and a cosine learning-rate decay to a small fraction
    of the start: the decay is what brings the fluctuation observables (C and
    chi) to their values, since the stochastic gradient keeps the
    parameters jittering at a fixed rate. The visible biases start at the
    data's log-odds (Hinton's guide). With `augment`, every batch goes
    through a random symmetry of the torus and a random global spin flip
    (`symmetry_augment`). Arguments left `None` come from `RBM_RECIPE`.
    Returns `(model, history)`.
    """
    r = dict(RBM_RECIPE)
    for key, value in dict(n_hidden=n_hidden, k=k, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate, momentum=momentum,
                           final_learning_rate_fraction=final_learning_rate_fraction,
                           persistent=persistent, weight_stddev=weight_stddev, optimizer=optimizer,
                           augment=augment, centering=centering, translation_tied=translation_tied,
                           filter_shape=filter_shape).items():
        if value is not None:
            r[key] = value
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[0] < r["batch_size"]:
        raise ValueError(f"x must be (n >= batch_size, L*L) spins, got shape {x.shape}.")
    L = math.isqrt(x.shape[1])
    model = make_rbm("bernoulli", x.shape[1], int(r["n_hidden"]), k=int(r["k"]), persistent=bool(r["persistent"]),
                     n_chains=int(r["batch_size"]) if r["persistent"] else None, monitor=False,
                     weight_stddev=float(r["weight_stddev"]), centering=bool(r["centering"]),
                     periodic_lattice=(L, L) if r["translation_tied"] else None,
                     filter_shape=r["filter_shape"] if r["translation_tied"] else None, seed=seed, name=name)
    model.validate_data(x)  # before any work: {0, 1} values of the right width
    model.initialize_from_data(x)
    steps = len(x) // int(r["batch_size"])
    schedule = keras.optimizers.schedules.CosineDecay(
        float(r["learning_rate"]), int(r["epochs"]) * steps, alpha=float(r["final_learning_rate_fraction"]))
    if r["optimizer"] == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=float(r["momentum"]))
    elif r["optimizer"] == "adam":
        optimizer = keras.optimizers.Adam(schedule)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {r['optimizer']!r}.")
    model.compile(optimizer=optimizer, steps_per_execution=min(steps, 200))
    data = (tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(int(r["batch_size"]), drop_remainder=True).repeat())
    if r["augment"]:
        data = symmetry_augment(data, L, seed)
    history = model.fit(data, epochs=int(r["epochs"]), steps_per_epoch=steps, verbose=verbose)
    return model, history


def symmetry_augment(batches, L, seed=0):
    """`batches` of flat {0, 1} spins, each configuration mapped through a random
    symmetry of the L x L torus (`ising.lattice_symmetries`) and, with
    probability 1/2, the global flip v -> 1 - v.

    The Ising measure is invariant under all of these, so the augmented data
    has the same distribution with far more distinct configurations; the model
    sees translation- and flip-symmetric statistics instead of a finite
    sample's accidental asymmetries (at low T a finite sample's +/- balance
    and its few excitations' positions). Draws are seeded per batch index,
    so a run is reproducible.
    """
    perms = tf.constant(ising.lattice_symmetries(L))
    n_sym = int(perms.shape[0])

    def augment(i, v):
        batch = tf.shape(v)[0]
        key = tf.stack([tf.constant(int(seed), tf.int64), i])
        which = tf.random.stateless_uniform([batch], key, 0, n_sym, dtype=tf.int32)
        flip = tf.random.stateless_uniform([batch, 1], key + [0, 1 << 40]) < 0.5
        v = tf.gather(v, tf.gather(perms, which), batch_dims=1)
        return tf.where(flip, 1.0 - v, v)

    return batches.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE)


# ==================================================== one RBM per temperature
@register
class IsingRBMs(GenerativeModel):
    """One Bernoulli RBM per temperature: the Ising zoo entry in one file.

    Each temperature's RBM is trained on its own by `train_ising_rbm` (an
    `RBM` model from `make_rbm`, fitted with `fit`); `set_rbm` copies its
    parameters in. Sampling picks the RBM of the requested temperature:

        model = zoo.load("ising_rbm_L8")
        spins = model.sample(1000, seed=0, temperature=ising.TC)   # {0, 1}, (1000, 64)

    `sample` returns sampled spins (not probabilities): thermodynamics is
    measured on configurations.

    `start`: where chains start when no `init` is given, "random" spins or
    "ordered" (half all up, half all down: a Monte Carlo "cold start"). A
    model with only local couplings (`ising_bond_rbm_L8`), like the Ising model
    itself, quenched from random spins below Tc freezes into striped domains
    that local updates do not remove: the exact `exact_ising_rbm` at
    T = 1.25 gives chi +300% from random starts, +0% +- 3% from ordered ones.
    The exported `sample_T...` signatures start the same way.
    """

    def __init__(self, temperatures, L=8, n_hidden=64, start="random", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if start not in ("random", "ordered"):
            raise ValueError(f"start must be 'random' or 'ordered', got {start!r}.")
        self.start = start
        t = np.atleast_1d(ising._temperatures(temperatures))
        if len(np.unique(t)) != len(t):
            raise ValueError(f"temperatures must be distinct, got {t.tolist()}.")
        self.temperatures = [float(v) for v in t]
        self.L = ising._check_L(L)
        self.n_hidden = int(n_hidden)
        self.rbm_layers = [
            BernoulliRBM(self.L * self.L, self.n_hidden, seed=None if seed is None else int(seed) + i,
                         name=f"rbm_T{i}")
            for i in range(len(t))
        ]
        self.built = True

    @property
    def data_shape(self):
        return (self.L * self.L,)

    @property
    def data_domain(self):
        return "binary"

    def index(self, temperature):
        """Position of `temperature` among the model's (to 1e-6 relative)."""
        t = np.asarray(self.temperatures)
        match = np.flatnonzero(np.abs(t - float(temperature)) <= 1e-6 * t)
        if match.size != 1:
            raise ValueError(f"No RBM for T = {temperature}; this model has T in "
                             f"{[round(v, 6) for v in self.temperatures]}.")
        return int(match[0])

    def set_rbm(self, temperature, rbm_model):
        """Copy a trained `RBM` model's (or layer's) parameters into the slot of `temperature`."""
        layer = getattr(rbm_model, "rbm", rbm_model)
        target = self.rbm_layers[self.index(temperature)]
        if (layer.n_visible, layer.n_hidden) != (target.n_visible, target.n_hidden):
            raise ValueError(f"RBM of shape {(layer.n_visible, layer.n_hidden)} does not fit "
                             f"{(target.n_visible, target.n_hidden)}.")
        for dst, src in zip((target.kernel, target.visible_bias, target.hidden_bias),
                            (layer.kernel, layer.visible_bias, layer.hidden_bias)):
            dst.assign(src)

    def call(self, x, training=False):
        """p(h = 1 | v) under every temperature's RBM, shape (batch, n_T, n_hidden)."""
        return tf.stack([layer.hidden_probabilities(x) for layer in self.rbm_layers], axis=1)

    def train_step(self, data):
        raise NotImplementedError("Train one RBM per temperature with train_ising_rbm, then set_rbm.")

    def _run(self, i):
        cache = self.__dict__.setdefault("_gibbs_fns", {})
        if i not in cache:
            layer = self.rbm_layers[i]

            @tf.function(jit_compile=True, reduce_retracing=True)
            def run(v, steps, seed):
                return block_gibbs(layer, v, steps, seed)[0]

            cache[i] = run
        return cache[i]

    def generate_samples(self, n, seed, temperature=ising.TC, gibbs_steps=2000, init=None):
        """n spin configurations ({0, 1}) after `gibbs_steps` block-Gibbs sweeps
        from uniformly random spins, from `init` (n configurations), or with
        `init="ordered"` from the ordered states: half all up, half all down
        (below Tc, what a model with only local couplings needs; see `start`)."""
        i = self.index(temperature)
        layer = self.rbm_layers[i]
        seed = seed_tensor(seed)
        if init is None and self.start == "ordered":
            init = "ordered"
        if isinstance(init, str):
            if init != "ordered":
                raise ValueError(f"init must be None, 'ordered' or an array of spins, got {init!r}.")
            init = ordered_spins(n, layer.n_visible)
        v = layer.random_visible(n, fold_in(seed, 1)) if init is None else layer._cast(init)
        return self._run(i)(v, tf.constant(max(int(gibbs_steps), 1), tf.int32), fold_in(seed, 2))

    def serving_endpoints(self):
        n_spec = [tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.int32, name="seed"),
                  tf.TensorSpec([], tf.int32, name="gibbs_steps")]

        def sampler_of(layer):  # binds the layer without an extra argument in the signature
            def sample(n, seed, gibbs_steps):
                s = tf.stack([seed, 0])
                if self.start == "ordered":
                    v0 = ordered_spins(n, layer.n_visible)
                else:
                    v0 = layer.random_visible(n, fold_in(s, 1))
                return {"spins": block_gibbs(layer, v0, tf.maximum(gibbs_steps, 1), fold_in(s, 2))[0]}

            return sample

        return {f"sample_T{temp:.4f}".replace(".", "p"): (sampler_of(layer), n_spec)
                for temp, layer in zip(self.temperatures, self.rbm_layers)}

    def get_config(self):
        return {**super().get_config(), "temperatures": self.temperatures, "L": self.L,
                "n_hidden": self.n_hidden, "start": self.start}


def exact_ising_rbm(L, temperature, seed=None, name="exact_ising_rbm"):
    """The L x L Ising model at `temperature` written exactly as an RBM: p(v) is the Boltzmann distribution.

    One hidden unit per bond: a translation-tied RBM (`periodic_lattice=(L, L)`,
    `filter_shape=[(1, 2), (2, 1)]`) with two filters, one per lattice direction, each
    weight a on the bond's two sites. Summing the hidden unit out,
    log(1 + exp(a (v_i + v_j - 1))) = const + (a/2)(v_i + v_j) + K s_i s_j
    with s = 2v - 1 and K = 1/T when cosh(a/2) = exp(2K), so
    a = 2 arccosh(exp(2/T)), the hidden bias is -a, and the visible bias -2a
    cancels the four bonds' linear terms at every site. No field, so the
    model is symmetric under v -> 1 - v exactly.

    It is the reference a trained translation-tied RBM can be compared with
    filter by filter, and it shows what learning has to find: two weights per
    filter, a ≈ 4/T + 2 log 2 at low T (a = 5.4 at T = 1, 3.1 at Tc).
    """
    L, t = ising._check_L(L), float(temperature)
    if not t > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    a = 2.0 * math.acosh(math.exp(2.0 / t))
    model = make_rbm("bernoulli", L * L, 2 * L * L, k=1, persistent=False, monitor=False,
                     periodic_lattice=(L, L), filter_shape=[(1, 2), (2, 1)], seed=seed, name=name)
    n = L * L
    kernel = np.zeros((2, n), np.float32)  # K[f, displacement], displacements row-major
    kernel[0, [0, 1]] = a  # filter 0: the bond to the right neighbour (axis 1)
    kernel[1, [0, L]] = a  # filter 1: the bond to the neighbour below (axis 0)
    model.rbm.kernel.assign(model.translations.unfold(kernel.T))
    model.rbm.visible_bias.assign(np.full(n, -2.0 * a, np.float32))
    model.rbm.hidden_bias.assign(np.full(2 * n, -a, np.float32))
    return model


def make_ising_rbms(temperatures=None, L=8, n_hidden=64, start="random", seed=None, name="ising_rbm"):
    """`IsingRBMs` at `temperatures` (default: `reference_temperatures()`)."""
    t = reference_temperatures() if temperatures is None else temperatures
    return IsingRBMs(t, L=L, n_hidden=n_hidden, start=start, seed=seed, name=name)


def ordered_spins(n, n_visible):
    """n ordered {0, 1} configurations: the first n // 2 all up (1), the rest all down (0)."""
    up = tf.cast(tf.range(n) < n // 2, tf.float32)
    return tf.tile(up[:, None], tf.stack([1, n_visible]))


# ============================================== thermodynamics of a model
def gibbs_chains(sampler, n_chains, n_keep, thin, n_burn, seed=0):
    """Spins from long block-Gibbs chains, thinned: shape (n_chains, n_keep, n_visible).

    `sampler(n, seed, gibbs_steps, init)` is a model's `generate_samples`
    (an `RBM`'s with `return_probabilities=False`, or `IsingRBMs` bound to a
    temperature): `n_burn` sweeps from random spins, then `n_keep` states
    `thin` sweeps apart (from ordered states for `IsingRBMs(start="ordered")`).
    Samples of one chain are correlated; keep them
    chain-major (reshape to (-1, n_visible)) so the blocked jackknife of
    `ising.observables` puts whole chains in a block.
    """
    seed = seed_tensor(seed)
    v = sampler(n_chains, fold_in(seed, 0), gibbs_steps=n_burn, init=None)
    kept = np.empty((n_chains, n_keep, int(v.shape[-1])), np.float32)
    for i in range(n_keep):
        v = sampler(n_chains, fold_in(seed, i + 1), gibbs_steps=thin, init=v)
        kept[:, i] = keras.ops.convert_to_numpy(v)
    return kept


def rbm_sampler(model, temperature=None):
    """A `gibbs_chains` sampler of an `RBM` model, or of `IsingRBMs` at `temperature`."""
    if isinstance(model, IsingRBMs):
        return lambda n, seed, gibbs_steps, init: model.generate_samples(
            n, seed, temperature=temperature, gibbs_steps=gibbs_steps, init=init)
    return lambda n, seed, gibbs_steps, init: model.generate_samples(
        n, seed, gibbs_steps=gibbs_steps, init=init, return_probabilities=False)


def bernoulli_spins(probabilities, seed=0):
    """{0, 1} spins drawn independently from per-spin probabilities (a VAE's or a
    GAN's output), flattened to (n, L*L)."""
    p = tf.convert_to_tensor(np.asarray(probabilities, np.float32).reshape(len(probabilities), -1))
    return keras.ops.convert_to_numpy(bernoulli(p, seed_tensor(seed)))


def compare_with_exact(spins, T, exact=None, n_blocks=20):
    """Observables of `spins` (n, L*L) or (n, L, L) at T against the exact torus values.

    Returns {name: {"value", "error", "exact", "relative", "sigma", "target", "ok"}}
    for the names in `COMPARED`: `relative` = value / exact - 1, `sigma` =
    (value - exact) / error, `ok` = |relative| within the target of `TARGETS`.
    `exact` defaults to `ising.transfer_matrix(L, T)` (L <= 10).
    """
    s = ising.as_pm1(spins)
    obs = ising.observables(s, T, n_blocks=n_blocks)
    if exact is None:
        exact = ising.transfer_matrix(s.shape[-1], float(T))
    out = {}
    for name in COMPARED:
        value, error = obs[name]
        ref = float(np.asarray(exact[name]))
        out[name] = {
            "value": value,
            "error": error,
            "exact": ref,
            "relative": value / ref - 1.0,
            "sigma": (value - ref) / error if error > 0 else math.inf,
            "target": TARGETS[name],
            "ok": abs(value / ref - 1.0) <= TARGETS[name],
        }
    out["correlation"] = obs["correlation"]
    return out


# ====================================================================== VAE
VAE_RECIPE = {"latent_dim": 4, "encoder_filters": (16, 32), "decoder_filters": (16, 16), "hidden": 64,
              "epochs": 20, "batch_size": 256, "learning_rate": 1e-3}


def train_ising_vae(x, L=8, latent_dim=None, epochs=None, batch_size=None, learning_rate=None, seed=0,
                    verbose=0, name="ising_vae"):
    """`make_ising_vae` fitted to {0, 1} spins `x` (n, L*L) with Adam. Returns (model, history)."""
    r = dict(VAE_RECIPE)
    for key, value in dict(latent_dim=latent_dim, epochs=epochs, batch_size=batch_size,
                           learning_rate=learning_rate).items():
        if value is not None:
            r[key] = value
    x = np.asarray(x, np.float32).reshape(-1, L, L, 1)
    model = make_ising_vae(L, int(r["latent_dim"]), seed=seed, name=name, encoder_filters=r["encoder_filters"],
                           decoder_filters=r["decoder_filters"], hidden=int(r["hidden"]))
    model.validate_data(x)
    model.compile(optimizer=keras.optimizers.Adam(float(r["learning_rate"])))
    data = (tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(int(r["batch_size"])))
    history = model.fit(data, epochs=int(r["epochs"]), verbose=verbose)
    return model, history


def vae_spins(model, n, seed=0):
    """n spin configurations of a VAE: z ~ N(0, I), then every spin ~ Bernoulli(decoder)."""
    probabilities = model.sample(n, seed=seed)
    return bernoulli_spins(probabilities, seed=seed + 1)


# ================================================================ figures
OBSERVABLE_LABELS = {
    "energy": ("energy per spin $E/N$", "energy"),
    "abs_magnetization": (r"magnetization $\langle|m|\rangle$", "abs_magnetization"),
    "specific_heat": ("specific heat $C$", "specific_heat"),
    "susceptibility": (r"susceptibility $\chi$", "susceptibility"),
}


def exact_curve(L, t_min, t_max, n=40):
    """Exact torus observables on a temperature grid (transfer matrix), for plots."""
    grid = np.linspace(t_min, t_max, n)
    return grid, ising.transfer_matrix(L, grid)


def plot_observables(points, L, out_dir, prefix="ising", curve=None, title_suffix=""):
    """One PNG per observable against T: the exact curve and points with error bars.

    `points` maps a label ("Monte Carlo", "RBM", ...) to a dict
    {"T": [...], name: [(value, error), ...]} for the names in `COMPARED`.
    Returns the paths. `curve` = (T grid, transfer-matrix dict), computed if None.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_t = np.concatenate([np.asarray(p["T"], float) for p in points.values()])
    if curve is None:
        curve = exact_curve(L, all_t.min() * 0.95, all_t.max() * 1.02)
    grid, exact = curve
    os.makedirs(out_dir, exist_ok=True)
    styles = ["o", "s", "^", "D", "v"]
    paths = []
    for name in COMPARED:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        ax.plot(grid, exact[name], "k-", lw=1.2, label=f"exact (L = {L})")
        ax.axvline(ising.TC, color="0.8", lw=0.8, ls="--", zorder=0)
        ax.annotate("$T_c$", (ising.TC, 0.02), xycoords=("data", "axes fraction"), xytext=(3, 0),
                    textcoords="offset points", color="0.5", fontsize=8)
        # The axis follows the exact curve: a model far off (a VAE's C can be 100x too
        # large) is drawn as a triangle on the edge instead of squashing the curve flat.
        lo, hi = float(np.min(exact[name])), float(np.max(exact[name]))
        if lo >= 0:
            y_lo, y_hi = 0.0, 1.3 * hi
        else:
            y_lo, y_hi = lo - 0.3 * (hi - lo), max(0.0, hi + 0.15 * (hi - lo))
        for j, (label, p) in enumerate(points.items()):
            t = np.asarray(p["T"], float)
            vals = np.array([v for v, _ in p[name]])
            errs = np.array([e for _, e in p[name]])
            # Offsets keep overlapping error bars apart; the true T is the tick.
            shift = (j - (len(points) - 1) / 2) * 0.012
            inside = (vals >= y_lo) & (vals <= y_hi)
            bars = ax.errorbar(t[inside] + shift, vals[inside], yerr=errs[inside], fmt=styles[j % len(styles)],
                               ms=4, capsize=2, mfc="none" if j else None, label=label)
            for above, marker in ((True, "^"), (False, "v")):
                off = (vals > y_hi) if above else (vals < y_lo)
                if off.any():
                    ax.plot(t[off] + shift, np.full(off.sum(), y_hi if above else y_lo), marker,
                            color=bars[0].get_color(), ms=7, clip_on=False, label=f"{label}, off scale")
        ax.set_ylim(y_lo, y_hi)
        ax.set_xlabel("temperature $T$")
        ax.set_ylabel(OBSERVABLE_LABELS[name][0])
        ax.set_title(f"{OBSERVABLE_LABELS[name][0]}, {L}x{L} torus{title_suffix}", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{prefix}_{OBSERVABLE_LABELS[name][1]}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def results_table(rows):
    """Markdown table of `compare_with_exact` results: rows of (label, T, comparison)."""
    head = ("| model | T | E/N (rel.) | <\\|m\\|> (rel.) | C (rel.) | chi (rel.) | all within target |\n"
            "|---|---:|---:|---:|---:|---:|:---:|")
    lines = [head]
    for label, T, comp in rows:
        cells = [f"{comp[n]['value']:.4f} ± {comp[n]['error']:.4f} ({100 * comp[n]['relative']:+.1f}%)"
                 for n in COMPARED]
        ok = all(comp[n]["ok"] for n in COMPARED)
        lines.append(f"| {label} | {T:.3f} | " + " | ".join(cells) + f" | {'yes' if ok else 'no'} |")
    return "\n".join(lines)


# ============================================================ the demo
DEMO_TEMPERATURES = (1.5, ising.TC, 3.0)


def demo(temperatures=DEMO_TEMPERATURES, L=8, n_samples=20_000, epochs=50, n_hidden=64, k=20, seed=0,
         out="runs/ising", n_chains=500, n_keep=40, thin=10, n_burn=1000, log=print):
    """Simulate the Ising model at a few temperatures, train an RBM on each,
    and compare the RBMs' thermodynamics with the exact L x L values.

    Returns {"rows": [(label, T, comparison)], "figures": [...], "table": markdown,
    "timings": {...}}; writes the figures and `results.json` to `out`.
    """
    import json
    import time

    start = time.perf_counter()
    t = np.atleast_1d(ising._temperatures(temperatures))
    L = ising._check_L(L, 2, 10)
    os.makedirs(out, exist_ok=True)
    timings = {}
    log(f"Simulating the {L}x{L} Ising model at T = {', '.join(f'{v:.3f}' for v in t)} "
        f"({n_samples} samples each; cached under {ising.default_cache_dir()})...")
    x, _ = ising.load_arrays("train", L=L, temperature=t, n_samples=n_samples, flatten=True, seed=seed)
    x = x.reshape(len(t), n_samples, L * L)
    timings["simulation_s"] = time.perf_counter() - start
    exact = ising.transfer_matrix(L, t)
    rows, mc_points, rbm_points = [], {"T": list(t)}, {"T": list(t)}
    for name in COMPARED:
        mc_points[name], rbm_points[name] = [], []
    for i, temp in enumerate(t):
        t0 = time.perf_counter()
        model, _ = train_ising_rbm(x[i], n_hidden=n_hidden, k=k, epochs=epochs, seed=seed + i,
                                   name=f"ising_rbm_{i}")
        t1 = time.perf_counter()
        chains = gibbs_chains(rbm_sampler(model), n_chains, n_keep, thin, n_burn, seed=seed + 100 + i)
        ex_i = {n: exact[n][i] for n in COMPARED}
        comp = compare_with_exact(chains.reshape(-1, L * L), temp, exact=ex_i)
        data_comp = compare_with_exact(x[i], temp, exact=ex_i)
        rows += [("Monte Carlo data", temp, data_comp), ("RBM", temp, comp)]
        for name in COMPARED:
            mc_points[name].append((data_comp[name]["value"], data_comp[name]["error"]))
            rbm_points[name].append((comp[name]["value"], comp[name]["error"]))
        timings[f"T={temp:.3f}"] = {"train_s": t1 - t0, "sample_s": time.perf_counter() - t1}
        log(f"T = {temp:.3f}: trained in {t1 - t0:.0f} s, sampled in {time.perf_counter() - t1:.0f} s; " +
            ", ".join(f"{n} {comp[n]['value']:.4f} ± {comp[n]['error']:.4f} (exact {comp[n]['exact']:.4f}, "
                      f"{100 * comp[n]['relative']:+.1f}%)" for n in COMPARED))
    figures = plot_observables({"Monte Carlo data": mc_points, f"RBM ({n_hidden} hidden)": rbm_points}, L, out,
                               prefix="ising_rbm")
    timings["total_s"] = time.perf_counter() - start
    table = results_table(rows)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"temperatures": t.tolist(), "L": L, "timings": timings,
                   "rows": [{"model": label, "T": temp, **{n: {k_: v for k_, v in c[n].items()}
                                                             for n in COMPARED}}
                            for label, temp, c in rows]}, f, indent=1, default=float)
    return {"rows": rows, "figures": figures, "table": table, "timings": timings}
