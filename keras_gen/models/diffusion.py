"""Denoising diffusion models (DDPM training, DDPM/DDIM sampling).

Reads like the keras.io DDIM example it generalises: the layers (sinusoidal
step embedding), the denoisers (a compact UNet for images, an MLP for points),
the `DiffusionModel` with its `train_step`/`test_step`, then sampling and
export. The schedules and samplers live in `keras_gen.sampling.diffusion`.

Training (Ho et al. 2020): draw a step t and noise eps per example, diffuse
x_0 to x_t, and regress the network's output on eps (or on the velocity v,
Salimans & Ho 2022). Samples come from an exponential moving average of the
weights (`keras_gen.core.ema`), as in every published diffusion model: the
last step's weights are one noisy gradient away from their mean.

Class-conditional models (`num_classes`) learn with classifier-free guidance
(Ho & Salimans 2022): a fraction `label_dropout` of the labels is replaced by
the null label, so one network is both the conditional and the unconditional
denoiser; sampling mixes them with `guidance` w: (1 + w) cond - w uncond.

Randomness (steps, noise, label dropout) comes from the model's saved seed
generator through the counter-based generator, drawn per example position in
the global batch: a resumed run continues bit for bit, and a step under
`tf.distribute` matches one device.
"""

from __future__ import annotations

import contextlib
import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from keras_gen.core import ema
from keras_gen.core.base import GenerativeModel, register, replica_mean, xla_by_default
from keras_gen.core.caching import compiled_once
from keras_gen.core.distribute import apply_if_finite, replica_normal, replica_uniform
from keras_gen.core.hardware import warn_if_slow_policy
from keras_gen.core.random import fold_in, seed_tensor, standard_normal
from keras_gen.sampling import diffusion


# --------------------------------------------------------------------- layers
@register
class StepEmbedding(layers.Layer):
    """Sinusoidal embedding of the diffusion step (Vaswani et al. 2017; Ho et al. 2020)."""

    def __init__(self, dim=64, max_period=10_000.0, **kwargs):
        super().__init__(**kwargs)
        if dim % 2:
            raise ValueError(f"StepEmbedding needs an even dim, got {dim}.")
        self.dim, self.max_period = int(dim), float(max_period)

    def call(self, t):
        half = self.dim // 2
        frequencies = ops.exp(-math.log(self.max_period) * ops.arange(half, dtype="float32") / half)
        angles = ops.cast(ops.reshape(t, (-1, 1)), "float32") * frequencies[None]
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}


def _conditioning(t_in, label_in, num_classes, width):
    """The vector every block receives: the step's embedding (+ the label's)."""
    h = StepEmbedding(width)(t_in)
    h = layers.Dense(width, activation="swish")(h)
    if label_in is not None:
        # Index num_classes is the null label of classifier-free guidance.
        h = h + layers.Embedding(num_classes + 1, width)(label_in)
    return layers.Dense(width, activation="swish")(h)


def _inputs(data_shape, num_classes):
    x_in = keras.Input(data_shape, name="x_t")
    t_in = keras.Input((), dtype="int32", name="t")
    label_in = keras.Input((), dtype="int32", name="label") if num_classes else None
    return x_in, t_in, label_in


# ---------------------------------------------------------------- denoisers
def build_mlp_denoiser(data_dim, hidden=(256, 256, 256), num_classes=None, name="mlp_denoiser"):
    """An MLP on points: residual swish layers, the step added to every layer's input."""
    x_in, t_in, label_in = _inputs((data_dim,), num_classes)
    width = hidden[0]
    cond = _conditioning(t_in, label_in, num_classes, width)
    h = layers.Dense(width)(x_in)
    for units in hidden:
        update = layers.Dense(units, activation="swish")(h + layers.Dense(width)(cond))
        h = h + layers.Dense(width)(update)
    out = layers.Dense(data_dim, kernel_initializer="zeros", name="prediction")(layers.Activation("swish")(h))
    return keras.Model([x_in, t_in] + ([label_in] if label_in is not None else []), out, name=name)


