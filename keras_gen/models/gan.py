"""Generative adversarial networks.

Reads top to bottom like the keras.io GAN examples it generalises: a dropout
layer whose masks come from the counter-based generator, the generator and
discriminator builders (the MLP GAN of the course notes, the DCGAN of the
TensorFlow tutorial), the losses, the `GAN` model with its `train_step` and
metrics, the latent-space views, and `make_gan` for the zoo configurations.

One `GAN` class covers the family; `compile` chooses the game:

    objective="non_saturating"  (default) D: -log D(x) - log(1 - D(G(z))),
                           G: -log D(G(z))  (strong gradients early on)
    objective="minimax"         the same D, G: log(1 - D(G(z)))  (the original game)
    objective="wasserstein"     critic: C(G(z)) - C(x), G: -C(G(z)); Lipschitz by
                           `clip_value` (WGAN) or `gradient_penalty` (WGAN-GP)

Discriminators output logits (critic values for the Wasserstein loss), so the
log-probabilities above are exact softplus expressions.

Training follows Algorithm 1 of the WGAN paper: `n_critic` discriminator
updates, then one generator update. Each critic update takes its own share of
the real batch fit passes (the batch is split into `n_critic` strided parts,
so pass `batch_size = n_critic * m` for m real examples per critic step) and
fresh noise. With `simultaneous=True` (n_critic = 1), both gradients come
from one forward pass and both updates are applied together: the training
step of the TensorFlow DCGAN tutorial.

With `ema_momentum=m` the model also keeps an exponential moving average of
the generator's weights (`average_generator`, see `keras_gen.core.ema`),
updated after every generator step (Polyak averaging; Yazici et al. 2019). The players of an adversarial game
circle around a point rather than settle on it; the average sits closer to
it. `generate`, `sample`, the latent views and the exported signatures use
the average; the game itself (training, `test_step`) uses the live generator.

Randomness (noise, dropout masks, interpolation coefficients) comes from the
models' saved seed generators through the counter-based generator of
`keras_gen.core.random`, drawn per example position in the global batch: a
resumed run continues bit for bit, and a step under `tf.distribute` sees the
same numbers as on one device.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from keras_gen.core import compat, ema
from keras_gen.core.base import GenerativeModel, features, register, replica_mean
from keras_gen.core.distribute import apply_if_finite, replica_normal, replica_uniform, update_variables
from keras_gen.core.random import seed_tensor, standard_normal, uniform
from keras_gen.models.gan_networks import (
    build_dcgan_discriminator,
    build_dcgan_generator,
    build_mlp_discriminator,
    build_mlp_generator,
)

OBJECTIVES = ("non_saturating", "minimax", "wasserstein")
NOISES = ("normal", "uniform")


# ---------------------------------------------------------------------- losses
def discriminator_loss(objective, real_out, fake_out):
    """Per-example discriminator (critic) loss from its outputs on x and G(z)."""
    if objective == "wasserstein":
        return fake_out - real_out
    # -log sigmoid(l) = softplus(-l);  -log(1 - sigmoid(l)) = softplus(l).
    return ops.softplus(-real_out) + ops.softplus(fake_out)


def generator_loss(objective, fake_out):
    """Per-example generator loss from the discriminator's outputs on G(z)."""
    if objective == "wasserstein":
        return -fake_out
    if objective == "minimax":
        return -ops.softplus(fake_out)  # log(1 - D(G(z))), minimised
    return ops.softplus(-fake_out)  # -log D(G(z))


def discriminator_score(objective, out):
    """What the metrics report: D as a probability, or the critic value."""
    return out if objective == "wasserstein" else ops.sigmoid(out)


