"""Restricted Boltzmann machines as Keras layers, trained with CD-k or PCD.

Reads top to bottom:

1. The layers: `BernoulliRBM` (binary visibles) and `GaussianBernoulliRBM`
   (real visibles), holding W (n_visible x n_hidden), the visible bias b and
   the hidden bias c (and log σ for Gaussian visibles). Energies, free
   energies, conditionals and samplers, all consistent with each other.
2. The `RBM` model: a `GenerativeModel` whose `train_step` runs contrastive
   divergence (CD-k) or persistent CD (PCD, Tieleman 2008) through a
   surrogate loss, so any Keras optimizer applies the update.
3. Exact log Z by enumeration, and `log_likelihood` (exact when tractable,
   AIS otherwise, see `keras_gen.samplers`).
4. `DBN`: a deep belief network trained greedily, one RBM at a time.

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

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_gen import samplers
from keras_gen.base import GenerativeModel, register, replica_mean
from keras_gen.distribute import gather_replicas, replica_bernoulli, replica_normal, replica_shard, replica_uniform
from keras_gen.samplers import bernoulli, block_gibbs, fold_in, seed_tensor

LOG_2PI = math.log(2 * math.pi)
DEFAULT_N_CHAINS = 100  # PCD chains when the batch size is unknown at build time


# ===================================================================== layers
class _RBMLayer(layers.Layer):
    """What both RBM layers share: W, b, c, the hidden side and Gibbs."""

    visible_type = None

    def __init__(self, n_visible, n_hidden, weight_stddev=0.01, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.n_visible = int(n_visible)
        self.n_hidden = int(n_hidden)
        if self.n_visible < 1 or self.n_hidden < 1:
            raise ValueError(f"An RBM needs n_visible, n_hidden >= 1; got {n_visible}, {n_hidden}.")
        self.weight_stddev = float(weight_stddev)
        self.seed = seed
        # Hinton's practical guide: W ~ N(0, 0.01²), zero biases.
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.n_visible, self.n_hidden),
            initializer=keras.initializers.RandomNormal(stddev=self.weight_stddev, seed=seed),
        )
        self.visible_bias = self.add_weight(name="visible_bias", shape=(self.n_visible,), initializer="zeros")
        self.hidden_bias = self.add_weight(name="hidden_bias", shape=(self.n_hidden,), initializer="zeros")
        # Only used when a method is called without a seed.
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True  # all state exists (Gaussian adds log σ after this)

    # ---------------------------------------------------------------- hidden
    def visible_input(self, v):
        """The visible-side factor that multiplies W: v (Bernoulli) or v/σ²."""
        raise NotImplementedError

    def hidden_activation(self, v):
        """x = c + in(v) W, the logits of p(h = 1 | v)."""
        v = self._cast(v)
        return tf.matmul(self.visible_input(v), self.kernel) + self.hidden_bias

    def hidden_probabilities(self, v):
        """p(h_j = 1 | v) = sigmoid(c_j + (in(v) W)_j)."""
        return tf.sigmoid(self.hidden_activation(v))

    def sample_hidden(self, v, seed=None):
        # replica_* draws: under tf.distribute each replica draws the noise of
        # its own rows, the same noise one device draws for the whole batch.
        return replica_bernoulli(self.hidden_probabilities(v), self._seed(seed))

    # --------------------------------------------------------- free energies
    def visible_energy(self, v):
        """The h-independent part of E(v, h): -b·v, or Σ (v - b)²/(2σ²)."""
        raise NotImplementedError

    def energy(self, v, h):
        """E(v, h) per example."""
        v, h = self._cast(v), self._cast(h)
        interaction = tf.reduce_sum(tf.matmul(self.visible_input(v), self.kernel) * h, axis=-1)
        return self.visible_energy(v) - tf.linalg.matvec(h, self.hidden_bias) - interaction

    def free_energy(self, v):
        """F(v) = -log Σ_h exp(-E(v, h)) per example (hiddens summed out)."""
        v = self._cast(v)
        return self.free_energy_from_activation(v, self.hidden_activation(v))

    def free_energy_from_activation(self, v, x):
        """F(v) given x = hidden_activation(v) (saves a matmul when x is known)."""
        return self.visible_energy(v) - tf.reduce_sum(tf.nn.softplus(x), axis=-1)

    # ---------------------------------------------------------------- visible
    def visible_mean(self, h):
        """E[v | h]: Bernoulli probabilities or Gaussian means."""
        raise NotImplementedError

    def sample_visible(self, h, seed=None):
        raise NotImplementedError

    def random_visible(self, n, seed=None):
        """n visible states to start chains from (uniform bits / N(b, σ²))."""
        raise NotImplementedError

    def gibbs(self, v, k=1, seed=None):
        """The visible state after k block-Gibbs sweeps from v."""
        return block_gibbs(self, self._cast(v), k, self._seed(seed))[0]

    def call(self, v):
        return self.hidden_probabilities(v)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.n_hidden)

    # ----------------------------------------------- annealed importance sampling
    # Hooks used by `samplers.ais_log_partition` (see its docstring).
    def ais_base_bias(self, data=None):
        raise NotImplementedError

    def ais_base_log_partition(self, base_bias):
        raise NotImplementedError

    def ais_sample_base(self, n, base_bias, seed):
        raise NotImplementedError

    def ais_visible_term(self, v, base_bias):
        """(-E_B^vis(v)) - (-E_A^vis(v)): the part of log p*_β that is linear in β."""
        raise NotImplementedError

    def ais_sample_visible(self, h, beta, base_bias, seed):
        raise NotImplementedError

    def ais_hidden_log_ratio(self, h, beta, beta_prev, base_bias):
        """log f_β(h) - log f_β'(h), f_β(h) = Σ_v p*_β(v, h): the AIS path's
        unnormalized marginal over the hiddens (what reverse AIS anneals)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers
    def numpy_parameters(self):
        """The parameters as float64 numpy arrays (for exact computations)."""
        return {
            "W": np.asarray(keras.ops.convert_to_numpy(self.kernel), np.float64),
            "b": np.asarray(keras.ops.convert_to_numpy(self.visible_bias), np.float64),
            "c": np.asarray(keras.ops.convert_to_numpy(self.hidden_bias), np.float64),
        }

    def set_visible_bias_from_data(self, x, eps=1e-3):
        """Initialise b from data marginals (Hinton's guide, section 8)."""
        raise NotImplementedError

    def _cast(self, x):
        x = tf.convert_to_tensor(x)
        return x if x.dtype == self.compute_dtype else tf.cast(x, self.compute_dtype)

    def _seed(self, seed):
        return self.seed_generator if seed is None else seed

    def get_config(self):
        return {
            **super().get_config(),
            "n_visible": self.n_visible,
            "n_hidden": self.n_hidden,
            "weight_stddev": self.weight_stddev,
            "seed": self.seed,
        }