def _residual_block(x, cond, width, groups):
    skip = x if x.shape[-1] == width else layers.Conv2D(width, 1)(x)
    h = layers.Activation("swish")(layers.GroupNormalization(groups)(x))
    h = layers.Conv2D(width, 3, padding="same")(h)
    h = h + layers.Reshape((1, 1, width))(layers.Dense(width)(cond))
    h = layers.Activation("swish")(layers.GroupNormalization(groups)(h))
    h = layers.Conv2D(width, 3, padding="same", kernel_initializer="zeros")(h)
    return h + skip


def _attention_block(x, groups, heads=4):
    height, width_, channels = x.shape[1:]
    h = layers.GroupNormalization(groups)(x)
    tokens = layers.Reshape((height * width_, channels))(h)
    tokens = layers.MultiHeadAttention(heads, channels // heads)(tokens, tokens)
    return x + layers.Reshape((height, width_, channels))(tokens)


@contextlib.contextmanager
def _layers_computing_in(policy):
    """Layers built inside take `policy` (each layer saves it in its config, so a
    loaded model computes as it was trained, whatever the global policy then)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy or previous)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_unet(
    image_shape=(28, 28, 1),
    widths=(32, 64, 128),
    block_depth=2,
    attention=True,
    groups=8,
    num_classes=None,
    dtype_policy=None,
    name="unet",
):
    """A compact UNet: residual blocks with group norm, the step embedding added in
    every block, `len(widths) - 1` halvings (28 -> 14 -> 7) and, with `attention`,
    self-attention at the lowest resolution (Ho et al. 2020, scaled down).

    `dtype_policy="mixed_bfloat16"` computes in bfloat16 with float32 weights:
    on a 2-core CPU with bfloat16 instructions, 1.22x the float32 training
    throughput and 1.52x its DDIM sampling throughput (BENCHMARKS.md, diffusion
    throughput). A CPU without them emulates bfloat16, and a training step
    took 10x as long as in float32 (a `SlowPrecisionWarning` says so). Group
    norm takes its statistics in float32 (Keras upcasts them against overflow)
    and the output layer computes in float32, so the prediction the sampler
    integrates keeps float32 precision.
    """
    warn_if_slow_policy(dtype_policy, "build_unet")
    with _layers_computing_in(dtype_policy):
        network = _unet(tuple(image_shape), widths, block_depth, attention, groups, num_classes, name)
    return network


def _unet(image_shape, widths, block_depth, attention, groups, num_classes, name):
    x_in, t_in, label_in = _inputs(image_shape, num_classes)
    cond = _conditioning(t_in, label_in, num_classes, 4 * widths[0])
    h = layers.Conv2D(widths[0], 3, padding="same")(x_in)
    skips = []
    for level, width in enumerate(widths):
        for _ in range(block_depth):
            h = _residual_block(h, cond, width, groups)
            skips.append(h)
        if level < len(widths) - 1:
            h = layers.AveragePooling2D(2)(h)
    h = _residual_block(h, cond, widths[-1], groups)
    if attention:
        h = _attention_block(h, groups)
    h = _residual_block(h, cond, widths[-1], groups)
    for level, width in reversed(list(enumerate(widths))):
        for _ in range(block_depth):
            h = _residual_block(layers.Concatenate()([h, skips.pop()]), cond, width, groups)
        if level > 0:
            h = layers.UpSampling2D(2, interpolation="nearest")(h)
    h = layers.Activation("swish")(layers.GroupNormalization(groups)(h))
    out = layers.Conv2D(
        image_shape[-1], 3, padding="same", kernel_initializer="zeros", dtype="float32", name="prediction"
    )(h)
    return keras.Model([x_in, t_in] + ([label_in] if label_in is not None else []), out, name=name)


# ---------------------------------------------------------------------- model
@register
class DiffusionModel(GenerativeModel):
    """A denoiser `network([x_t, t(, label)])` trained to reverse a fixed noising process.

    * `schedule`, `steps`: the forward process ("cosine" or "linear", T steps);
    * `prediction`: what the network outputs, "epsilon" (default, Ho et al.) or
      "v" (what the zoo's entries use, and the better choice for DDIM). With
      eps, x0 = (x_t - s eps) / a divides by the signal rate a, which is 5e-5
      at the cosine schedule's last step: a deterministic (DDIM) sampler
      multiplies the network's error there by a_s / a ~ 1,000 (measured on
      ddpm_ring8: DDIM-50 covered 0 of 8 modes from t = 999, 8 of 8 from
      t = 990). v = a eps - s x_0 gives x0 = a x_t - s v, which stays well
      conditioned at every step (Salimans & Ho 2022);
    * `ema_momentum`: momentum of the weights' moving average that samples
      (None: sample with the live weights);
    * `num_classes`, `label_dropout`: class-conditional training with
      classifier-free guidance;
    * `data_domain`: "symmetric" for images in [-1, 1] (x0 predictions are
      clipped to it while sampling), "real" otherwise.
    """

    nested_config_keys = ("network",)

    def __init__(
        self,
        network,
        schedule="cosine",
        steps=1000,
        prediction="epsilon",
        ema_momentum=0.999,
        num_classes=None,
        label_dropout=0.1,
        data_domain="real",
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        if prediction not in diffusion.PREDICTIONS:
            raise ValueError(f"prediction must be one of {diffusion.PREDICTIONS}, got {prediction!r}.")
        if not 0.0 <= float(label_dropout) < 1.0:
            raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout}.")
        self.network = network
        self.schedule = diffusion.NoiseSchedule(schedule, steps)
        self.prediction = prediction
        self.ema_momentum = ema.check_momentum(ema_momentum)
        self.ema_network = None if self.ema_momentum is None else ema.ema_copy(network)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.label_dropout = float(label_dropout)
        self._data_domain = data_domain
        self._data_shape = tuple(int(s) for s in network.inputs[0].shape[1:])
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True  # the network arrives built

    @property
    def metrics(self):
        return [self.loss_tracker]

    @property
    def sampling_network(self):
        """The network that samples: the moving average when the model keeps one."""
        return self.network if self.ema_network is None else self.ema_network

    def call(self, x, training=False):
        """The network's prediction at step 0 (for Keras's build; use `denoise`)."""
        return self.denoise(x, ops.zeros((ops.shape(x)[0],), "int32"), training=training)

    def denoise(self, x_t, t, labels=None, network=None, training=False):
        """The network's output (eps or v) at per-example steps `t` (and labels)."""
        network = network or self.network
        x_t, t = ops.convert_to_tensor(x_t, "float32"), ops.convert_to_tensor(t, "int32")
        inputs = [x_t, t]
        if self.num_classes:
            null = ops.full((ops.shape(x_t)[0],), self.num_classes, "int32")
            inputs.append(null if labels is None else ops.cast(labels, "int32"))
        return ops.cast(network(inputs, training=training), "float32")

    # ------------------------------------------------------------- training
    def _split(self, data):
        if isinstance(data, (tuple, list)):
            x = data[0]
            labels = data[1] if len(data) > 1 and self.num_classes else None
        else:
            x, labels = data, None
        if self.num_classes and labels is None:
            raise ValueError("A class-conditional DiffusionModel trains on (images, labels) pairs.")
        return x, labels

    def per_example_loss(self, x, labels, seed, training):
        """Mean squared error of the network's prediction, per example."""
        x = ops.cast(x, "float32")
        batch = ops.shape(x)[0]
        steps = self.schedule.steps
        t = ops.cast(ops.floor(replica_uniform((batch,), fold_in(seed, 0)) * steps), "int32")
        t = ops.minimum(t, steps - 1)
        noise = replica_normal(ops.shape(x), fold_in(seed, 1))
        if labels is not None and training and self.label_dropout:
            dropped = replica_uniform((batch,), fold_in(seed, 2)) < self.label_dropout
            labels = ops.where(dropped, self.num_classes, ops.cast(labels, "int32"))
        x_t = self.schedule.diffuse(x, t, noise)
        signal, noise_rate = self.schedule.rates(t)
        shape = (-1,) + (1,) * len(self._data_shape)
        target = diffusion.training_target(
            self.prediction, x, noise, ops.reshape(signal, shape), ops.reshape(noise_rate, shape)
        )
        error = ops.square(self.denoise(x_t, t, labels, training=training) - target)
        return ops.mean(ops.reshape(error, (batch, -1)), axis=-1)

    def train_step(self, data):
        x, labels = self._split(data)
        grads = self.replica_compiled(self.gradients_and_metrics)(x, labels)
        # Sums the replicas' gradients under tf.distribute (outside XLA).
        applied = apply_if_finite(self.optimizer, grads, self.network.trainable_weights)
        if self.ema_network is not None:
            ema.update_ema(self.ema_network, self.network, self.ema_momentum, self.optimizer.iterations, applied)
        return {m.name: m.result() for m in self.metrics}

    def gradients_and_metrics(self, x, labels):
        """One replica's share of a step: the loss tracked, its gradients scaled for the global batch."""
        with tf.GradientTape() as tape:
            per_example = self.per_example_loss(x, labels, seed_tensor(self.seed_generator), training=True)
            loss = replica_mean(per_example)
        self.loss_tracker.update_state(per_example)
        return tape.gradient(loss, self.network.trainable_weights)

    def test_step(self, data):
        x, labels = self._split(data)
        per_example = self.per_example_loss(x, labels, seed_tensor(self.eval_seed_generator), training=False)
        self.loss_tracker.update_state(per_example)
        return {m.name: m.result() for m in self.metrics}

    # ------------------------------------------------------------- sampling
    def _guided(self, x, t, labels, guidance):
        """The sampling network's output at scalar step t, with classifier-free guidance."""
        network = self.sampling_network
        steps = ops.full((ops.shape(x)[0],), t, "int32")
        if not self.num_classes or labels is None:
            return self.denoise(x, steps, None, network)
        conditional = self.denoise(x, steps, labels, network)

        def guided():
            unconditional = self.denoise(x, steps, None, network)
            return (1.0 + guidance) * conditional - guidance * unconditional

        # Without guidance the null-label pass is not needed: half the work per step.
        return ops.cond(ops.equal(guidance, 0.0), lambda: conditional, guided)

    def _sampler(self, x_T, steps, eta, seed, labels, guidance, stop_after=None):
        clip = 1.0 if self._data_domain == "symmetric" else None
        return diffusion.sample(
            lambda x, t: self._guided(x, t, labels, guidance),
            x_T,
            self.schedule,
            steps,
            eta=eta,
            seed=seed,
            prediction=self.prediction,
            clip=clip,
            stop_after=stop_after,
        )

    def generate_samples(self, n, seed, steps=50, eta=0.0, label=None, guidance=0.0, x_T=None, stop_after=None):
        """n samples after `steps` reverse steps (eta 0: DDIM; 1: DDPM), from `x_T` if
        given, else from N(0, I). `stop_after=k`: the state after the first k steps
        (a trajectory's point).

        A class-conditional model takes `label` (with guidance w): one class for all
        n samples, n labels (one per sample), or "random" for classes drawn uniformly
        from `seed` (the conditional model's own p(x), MNIST's classes being nearly
        balanced); None samples the unconditional (null-label) denoiser.
        """
        seed = seed_tensor(seed)
        labels = self._sampling_labels(label, n, seed)
        if x_T is None:
            x_T = standard_normal((n, *self._data_shape), fold_in(seed, -1))
        fn = compiled_once(self, ("sample", label is None), self._sampler, jit_compile=xla_by_default(self))
        return fn(
            tf.convert_to_tensor(x_T, tf.float32),
            tf.constant(int(steps)),
            tf.constant(float(eta)),
            seed,
            labels,
            tf.constant(float(guidance)),
            tf.constant(int(steps) if stop_after is None else int(stop_after)),
        )

    def _sampling_labels(self, label, n, seed):
        if label is None:
            return None
        if not self.num_classes:
            raise ValueError("label= needs a class-conditional model (num_classes).")
        if isinstance(label, str):
            if label != "random":
                raise ValueError(f'label must be a class, n classes or "random", got {label!r}.')
            return tf.random.stateless_uniform([n], fold_in(seed, -2), 0, self.num_classes, tf.int32)
        labels = np.asarray(label)
        if labels.ndim > 1 or (labels.ndim == 1 and len(labels) != n):
            raise ValueError(f"label: one class or {n} classes (one per sample), got shape {labels.shape}.")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"label: classes are integers in [0, {self.num_classes}), got {label!r}.")
        return tf.constant(np.broadcast_to(labels, (n,)), tf.int32)

    def invert(self, x0, steps=50):
        """Deterministic DDIM latents of real data `x0` (for interpolation)."""
        fn = compiled_once(
            self,
            "invert",
            lambda x, s: diffusion.invert(
                lambda x_t, t: self._guided(x_t, t, None, 0.0), x, self.schedule, s, self.prediction
            ),
        )
        return fn(tf.convert_to_tensor(x0, tf.float32), tf.constant(int(steps)))

    def serving_endpoints(self):
        shape = [None, *self._data_shape]
        specs = [
            tf.TensorSpec([], tf.int32, name="n"),
            tf.TensorSpec([], tf.int32, name="steps"),
            tf.TensorSpec([], tf.float32, name="eta"),
            tf.TensorSpec([], tf.int32, name="seed"),
        ]

        def sample(n, steps, eta, seed):
            seed = tf.stack([seed, 0])
            x_T = standard_normal(tf.concat([[n], self._data_shape], 0), fold_in(seed, -1))
            return {"x": self._sampler(x_T, steps, eta, seed, None, 0.0)}

        endpoints = {
            "sample": (sample, specs),
            "denoise": (
                lambda x_t, t: {"prediction": self.denoise(x_t, t, None, self.sampling_network)},
                [tf.TensorSpec(shape, tf.float32, name="x_t"), tf.TensorSpec([None], tf.int32, name="t")],
            ),
        }
        if self.num_classes:

            def sample_class(n, steps, eta, seed, label, guidance):
                seed = tf.stack([seed, 0])
                x_T = standard_normal(tf.concat([[n], self._data_shape], 0), fold_in(seed, -1))
                return {"x": self._sampler(x_T, steps, eta, seed, tf.fill([n], label), guidance)}

            endpoints["sample_class"] = (
                sample_class,
                specs + [tf.TensorSpec([], tf.int32, name="label"), tf.TensorSpec([], tf.float32, name="guidance")],
            )
        return endpoints

    def get_config(self):
        return {
            **super().get_config(),
            "network": self.serialize_nested(self.network),
            "schedule": self.schedule.kind,
            "steps": self.schedule.steps,
            "prediction": self.prediction,
            "ema_momentum": self.ema_momentum,
            "num_classes": self.num_classes,
            "label_dropout": self.label_dropout,
            "data_domain": self._data_domain,
        }


