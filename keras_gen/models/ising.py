"""Generative models of 2-D Ising configurations.

Reads top to bottom:

1. Layers: `PeriodicPad2D`, the wrap-around padding that makes a convolution
   see the torus the spins live on.
2. Builders: `make_ising_vae`, a convolutional VAE with periodic padding and a
   Bernoulli decoder.
3. `IsingRBMs`: one Bernoulli RBM per temperature in one model, the zoo entries
   `ising_rbm_L8` and `ising_bond_rbm_L8`
   (`zoo.load("ising_rbm_L8").sample(1000, temperature=2.269)`), built by
   `make_ising_rbms`; `exact_ising_rbm`, the Ising model written exactly as an
   RBM; `ordered_spins`, the cold start of their chains.

Training them is in `keras_gen.recipes.ising`, measuring their thermodynamics
against exact results in `keras_gen.evaluation.ising`.

Spins enter the models as {0, 1} (`keras_gen.data.load("ising", ..., spins="binary")`,
v = (s + 1) / 2) and come out the same way; `keras_gen.physics.observables.observables`
accepts either convention.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_gen.core.base import GenerativeModel, register
from keras_gen.core.caching import compiled_once
from keras_gen.core.random import fold_in, seed_tensor
from keras_gen.models.rbm import BernoulliRBM, as_rbm_layer, make_rbm
from keras_gen.models.vae import VAE
from keras_gen.physics.lattice import TC, as_temperatures, check_lattice_size, reference_temperatures
from keras_gen.sampling.gibbs import block_gibbs

GIBBS_STEPS = 2000  # sweeps of `sample` and of the exported `sample_T...` signatures


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
    Data: {0, 1} spins of shape (L, L, 1) (`keras_gen.data.load("ising", ..., flatten=False)`).
    """
    L = check_lattice_size(L)
    hidden = sizes.pop("hidden", 128)
    enc = build_periodic_encoder(L, latent_dim, sizes.pop("encoder_filters", (32, 64)), hidden)
    dec = build_periodic_decoder(L, latent_dim, sizes.pop("decoder_filters", (32, 32)), hidden)
    if sizes:
        raise TypeError(f"Unknown VAE size arguments {sorted(sizes)}.")
    return VAE(enc, dec, likelihood="bernoulli", beta=beta, seed=seed, name=name)


