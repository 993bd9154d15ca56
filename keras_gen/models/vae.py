"""Variational autoencoders.

Reads top to bottom like the keras.io example it generalises: the `Sampling`
layer (reparameterization), encoder/decoder builders (dense and
convolutional), the `VAE` model with its `train_step`/`test_step` and
metrics, and the importance-weighted likelihood bound (IWAE) that reports a
VAE's log-likelihood in nats.

Conventions: the encoder maps x to (z_mean, z_log_var); the decoder maps z to
*logits* for a Bernoulli likelihood, or to the mean for a Gaussian one (with
a learned per-feature log-scale held by the VAE). Working in logits keeps the
log-likelihood exact and stable (no clipping of probabilities).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from keras_gen.core.base import GenerativeModel, features, register, replica_mean
from keras_gen.core.caching import compiled_once
from keras_gen.core.distribute import apply_if_finite, replica_normal
from keras_gen.core.random import seed_tensor

LOG_2PI = math.log(2 * math.pi)


# --------------------------------------------------------------------- layers
@register
class Sampling(layers.Layer):
    """z = mean + exp(log_var / 2) * eps, eps ~ N(0, I): the reparameterization trick.

    The noise comes from the seed passed to `call` (the owning model's seed
    generator, so training is reproducible and compiles under XLA), or from
    the layer's own generator when used on its own. It is drawn with the
    counter-based generator of `keras_gen.core.random` (cheap under XLA, where
    TensorFlow's stateless normal is not), with counters that follow the
    example's place in the global batch: under tf.distribute each replica
    draws its own examples' noise, the same noise one device would draw.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, seed=None):
        z_mean, z_log_var = inputs
        seed = seed_tensor(self.seed_generator if seed is None else seed)
        eps = ops.cast(replica_normal(ops.shape(z_mean), seed), z_mean.dtype)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def build_conv_encoder(input_shape=(28, 28, 1), latent_dim=2, filters=(32, 64), hidden=16):
    """Strided 3x3 convolutions, a dense layer, then z_mean and z_log_var
    (the keras.io encoder with its defaults)."""
    inputs = keras.Input(shape=input_shape, name="x")
    x = inputs
    for f in filters:
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    for units in _as_tuple(hidden):
        x = layers.Dense(units, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_conv_decoder(output_shape=(28, 28, 1), latent_dim=2, filters=(64, 32), hidden=()):
    """Dense to a (H/2^k, W/2^k, filters[0]) map, strided transposed
    convolutions up to full size, a final 3x3 convolution to logits (the
    keras.io decoder with its defaults, without the sigmoid)."""
    scale = 2 ** len(filters)
    h, w, c = output_shape
    if h % scale or w % scale:
        raise ValueError(f"Image size {h}x{w} is not divisible by {scale} ({len(filters)} upsamplings).")
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = inputs
    for units in _as_tuple(hidden):
        x = layers.Dense(units, activation="relu")(x)
    x = layers.Dense((h // scale) * (w // scale) * filters[0], activation="relu")(x)
    x = layers.Reshape((h // scale, w // scale, filters[0]))(x)
    for f in filters:
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(x)
    outputs = layers.Conv2DTranspose(c, 3, padding="same", name="logits")(x)
    return keras.Model(inputs, outputs, name="decoder")


def build_dense_encoder(input_dim=784, latent_dim=2, hidden=(512, 256)):
    inputs = keras.Input(shape=(input_dim,), name="x")
    x = inputs
    for units in _as_tuple(hidden):
        x = layers.Dense(units, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_dense_decoder(output_dim=784, latent_dim=2, hidden=(256, 512)):
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = inputs
    for units in _as_tuple(hidden):
        x = layers.Dense(units, activation="relu")(x)
    outputs = layers.Dense(output_dim, name="logits")(x)
    return keras.Model(inputs, outputs, name="decoder")


# ---------------------------------------------------------------------- model
@register
class VAE(GenerativeModel):
    """A VAE with a Bernoulli or Gaussian decoder and closed-form KL to N(0, I).

    loss = E_q[-log p(x|z)] + beta * KL(q(z|x) || N(0, I)), per example,
    averaged over the global batch.
    """

    nested_config_keys = ("encoder", "decoder")

    def __init__(self, encoder, decoder, likelihood="bernoulli", beta=1.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}.")
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.beta = float(beta)
        self.sampling = Sampling(seed=seed, name="sampling")
        self.latent_dim = int(encoder.outputs[0].shape[-1])
        self._data_shape = tuple(int(s) for s in encoder.inputs[0].shape[1:])
        if likelihood == "gaussian":
            # Per-feature log standard deviation of p(x|z), learned.
            self.decoder_log_scale = self.add_weight(
                name="decoder_log_scale", shape=self._data_shape, initializer="zeros"
            )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    # The data contract
    @property
    def data_shape(self):
        return self._data_shape

    @property
    def data_domain(self):
        return "unit" if self.likelihood == "bernoulli" else "real"

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    # Probabilistic pieces
    def log_likelihood_given_z(self, x, decoder_out):
        """log p(x|z) per example, summed over features."""
        axes = tuple(range(1, len(self._data_shape) + 1))
        if self.likelihood == "bernoulli":
            # x*l - softplus(l) = log Bernoulli(x; sigmoid(l)), exact for x in [0, 1].
            return ops.sum(x * decoder_out - ops.softplus(decoder_out), axis=axes)
        log_scale = self.decoder_log_scale
        z = (x - decoder_out) * ops.exp(-log_scale)
        return ops.sum(-0.5 * ops.square(z) - log_scale - 0.5 * LOG_2PI, axis=axes)

    @staticmethod
    def kl_divergence(z_mean, z_log_var):
        """KL(N(mean, exp(log_var)) || N(0, I)) in closed form, per example."""
        return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)

    def elbo_terms(self, x, training=False, seed=None):
        """Per-example (reconstruction loss, KL) for one draw of z."""
        # Losses in float32 whatever the layers compute in (mixed precision).
        z_mean, z_log_var = (ops.cast(t, "float32") for t in self.encoder(x, training=training))
        z = self.sampling([z_mean, z_log_var], seed=self.seed_generator if seed is None else seed)
        decoder_out = ops.cast(self.decoder(z, training=training), "float32")
        reconstruction = -self.log_likelihood_given_z(x, decoder_out)
        return reconstruction, self.kl_divergence(z_mean, z_log_var)

    # Keras plumbing
    def call(self, x, training=False):
        """Reconstruction (mean of p(x|z) at z = z_mean)."""
        return self.reconstruct(x, training=training)

    def train_step(self, data):
        grads = self.replica_compiled(self.gradients_and_metrics)(features(data))
        # Sums the replicas' gradients under tf.distribute (outside XLA).
        apply_if_finite(self.optimizer, grads, self.trainable_weights)
        return {m.name: m.result() for m in self.metrics}

    def gradients_and_metrics(self, x):
        """One replica's share of a step: the metrics updated, the gradients of
        the loss scaled for the global batch."""
        with tf.GradientTape() as tape:
            reconstruction, kl = self.elbo_terms(x, training=True)
            loss = replica_mean(reconstruction + self.beta * kl)
        self._update_metrics(reconstruction, kl)
        return tape.gradient(loss, self.trainable_weights)

    def test_step(self, data):
        reconstruction, kl = self.elbo_terms(features(data), training=False, seed=self.eval_seed_generator)
        return self._update_metrics(reconstruction, kl)

    def _update_metrics(self, reconstruction, kl):
        # Per-example values: Mean weighs every example once, whatever the batch split.
        self.loss_tracker.update_state(reconstruction + self.beta * kl)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    # User-facing generative API
    def encode(self, x, training=False):
        """(z_mean, z_log_var) of q(z|x)."""
        return self.encoder(self.checked_input(x, method="encode"), training=training)

    def decode(self, z, training=False):
        """Mean of p(x|z): Bernoulli probabilities or Gaussian means."""
        out = self.decoder(self.checked_input(z, (self.latent_dim,), "real", "decode"), training=training)
        return ops.sigmoid(out) if self.likelihood == "bernoulli" else out

    def reconstruct(self, x, training=False):
        z_mean, _ = self.encoder(x, training=training)
        return self.decode(z_mean, training=training)

    def log_density(self, x, seed=0):
        """The ELBO per example (one draw of z, from the stateless `seed`): a lower
        bound on log p(x) (`importance_weighted_log_likelihood` tightens it)."""
        reconstruction, kl = self.elbo_terms(self.checked_input(x, method="log_density"), seed=seed_tensor(seed))
        return -(reconstruction + kl)

    def generate_samples(self, n, seed):
        """Means of p(x|z) for z ~ N(0, I) (the smooth images users expect)."""
        z = keras.random.normal((n, self.latent_dim), seed=seed)
        return self.decode(z)

    def serving_endpoints(self):
        shape = [None, *self._data_shape]
        return {
            "sample": (
                lambda n, seed: {
                    "x": self.decode(
                        tf.random.stateless_normal(tf.stack([n, self.latent_dim]), seed=tf.stack([seed, 0]))
                    )
                },
                [tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.int32, name="seed")],
            ),
            "encode": (
                lambda x: dict(zip(("z_mean", "z_log_var"), self.encode(x))),
                [tf.TensorSpec(shape, tf.float32, name="x")],
            ),
            "decode": (
                lambda z: {"x": self.decode(z)},
                [tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")],
            ),
            "reconstruct": (
                lambda x: {"x": self.reconstruct(x)},
                [tf.TensorSpec(shape, tf.float32, name="x")],
            ),
        }

    # Likelihood in nats
    def importance_weighted_log_likelihood(self, x, k=1000, batch_size=100, chunk=None, seed=0):
        """The IWAE bound log (1/k) sum_i p(x, z_i) / q(z_i|x) per example (numpy).

        A lower bound on log p(x) that tightens as k grows (k=1 is the ELBO);
        Burda et al. (2016) report VAE likelihoods this way with k = 5000.
        """
        x = np.asarray(x, dtype=np.float32)
        self.validate_data(x)
        chunk = chunk or min(k, max(1, 20_000 // batch_size))
        fn = self._iwae_fn(k, chunk)
        out = []
        for start in range(0, len(x), batch_size):
            xb = tf.constant(x[start : start + batch_size])
            s = tf.constant([seed, start], dtype=tf.int32)
            out.append(fn(xb, s).numpy())
        return np.concatenate(out)

    def _iwae_fn(self, k, chunk):
        n_chunks = -(-k // chunk)

        def fn(x, seed):
            z_mean, z_log_var = self.encoder(x, training=False)
            std = tf.exp(0.5 * z_log_var)
            b = tf.shape(x)[0]

            def body(i, log_w):
                eps = tf.random.stateless_normal(
                    tf.stack([chunk, b, self.latent_dim]), seed=tf.stack([seed[0] * 7919 + i, seed[1]])
                )
                z = z_mean[None] + std[None] * eps
                flat_z = tf.reshape(z, [-1, self.latent_dim])
                decoder_out = self.decoder(flat_z, training=False)
                x_rep = tf.repeat(x[None], chunk, axis=0)
                x_rep = tf.reshape(x_rep, tf.concat([[-1], tf.shape(x)[1:]], 0))
                log_px_z = tf.reshape(self.log_likelihood_given_z(x_rep, decoder_out), [chunk, b])
                log_pz = tf.reduce_sum(-0.5 * tf.square(z) - 0.5 * LOG_2PI, -1)
                log_qz = tf.reduce_sum(-0.5 * tf.square(eps) - 0.5 * z_log_var[None] - 0.5 * LOG_2PI, -1)
                return i + 1, log_w.write(i, log_px_z + log_pz - log_qz)

            _, log_w = tf.while_loop(
                lambda i, _: i < n_chunks,
                body,
                (tf.constant(0), tf.TensorArray(tf.float32, size=n_chunks)),
            )
            log_w = tf.reshape(log_w.stack(), [-1, b])[:k]
            return tf.reduce_logsumexp(log_w, axis=0) - tf.math.log(tf.cast(k, tf.float32))

        return compiled_once(self, ("iwae", k, chunk), fn)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": self.serialize_nested(self.encoder),
            "decoder": self.serialize_nested(self.decoder),
            "likelihood": self.likelihood,
            "beta": self.beta,
        }


def make_vae(
    architecture="conv",
    input_shape=(28, 28, 1),
    latent_dim=2,
    likelihood="bernoulli",
    beta=1.0,
    seed=None,
    encoder_kwargs=None,
    decoder_kwargs=None,
    name="vae",
):
    """Build a VAE from a named architecture ("conv" or "dense") and sizes.

    `make_vae("conv", (28, 28, 1), latent_dim=2)` is the keras.io conv VAE.
    """
    encoder_kwargs = dict(encoder_kwargs or {})
    decoder_kwargs = dict(decoder_kwargs or {})
    input_shape = tuple(input_shape)
    if architecture == "conv":
        encoder = build_conv_encoder(input_shape, latent_dim, **encoder_kwargs)
        decoder = build_conv_decoder(input_shape, latent_dim, **decoder_kwargs)
    elif architecture == "dense":
        dim = math.prod(input_shape)
        encoder = build_dense_encoder(dim, latent_dim, **encoder_kwargs)
        decoder = build_dense_decoder(dim, latent_dim, **decoder_kwargs)
    else:
        raise ValueError(f"Unknown VAE architecture {architecture!r}; expected 'conv' or 'dense'.")
    return VAE(encoder, decoder, likelihood=likelihood, beta=beta, seed=seed, name=name)


def _as_tuple(v):
    if v is None:
        return ()
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)