@register
class BernoulliRBM(_RBMLayer):
    """Binary visible and hidden units: E(v, h) = -b·v - c·h - vᵀWh.

    `call(v)` returns p(h = 1 | v), so the layer is also a feature extractor.
    Sampling methods take `seed`: a SeedGenerator, an int or a (2,) tensor
    (default: the layer's own generator).
    """

    visible_type = "bernoulli"

    def visible_input(self, v):
        return v

    def visible_energy(self, v):
        return -tf.linalg.matvec(self._cast(v), self.visible_bias)

    def visible_activation(self, h):
        """Logits of p(v = 1 | h): b + W h."""
        return tf.matmul(self._cast(h), self.kernel, transpose_b=True) + self.visible_bias

    def visible_mean(self, h):
        return tf.sigmoid(self.visible_activation(h))

    def sample_visible(self, h, seed=None):
        return replica_bernoulli(self.visible_mean(h), self._seed(seed))

    def random_visible(self, n, seed=None):
        shape = tf.stack([tf.cast(n, tf.int32), self.n_visible])
        return bernoulli(tf.fill(shape, tf.constant(0.5, self.compute_dtype)), self._seed(seed))

    def set_visible_bias_from_data(self, x, eps=1e-3):
        p = np.clip(np.mean(np.asarray(x, np.float64), axis=0), eps, 1 - eps)
        self.visible_bias.assign(np.log(p / (1 - p)).astype(self.visible_bias.dtype))

    # AIS: base model with independent Bernoulli visibles of logits b_A.
    def ais_base_bias(self, data=None):
        if data is None:
            return np.zeros(self.n_visible)
        x = np.asarray(data, np.float64).reshape(-1, self.n_visible)
        # Laplace-smoothed marginals: every pixel keeps some probability.
        p = (x.sum(0) + 1.0) / (len(x) + 2.0)
        return np.log(p) - np.log1p(-p)

    def ais_base_log_partition(self, base_bias):
        return float(np.sum(np.logaddexp(0.0, np.asarray(base_bias, np.float64))))

    def ais_sample_base(self, n, base_bias, seed):
        p = tf.sigmoid(tf.broadcast_to(base_bias, tf.stack([n, self.n_visible])))
        return bernoulli(p, seed)

    def ais_visible_term(self, v, base_bias):
        return tf.linalg.matvec(v, self.visible_bias - base_bias)

    def ais_sample_visible(self, h, beta, base_bias, seed):
        logits = (1.0 - beta) * base_bias + beta * self.visible_activation(h)
        return bernoulli(tf.sigmoid(logits), seed)

    def ais_hidden_log_ratio(self, h, beta, beta_prev, base_bias):
        # f_β(h) = exp(β c·h) Π_i (1 + exp(y_i)), y = b_A + β u, u = b + W h - b_A.
        u = self.visible_activation(h) - base_bias
        return (beta - beta_prev) * tf.linalg.matvec(self._cast(h), self.hidden_bias) + tf.reduce_sum(
            samplers.softplus_difference(base_bias + beta * u, (beta - beta_prev) * u), axis=-1)