# ---------------------------------------------------------------------- model
@register
class GAN(GenerativeModel):
    """A generator G: z -> x and a discriminator (critic) D: x -> logit.

    `compile(d_optimizer=..., g_optimizer=..., objective=..., n_critic=...,
    gradient_penalty=..., clip_value=..., simultaneous=...)` sets the game
    (module docstring). Both optimizers are saved in `.keras` files, weights
    files and run backups; `model.optimizer` is the
    generator's (its `iterations` counts train steps), `model.d_optimizer`
    the discriminator's.

    Metrics per step: `d_loss`, `g_loss` (per example), `d_x` = mean D(x)
    and `d_g_z` = mean D(G(z)) (probabilities, 0.5 at the equilibrium; critic
    values for the Wasserstein loss), and `gradient_penalty` for WGAN-GP.
    """

    nested_config_keys = ("generator", "discriminator")
    renamed_config_keys = {"generator_average": "ema_momentum"}  # keras-gen 0.1

    def __init__(
        self,
        generator,
        discriminator,
        noise="normal",
        data_domain="symmetric",
        ema_momentum=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {noise!r}.")
        self.generator = generator
        self.discriminator = discriminator
        self.noise = noise
        self._data_domain = data_domain
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self._data_shape = tuple(int(s) for s in discriminator.inputs[0].shape[1:])
        generated = tuple(int(s) for s in generator.outputs[0].shape[1:])
        if generated != self._data_shape:
            raise ValueError(
                f"The generator makes samples of shape {generated}, the discriminator reads {self._data_shape}."
            )
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_x_tracker = keras.metrics.Mean(name="d_x")
        self.d_g_z_tracker = keras.metrics.Mean(name="d_g_z")
        self.penalty_tracker = keras.metrics.Mean(name="gradient_penalty")
        self.objective = "non_saturating"
        self.n_critic = 1
        self.gradient_penalty_weight = 0.0
        self.clip_value = None
        self.simultaneous = False
        self.d_optimizer = None
        self.ema_momentum = ema.check_momentum(ema_momentum)
        # The generator that samples; the attribute's name is the key of its
        # weights in saved files.
        self.average_generator = None if self.ema_momentum is None else ema.ema_copy(generator)
        self.built = True  # the sub-models arrive built

    # The data contract
    @property
    def metrics(self):
        trackers = [self.d_loss_tracker, self.g_loss_tracker, self.d_x_tracker, self.d_g_z_tracker]
        return trackers + ([self.penalty_tracker] if self.gradient_penalty_weight else [])

    def build_for_data(self):
        return self

    # Compilation: two optimizers and the rules of the game
    def compile(
        self,
        d_optimizer=None,
        g_optimizer=None,
        objective="non_saturating",
        n_critic=1,
        gradient_penalty=0.0,
        clip_value=None,
        simultaneous=False,
        optimizer=None,
        jit_compile="auto",
        **kwargs,
    ):
        """`optimizer=` alone gives both players a copy of the same optimizer.

        `objective` names the game's pair of losses (not a Keras loss, which a
        GAN has no use for: each player's loss is the objective's).
        """
        if "loss" in kwargs:
            raise TypeError(
                f"GAN.compile(loss={kwargs['loss']!r}): the players' losses are chosen by objective= "
                f"(one of {OBJECTIVES}) since keras-gen 0.2."
            )
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}.")
        if int(n_critic) < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}.")
        if float(gradient_penalty) < 0:
            raise ValueError(f"gradient_penalty must be >= 0, got {gradient_penalty}.")
        if clip_value is not None and float(clip_value) <= 0:
            raise ValueError(f"clip_value must be > 0, got {clip_value}.")
        if float(gradient_penalty) and any(
            isinstance(layer, layers.BatchNormalization) for layer in compat.flatten_layers(self.discriminator)
        ):
            raise ValueError(
                "The gradient penalty needs per-example critic gradients; this critic has batch "
                "normalization, which mixes the examples of a batch."
            )
        if simultaneous and int(n_critic) != 1:
            raise ValueError("simultaneous updates need n_critic = 1.")
        if optimizer is not None:
            d_optimizer = d_optimizer or optimizer
            g_optimizer = g_optimizer or _copy_optimizer(optimizer)
        if d_optimizer is None or g_optimizer is None:
            raise ValueError("GAN.compile needs d_optimizer and g_optimizer (or one optimizer= for both).")
        d_optimizer = keras.optimizers.get(d_optimizer)
        g_optimizer = keras.optimizers.get(g_optimizer)
        if d_optimizer is g_optimizer:
            raise ValueError("The two players need separate optimizer instances (their states differ).")
        self.objective = objective
        self.n_critic = int(n_critic)
        self.gradient_penalty_weight = float(gradient_penalty)
        self.clip_value = None if clip_value is None else float(clip_value)
        self.simultaneous = bool(simultaneous)
        self.d_optimizer = d_optimizer
        # Keras's own optimizer slot holds the generator's: fit and its callbacks see one optimizer
        # whose iterations count train steps.
        super().compile(optimizer=g_optimizer, jit_compile=jit_compile, **kwargs)  # builds both optimizers

    def build_optimizers(self):
        """Each player's optimizer over its own network's variables (built at
        `compile`, so they exist before a checkpoint is restored into them)."""
        for optimizer, network in ((self.d_optimizer, self.discriminator), (self.optimizer, self.generator)):
            if optimizer is not None and not optimizer.built:
                optimizer.build(network.trainable_variables)
        return self

    @property
    def g_optimizer(self):
        return self.optimizer

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.optimizer),
            "objective": self.objective,
            "n_critic": self.n_critic,
            "gradient_penalty": self.gradient_penalty_weight,
            "clip_value": self.clip_value,
            "simultaneous": self.simultaneous,
            "jit_compile": self.requested_jit_compile,
        }

    def compile_from_config(self, config):
        # As the base class: restore the compile state; `compile` builds both optimizers.
        config = dict(config)
        for key in ("d_optimizer", "g_optimizer"):
            config[key] = keras.optimizers.deserialize(config[key])
        if "loss" in config:  # saved by keras-gen 0.1
            config["objective"] = config.pop("loss")
        self.compile(**config)

    # Noise
    def latent_noise(self, n, seed):
        """Latent draws for this replica's n examples (seed: a stateless (2,) seed)."""
        shape = (n, self.latent_dim)
        if self.noise == "uniform":
            return 2.0 * replica_uniform(shape, seed) - 1.0
        return replica_normal(shape, seed)

    # Keras plumbing
    def call(self, z, training=False):
        """G(z)."""
        return self.generator(z, training=training)

    def call_signature(self):
        return [tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")]

    def train_step(self, data):
        x = features(data)
        if self.simultaneous:
            d_grads, g_grads = self.replica_compiled(self.joint_gradients)(x)
            apply_if_finite(self.d_optimizer, d_grads, self.discriminator.trainable_weights)
            applied = apply_if_finite(self.optimizer, g_grads, self.generator.trainable_weights)
            self.update_average_generator(applied)
            return {m.name: m.result() for m in self.metrics}
        # Each critic step its own strided share of the batch: under tf.distribute every replica's
        # share i holds the same examples as share i of the global batch on one device.
        usable = (ops.shape(x)[0] // self.n_critic) * self.n_critic
        x = x[:usable]
        for i in range(self.n_critic):
            d_grads = self.replica_compiled(self.critic_gradients)(x[i :: self.n_critic])
            # Sums the replicas' gradients under tf.distribute (outside XLA).
            apply_if_finite(self.d_optimizer, d_grads, self.discriminator.trainable_weights)
            if self.clip_value is not None:
                self.clip_critic_weights()
        g_grads = self.replica_compiled(self.generator_gradients)(x[0 :: self.n_critic])
        applied = apply_if_finite(self.optimizer, g_grads, self.generator.trainable_weights)
        self.update_average_generator(applied)
        return {m.name: m.result() for m in self.metrics}

    def critic_output(self, x, training=False):
        """D(x) or the critic's value per example, in float32 (losses stay float32 under mixed precision)."""
        return ops.cast(ops.squeeze(self.discriminator(x, training=training), -1), "float32")

    def critic_gradients(self, x):
        """One replica's critic step: D's gradients (loss scaled for the global batch)."""
        n = ops.shape(x)[0]
        fake = self.generator(self.latent_noise(n, seed_tensor(self.seed_generator)), training=True)
        with tf.GradientTape() as tape:
            real_out = self.critic_output(x, training=True)
            fake_out = self.critic_output(fake, training=True)
            d_loss = discriminator_loss(self.objective, real_out, fake_out)
            if self.gradient_penalty_weight:
                penalty = self.gradient_penalty(x, fake, seed_tensor(self.seed_generator))
                d_loss = d_loss + self.gradient_penalty_weight * penalty
                self.penalty_tracker.update_state(penalty)
            loss = replica_mean(d_loss)
        self._update_discriminator_metrics(d_loss, real_out, fake_out)
        return tape.gradient(loss, self.discriminator.trainable_weights)

    def gradient_penalty(self, real, fake, seed):
        """(||grad_x̂ D(x̂)|| - 1)^2 per example at x̂ = eps x + (1 - eps) G(z),
        eps ~ U[0, 1] per example (Gulrajani et al. 2017, Algorithm 1)."""
        fake = ops.cast(fake, real.dtype)  # a mixed-precision generator's output
        eps_shape = (ops.shape(real)[0],) + (1,) * len(self._data_shape)
        eps = replica_uniform(eps_shape, seed, real.dtype)
        mixed = eps * real + (1.0 - eps) * fake
        with tf.GradientTape() as tape:
            tape.watch(mixed)
            # Each output depends on its own input only (no batch statistics in the critic),
            # so the gradient of the sum holds every example's own gradient.
            out = self.discriminator(mixed, training=True)
        grads = ops.cast(tape.gradient(out, mixed), "float32")
        norms = ops.sqrt(ops.sum(ops.square(grads), axis=tuple(range(1, len(self._data_shape) + 1))) + 1e-12)
        return ops.square(norms - 1.0)

    def generator_gradients(self, x):
        """One replica's generator step (x only sets the number of examples)."""
        n = ops.shape(x)[0]
        z = self.latent_noise(n, seed_tensor(self.seed_generator))
        with tf.GradientTape() as tape:
            fake_out = self.critic_output(self.generator(z, training=True), training=True)
            g_loss = generator_loss(self.objective, fake_out)
            loss = replica_mean(g_loss)
        self.g_loss_tracker.update_state(g_loss)
        return tape.gradient(loss, self.generator.trainable_weights)

    def joint_gradients(self, x):
        """Both players' gradients from one forward pass (simultaneous updates)."""
        z = self.latent_noise(ops.shape(x)[0], seed_tensor(self.seed_generator))
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(z, training=True)
            real_out = self.critic_output(x, training=True)
            fake_out = self.critic_output(fake, training=True)
            d_loss = discriminator_loss(self.objective, real_out, fake_out)
            g_loss = generator_loss(self.objective, fake_out)
            d_mean, g_mean = replica_mean(d_loss), replica_mean(g_loss)
        self._update_discriminator_metrics(d_loss, real_out, fake_out)
        self.g_loss_tracker.update_state(g_loss)
        return (
            d_tape.gradient(d_mean, self.discriminator.trainable_weights),
            g_tape.gradient(g_mean, self.generator.trainable_weights),
        )

    def clip_critic_weights(self):
        """Clip every critic weight to [-c, c] (the WGAN's Lipschitz constraint)."""
        c = self.clip_value
        update_variables(self.discriminator.trainable_variables, lambda var: var.assign(tf.clip_by_value(var, -c, c)))

    def update_average_generator(self, applied=True):
        """The generator's moving average, after a generator step (`core.ema.update_ema`);
        unchanged when the step was skipped (`applied` false: non-finite gradients)."""
        if self.average_generator is not None:
            ema.update_ema(
                self.average_generator, self.generator, self.ema_momentum, self.optimizer.iterations, applied
            )

    def test_step(self, data):
        x = features(data)
        fake = self.generator(self.latent_noise(ops.shape(x)[0], seed_tensor(self.eval_seed_generator)))
        real_out = self.critic_output(x)
        fake_out = self.critic_output(fake)
        d_loss = discriminator_loss(self.objective, real_out, fake_out)
        if self.gradient_penalty_weight:
            penalty = self.gradient_penalty(x, fake, seed_tensor(self.eval_seed_generator))
            d_loss = d_loss + self.gradient_penalty_weight * penalty
            self.penalty_tracker.update_state(penalty)
        self._update_discriminator_metrics(d_loss, real_out, fake_out)
        self.g_loss_tracker.update_state(generator_loss(self.objective, fake_out))
        return {m.name: m.result() for m in self.metrics}

    def _update_discriminator_metrics(self, d_loss, real_out, fake_out):
        # Per-example values: Mean weighs every example once, whatever the batch split.
        self.d_loss_tracker.update_state(d_loss)
        self.d_x_tracker.update_state(discriminator_score(self.objective, real_out))
        self.d_g_z_tracker.update_state(discriminator_score(self.objective, fake_out))

    # User-facing generative API
    def draw_latent(self, n, seed):
        """n latent points from the noise distribution (seed: generator, int or (2,) tensor)."""
        seed = seed_tensor(seed)
        shape = (n, self.latent_dim)
        if self.noise == "uniform":
            return 2.0 * uniform(shape, seed) - 1.0
        return standard_normal(shape, seed)

    @property
    def sampling_generator(self):
        """The generator that samples: the moving average when the model keeps one."""
        return self.generator if self.average_generator is None else self.average_generator

    def generate(self, z):
        """G(z) at inference (batch statistics frozen; the averaged generator if there is one)."""
        return self.sampling_generator(z, training=False)

    def generate_samples(self, n, seed):
        return self.generate(self.draw_latent(n, seed))

    def discriminate(self, x):
        """D(x): probabilities (or critic values for the Wasserstein loss)."""
        return discriminator_score(self.objective, self.critic_output(x, training=False))

    def interpolate(self, z_start, z_end, steps=10, spherical=None):
        """Samples along the path from z_start to z_end, shape (steps, *data_shape).

        Normal noise is interpolated along the great circle (slerp), which
        keeps intermediate points at typical distances from the origin;
        uniform noise linearly.
        """
        a = np.asarray(z_start, np.float32).reshape(-1)
        b = np.asarray(z_end, np.float32).reshape(-1)
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        spherical = self.noise == "normal" if spherical is None else spherical
        omega = math.acos(float(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12), -1, 1)))
        if spherical and omega > 1e-6:
            z = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / math.sin(omega)
        else:
            z = (1 - t) * a + t * b
        return keras.ops.convert_to_numpy(self.generate(z.astype(np.float32)))

    def explore_latent(self, mean_scale=1.0, std_scale=1.0, n=10, seed=0):
        """n samples with z_j ~ N(m_j, s_j), m = mean_scale * linspace(-1, 1, d),
        s = std_scale * |linspace(-1, 1, d)|: the course notes' walk through
        the latent space by shifting the means and widening the draw."""
        ramp = np.linspace(-1.0, 1.0, self.latent_dim, dtype=np.float32)
        eps = keras.ops.convert_to_numpy(standard_normal((n, self.latent_dim), seed_tensor(int(seed))))
        z = mean_scale * ramp + std_scale * np.abs(ramp) * eps
        return keras.ops.convert_to_numpy(self.generate(z.astype(np.float32)))

    def serving_endpoints(self):
        return {
            "generate": (
                lambda z: {"x": self.generate(z)},
                [tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")],
            ),
            # The same draw as `sample(n, seed)` in Python: plain TensorFlow ops, no keras-gen.
            "sample": (
                lambda n, seed: {"x": self.generate(self.draw_latent(n, tf.stack([seed, 0])))},
                [tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.int32, name="seed")],
            ),
            "discriminate": (
                lambda x: {"score": self.discriminate(x)},
                [tf.TensorSpec([None, *self._data_shape], tf.float32, name="x")],
            ),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "generator": self.serialize_nested(self.generator),
            "discriminator": self.serialize_nested(self.discriminator),
            "noise": self.noise,
            "data_domain": self._data_domain,
            "ema_momentum": self.ema_momentum,
        }


