"""The RBM layers: Bernoulli and Gaussian visibles, binary hiddens.

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
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_gen.core.base import register
from keras_gen.core.distribute import replica_bernoulli, replica_normal
from keras_gen.core.random import bernoulli, normal
from keras_gen.sampling.ais import softplus_difference
from keras_gen.sampling.gibbs import block_gibbs

LOG_2PI = math.log(2 * math.pi)


class RBMLayer(layers.Layer):
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
    # Hooks used by `sampling.ais.ais_log_partition` (see its docstring).
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
class BernoulliRBM(RBMLayer):
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
            softplus_difference(base_bias + beta * u, (beta - beta_prev) * u), axis=-1
        )


@register
class GaussianBernoulliRBM(RBMLayer):
    """Gaussian visibles, binary hiddens (Cho/Hinton convention, v/σ²):

        E(v, h) = Σ (v - b)²/(2σ²) - c·h - (v/σ²)ᵀ W h,
        p(v | h) = N(b + W h, σ²),  p(h = 1 | v) = sigmoid(c + (v/σ²)ᵀ W).

    σ is per visible unit, held as `log_sigma` (so it stays positive);
    `learn_sigma=False` (the default) keeps it fixed at `sigma`, the usual
    choice for data standardised to unit variance.
    """

    visible_type = "gaussian"

    def __init__(self, n_visible, n_hidden, sigma=1.0, learn_sigma=False, weight_stddev=0.01, seed=None, **kwargs):
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
        return tf.reduce_sum(tf.square(v - self.visible_bias) * (0.5 * tf.exp(-2.0 * self.log_sigma)), axis=-1)

    def visible_mean(self, h):
        return tf.matmul(self._cast(h), self.kernel, transpose_b=True) + self.visible_bias

    def sample_visible(self, h, seed=None):
        mean = self.visible_mean(h)
        return mean + self.sigma * replica_normal(tf.shape(mean), self._seed(seed), mean.dtype)

    def random_visible(self, n, seed=None):
        mean = tf.broadcast_to(self.visible_bias, tf.stack([tf.cast(n, tf.int32), self.n_visible]))
        return normal(mean, self.sigma, self._seed(seed))

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
        return normal(tf.broadcast_to(base_bias, tf.stack([n, self.n_visible])), self.sigma, seed)

    def ais_visible_term(self, v, base_bias):
        inv = 0.5 * tf.exp(-2.0 * self.log_sigma)
        return tf.reduce_sum((tf.square(v - base_bias) - tf.square(v - self.visible_bias)) * inv, axis=-1)

    def ais_sample_visible(self, h, beta, base_bias, seed):
        mean = (1.0 - beta) * base_bias + beta * self.visible_mean(h)
        return normal(mean, self.sigma, seed)

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