@register
class GaussianBernoulliRBM(_RBMLayer):
    """Gaussian visibles, binary hiddens (Cho/Hinton convention, v/σ²):

        E(v, h) = Σ (v - b)²/(2σ²) - c·h - (v/σ²)ᵀ W h,
        p(v | h) = N(b + W h, σ²),  p(h = 1 | v) = sigmoid(c + (v/σ²)ᵀ W).

    σ is per visible unit, held as `log_sigma` (so it stays positive);
    `learn_sigma=False` (the default) keeps it fixed at `sigma`, the usual
    choice for data standardised to unit variance.
    """

    visible_type = "gaussian"

    def __init__(self, n_visible, n_hidden, sigma=1.0, learn_sigma=False, weight_stddev=0.01,
                 seed=None, **kwargs):
        super().__init__(n_visible, n_hidden, weight_stddev=weight_stddev, seed=seed, **kwargs)
        sigma = np.broadcast_to(np.asarray(sigma, np.float64), (self.n_visible,))
        if np.any(sigma <= 0):
            raise ValueError("sigma must be positive.")
        self.sigma_init = float(sigma[0]) if np.all(sigma == sigma[0]) else sigma.tolist()
        self.learn_sigma = bool(learn_sigma)
        self.log_sigma = self.add_weight(
            name="log_sigma",
            shape=(self.n_visible,),
            initializer=keras.initializers.Constant(np.log(sigma)),
            trainable=self.learn_sigma,
        )

    @property
    def sigma(self):
        return tf.exp(self.log_sigma)

    def visible_input(self, v):
        return v * tf.exp(-2.0 * self.log_sigma)

    def visible_energy(self, v):
        v = self._cast(v)
        return tf.reduce_sum(
            tf.square(v - self.visible_bias) * (0.5 * tf.exp(-2.0 * self.log_sigma)), axis=-1
        )

    def visible_mean(self, h):
        return tf.matmul(self._cast(h), self.kernel, transpose_b=True) + self.visible_bias

    def sample_visible(self, h, seed=None):
        mean = self.visible_mean(h)
        return mean + self.sigma * replica_normal(tf.shape(mean), self._seed(seed), mean.dtype)

    def random_visible(self, n, seed=None):
        mean = tf.broadcast_to(self.visible_bias, tf.stack([tf.cast(n, tf.int32), self.n_visible]))
        return samplers.normal(mean, self.sigma, self._seed(seed))

    def set_visible_bias_from_data(self, x, eps=None):
        self.visible_bias.assign(np.mean(np.asarray(x, np.float64), axis=0).astype(self.visible_bias.dtype))

    def numpy_parameters(self):
        out = super().numpy_parameters()
        out["sigma"] = np.exp(np.asarray(keras.ops.convert_to_numpy(self.log_sigma), np.float64))
        return out

    # AIS: base model N(b_A, σ²) with the RBM's σ.
    def ais_base_bias(self, data=None):
        if data is None:
            return np.zeros(self.n_visible)
        return np.mean(np.asarray(data, np.float64).reshape(-1, self.n_visible), axis=0)

    def ais_base_log_partition(self, base_bias):
        log_sigma = np.asarray(keras.ops.convert_to_numpy(self.log_sigma), np.float64)
        return float(np.sum(0.5 * LOG_2PI + log_sigma))

    def ais_sample_base(self, n, base_bias, seed):
        return samplers.normal(tf.broadcast_to(base_bias, tf.stack([n, self.n_visible])), self.sigma, seed)

    def ais_visible_term(self, v, base_bias):
        inv = 0.5 * tf.exp(-2.0 * self.log_sigma)
        return tf.reduce_sum((tf.square(v - base_bias) - tf.square(v - self.visible_bias)) * inv, axis=-1)

    def ais_sample_visible(self, h, beta, base_bias, seed):
        mean = (1.0 - beta) * base_bias + beta * self.visible_mean(h)
        return samplers.normal(mean, self.sigma, seed)

    def ais_hidden_log_ratio(self, h, beta, beta_prev, base_bias):
        # v integrated out of p*_β(v, h): log f_β(h) = β c·h + Σ_i [μ_i² - (1-β) b_A,i² - β b_i²] / (2σ_i²)
        # + const, with μ = b_A + β u and u = b + W h - b_A. Differences taken factor by factor.
        u = self.visible_mean(h) - base_bias
        d = beta - beta_prev
        mu, mu_prev = base_bias + beta * u, base_bias + beta_prev * u
        inv = 0.5 * tf.exp(-2.0 * self.log_sigma)
        quadratic = d * u * (mu + mu_prev) - d * (tf.square(self.visible_bias) - tf.square(base_bias))
        return d * tf.linalg.matvec(self._cast(h), self.hidden_bias) + tf.reduce_sum(quadratic * inv, axis=-1)

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma_init, "learn_sigma": self.learn_sigma}


