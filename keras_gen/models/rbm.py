"""Restricted Boltzmann machines as Keras layers, trained with CD-k or PCD.

Reads top to bottom:

1. The layers (`keras_gen.models.rbm_layers`): `BernoulliRBM` (binary
   visibles) and `GaussianBernoulliRBM` (real visibles), holding W
   (n_visible x n_hidden), the visible bias b and the hidden bias c (and
   log σ for Gaussian visibles). Energies, free energies, conditionals and
   samplers, all consistent with each other.
2. The `RBM` model: a `GenerativeModel` whose `train_step` runs contrastive
   divergence (CD-k) or persistent CD (PCD, Tieleman 2008) through a
   surrogate loss, so any Keras optimizer applies the update.
3. `make_rbm` and the pseudo-log-likelihood the training metrics report.

Exact log Z by enumeration and `log_likelihood` (exact when tractable, AIS
otherwise) are in `keras_gen.evaluation.likelihood`; the DBN in
`keras_gen.models.dbn`.

Conventions (the maths of the seed notes; hidden units are always binary):

  Bernoulli visibles v ∈ {0, 1}^M:
    E(v, h) = -b·v - c·h - vᵀ W h
    F(v)    = -log Σ_h exp(-E(v, h)) = -b·v - Σ_j softplus(c_j + (vᵀW)_j)
    p(h_j = 1 | v) = sigmoid(c_j + (vᵀW)_j),  p(v_i = 1 | h) = sigmoid(b_i + (W h)_i)

  Gaussian visibles v ∈ R^M, per-unit σ_i > 0 held as log σ (the
  Cho/Hinton "v/σ²" convention of the seed notes, eq. 52-60):
    E(v, h) = Σ_i (v_i - b_i)² / (2σ_i²) - c·h - (v/σ²)ᵀ W h
    F(v)    = Σ_i (v_i - b_i)² / (2σ_i²) - Σ_j softplus(c_j + ((v/σ²)ᵀW)_j)
    p(h_j = 1 | v) = sigmoid(c_j + ((v/σ²)ᵀW)_j),  p(v | h) = N(b + W h, diag σ²)

Training. The log-likelihood gradient is E_data[-∂F/∂θ] - E_model[-∂F/∂θ].
`train_step` minimises the surrogate

    loss = mean_data F(v) - mean_chains F(stop_gradient(v_model)),

whose gradient is exactly "positive phase minus negative phase" with hidden
*probabilities* (∂F/∂W = -v sigmoid(c + vW)ᵀ), for W, both biases and log σ.
`loss` is the free-energy gap between data and negative samples, not a
log-likelihood: it hovers near zero as training proceeds.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_gen.core.base import GenerativeModel, features, register, replica_mean
from keras_gen.core.caching import compiled_once
from keras_gen.core.distribute import (
    apply_if_finite,
    gather_replicas,
    replica_bernoulli,
    replica_shard,
    replica_uniform,
)
from keras_gen.core.random import fold_in, seed_tensor
from keras_gen.models.lattice import LatticeTranslations, shape_or_shapes
from keras_gen.models.rbm_layers import RBM_LAYERS, BernoulliRBM, GaussianBernoulliRBM, RBMLayer
from keras_gen.sampling.gibbs import block_gibbs

__all__ = [
    "RBM",
    "RBM_LAYERS",
    "BernoulliRBM",
    "GaussianBernoulliRBM",
    "RBMLayer",
    "as_rbm_layer",
    "make_rbm",
    "pseudo_log_likelihood",
]

DEFAULT_N_CHAINS = 100  # PCD chains when the batch size is unknown at build time
DEFAULT_GIBBS_STEPS = 1000  # sweeps of `sample` and of the exported `sample` signature


def as_rbm_layer(obj):
    """The RBM layer of an `RBM` model, or the layer itself."""
    if isinstance(obj, RBMLayer):
        return obj
    if isinstance(obj, RBM):
        return obj.layer
    raise TypeError(f"Expected an RBM model or layer, got {type(obj).__name__}.")


# ====================================================================== model
@register
class RBM(GenerativeModel):
    """An RBM layer trained by CD-k (`persistent=False`) or PCD.

    Args:
      layer: a `BernoulliRBM` or `GaussianBernoulliRBM` (see `make_rbm`).
      k: Gibbs sweeps per update (CD-k / PCD-k).
      persistent: keep the negative chains between updates (PCD).
      n_chains: PCD chains; default the batch size of the first batch seen.
      data_domain: what `fit` accepts; default "binary" for Bernoulli
        visibles and "real" for Gaussian ones. Upper layers of a DBN, trained
        on hidden probabilities, use "unit".
      monitor: compute the reconstruction and pseudo-likelihood metrics in
        `train_step` (one extra matrix product per step); False reports the
        loss only, about 15% faster.
      centering: follow the centered gradient (Montavon & Müller, "Deep
        Boltzmann machines and the centering trick", 2012) instead of the
        plain one; Bernoulli visibles only. See `center_gradients`.
      periodic_lattice: the shape of a periodic lattice the visible units
        live on (e.g. `(8, 8)` for an 8 x 8 Ising model, sites row-major).
        The parameters are then tied across the lattice's translations: a
        convolutional RBM with periodic padding and lattice-wide filters.
        `n_hidden` must be `n_filters * n_sites`; hidden unit `f * n_sites + p`
        is filter f placed at site p. Every site shares one visible bias,
        every filter one hidden bias. See `LatticeTranslations`.
      filter_shape: with `periodic_lattice`, the window of sites a hidden
        unit sees: sites p + [0, filter_shape) from its own site p (periodic).
        One shape for every filter, or a list with one shape per filter
        (e.g. `[(8, 8), (1, 2), (2, 1)]`: a lattice-wide filter and the two
        bond directions). Default the whole lattice. A local window matches a
        local Hamiltonian: the 2-D Ising model is exactly an RBM with a
        (1, 2) and a (2, 1) filter (`keras_gen.models.ising.exact_ising_rbm`).
      seed: all randomness comes from the model's seed generator.

    Persistent chains are a non-trainable variable `persistent_chains`
    (n_chains, n_visible): compiled into the step, saved in `.keras` files
    and checkpoints. The seed generators' states are model variables too, so
    training resumed from a file continues exactly as it would have without
    saving.

    Metrics: train — `loss` (the free-energy gap surrogate),
    `reconstruction_error` (mean squared error of the mean-field
    reconstruction E[v | h = p(h|v)]), `pseudo_log_likelihood` (Bernoulli
    visibles: the one-bit-flip estimate M log sigmoid(F(ṽ) - F(v)) of
    scikit-learn's `score_samples`); test — `free_energy` (mean F(v)) and
    the same two reconstruction metrics.
    """

    nested_config_keys = ("layer",)

    def __init__(
        self,
        layer,
        k=1,
        persistent=False,
        n_chains=None,
        data_domain=None,
        monitor=True,
        centering=False,
        periodic_lattice=None,
        filter_shape=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        if not isinstance(layer, RBMLayer):
            raise TypeError(f"RBM needs a BernoulliRBM or GaussianBernoulliRBM layer, got {type(layer).__name__}.")
        self.layer = layer
        self.k = int(k)
        if self.k < 1:
            raise ValueError(f"k must be >= 1 Gibbs sweeps, got {k}.")
        self.persistent = bool(persistent)
        self.n_chains = None if n_chains is None else int(n_chains)
        self.monitor = bool(monitor)
        default_domain = "binary" if layer.visible_type == "bernoulli" else "real"
        self._data_domain = data_domain or default_domain
        # The base's evaluation generator, kept as a model variable because
        # RBM weights files (the zoo's among them) hold it.
        self.eval_seed_state = self.eval_seed_generator.state
        self.persistent_chains = None
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_error")
        self.pll_tracker = keras.metrics.Mean(name="pseudo_log_likelihood")
        self.free_energy_tracker = keras.metrics.Mean(name="free_energy")
        self.centering = bool(centering)
        if self.centering:
            if layer.visible_type != "bernoulli":
                raise ValueError("centering is implemented for Bernoulli visibles only.")
            # The offsets shape the update direction only, never the model:
            # μ the data's pixel means (`set_offsets_from_data`), λ a running
            # mean of p(h | v_data) ("mean": averaged over replicas).
            self.visible_offset = self.add_weight(
                name="visible_offset",
                shape=(layer.n_visible,),
                initializer=keras.initializers.Constant(0.5),
                trainable=False,
            )
            self.hidden_offset = self.add_weight(
                name="hidden_offset",
                shape=(layer.n_hidden,),
                initializer=keras.initializers.Constant(0.5),
                trainable=False,
                aggregation="mean",
            )
        self.periodic_lattice = None if periodic_lattice is None else tuple(int(n) for n in periodic_lattice)
        self.filter_shape = shape_or_shapes(filter_shape)
        self.translations = None
        if self.periodic_lattice is not None:
            self.translations = LatticeTranslations(
                self.periodic_lattice, layer.n_visible, layer.n_hidden, self.filter_shape
            )
            self.tie_parameters()  # the random initial W becomes translation invariant
        elif self.filter_shape is not None:
            raise ValueError("filter_shape needs periodic_lattice: a filter is placed on the lattice's sites.")
        if not self.persistent or self.n_chains is not None:
            self.build((None, layer.n_visible))  # else at the first fit, sized by its batch

    # ----------------------------------------------------------- the contract
    @property
    def data_shape(self):
        return (self.layer.n_visible,)

    @property
    def data_domain(self):
        return self._data_domain

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.pll_tracker, self.free_energy_tracker]

    def build(self, input_shape=None):
        if self.persistent and self.persistent_chains is None:
            batch = None if input_shape is None else input_shape[0]
            self._make_chains(self.n_chains or batch or DEFAULT_N_CHAINS)

    def build_for_data(self):
        # Not by the base's dummy batch of one: that would make one persistent chain.
        if not self.built:
            self.build((None, self.layer.n_visible))
        return super().build_for_data()

    def fit(self, x=None, y=None, *args, batch_size=None, **kwargs):
        # The TF trainer builds lazily inside the traced train function, where
        # no variable may be created: create the chains here, sized by the
        # first batch, after the data has passed the checks.
        if not self.built:
            self.validate_data(x)
            self.build((_first_batch_size(x, batch_size), self.layer.n_visible))
        return super().fit(x, y, *args, batch_size=batch_size, **kwargs)

    def _make_chains(self, n):
        self.n_chains = int(n)

        def init(shape, dtype=None):
            # Run eagerly by Keras (init scope), even when build is traced.
            return tf.cast(self.layer.random_visible(shape[0], seed_tensor(self.seed_generator)), dtype)

        self.persistent_chains = self.add_weight(
            name="persistent_chains",
            shape=(self.n_chains, self.layer.n_visible),
            initializer=init,
            trainable=False,
        )

    def call(self, x, training=False):
        """p(h = 1 | v): the RBM as a feature extractor."""
        return self.layer.hidden_probabilities(x)

    # ----------------------------------------------------------------- training
    def negative_samples(self, v, seed, x_data=None):
        """The negative phase: k Gibbs sweeps with the current weights.

        CD starts from the data `v` (its first hidden draw reuses
        `x_data = hidden_activation(v)` when given); PCD starts from the
        persistent chains (not updated here: `train_step` does that).
        """
        layer = self.layer
        seed = seed_tensor(seed)
        if self.persistent:
            # Under tf.distribute each replica moves its own block of chains.
            chains = replica_shard(self.persistent_chains.value)
            v_model, _ = block_gibbs(layer, chains, self.k, seed)
            return tf.stop_gradient(v_model)
        if x_data is None:
            x_data = layer.hidden_activation(v)
        h = replica_bernoulli(tf.sigmoid(tf.stop_gradient(x_data)), fold_in(seed, -1))
        v_model = layer.sample_visible(h, fold_in(seed, -2))
        if self.k > 1:
            v_model, _ = block_gibbs(layer, v_model, self.k - 1, seed)
        return tf.stop_gradient(v_model)

    def surrogate_loss(self, v, v_model, x_data=None):
        """mean F(v) - mean F(v_model): its gradient is the CD/PCD update.

        Returns `(loss, x_data, f_data, f_model)`. Without `x_data` both
        batches go through one matrix product (and one in the backward pass).
        """
        layer = self.layer
        if x_data is None:
            n = tf.shape(v)[0]
            u = tf.concat([v, v_model], axis=0)
            x = layer.hidden_activation(u)
            f = layer.free_energy_from_activation(u, x)
            f_data, f_model, x_data = f[:n], f[n:], x[:n]
        else:
            f_data = layer.free_energy_from_activation(v, x_data)
            f_model = layer.free_energy(v_model)
        return replica_mean(f_data) - replica_mean(f_model), x_data, f_data, f_model

    def initialize_from_data(self, x):
        """Visible biases at the data's log-odds (Hinton's guide) and, when
        centered, the offsets: the data-driven start every recipe uses."""
        self.layer.set_visible_bias_from_data(x)
        if self.centering:
            self.set_offsets_from_data(x)
        if self.translations is not None:
            self.tie_parameters()

    def tie_parameters(self):
        """Project W, b, c (and the centering offsets) onto the translation-
        invariant parameters: each becomes its average over the lattice's translations."""
        t, layer = self.translations, self.layer
        layer.kernel.assign(t.tie_kernel(layer.kernel))
        layer.visible_bias.assign(t.tie_visible(layer.visible_bias))
        layer.hidden_bias.assign(t.tie_hidden(layer.hidden_bias))
        if self.centering:
            self.visible_offset.assign(t.tie_visible(self.visible_offset))
            self.hidden_offset.assign(t.tie_hidden(self.hidden_offset))

    def tie_gradients(self, grads):
        """The gradients projected onto the tied parameters. Projection is
        linear and the parameters start tied, so every optimizer step (SGD,
        momentum) keeps them tied: the same as training one shared filter,
        whose gradient pools the statistics of every site."""
        t, layer = self.translations, self.layer
        index = {id(w): i for i, w in enumerate(self.trainable_weights)}
        grads = list(grads)
        for weight, tie in (
            (layer.kernel, t.tie_kernel),
            (layer.visible_bias, t.tie_visible),
            (layer.hidden_bias, t.tie_hidden),
        ):
            grads[index[id(weight)]] = tie(grads[index[id(weight)]])
        return grads

    def set_offsets_from_data(self, x, batch_size=10_000):
        """Centering offsets from data: μ = mean v, λ = mean p(h | v)."""
        if not self.centering:
            raise ValueError("This RBM was built with centering=False: it has no offsets.")
        x = np.asarray(x, np.float32).reshape(-1, self.layer.n_visible)
        self.visible_offset.assign(x.mean(0))
        hidden = [
            keras.ops.convert_to_numpy(self.layer.hidden_probabilities(x[i : i + batch_size])).sum(0)
            for i in range(0, len(x), batch_size)
        ]
        self.hidden_offset.assign(np.sum(hidden, axis=0) / len(x))

    def center_gradients(self, grads):
        """The plain gradients turned into the centered update, in the plain parameters.

        The centered energy -(v-μ)ᵀW(h-λ) - b̃ᵀv - c̃ᵀh is the same model
        as the plain one with b = b̃ - Wλ, c = c̃ - Wᵀμ (up to a constant).
        Its gradient for W is G = g_W - μ g_cᵀ - g_b λᵀ, and a step in
        (W, b̃, c̃) moves b and c along g_b - G λ and g_c - Gᵀ μ. The update no longer mixes the means of
        v and h into W's direction, which conditions learning far better
        (correlations are learned many times faster).
        Linear in the gradients, so replicas may transform their parts.
        """
        layer = self.layer
        index = {id(w): i for i, w in enumerate(self.trainable_weights)}
        i_w, i_b, i_c = (index[id(w)] for w in (layer.kernel, layer.visible_bias, layer.hidden_bias))
        mu, lam = self.visible_offset, self.hidden_offset
        g_w, g_b, g_c = grads[i_w], grads[i_b], grads[i_c]
        g_w = g_w - mu[:, None] * g_c[None, :] - g_b[:, None] * lam[None, :]
        grads = list(grads)
        grads[i_w] = g_w
        grads[i_b] = g_b - tf.linalg.matvec(g_w, lam)
        grads[i_c] = g_c - tf.linalg.matvec(g_w, mu, transpose_a=True)
        return grads

    def train_step(self, data):
        v = self.layer._cast(features(data))
        seed = seed_tensor(self.seed_generator)  # one draw of the generator per step
        grads, v_model, x_data = self.replica_compiled(self.gradients_and_negatives)(v, seed)
        if self.centering:
            grads = self.center_gradients(grads)
            # Slow running mean of the data's hidden probabilities (rate 0.01).
            hidden_mean = tf.reduce_mean(tf.sigmoid(x_data), 0)
            if self.translations is not None:
                hidden_mean = self.translations.tie_hidden(hidden_mean)
            self.hidden_offset.assign(0.99 * self.hidden_offset + 0.01 * hidden_mean)
        if self.translations is not None:
            grads = self.tie_gradients(grads)
        # The synchronising part (outside XLA under tf.distribute): sum the
        # replicas' gradients, collect every replica's block of chains.
        apply_if_finite(self.optimizer, grads, self.trainable_weights)
        if self.persistent:
            self.persistent_chains.assign(gather_replicas(v_model))
        if not self.monitor:
            return {"loss": self.loss_tracker.result()}
        return self.replica_compiled(self._monitor)(v, x_data, fold_in(seed, 1))

    def gradients_and_negatives(self, v, seed):
        """One replica's share of a step: (gradients, negative samples, x_data)."""
        layer = self.layer
        if self.persistent:
            v_model = self.negative_samples(v, fold_in(seed, 0))
            with tf.GradientTape() as tape:
                loss, x_data, f_data, f_model = self.surrogate_loss(v, v_model)
        else:
            with tf.GradientTape() as tape:
                x_data = layer.hidden_activation(v)
                v_model = self.negative_samples(v, fold_in(seed, 0), x_data=x_data)
                loss, x_data, f_data, f_model = self.surrogate_loss(v, v_model, x_data=x_data)
        self.loss_tracker.update_state(tf.reduce_mean(f_data) - tf.reduce_mean(f_model))
        return tape.gradient(loss, self.trainable_weights), v_model, x_data

    def test_step(self, data):
        v = self.layer._cast(features(data))
        x = self.layer.hidden_activation(v)
        self.free_energy_tracker.update_state(self.layer.free_energy_from_activation(v, x))
        out = self._monitor(v, x, seed_tensor(self.eval_seed_generator))
        out.pop("loss")
        return {"free_energy": self.free_energy_tracker.result(), **out}

    def _monitor(self, v, x, seed):
        """Update the reconstruction and pseudo-likelihood metrics from x = c + in(v)W."""
        layer = self.layer
        reconstruction = layer.visible_mean(tf.sigmoid(x))
        self.reconstruction_tracker.update_state(tf.reduce_mean(tf.square(v - reconstruction), axis=-1))
        out = {"loss": self.loss_tracker.result(), "reconstruction_error": self.reconstruction_tracker.result()}
        if layer.visible_type == "bernoulli":
            self.pll_tracker.update_state(pseudo_log_likelihood(layer, v, seed, x=x))
            out["pseudo_log_likelihood"] = self.pll_tracker.result()
        return out

    # ----------------------------------------------------------------- sampling
    def log_density(self, x):
        """-F(v): log p(v) up to the constant log Z."""
        return -self.layer.free_energy(self.layer._cast(self.checked_input(x, method="log_density")))

    def generate_samples(self, n, seed, gibbs_steps=DEFAULT_GIBBS_STEPS, init=None, return_probabilities=True):
        """n samples after `gibbs_steps` sweeps from random states (or `init`).

        Returns the visible means of the last sweep (Bernoulli probabilities:
        the smooth images usually shown), or with `return_probabilities=False`
        the sampled visible states themselves.
        """
        seed = seed_tensor(seed)
        if init is None:
            v0 = self.layer.random_visible(n, fold_in(seed, 1))
        else:
            v0 = self.layer._cast(init)
            if tuple(v0.shape) != (n, self.layer.n_visible):
                raise ValueError(f"init must have shape ({n}, {self.layer.n_visible}), got {tuple(v0.shape)}.")
        v, mean = self._sampler()(v0, tf.constant(max(int(gibbs_steps), 1), tf.int32), fold_in(seed, 2))
        return mean if return_probabilities else v

    def _sampler(self):
        def sample(v0, steps, seed):
            v, h = block_gibbs(self.layer, v0, steps, seed)
            return v, self.layer.visible_mean(h)

        return compiled_once(self, "sample", sample)

    def serving_endpoints(self):
        n_visible = self.layer.n_visible
        mean_name = "probabilities" if self.layer.visible_type == "bernoulli" else "mean"

        def sample(n, seed, gibbs_steps=DEFAULT_GIBBS_STEPS):  # optional in the export
            s = tf.stack([seed, 0])
            v0 = self.layer.random_visible(n, fold_in(s, 1))
            v, h = block_gibbs(self.layer, v0, tf.maximum(gibbs_steps, 1), fold_in(s, 2))
            return {mean_name: self.layer.visible_mean(h), "sample": v}

        x_spec = [tf.TensorSpec([None, n_visible], tf.float32, name="v")]
        return {
            "sample": (
                sample,
                [
                    tf.TensorSpec([], tf.int32, name="n"),
                    tf.TensorSpec([], tf.int32, name="seed"),
                    tf.TensorSpec([], tf.int32, name="gibbs_steps"),
                ],
            ),
            "free_energy": (lambda v: {"free_energy": self.layer.free_energy(v)}, x_spec),
            "hidden_probabilities": (lambda v: {"hidden_probabilities": self.layer.hidden_probabilities(v)}, x_spec),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "layer": self.serialize_nested(self.layer),
            "k": self.k,
            "persistent": self.persistent,
            "n_chains": self.n_chains,
            "data_domain": self._data_domain,
            "monitor": self.monitor,
            "centering": self.centering,
            "periodic_lattice": self.periodic_lattice,
            "filter_shape": self.filter_shape,
        }


def make_rbm(
    visible="bernoulli",
    n_visible=784,
    n_hidden=500,
    k=1,
    persistent=True,
    n_chains=None,
    sigma=1.0,
    learn_sigma=False,
    weight_stddev=0.01,
    data_domain=None,
    monitor=True,
    centering=False,
    periodic_lattice=None,
    filter_shape=None,
    seed=None,
    name="rbm",
):
    """Build an `RBM` model from plain values (for the zoo and the CLI).

    `make_rbm("bernoulli", 784, 500, k=1, persistent=True, seed=0)` is the
    PCD-1 MNIST RBM of the benchmarks.
    """
    if visible not in RBM_LAYERS:
        raise ValueError(f"visible must be one of {sorted(RBM_LAYERS)}, got {visible!r}.")
    kwargs = dict(weight_stddev=weight_stddev, seed=seed, name=f"{name}_layer")
    if visible == "gaussian":
        kwargs.update(sigma=sigma, learn_sigma=learn_sigma)
    layer = RBM_LAYERS[visible](n_visible, n_hidden, **kwargs)
    return RBM(
        layer,
        k=k,
        persistent=persistent,
        n_chains=n_chains,
        data_domain=data_domain,
        monitor=monitor,
        centering=centering,
        periodic_lattice=periodic_lattice,
        filter_shape=filter_shape,
        seed=seed,
        name=name,
    )


def pseudo_log_likelihood(layer, v, seed, x=None):
    """Stochastic pseudo-log-likelihood per example (Bernoulli visibles).

    Flips one uniformly chosen bit i per example and returns
    M log sigmoid(F(ṽ) - F(v)) = M log p(v_i | v_{-i}), an unbiased estimate
    of Σ_i log p(v_i | v_{-i}) (as scikit-learn's `score_samples`). The
    flipped activation is a rank-one update of x, not another matmul.
    """
    v = layer._cast(v)
    if x is None:
        x = layer.hidden_activation(v)
    n = tf.shape(v)[0]
    u = replica_uniform(tf.reshape(n, [1]), seed)
    idx = tf.minimum(tf.cast(u * layer.n_visible, tf.int32), layer.n_visible - 1)
    v_i = tf.gather(v, idx, axis=1, batch_dims=1)
    sign = 1.0 - 2.0 * v_i  # +1 turns a 0 on, -1 turns a 1 off
    x_flip = x + sign[:, None] * tf.gather(layer.kernel, idx)
    b_i = tf.gather(layer.visible_bias, idx)
    delta_f = -sign * b_i - tf.reduce_sum(tf.nn.softplus(x_flip) - tf.nn.softplus(x), axis=-1)
    return layer.n_visible * tf.math.log_sigmoid(delta_f)


def _first_batch_size(x, batch_size=None):
    """The batch size `fit` will use on its first step (arrays: Keras's default 32)."""
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        spec = spec[0] if isinstance(spec, tuple) else spec
        if spec.shape[0] is not None:
            return int(spec.shape[0])
        for element in x.take(1):
            return int(features(element).shape[0])
        return None
    x = x[0] if isinstance(x, (tuple, list)) else x
    return min(int(batch_size or 32), len(x))