def make_diffusion(
    architecture="unet",
    data_shape=(28, 28, 1),
    schedule="cosine",
    steps=1000,
    prediction="epsilon",
    ema_momentum=0.999,
    num_classes=None,
    label_dropout=0.1,
    data_domain=None,
    network_kwargs=None,
    seed=None,
    name="diffusion",
):
    """Build a DiffusionModel: "unet" on images (data in [-1, 1]) or "mlp" on points."""
    network_kwargs = dict(network_kwargs or {})
    data_shape = tuple(int(s) for s in data_shape)
    if architecture == "unet":
        network = build_unet(data_shape, num_classes=num_classes, **network_kwargs)
        data_domain = data_domain or "symmetric"
    elif architecture == "mlp":
        network = build_mlp_denoiser(math.prod(data_shape), num_classes=num_classes, **network_kwargs)
        data_domain = data_domain or "real"
    else:
        raise ValueError(f"Unknown diffusion architecture {architecture!r}; expected 'unet' or 'mlp'.")
    return DiffusionModel(
        network,
        schedule=schedule,
        steps=steps,
        prediction=prediction,
        ema_momentum=ema_momentum,
        num_classes=num_classes,
        label_dropout=label_dropout,
        data_domain=data_domain,
        seed=seed,
        name=name,
    )