RBM_LAYERS = {"bernoulli": BernoulliRBM, "gaussian": GaussianBernoulliRBM}


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
        (1, 2) and a (2, 1) filter (`ising_models.exact_ising_rbm`).
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

    def __init__(self, layer, k=1, persistent=False, n_chains=None, data_domain=None, monitor=True, centering=False,
                 periodic_lattice=None, filter_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not isinstance(layer, _RBMLayer):
            raise TypeError(f"RBM needs a BernoulliRBM or GaussianBernoulliRBM layer, got {type(layer).__name__}.")
        self.rbm = layer
        self.k = int(k)
        if self.k < 1:
            raise ValueError(f"k must be >= 1 Gibbs sweeps, got {k}.")
        self.persistent = bool(persistent)
        self.n_chains = None if n_chains is None else int(n_chains)
        self.monitor = bool(monitor)
        default_domain = "binary" if layer.visible_type == "bernoulli" else "real"
        self._data_domain = data_domain or default_domain
        # Evaluation draws its own randomness so it never perturbs training.
        self.eval_seed_generator = keras.random.SeedGenerator(
            None if seed is None else int(seed) + 1, name="eval_seed_generator"
        )
        # Saved with the model, as the base does for `seed_generator`.
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
                name="visible_offset", shape=(layer.n_visible,), initializer=keras.initializers.Constant(0.5),
                trainable=False)
            self.hidden_offset = self.add_weight(
                name="hidden_offset", shape=(layer.n_hidden,), initializer=keras.initializers.Constant(0.5),
                trainable=False, aggregation="mean")
        self.periodic_lattice = None if periodic_lattice is None else tuple(int(n) for n in periodic_lattice)
        self.filter_shape = _shape_or_shapes(filter_shape)
        self.translations = None
        if self.periodic_lattice is not None:
            self.translations = LatticeTranslations(self.periodic_lattice, layer.n_visible, layer.n_hidden,
                                                    self.filter_shape)
            self.tie_parameters()  # the random initial W becomes translation invariant
        elif self.filter_shape is not None:
            raise ValueError("filter_shape needs periodic_lattice: a filter is placed on the lattice's sites.")
        if not self.persistent or self.n_chains is not None:
            self.build((None, layer.n_visible))  # else at the first fit, sized by its batch

    # ----------------------------------------------------------- the contract
    @property
    def data_shape(self):
        return (self.rbm.n_visible,)

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

    def fit(self, x=None, y=None, *args, batch_size=None, **kwargs):
        # The TF trainer builds lazily inside the traced train function, where
        # no variable may be created: create the chains here, sized by the
        # first batch, after the data has passed the checks.
        if not self.built:
            self.validate_data(x)
            self.build((_first_batch_size(x, batch_size), self.rbm.n_visible))
        return super().fit(x, y, *args, batch_size=batch_size, **kwargs)

    def _make_chains(self, n):
        self.n_chains = int(n)
        def init(shape, dtype=None):
            # Run eagerly by Keras (init scope), even when build is traced.
            return tf.cast(self.rbm.random_visible(shape[0], seed_tensor(self.seed_generator)), dtype)

        self.persistent_chains = self.add_weight(
            name="persistent_chains",
            shape=(self.n_chains, self.rbm.n_visible),
            initializer=init,
            trainable=False,
        )

    def call(self, x, training=False):
        """p(h = 1 | v): the RBM as a feature extractor."""
        return self.rbm.hidden_probabilities(x)

    # ----------------------------------------------------------------- training
    def negative_samples(self, v, seed, x_data=None):
        """The negative phase: k Gibbs sweeps with the current weights.

        CD starts from the data `v` (its first hidden draw reuses
        `x_data = hidden_activation(v)` when given); PCD starts from the
        persistent chains (not updated here: `train_step` does that).
        """
        layer = self.rbm
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
        layer = self.rbm
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
        self.rbm.set_visible_bias_from_data(x)
        if self.centering:
            self.set_offsets_from_data(x)
        if self.translations is not None:
            self.tie_parameters()

    def tie_parameters(self):
        """Project W, b, c (and the centering offsets) onto the translation-
        invariant parameters: each becomes its average over the lattice's translations."""
        t, layer = self.translations, self.rbm
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
        t, layer = self.translations, self.rbm
        index = {id(w): i for i, w in enumerate(self.trainable_weights)}
        grads = list(grads)
        for weight, tie in ((layer.kernel, t.tie_kernel), (layer.visible_bias, t.tie_visible),
                            (layer.hidden_bias, t.tie_hidden)):
            grads[index[id(weight)]] = tie(grads[index[id(weight)]])
        return grads

    def set_offsets_from_data(self, x, batch_size=10_000):
        """Centering offsets from data: μ = mean v, λ = mean p(h | v)."""
        if not self.centering:
            raise ValueError("This RBM was built with centering=False: it has no offsets.")
        x = np.asarray(x, np.float32).reshape(-1, self.rbm.n_visible)
        self.visible_offset.assign(x.mean(0))
        hidden = [keras.ops.convert_to_numpy(self.rbm.hidden_probabilities(x[i:i + batch_size])).sum(0)
                  for i in range(0, len(x), batch_size)]
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
        layer = self.rbm
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
        v = self.rbm._cast(_features(data))
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
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        if self.persistent:
            self.persistent_chains.assign(gather_replicas(v_model))
        if not self.monitor:
            return {"loss": self.loss_tracker.result()}
        return self.replica_compiled(self._monitor)(v, x_data, fold_in(seed, 1))

    def gradients_and_negatives(self, v, seed):
        """One replica's share of a step: (gradients, negative samples, x_data)."""
        layer = self.rbm
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
        v = self.rbm._cast(_features(data))
        x = self.rbm.hidden_activation(v)
        self.free_energy_tracker.update_state(self.rbm.free_energy_from_activation(v, x))
        out = self._monitor(v, x, seed_tensor(self.eval_seed_generator))
        out.pop("loss")
        return {"free_energy": self.free_energy_tracker.result(), **out}

    def _monitor(self, v, x, seed):
        """Update the reconstruction and pseudo-likelihood metrics from x = c + in(v)W."""
        layer = self.rbm
        reconstruction = layer.visible_mean(tf.sigmoid(x))
        self.reconstruction_tracker.update_state(tf.reduce_mean(tf.square(v - reconstruction), axis=-1))
        out = {"loss": self.loss_tracker.result(), "reconstruction_error": self.reconstruction_tracker.result()}
        if layer.visible_type == "bernoulli":
            self.pll_tracker.update_state(pseudo_log_likelihood(layer, v, seed, x=x))
            out["pseudo_log_likelihood"] = self.pll_tracker.result()
        return out

    # ----------------------------------------------------------------- sampling
    def generate_samples(self, n, seed, gibbs_steps=1000, init=None, return_probabilities=True):
        """n samples after `gibbs_steps` sweeps from random states (or `init`).

        Returns the visible means of the last sweep (Bernoulli probabilities:
        the smooth images usually shown), or with `return_probabilities=False`
        the sampled visible states themselves.
        """
        seed = seed_tensor(seed)
        if init is None:
            v0 = self.rbm.random_visible(n, fold_in(seed, 1))
        else:
            v0 = self.rbm._cast(init)
            if tuple(v0.shape) != (n, self.rbm.n_visible):
                raise ValueError(f"init must have shape ({n}, {self.rbm.n_visible}), got {tuple(v0.shape)}.")
        v, mean = self._sampler()(v0, tf.constant(max(int(gibbs_steps), 1), tf.int32), fold_in(seed, 2))
        return mean if return_probabilities else v

    def _sampler(self):
        fn = self.__dict__.get("_sample_fn")
        if fn is None:
            @tf.function(jit_compile=True, reduce_retracing=True)
            def fn(v0, steps, seed):
                v, h = block_gibbs(self.rbm, v0, steps, seed)
                return v, self.rbm.visible_mean(h)

            self.__dict__["_sample_fn"] = fn
        return fn

    def serving_endpoints(self):
        n_visible = self.rbm.n_visible
        mean_name = "probabilities" if self.rbm.visible_type == "bernoulli" else "mean"

        def sample(n, seed, gibbs_steps):
            s = tf.stack([seed, 0])
            v0 = self.rbm.random_visible(n, fold_in(s, 1))
            v, h = block_gibbs(self.rbm, v0, tf.maximum(gibbs_steps, 1), fold_in(s, 2))
            return {mean_name: self.rbm.visible_mean(h), "sample": v}

        x_spec = [tf.TensorSpec([None, n_visible], tf.float32, name="v")]
        return {
            "sample": (
                sample,
                [tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.int32, name="seed"),
                 tf.TensorSpec([], tf.int32, name="gibbs_steps")],
            ),
            "free_energy": (lambda v: {"free_energy": self.rbm.free_energy(v)}, x_spec),
            "hidden_probabilities": (
                lambda v: {"hidden_probabilities": self.rbm.hidden_probabilities(v)}, x_spec),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "layer": self.serialize_nested(self.rbm),
            "k": self.k,
            "persistent": self.persistent,
            "n_chains": self.n_chains,
            "data_domain": self._data_domain,
            "monitor": self.monitor,
            "centering": self.centering,
            "periodic_lattice": self.periodic_lattice,
            "filter_shape": self.filter_shape,
        }