# -------------------------------------------------------------- configurations
ARCHITECTURES = ("mlp", "dcgan")


def make_gan(
    architecture="dcgan",
    data_shape=(28, 28, 1),
    latent_dim=None,
    noise="normal",
    data_domain="symmetric",
    generator_kwargs=None,
    discriminator_kwargs=None,
    ema_momentum=None,
    seed=None,
    name="gan",
):
    """Build a GAN from a named architecture.

    * "mlp": the course notes' MNIST GAN (latent 20, one hidden layer of 100,
      LeakyReLU, tanh output; discriminator with dropout 0.5) on flat data;
    * "dcgan": the TensorFlow tutorial's DCGAN (latent 100) on images.

    For data outside [-1, 1] (e.g. the 2-D toy mixtures) pass
    data_domain="real" and generator_kwargs={"output_activation": None}.
    """
    generator_kwargs = dict(generator_kwargs or {})
    discriminator_kwargs = dict(discriminator_kwargs or {})
    data_shape = tuple(int(s) for s in data_shape)
    if architecture == "mlp":
        latent_dim = latent_dim or 20
        generator = build_mlp_generator(latent_dim, data_shape, **generator_kwargs)
        discriminator = build_mlp_discriminator(data_shape, seed=seed, **discriminator_kwargs)
    elif architecture == "dcgan":
        if len(data_shape) != 3:
            raise ValueError(f"The DCGAN needs images (height, width, channels), got data shape {data_shape}.")
        latent_dim = latent_dim or 100
        generator = build_dcgan_generator(latent_dim, data_shape, **generator_kwargs)
        discriminator = build_dcgan_discriminator(data_shape, seed=seed, **discriminator_kwargs)
    else:
        raise ValueError(f"Unknown GAN architecture {architecture!r}; expected one of {ARCHITECTURES}.")
    return GAN(
        generator,
        discriminator,
        noise=noise,
        data_domain=data_domain,
        ema_momentum=ema_momentum,
        seed=seed,
        name=name,
    )