# ==================================================== one RBM per temperature
@register
class IsingRBMs(GenerativeModel):
    """One Bernoulli RBM per temperature: the Ising zoo entry in one file.

    Each temperature's RBM is trained on its own by
    `keras_gen.recipes.ising.train_ising_rbm` (an `RBM` model from `make_rbm`,
    fitted with `fit`); `set_rbm` copies its parameters in. Sampling picks
    the RBM of the requested temperature:

        model = zoo.load("ising_rbm_L8")
        spins = model.sample(1000, seed=0, temperature=TC)   # {0, 1}, (1000, 64)

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
        t = np.atleast_1d(as_temperatures(temperatures))
        if len(np.unique(t)) != len(t):
            raise ValueError(f"temperatures must be distinct, got {t.tolist()}.")
        self.temperatures = [float(v) for v in t]
        self.L = check_lattice_size(L)
        self.n_hidden = int(n_hidden)
        self.rbm_layers = [
            BernoulliRBM(self.L * self.L, self.n_hidden, seed=None if seed is None else int(seed) + i, name=f"rbm_T{i}")
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
            raise ValueError(
                f"No RBM for T = {temperature}; this model has T in {[round(v, 6) for v in self.temperatures]}."
            )
        return int(match[0])

    def set_rbm(self, temperature, rbm_model):
        """Copy a trained `RBM` model's (or layer's) parameters into the slot of `temperature`."""
        layer = as_rbm_layer(rbm_model)
        target = self.rbm_layers[self.index(temperature)]
        if (layer.n_visible, layer.n_hidden) != (target.n_visible, target.n_hidden):
            raise ValueError(
                f"RBM of shape {(layer.n_visible, layer.n_hidden)} does not fit {(target.n_visible, target.n_hidden)}."
            )
        for dst, src in zip(
            (target.kernel, target.visible_bias, target.hidden_bias),
            (layer.kernel, layer.visible_bias, layer.hidden_bias),
        ):
            dst.assign(src)

    def call(self, x, training=False):
        """p(h = 1 | v) under every temperature's RBM, shape (batch, n_T, n_hidden)."""
        return tf.stack([layer.hidden_probabilities(x) for layer in self.rbm_layers], axis=1)

    def train_step(self, data):
        raise NotImplementedError(
            "Train one RBM per temperature with keras_gen.recipes.ising.train_ising_rbm, then set_rbm."
        )

    def _run(self, i):
        layer = self.rbm_layers[i]

        def run(v, steps, seed):
            return block_gibbs(layer, v, steps, seed)[0]

        return compiled_once(self, ("gibbs", i), run)

    def generate_samples(self, n, seed, temperature=TC, gibbs_steps=GIBBS_STEPS, init=None):
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
        n_spec = [
            tf.TensorSpec([], tf.int32, name="n"),
            tf.TensorSpec([], tf.int32, name="seed"),
            tf.TensorSpec([], tf.int32, name="gibbs_steps"),
        ]

        def sampler_of(layer):  # binds the layer without an extra argument in the signature
            def sample(n, seed, gibbs_steps=GIBBS_STEPS):  # optional in the export
                s = tf.stack([seed, 0])
                if self.start == "ordered":
                    v0 = ordered_spins(n, layer.n_visible)
                else:
                    v0 = layer.random_visible(n, fold_in(s, 1))
                return {"spins": block_gibbs(layer, v0, tf.maximum(gibbs_steps, 1), fold_in(s, 2))[0]}

            return sample

        return {
            f"sample_T{temp:.4f}".replace(".", "p"): (sampler_of(layer), n_spec)
            for temp, layer in zip(self.temperatures, self.rbm_layers)
        }

    def get_config(self):
        return {
            **super().get_config(),
            "temperatures": self.temperatures,
            "L": self.L,
            "n_hidden": self.n_hidden,
            "start": self.start,
        }


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
    L, t = check_lattice_size(L), float(temperature)
    if not t > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    a = 2.0 * math.acosh(math.exp(2.0 / t))
    model = make_rbm(
        "bernoulli",
        L * L,
        2 * L * L,
        k=1,
        persistent=False,
        monitor=False,
        periodic_lattice=(L, L),
        filter_shape=[(1, 2), (2, 1)],
        seed=seed,
        name=name,
    )
    n = L * L
    kernel = np.zeros((2, n), np.float32)  # K[f, displacement], displacements row-major
    kernel[0, [0, 1]] = a  # filter 0: the bond to the right neighbour (axis 1)
    kernel[1, [0, L]] = a  # filter 1: the bond to the neighbour below (axis 0)
    model.layer.kernel.assign(model.translations.unfold(kernel.T))
    model.layer.visible_bias.assign(np.full(n, -2.0 * a, np.float32))
    model.layer.hidden_bias.assign(np.full(2 * n, -a, np.float32))
    return model


def make_ising_rbms(temperatures=None, L=8, n_hidden=64, start="random", seed=None, name="ising_rbm"):
    """`IsingRBMs` at `temperatures` (default: `keras_gen.physics.reference_temperatures()`)."""
    t = reference_temperatures() if temperatures is None else temperatures
    return IsingRBMs(t, L=L, n_hidden=n_hidden, start=start, seed=seed, name=name)


def ordered_spins(n, n_visible):
    """n ordered {0, 1} configurations: the first n // 2 all up (1), the rest all down (0)."""
    up = tf.cast(tf.range(n) < n // 2, tf.float32)
    return tf.tile(up[:, None], tf.stack([1, n_visible]))