def _shape_or_shapes(value):
    """None, one shape as a tuple of ints, or a tuple of such shapes (one per filter)."""
    if value is None:
        return None
    value = tuple(value)
    if value and all(isinstance(v, (int, np.integer)) for v in value):
        return tuple(int(v) for v in value)
    return tuple(tuple(int(n) for n in v) for v in value)


class LatticeTranslations:
    """Ties RBM parameters across the translations of a periodic lattice.

    The visible units are the sites of a periodic lattice (`shape`, sites
    row-major) and the hiddens come in `n_filters` groups of one unit per
    site. A translation-invariant W depends only on the filter and on the
    displacement between the visible site i and the hidden unit's site p:
    W[i, f*N + p] = K[f, (i - p) mod shape]. That is a convolution with
    periodic padding and the kernel K. With `filter_shape`, K[f] is zero
    outside the window of displacements [0, filter_shape[f]): a local filter. `tie_*`
    project onto this subspace (the average over the translation orbit, then
    the window), which is also how a gradient for W becomes the gradient
    for K, up to a constant factor N.
    """

    def __init__(self, shape, n_visible, n_hidden, filter_shape=None):
        shape = tuple(int(n) for n in shape)
        n_sites = int(np.prod(shape))
        if not shape or min(shape) < 1 or n_sites != n_visible:
            raise ValueError(f"periodic_lattice {shape} has {n_sites} sites, but the RBM has {n_visible} visible units.")
        if n_hidden % n_sites:
            raise ValueError(f"With periodic_lattice {shape}, n_hidden must be a multiple of {n_sites} "
                             f"(n_filters x sites), got {n_hidden}.")
        self.shape, self.n_sites, self.n_filters = shape, n_sites, n_hidden // n_sites
        coords = np.stack(np.unravel_index(np.arange(n_sites), shape), axis=-1)
        displacement = (coords[:, None, :] - coords[None, :, :]) % np.asarray(shape)
        # displacement_index[i, p]: which of the N displacements separates site i from site p.
        self.displacement_index = np.ravel_multi_index(tuple(np.moveaxis(displacement, -1, 0)), shape).astype(np.int32)
        windows = _shape_or_shapes(shape if filter_shape is None else filter_shape)
        if not isinstance(windows[0], tuple):
            windows = (windows,) * self.n_filters
        if len(windows) != self.n_filters:
            raise ValueError(f"filter_shape lists {len(windows)} shapes for {self.n_filters} filters.")
        for window in windows:
            if len(window) != len(shape) or any(not 1 <= w <= n for w, n in zip(window, shape)):
                raise ValueError(f"filter_shape must have one size in [1, n] per lattice axis {shape}, "
                                 f"got {filter_shape}.")
        self.filter_shape = windows
        # window_mask[d, f]: displacement d (coordinates coords[d]) lies in filter f's window.
        self.window_mask = np.stack([np.all(coords < np.asarray(w), axis=-1) for w in windows], 1).astype(np.float32)

    def tie_kernel(self, w):
        n, f = self.n_sites, self.n_filters
        w = tf.transpose(tf.reshape(w, (n, f, n)), (0, 2, 1))  # [i, p, f]
        k = tf.math.unsorted_segment_mean(tf.reshape(w, (n * n, f)), self.displacement_index.reshape(-1), n)
        return self.unfold(k * tf.constant(self.window_mask, k.dtype))

    def unfold(self, k):
        """The dense W (n_sites, n_filters * n_sites) of filters k[d, f] (displacement d, filter f)."""
        n, f = self.n_sites, self.n_filters
        w = tf.gather(tf.convert_to_tensor(k), self.displacement_index)  # [i, p, f]
        return tf.reshape(tf.transpose(w, (0, 2, 1)), (n, f * n))

    def tie_visible(self, b):
        return tf.fill(tf.shape(b), tf.reduce_mean(b))

    def tie_hidden(self, c):
        c = tf.reshape(c, (self.n_filters, self.n_sites))
        return tf.reshape(tf.broadcast_to(tf.reduce_mean(c, axis=1, keepdims=True), tf.shape(c)), (-1,))


def make_rbm(visible="bernoulli", n_visible=784, n_hidden=500, k=1, persistent=True, n_chains=None,
             sigma=1.0, learn_sigma=False, weight_stddev=0.01, data_domain=None, monitor=True, centering=False,
             periodic_lattice=None, filter_shape=None, seed=None, name="rbm"):
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
    return RBM(layer, k=k, persistent=persistent, n_chains=n_chains, data_domain=data_domain, monitor=monitor,
               centering=centering, periodic_lattice=periodic_lattice, filter_shape=filter_shape, seed=seed,
               name=name)


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


