"""Energy-based models sampled by Langevin dynamics (Du & Mordatch 2019).

Reads top to bottom like a keras.io example: the energy networks (an MLP for
points, a small CNN for images), the `EnergyModel` with its replay buffer
and `train_step`, then sampling and export. The sampler itself is the shared
`keras_gen.sampling.langevin`.

The model is a density p(x) = exp(-E(x)) / Z with E a network. The gradient
of the log-likelihood is E_model[dE/dtheta] - E_data[dE/dtheta]; training
estimates the model expectation with negatives from short Langevin chains
and minimises the contrastive divergence

    L = mean E(data) - mean E(negatives) + alpha (mean E(data)^2 + mean E(negatives)^2),

the last term (the energy-magnitude regulariser) keeping the energies near
zero, where they cannot run away together.

Chains start from a replay buffer of earlier negatives (persistent chains,
Tieleman 2008; Du & Mordatch's buffer), a fraction reset to uniform noise at
every step so the buffer keeps exploring. Unlike the public implementations
the buffer is a variable, not a Python list: the whole step, sampler
included, is one compiled graph; the buffer is saved in `.keras` files and
backups and restored on resume; under `tf.distribute` every replica moves
its shard of the global batch's chains and writes all of them back, so the
copies stay identical and the step equals one device's.

Defaults are those of the UvA deep-learning course's EBM tutorial (Lippe,
"Deep energy-based generative models", after Du & Mordatch): 60 Langevin
steps of size 10 with noise 0.005 and gradients clipped to 0.03 per pixel,
a buffer of 8,192 with 5% fresh noise, alpha = 0.1, Adam 1e-4 with
beta_1 = 0 (the negatives change every step, so momentum chases a moving
target), Swish activations (smooth: Langevin needs useful gradients in x).
Step 10 with noise 0.005 is not an exact sampler of exp(-E) (that needs
noise sqrt(2 step)): it is a noisy descent that the training teaches to end
on data-like images ("short-run" EBMs, Nijkamp et al. 2019). For a density
whose samples are exact, set `noise_scale=None` (noise sqrt(2 step)) and
sample with `method="mala"`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from keras_gen.core.base import GenerativeModel, features, register, replica_mean, xla_by_default
from keras_gen.core.caching import compiled_once
from keras_gen.core.distribute import apply_if_finite, gather_replicas, replica_normal, replica_uniform
from keras_gen.core.random import fold_in, seed_tensor, uniform
from keras_gen.sampling import langevin

DEFAULT_RANGES = {"symmetric": (-1.0, 1.0), "unit": (0.0, 1.0)}


# ------------------------------------------------------------ energy networks
def build_mlp_energy(data_dim, hidden=(128, 128, 128), name="mlp_energy"):
    """E(x) of points: Swish layers, one linear output per example."""
    x_in = keras.Input((data_dim,), name="x")
    h = x_in
    for units in hidden:
        h = layers.Dense(units, activation="swish")(h)
    energy = layers.Dense(1, name="energy")(h)
    return keras.Model(x_in, layers.Reshape(())(energy), name=name)


def build_conv_energy(image_shape=(28, 28, 1), widths=(16, 32, 64, 64), hidden=64, name="conv_energy"):
    """E(x) of images: strided Swish convolutions (28 -> 14 -> 7 -> 4 -> 2), a
    dense Swish layer, one linear output. No normalisation layers: the energy of
    an image must not depend on the rest of its batch."""
    x_in = keras.Input(tuple(image_shape), name="x")
    h = x_in
    for i, width in enumerate(widths):
        h = layers.Conv2D(width, 5 if i == 0 else 3, strides=2, padding="same", activation="swish")(h)
    h = layers.Dense(hidden, activation="swish")(layers.Flatten()(h))
    energy = layers.Dense(1, name="energy")(h)
    return keras.Model(x_in, layers.Reshape(())(energy), name=name)


# ---------------------------------------------------------------------- model
@register
class EnergyModel(GenerativeModel):
    """An energy network `E(x)` trained by contrastive divergence with Langevin negatives.

    * `buffer_size`, `fresh_fraction`: the replay buffer of negatives and the
      share of chains restarted from uniform noise each step;
    * `langevin_steps`, `step_size`, `noise_scale`, `gradient_clip`: the
      training sampler (noise None: sqrt(2 step), the exact Langevin noise);
    * `regularization`: alpha of the energy-magnitude term;
    * `sample_range`: the box chains start in and are kept in (default
      [-1, 1] for "symmetric" images, [0, 1] for "unit"; required for "real");
    * `sample_steps`: default length of `sample()`'s chains from noise.
    """

    nested_config_keys = ("energy_network",)

    def __init__(
        self,
        energy_network,
        buffer_size=8192,
        fresh_fraction=0.05,
        langevin_steps=60,
        step_size=10.0,
        noise_scale=0.005,
        gradient_clip=0.03,
        regularization=0.1,
        sample_range=None,
        sample_steps=256,
        data_domain="symmetric",
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        self.energy_network = energy_network
        self._data_shape = tuple(int(s) for s in energy_network.inputs[0].shape[1:])
        self._data_domain = data_domain
        if sample_range is None:
            if data_domain not in DEFAULT_RANGES:
                raise ValueError(f"An EnergyModel of {data_domain!r} data needs sample_range=(low, high).")
            sample_range = DEFAULT_RANGES[data_domain]
        low, high = (float(v) for v in sample_range)
        if not low < high:
            raise ValueError(f"sample_range must be (low, high) with low < high, got {sample_range}.")
        if not 0.0 <= float(fresh_fraction) <= 1.0:
            raise ValueError(f"fresh_fraction must be in [0, 1], got {fresh_fraction}.")
        for name, value in (("buffer_size", buffer_size), ("langevin_steps", langevin_steps)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}.")
        self.sample_range = (low, high)
        self.buffer_size = int(buffer_size)
        self.fresh_fraction = float(fresh_fraction)
        self.langevin_steps = int(langevin_steps)
        self.step_size = float(step_size)
        self.noise_scale = None if noise_scale is None else float(noise_scale)
        self.gradient_clip = None if gradient_clip is None else float(gradient_clip)
        self.regularization = float(regularization)
        self.sample_steps = int(sample_steps)

        # The buffer and its write position are variables: saved, restored,
        # mirrored. "only_first_replica": every replica writes the same value.
        self.replay_buffer = self.add_weight(
            shape=(self.buffer_size, *self._data_shape),
            initializer=lambda shape, dtype=None: self.uniform_noise(shape, seed_tensor(self.seed_generator)),
            trainable=False,
            aggregation="only_first_replica",
            name="replay_buffer",
        )
        self.buffer_position = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="buffer_position",
        )  # fmt: skip

        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.energy_data_tracker = keras.metrics.Mean(name="energy_data")
        self.energy_samples_tracker = keras.metrics.Mean(name="energy_samples")
        self.gradient_norm_tracker = keras.metrics.Mean(name="sampler_gradient_norm")
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.energy_data_tracker, self.energy_samples_tracker, self.gradient_norm_tracker]

    def logs(self):
        logs = {m.name: m.result() for m in self.metrics}
        # Positive when negatives sit higher than data; runaway in either sign is divergence.
        logs["energy_gap"] = logs["energy_samples"] - logs["energy_data"]
        return logs

    def call(self, x, training=False):
        return self.unchecked_energy(x, training=training)

    def energy(self, x, training=False):
        """E(x), one number per example (-log p(x) up to the constant log Z)."""
        return self.unchecked_energy(self.checked_input(x, method="energy"), training=training)

    def unchecked_energy(self, x, training=False):
        """`energy` for the sampler and the steps: their states (Langevin moves may leave
        the data's range) are not user input to check, and not numpy to check cheaply."""
        return ops.cast(self.energy_network(ops.cast(x, "float32"), training=training), "float32")

    def log_density(self, x):
        """-E(x): the unnormalised log-density (log Z is not known)."""
        return -self.energy(x)

    def score(self, x):
        """grad_x log p(x) = -dE/dx."""
        _, grad = langevin.energy_and_gradient(self.unchecked_energy, tf.convert_to_tensor(x, tf.float32))
        return -grad

    def uniform_noise(self, shape, seed, draw=uniform):
        low, high = self.sample_range
        return low + (high - low) * draw(shape, seed)

    # ------------------------------------------------------------- training
    def chain_starts(self, batch, seed):
        """This replica's share of the step's chain starts: buffer rows drawn with
        replacement, a `fresh_fraction` of them replaced by uniform noise."""
        rows = ops.floor(replica_uniform((batch,), fold_in(seed, 0)) * self.buffer_size)
        rows = ops.minimum(ops.cast(rows, "int32"), self.buffer_size - 1)
        starts = tf.gather(self.replay_buffer.value, rows)
        fresh = replica_uniform((batch,), fold_in(seed, 1)) < self.fresh_fraction
        noise = self.uniform_noise(tf.shape(starts), fold_in(seed, 2), draw=replica_uniform)
        shape = (-1,) + (1,) * len(self._data_shape)
        return tf.where(ops.reshape(fresh, shape), noise, starts)

    def run_chains(self, starts, seed, steps, step_size, noise_scale, method="ula", replica_draws=True, clamp=None):
        draws = {"normal": replica_normal, "uniform_draw": replica_uniform} if replica_draws else {}
        return langevin.langevin(
            lambda x: self.unchecked_energy(x),
            starts,
            steps,
            step_size,
            noise_scale=noise_scale,
            seed=seed,
            method=method,
            gradient_clip=self.gradient_clip if method == "ula" else None,
            bounds=self.sample_range,
            clamp=clamp,
            **draws,
        )

    def negatives(self, batch, seed):
        """(negatives, mean sampler gradient norm) for this replica's examples."""
        chain = self.run_chains(
            self.chain_starts(batch, seed), fold_in(seed, 3), self.langevin_steps, self.step_size, self.noise_scale
        )
        return tf.stop_gradient(chain.x), chain.gradient_norm

    def per_example_loss(self, x, negatives, training):
        e_data = self.unchecked_energy(x, training=training)
        e_model = self.unchecked_energy(negatives, training=training)
        contrastive = e_data - e_model
        magnitude = self.regularization * (ops.square(e_data) + ops.square(e_model))
        return contrastive + magnitude, e_data, e_model

    def gradients_and_negatives(self, x, seed):
        """One replica's share of a step: gradients scaled for the global batch, its negatives."""
        x = ops.cast(x, "float32")
        negatives, gradient_norm = self.negatives(ops.shape(x)[0], seed)
        with tf.GradientTape() as tape:
            per_example, e_data, e_model = self.per_example_loss(x, negatives, training=True)
            loss = replica_mean(per_example)
        self.track(per_example, e_data, e_model, gradient_norm)
        return tape.gradient(loss, self.energy_network.trainable_weights), negatives

    def track(self, per_example, e_data, e_model, gradient_norm):
        self.loss_tracker.update_state(per_example)
        self.energy_data_tracker.update_state(e_data)
        self.energy_samples_tracker.update_state(e_model)
        self.gradient_norm_tracker.update_state(gradient_norm)

    def train_step(self, data):
        seed = seed_tensor(self.seed_generator)  # the step's one draw
        grads, negatives = self.replica_compiled(self.gradients_and_negatives)(features(data), seed)
        # The synchronising part: sum the replicas' gradients, collect every
        # replica's negatives into the buffer.
        apply_if_finite(self.optimizer, grads, self.energy_network.trainable_weights)
        self.write_buffer(gather_replicas(negatives))
        return self.logs()

    def write_buffer(self, negatives):
        """Newest negatives replace the oldest: the global batch goes to the next rows, cyclically."""
        count = tf.shape(negatives)[0]
        rows = (self.buffer_position.value + tf.range(count)) % self.buffer_size
        self.replay_buffer.assign(tf.tensor_scatter_nd_update(self.replay_buffer.value, rows[:, None], negatives))
        self.buffer_position.assign((self.buffer_position.value + count) % self.buffer_size)

    def test_step(self, data):
        """The loss against fresh chains from the evaluation generator (the buffer is training's)."""
        x = ops.cast(features(data), "float32")
        seed = seed_tensor(self.eval_seed_generator)
        starts = self.uniform_noise(tf.shape(x), fold_in(seed, 0), draw=replica_uniform)
        chain = self.run_chains(starts, fold_in(seed, 1), self.langevin_steps, self.step_size, self.noise_scale)
        self.track(*self.per_example_loss(x, chain.x, training=False), chain.gradient_norm)
        return self.logs()

    # ------------------------------------------------------------- sampling
    def _chain_from(self, x0, steps, step_size, noise_scale, seed, method, clamp=None):
        chain = self.run_chains(
            x0, seed, steps, step_size, noise_scale, method=method, replica_draws=False, clamp=clamp
        )
        return chain.x, chain.acceptance_rate

    @staticmethod
    def _schedule(value, steps, name):
        """A sampler setting as a float32 scalar or one value per step (an annealing
        schedule, e.g. `langevin.geometric_schedule`)."""
        value = np.asarray(value, np.float32)
        if value.ndim > 1 or (value.ndim == 1 and value.shape[0] != steps):
            raise ValueError(f"{name} must be a number or one value per step ({steps}), got shape {value.shape}.")
        if not np.all(np.isfinite(value) & (value >= 0)):
            raise ValueError(
                f"{name} must be finite and non-negative, got {value if value.ndim == 0 else 'a schedule'}."
            )
        return value

    def _sampler_settings(self, steps, step_size, noise_scale, method):
        """(step sizes, noise scales or None for MALA) as the chains take them:
        training's own noise at training's step size, else the exact sqrt(2 step)
        unless `noise_scale` is given."""
        steps = self.sample_steps if steps is None else int(steps)
        trained = step_size is None or (np.ndim(step_size) == 0 and float(step_size) == self.step_size)
        step_size = self._schedule(self.step_size if step_size is None else step_size, steps, "step_size")
        if method == "mala":
            return steps, step_size, None
        if noise_scale is not None:
            return steps, step_size, self._schedule(noise_scale, steps, "noise_scale")
        if self.noise_scale is None or not trained:
            return steps, step_size, np.sqrt(2.0 * step_size.astype(np.float64)).astype(np.float32)
        return steps, step_size, np.float32(self.noise_scale)

    def generate_samples(self, n, seed, steps=None, step_size=None, noise_scale=None, x0=None, method="ula"):
        """n samples: Langevin chains from uniform noise in `sample_range` (or from `x0`).

        Defaults: `sample_steps` steps with the training sampler's step and noise.
        A step size other than training's gets the exact noise sqrt(2 step)
        unless `noise_scale` is given; `method="mala"` is exact for exp(-E).
        `step_size` and `noise_scale` may also be one value per step (a schedule).
        """
        seed = seed_tensor(seed)
        steps, step_size, noise = self._sampler_settings(steps, step_size, noise_scale, method)
        if x0 is None:
            x0 = self.uniform_noise((n, *self._data_shape), fold_in(seed, -1))
        fn = compiled_once(
            self,
            # One function per kind of setting (scalar or schedule): a traced
            # function must not see a scalar and a vector in the same argument.
            ("sample", method, step_size.ndim, None if noise is None else noise.ndim),
            lambda x, k, h, s, key: self._chain_from(x, k, h, s, key, method)[0],
            jit_compile=xla_by_default(self),
        )
        return fn(
            tf.convert_to_tensor(x0, tf.float32),
            tf.constant(steps),
            tf.constant(step_size),
            None if noise is None else tf.constant(noise),
            seed,
        )

    # ------------------------------------------- what an energy is good for
    def denoise(self, x, steps=None, seed=0, step_size=None, noise_scale=None, method="ula"):
        """Restore corrupted images: Langevin chains that start from the images
        themselves (Du & Mordatch's image restoration). Each step moves every
        pixel down the energy, towards the images the model finds likely.
        Defaults are those of `sample`. Returns numpy images."""
        x = self.checked_input(x, method="denoise")
        return self.sample(int(x.shape[0]), seed=seed, steps=steps, step_size=step_size,
                           noise_scale=noise_scale, method=method, x0=x)  # fmt: skip

    def inpaint(self, x, known, steps=None, seed=0, step_size=None, noise_scale=None, method="ula"):
        """Fill in the unknown pixels of images by conditional Langevin: pixels where
        `known` is true keep their values in `x` throughout; the others start
        from uniform noise and move under the energy, so the chains sample
        p(unknown | known) (exactly with `method="mala"` and the exact noise).

        `known`: booleans (or 0/1) of `x`'s shape, or of one image's shape for
        the same pixels in every image. Returns numpy images."""
        x = self.checked_input(x, method="inpaint")
        known = self._checked_mask(known, tuple(x.shape))
        seed = seed_tensor(int(seed))
        steps, step_size, noise = self._sampler_settings(steps, step_size, noise_scale, method)
        x0 = tf.where(known, x, self.uniform_noise(tf.shape(x), fold_in(seed, -1)))
        fn = compiled_once(
            self,
            ("inpaint", method, step_size.ndim, None if noise is None else noise.ndim),
            lambda x0, known, k, h, s, key: self._chain_from(x0, k, h, s, key, method, clamp=(x0, known))[0],
            jit_compile=xla_by_default(self),
        )
        noise = None if noise is None else tf.constant(noise)
        return fn(x0, known, tf.constant(steps), tf.constant(step_size), noise, seed).numpy()

    @staticmethod
    def _checked_mask(known, shape):
        mask = np.asarray(known)
        if mask.dtype != bool:
            if not np.issubdtype(mask.dtype, np.number) or not np.all(np.isin(mask, (0, 1))):
                raise ValueError("EnergyModel.inpaint: `known` must be booleans or 0/1 values.")
            mask = mask.astype(bool)
        if mask.shape == shape[1:]:
            mask = np.broadcast_to(mask, shape)
        if mask.shape != shape:
            raise ValueError(
                f"EnergyModel.inpaint: `known` has shape {mask.shape}; expected the images' {shape} "
                f"or one image's {shape[1:]}."
            )
        return tf.constant(mask)

    def serving_endpoints(self):
        shape = [None, *self._data_shape]
        chain_specs = [
            tf.TensorSpec([], tf.int32, name="steps"),
            tf.TensorSpec([], tf.float32, name="step_size"),
            tf.TensorSpec([], tf.float32, name="noise_scale"),
            tf.TensorSpec([], tf.int32, name="seed"),
        ]

        def sample(n, steps, step_size, noise_scale, seed):
            seed = tf.stack([seed, 0])
            x0 = self.uniform_noise(tf.concat([[n], self._data_shape], 0), fold_in(seed, -1))
            return {"x": self._chain_from(x0, steps, step_size, noise_scale, seed, "ula")[0]}

        def sample_from(x0, steps, step_size, noise_scale, seed):
            return {"x": self._chain_from(x0, steps, step_size, noise_scale, tf.stack([seed, 0]), "ula")[0]}

        x_spec = tf.TensorSpec(shape, tf.float32, name="x")
        return {
            "energy": (lambda x: {"energy": self.energy(x)}, [x_spec]),
            "score": (lambda x: {"score": self.score(x)}, [x_spec]),
            "sample": (sample, [tf.TensorSpec([], tf.int32, name="n")] + chain_specs),
            "sample_from": (sample_from, [tf.TensorSpec(shape, tf.float32, name="x0")] + chain_specs),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "energy_network": self.serialize_nested(self.energy_network),
            "buffer_size": self.buffer_size,
            "fresh_fraction": self.fresh_fraction,
            "langevin_steps": self.langevin_steps,
            "step_size": self.step_size,
            "noise_scale": self.noise_scale,
            "gradient_clip": self.gradient_clip,
            "regularization": self.regularization,
            "sample_range": list(self.sample_range),
            "sample_steps": self.sample_steps,
            "data_domain": self._data_domain,
        }


def make_ebm(architecture="conv", data_shape=(28, 28, 1), network_kwargs=None, seed=None, name="ebm", **kwargs):
    """Build an EnergyModel: "conv" on images in [-1, 1] or "mlp" on points
    (give `sample_range` and `data_domain="real"`); other kwargs go to `EnergyModel`."""
    network_kwargs = dict(network_kwargs or {})
    data_shape = tuple(int(s) for s in data_shape)
    if architecture == "conv":
        network = build_conv_energy(data_shape, **network_kwargs)
    elif architecture == "mlp":
        network = build_mlp_energy(math.prod(data_shape), **network_kwargs)
        kwargs.setdefault("data_domain", "real")
    else:
        raise ValueError(f"Unknown energy architecture {architecture!r}; expected 'conv' or 'mlp'.")
    return EnergyModel(network, seed=seed, name=name, **kwargs)