def make_toy_gan(latent_dim=8, hidden=(128, 128), ema_momentum=None, seed=None, name="toy_gan", data_dim=2):
    """An MLP GAN for real-valued points, 2-D toy data by default (linear output, no
    dropout): the models of the mode-collapse experiment."""
    return make_gan(
        "mlp",
        (data_dim,),
        latent_dim=latent_dim,
        data_domain="real",
        generator_kwargs={"hidden": list(hidden), "output_activation": None},
        discriminator_kwargs={"hidden": list(hidden), "dropout": 0.0},
        ema_momentum=ema_momentum,
        seed=seed,
        name=name,
    )


# The zoo's training rules, as compile arguments (optimizers built fresh each call).
def standard_compile_kwargs(learning_rate=1e-3):
    """The course notes' MNIST GAN: Adam (Keras defaults) for both players, non-saturating loss."""
    return {
        "d_optimizer": keras.optimizers.Adam(learning_rate),
        "g_optimizer": keras.optimizers.Adam(learning_rate),
        "objective": "non_saturating",
    }


def dcgan_compile_kwargs():
    """The TensorFlow tutorial: Adam 1e-4 for both, simultaneous updates."""
    return {
        "d_optimizer": keras.optimizers.Adam(1e-4),
        "g_optimizer": keras.optimizers.Adam(1e-4),
        "objective": "non_saturating",
        "simultaneous": True,
    }