# ================================================================= callbacks
class FreeEnergyGap(keras.callbacks.Callback):
    """Overfitting monitor of Hinton's practical guide (section 6).

    At the end of every `every`-th epoch, computes the mean free energy of a
    fixed subset of training data and of validation data and logs
    `free_energy_gap = mean F(val) - mean F(train)` (plus both means). Z
    cancels in the difference; a gap that keeps growing means the model
    assigns the training data ever more probability than held-out data.
    """

    def __init__(self, train_data, validation_data, n=1000, every=1, batch_size=1000):
        super().__init__()
        self.train_data = np.asarray(train_data[:n], np.float32)
        self.validation_data = np.asarray(validation_data[:n], np.float32)
        self.every = int(every)
        self.batch_size = int(batch_size)
        self._fn = None

    def _mean_free_energy(self, x):
        layer = _as_layer(self.model)
        if self._fn is None:
            self._fn = tf.function(layer.free_energy, reduce_retracing=True)
        total = 0.0
        for start in range(0, len(x), self.batch_size):
            total += float(tf.reduce_sum(self._fn(x[start:start + self.batch_size])))
        return total / len(x)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or (epoch + 1) % self.every:
            return
        f_train = self._mean_free_energy(self.train_data)
        f_val = self._mean_free_energy(self.validation_data)
        logs["free_energy_train"] = f_train
        logs["free_energy_val"] = f_val
        logs["free_energy_gap"] = f_val - f_train


class GibbsStepsSchedule(keras.callbacks.Callback):
    """Change the number of Gibbs sweeps per update as training proceeds.

    `schedule` maps the first epoch (0-based) of each phase to its k, e.g.
    `{0: 1, 20: 3, 40: 10}`, or is a function epoch -> k. Salakhutdinov &
    Murray (2008) grew CD's k from 1 to 25 this way: early on the model is
    smooth and one sweep mixes, later it needs more. The step is recompiled
    when k changes; a resumed run (BackupAndRestore) picks the k of the
    epoch it resumes at.
    """

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule
        if not callable(schedule):
            if not schedule or min(schedule) != 0:
                raise ValueError("A Gibbs-steps schedule needs an entry for epoch 0.")
            if min(schedule.values()) < 1:
                raise ValueError("Every phase needs k >= 1 Gibbs sweeps.")

    def k_at(self, epoch):
        if callable(self.schedule):
            return int(self.schedule(epoch))
        return int(self.schedule[max(e for e in self.schedule if e <= epoch)])

    def on_epoch_begin(self, epoch, logs=None):
        k = self.k_at(epoch)
        if k != self.model.k:
            self.model.k = k
            self.model.make_train_function(force=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["gibbs_steps"] = float(self.model.k)


# ============================================== exact partition function and AIS
def _as_layer(obj):
    if isinstance(obj, _RBMLayer):
        return obj
    if isinstance(obj, RBM):
        return obj.rbm
    raise TypeError(f"Expected an RBM model or layer, got {type(obj).__name__}.")


def free_energy_numpy(layer, v):
    """F(v) in float64 numpy (exact reference computations)."""
    layer = _as_layer(layer)
    p = layer.numpy_parameters()
    v = np.asarray(v, np.float64)
    if layer.visible_type == "bernoulli":
        return -v @ p["b"] - np.logaddexp(0.0, p["c"] + v @ p["W"]).sum(-1)
    var = p["sigma"] ** 2
    return (((v - p["b"]) ** 2) / (2 * var)).sum(-1) - np.logaddexp(0.0, p["c"] + (v / var) @ p["W"]).sum(-1)


def binary_states(n, start=0, stop=None):
    """Rows of all n-bit states (bit j of the row index in column j), float64."""
    stop = 2 ** n if stop is None else stop
    ints = np.arange(start, stop, dtype=np.int64)
    return ((ints[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(np.float64)


def _logsumexp(a):
    m = np.max(a)
    return m + np.log(np.sum(np.exp(a - m)))


def exact_log_partition(layer, over="auto", max_bits=20, batch_size=1 << 14):
    """log Z by enumerating one layer's 2^n states, the other summed out (float64).

    over: "visible" (Bernoulli only), "hidden", or "auto" (the smaller side;
    always "hidden" for Gaussian visibles, whose integral is closed-form).
    Refuses more than 2^max_bits states: use `log_likelihood(..., "ais")`.
    """
    layer = _as_layer(layer)
    p = layer.numpy_parameters()
    gaussian = layer.visible_type == "gaussian"
    if over == "auto":
        over = "hidden" if gaussian or layer.n_hidden <= layer.n_visible else "visible"
    if over not in ("visible", "hidden"):
        raise ValueError(f"over must be 'auto', 'visible' or 'hidden', got {over!r}.")
    if gaussian and over == "visible":
        raise ValueError("Gaussian visibles are continuous: enumerate over='hidden'.")
    n = layer.n_visible if over == "visible" else layer.n_hidden
    if n > max_bits:
        raise ValueError(
            f"Enumerating 2^{n} {over} states is intractable (max_bits={max_bits}); "
            "estimate log Z with AIS instead (log_likelihood(..., method='ais'))."
        )
    W, b, c = p["W"], p["b"], p["c"]
    chunks = []
    for start in range(0, 2 ** n, batch_size):
        s = binary_states(n, start, min(2 ** n, start + batch_size))
        if over == "visible":
            vals = s @ b + np.logaddexp(0.0, c + s @ W).sum(-1)
        elif not gaussian:
            vals = s @ c + np.logaddexp(0.0, b + s @ W.T).sum(-1)
        else:
            # ∫ exp(-(v-b)²/(2σ²) + v m/σ²) dv = sqrt(2πσ²) exp(((b+m)² - b²)/(2σ²)), m = W h
            var = p["sigma"] ** 2
            m = s @ W.T
            vals = s @ c + (0.5 * np.log(2 * np.pi * var) + ((b + m) ** 2 - b ** 2) / (2 * var)).sum(-1)
        chunks.append(_logsumexp(vals))
    return float(_logsumexp(np.array(chunks)))


def exact_log_likelihood(layer, v, log_z=None, **kwargs):
    """log p(v) = -F(v) - log Z per example (float64 numpy; density for Gaussian)."""
    layer = _as_layer(layer)
    if log_z is None:
        log_z = exact_log_partition(layer, **kwargs)
    return -free_energy_numpy(layer, v) - log_z


def ais_log_partition(model_or_layer, **kwargs):
    """`samplers.ais_log_partition` for an RBM model or layer."""
    return samplers.ais_log_partition(_as_layer(model_or_layer), **kwargs)


def log_likelihood(model_or_layer, v, method="auto", max_bits=20, **ais_kwargs):
    """Mean log-likelihood of `v` (nats per example) with its error.

    method: "exact" (enumeration, see `exact_log_partition`), "ais",
    "raise" (reverse AIS, `samplers.raise_log_likelihood`: per example, on the
    pessimistic side where AIS is on the optimistic one), or "auto" (exact
    when 2^min(n_visible, n_hidden) <= 2^max_bits states — n_hidden for
    Gaussian visibles — else AIS). Further keyword arguments go to
    `samplers.ais_log_partition` or `samplers.raise_log_likelihood`; their
    base-rate model is fit to `v` unless `base_data` is given.

    Returns a dict: `mean`, `stderr` (the error of the estimate from log Z:
    0 for exact; for RAISE the spread of the per-example estimates / sqrt(n)),
    `data_stderr` (std of log p over examples / sqrt(n)), `log_z` (None for
    RAISE), `method`, and `conservative` = mean - 3 stderr for AIS (computed
    with log Z + 3 sigma, the pessimistic side, since AIS tends to
    underestimate log Z; see `keras_gen.samplers`), the mean itself for RAISE.
    """
    layer = _as_layer(model_or_layer)
    v = np.asarray(v, np.float64)
    if v.ndim != 2 or v.shape[1] != layer.n_visible:
        raise ValueError(f"v must have shape (n, {layer.n_visible}), got {v.shape}.")
    tractable = (layer.n_hidden if layer.visible_type == "gaussian"
                 else min(layer.n_visible, layer.n_hidden)) <= max_bits
    if method == "auto":
        method = "exact" if tractable else "ais"
    if method == "exact":
        log_z, stderr, extra = exact_log_partition(layer, max_bits=max_bits), 0.0, {}
    elif method == "ais":
        ais_kwargs.setdefault("base_data", v)
        extra = samplers.ais_log_partition(layer, **ais_kwargs)
        log_z, stderr = extra["log_z"], extra["stderr"]
        extra = {"ais": {k: val for k, val in extra.items() if k != "log_weights"}}
    elif method == "raise":
        ais_kwargs.setdefault("base_data", v)
        est = samplers.raise_log_likelihood(layer, v, **ais_kwargs)
        return {"mean": est["mean"], "stderr": est["stderr"], "data_stderr": est["stderr"], "log_z": None,
                "conservative": est["mean"], "method": method, "log_p": est["log_p"],
                "raise": {"n_samples": est["n_samples"], "n_betas": est["n_betas"]}}
    else:
        raise ValueError(f"method must be 'auto', 'exact', 'ais' or 'raise', got {method!r}.")
    ll = -free_energy_numpy(layer, v) - log_z
    mean = float(ll.mean())
    return {
        "mean": mean,
        "stderr": float(stderr),
        "data_stderr": float(ll.std(ddof=1) / math.sqrt(len(ll))) if len(ll) > 1 else 0.0,
        "log_z": float(log_z),
        "conservative": mean - 3.0 * float(stderr),
        "method": method,
        "log_p": ll,  # per example, as for "raise"
        **extra,
    }


# ====================================================================== DBN
@register
class DBN(GenerativeModel):
    """A deep belief network: a stack of RBM layers trained greedily.

    `layers[0]` models the data; `layers[i]` models the hidden probabilities
    of `layers[i-1]`. `fit` trains them bottom-up, each as an `RBM` model on
    the previous layer's hidden probabilities (a tf.data pipeline mapped
    through the trained layers). Sampling runs Gibbs in the top RBM, then
    passes the top RBM's visible state down through the lower layers'
    visible means (the directed, sigmoid-belief-net part of a DBN).
    """

    nested_config_keys = ("rbm_layers",)

    def __init__(self, rbm_layers, k=1, persistent=True, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        rbm_layers = list(rbm_layers)
        if not rbm_layers:
            raise ValueError("A DBN needs at least one RBM layer.")
        for lower, upper in zip(rbm_layers, rbm_layers[1:]):
            if not isinstance(upper, BernoulliRBM):
                raise TypeError("Upper DBN layers must be BernoulliRBMs (they model binary hiddens).")
            if upper.n_visible != lower.n_hidden:
                raise ValueError(f"Layer sizes do not chain: {lower.n_hidden} hidden -> {upper.n_visible} visible.")
        self.rbm_layers = rbm_layers
        self.k = int(k)
        self.persistent = bool(persistent)
        self.built = True

    @property
    def data_shape(self):
        return (self.rbm_layers[0].n_visible,)

    @property
    def data_domain(self):
        return "binary" if self.rbm_layers[0].visible_type == "bernoulli" else "real"

    def call(self, x, training=False):
        """Top-layer hidden probabilities (the deterministic up-pass)."""
        return self.transform(x)

    def transform(self, x, depth=None):
        x = self.rbm_layers[0]._cast(x)
        for layer in self.rbm_layers[:depth]:
            x = layer.hidden_probabilities(x)
        return x

    def fit(self, x=None, y=None, epochs=1, batch_size=None, optimizer=None, verbose="auto",
            validation_data=None, jit_compile=True, **kwargs):
        """Greedy layer-wise training; returns one History per layer.

        `x` is an array (shuffled every epoch, seeded) or a batched
        tf.data.Dataset. `epochs` is an int or one per layer. `optimizer`
        (default: the compiled one, else SGD 0.1) is cloned for each layer;
        each layer's `RBM` is compiled with `jit_compile`. Other keyword
        arguments go to each `fit`.
        """
        self.validate_data(x)
        if validation_data is not None:
            self.validate_data(validation_data)
        epochs = list(epochs) if isinstance(epochs, (list, tuple)) else [int(epochs)] * len(self.rbm_layers)
        if len(epochs) != len(self.rbm_layers):
            raise ValueError(f"Give one epoch count per layer ({len(self.rbm_layers)}), got {len(epochs)}.")
        if optimizer is None:
            optimizer = getattr(self, "optimizer", None) or keras.optimizers.SGD(0.1)
        optimizer = keras.optimizers.get(optimizer)
        opt_config = keras.optimizers.serialize(optimizer)
        seed = seed_tensor(self.seed_generator).numpy()
        if isinstance(x, tf.data.Dataset):
            data = x
        else:
            x = np.asarray(x[0] if isinstance(x, (tuple, list)) else x, np.float32)
            data = tf.data.Dataset.from_tensor_slices(x).shuffle(
                len(x), seed=int(seed[0]), reshuffle_each_iteration=True).batch(batch_size or 32)
        val = validation_data
        if val is not None and not isinstance(val, tf.data.Dataset):
            val = tf.data.Dataset.from_tensor_slices(np.asarray(val, np.float32)).batch(batch_size or 32)
        kwargs.setdefault("shuffle", False)  # datasets carry their own order
        histories = []
        for i, (layer, n_epochs) in enumerate(zip(self.rbm_layers, epochs)):
            model = RBM(layer, k=self.k, persistent=self.persistent,
                        data_domain=None if i == 0 else "unit",
                        seed=int(seed[0]) * 7919 + int(seed[1]) + i, name=f"{self.name}_rbm{i}")
            model.compile(optimizer=keras.optimizers.deserialize(opt_config), jit_compile=jit_compile)
            histories.append(model.fit(data, epochs=n_epochs, verbose=verbose, validation_data=val, **kwargs))
            data = data.map(layer.hidden_probabilities, num_parallel_calls=tf.data.AUTOTUNE)
            if val is not None:
                val = val.map(layer.hidden_probabilities)
        return histories

    def train_step(self, data):
        raise NotImplementedError("A DBN is trained greedily by DBN.fit, one RBM at a time.")

    def generate_samples(self, n, seed, gibbs_steps=1000, return_probabilities=True):
        seed = seed_tensor(seed)
        top = self.rbm_layers[-1]
        v0 = top.random_visible(n, fold_in(seed, 1))
        v, mean = self._sampler()(v0, tf.constant(max(int(gibbs_steps), 1), tf.int32), fold_in(seed, 2))
        return mean if return_probabilities else v

    def _down(self, v_top, h_top, seed):
        """(mean, sample) of the data layer from the top RBM's last Gibbs state.

        With one layer that is E[v | h_top] and v_top. Otherwise v_top (a
        sample of the penultimate hidden layer) goes down through the lower
        layers' visible means; the data layer is sampled from its mean.
        """
        if len(self.rbm_layers) == 1:
            return self.rbm_layers[0].visible_mean(h_top), v_top
        h = v_top
        for layer in reversed(self.rbm_layers[1:-1]):
            h = layer.visible_mean(h)
        bottom = self.rbm_layers[0]
        return bottom.visible_mean(h), bottom.sample_visible(h, seed)

    def _sampler(self):
        fn = self.__dict__.get("_sample_fn")
        if fn is None:
            @tf.function(jit_compile=True, reduce_retracing=True)
            def fn(v0, steps, seed):
                v, h = block_gibbs(self.rbm_layers[-1], v0, steps, seed)
                mean, sample = self._down(v, h, fold_in(seed, -2))
                return sample, mean

            self.__dict__["_sample_fn"] = fn
        return fn

    def serving_endpoints(self):
        def sample(n, seed, gibbs_steps):
            s = tf.stack([seed, 0])
            top = self.rbm_layers[-1]
            v0 = top.random_visible(n, fold_in(s, 1))
            v, h = block_gibbs(top, v0, tf.maximum(gibbs_steps, 1), fold_in(s, 2))
            mean, sample = self._down(v, h, fold_in(fold_in(s, 2), -2))
            return {"mean": mean, "sample": sample}

        return {
            "sample": (
                sample,
                [tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.int32, name="seed"),
                 tf.TensorSpec([], tf.int32, name="gibbs_steps")],
            ),
            "transform": (
                lambda v: {"features": self.transform(v)},
                [tf.TensorSpec([None, self.rbm_layers[0].n_visible], tf.float32, name="v")],
            ),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "rbm_layers": self.serialize_nested(self.rbm_layers),
            "k": self.k,
            "persistent": self.persistent,
        }



def make_dbn(sizes=(784, 500, 500, 2000), visible="bernoulli", k=1, persistent=True, seed=None, name="dbn"):
    """A DBN with layer sizes `sizes` (data first), e.g. Hinton et al.'s 784-500-500-2000."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        raise ValueError("sizes needs the data size and at least one hidden layer size.")
    rbm_layers = []
    for i, (n_v, n_h) in enumerate(zip(sizes, sizes[1:])):
        cls = RBM_LAYERS[visible] if i == 0 else BernoulliRBM
        rbm_layers.append(cls(n_v, n_h, seed=None if seed is None else int(seed) + i, name=f"{name}_layer{i}"))
    return DBN(rbm_layers, k=k, persistent=persistent, seed=seed, name=name)


def _features(data):
    return data[0] if isinstance(data, (tuple, list)) else data


def _first_batch_size(x, batch_size=None):
    """The batch size `fit` will use on its first step (arrays: Keras's default 32)."""
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        spec = spec[0] if isinstance(spec, tuple) else spec
        if spec.shape[0] is not None:
            return int(spec.shape[0])
        for element in x.take(1):
            return int(_features(element).shape[0])
        return None
    x = x[0] if isinstance(x, (tuple, list)) else x
    return min(int(batch_size or 32), len(x))