def wgan_compile_kwargs():
    """Arjovsky et al. (2017): RMSprop 5e-5, n_critic 5, clipping at 0.01."""
    return {
        "d_optimizer": keras.optimizers.RMSprop(5e-5),
        "g_optimizer": keras.optimizers.RMSprop(5e-5),
        "objective": "wasserstein",
        "n_critic": 5,
        "clip_value": 0.01,
    }


def wgan_gp_compile_kwargs(learning_rate=1e-4):
    """Gulrajani et al. (2017): Adam (1e-4, beta1 0.5, beta2 0.9), n_critic 5, lambda 10."""
    return {
        "d_optimizer": keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.9),
        "g_optimizer": keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.9),
        "objective": "wasserstein",
        "n_critic": 5,
        "gradient_penalty": 10.0,
    }


def tiny_gan_for_tests(data_dim=12, seed=0, latent_dim=4, hidden=16, dropout=0.25, ema_momentum=None):
    """A two-layer MLP GAN on flat data in [-1, 1]: small enough for tests and examples."""
    return make_gan(
        "mlp",
        (data_dim,),
        latent_dim=latent_dim,
        generator_kwargs={"hidden": [hidden]},
        discriminator_kwargs={"hidden": [hidden], "dropout": dropout},
        ema_momentum=ema_momentum,
        seed=seed,
        name="tiny_gan",
    )


def _copy_optimizer(optimizer):
    optimizer = keras.optimizers.get(optimizer)
    return optimizer.__class__.from_config(optimizer.get_config())


def _as_tuple(v):
    if v is None:
        return ()
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)
