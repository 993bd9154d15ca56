"""The energy-based benchmark's contenders: the UvA deep-learning course's EBM
tutorial loop (Lippe, "Deep energy-based generative models", after Du &
Mordatch 2019) re-typed in TensorFlow, and keras-gen's `EnergyModel`, driving
the same energy network (`build_conv_energy((28, 28, 1))`) on the same batches.

The benchmark compares the loops, not the networks: the tutorial's CNN is
swapped for keras-gen's, so what differs is everything around the network's
forward and backward passes. The settings are the tutorial's (and keras-gen's
defaults): 60 Langevin steps of size 10, noise 0.005, sampler gradients
clipped to 0.03, a replay buffer of 8,192 with 5% fresh uniform noise,
alpha 0.1, Adam 1e-4 with beta_1 = 0.

* `TutorialSampler`, `TutorialEBM`: the tutorial's loop as its PyTorch code
  runs it, op for op. The buffer is a Python list of single-image tensors;
  a step draws Binomial(batch, 0.05) fresh images, picks the rest with
  `random.choices`, and runs the Langevin chain as a Python for-loop with one
  gradient call per step (noise, clamp, dE/dx, clamp the gradient, step,
  clamp); the chains' ends go to the front of the list, which is cut to
  8,192. The loss (contrastive divergence plus the energy-magnitude term,
  data jittered by noise 0.005) is one pass over data and negatives
  concatenated. The tutorial's network returns -E and differentiates its
  negation; `build_conv_energy` returns E, so the chain descends dE/dx
  directly, the same move. Two ports of the gradient calls are timed, since
  a TensorFlow user could write either: `compiled=False` dispatches every op
  from Python, as PyTorch does; `compiled=True` puts each Langevin step's
  network call and gradient, and the loss step, in a `tf.function` (the
  TensorFlow guide's advice), leaving the buffer and the loops in Python;
* `keras_gen_ebm`: `make_ebm("conv", (28, 28, 1))` with the library's
  defaults, trained by `fit`: buffer, sampler and update in one graph;
* `time_reference`: images/s of the tutorial's training steps (`time_training`
  of `keras_gen.benchmarking.diffusion` times `fit`);
* `langevin_step_seconds`, `network_gradient_seconds`: one Langevin step of
  a batch in isolation, in each form, and the network's forward pass and
  dE/dx alone, the floor of any loop: they say where the time goes;
* `training_flops`: the counted FLOPs of a training step per data image.

Used by benchmarks/ebm_throughput.py.
"""

from __future__ import annotations

import random
import time

import numpy as np

IMAGE_SHAPE = (28, 28, 1)
# The tutorial's settings, which are also `EnergyModel`'s defaults.
BUFFER_SIZE = 8192
FRESH_FRACTION = 0.05
LANGEVIN_STEPS = 60
STEP_SIZE = 10.0
NOISE = 0.005
GRADIENT_CLIP = 0.03
ALPHA = 0.1
LEARNING_RATE = 1e-4
BETA_1 = 0.0


def optimizer():
    """The tutorial's Adam (beta_1 = 0: the negatives move every step), given to both contenders."""
    import keras

    return keras.optimizers.Adam(LEARNING_RATE, beta_1=BETA_1)


def dataset(batch_size, seed=0):
    """MNIST in [-1, 1], batched (full batches only) and repeated: both contenders' input."""
    from keras_gen import data

    return data.load(
        "mnist", "train", preprocessing="symmetric", batch_size=batch_size, seed=seed, drop_remainder=True
    ).repeat()


# ---------------------------------------------------------- the tutorial loop
def energy_gradient(network):
    """dE/dx of a batch: the tutorial's `(-model(x)).sum().backward()` with the
    parameters frozen (`requires_grad = False`: here, variables not watched)."""
    import tensorflow as tf

    def gradient(x):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            total = tf.reduce_sum(network(x, training=False))
        return tape.gradient(total, x)

    return gradient


class TutorialSampler:
    """The tutorial's `Sampler`: the replay buffer as a Python list of (1, 28, 28, 1)
    tensors, chains started from it and run by a Python loop of gradient calls."""

    def __init__(self, gradient, image_shape, sample_size, max_len=BUFFER_SIZE):
        import tensorflow as tf

        self.gradient = gradient
        self.image_shape = tuple(image_shape)
        self.sample_size = sample_size
        self.max_len = max_len
        self.examples = [tf.random.uniform((1, *self.image_shape)) * 2 - 1 for _ in range(max_len)]

    def sample_new_exmps(self, steps=LANGEVIN_STEPS, step_size=STEP_SIZE):
        """A batch of negatives; they also go to the front of the buffer."""
        import tensorflow as tf

        n_new = np.random.binomial(self.sample_size, FRESH_FRACTION)
        rand_imgs = tf.random.uniform((n_new, *self.image_shape)) * 2 - 1
        old_imgs = tf.concat(random.choices(self.examples, k=self.sample_size - n_new), axis=0)
        inp_imgs = tf.concat([rand_imgs, old_imgs], axis=0)
        inp_imgs = self.generate_samples(inp_imgs, steps=steps, step_size=step_size)
        self.examples = list(tf.split(inp_imgs, self.sample_size, axis=0)) + self.examples
        self.examples = self.examples[: self.max_len]
        return inp_imgs

    def generate_samples(self, inp_imgs, steps=LANGEVIN_STEPS, step_size=STEP_SIZE):
        """The chain: a Python for-loop, one gradient call per step."""
        import tensorflow as tf

        for _ in range(steps):
            inp_imgs = inp_imgs + tf.random.normal(tf.shape(inp_imgs), stddev=NOISE)
            inp_imgs = tf.clip_by_value(inp_imgs, -1.0, 1.0)
            grad = tf.clip_by_value(self.gradient(inp_imgs), -GRADIENT_CLIP, GRADIENT_CLIP)
            inp_imgs = tf.clip_by_value(inp_imgs - step_size * grad, -1.0, 1.0)
        return inp_imgs


class TutorialEBM:
    """The tutorial's `DeepEnergyModel.training_step` and its optimizer step, driven
    by a Python loop over batches as Lightning drives it."""

    def __init__(self, network, batch_size, compiled):
        import tensorflow as tf

        self.network = network
        self.optimizer = optimizer()
        self.optimizer.build(network.trainable_weights)
        gradient = energy_gradient(network)
        self.loss_step = self._loss_step
        if compiled:
            gradient = tf.function(gradient)
            self.loss_step = tf.function(self._loss_step)
        self.sampler = TutorialSampler(gradient, IMAGE_SHAPE, batch_size)

    def _loss_step(self, real_imgs, fake_imgs):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            energies = self.network(tf.concat([real_imgs, fake_imgs], axis=0), training=True)
            real_e, fake_e = tf.split(energies, 2, axis=0)
            reg_loss = ALPHA * tf.reduce_mean(real_e**2 + fake_e**2)
            cdiv_loss = tf.reduce_mean(real_e) - tf.reduce_mean(fake_e)  # E = -(the tutorial's output)
            loss = reg_loss + cdiv_loss
        grads = tape.gradient(loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.network.trainable_weights))
        return loss

    def training_step(self, real_imgs):
        import tensorflow as tf

        real_imgs = tf.clip_by_value(real_imgs + tf.random.normal(tf.shape(real_imgs), stddev=NOISE), -1.0, 1.0)
        fake_imgs = self.sampler.sample_new_exmps(steps=LANGEVIN_STEPS, step_size=STEP_SIZE)
        return self.loss_step(real_imgs, fake_imgs)


def tutorial_ebm(batch_size, compiled, seed=0):
    """The tutorial's loop around `build_conv_energy((28, 28, 1))`; `compiled`: the
    Langevin steps' gradient calls and the loss step as `tf.function`s."""
    import keras

    from keras_gen.models.ebm import build_conv_energy

    keras.utils.set_random_seed(seed)  # Python's, NumPy's and TensorFlow's generators, which the tutorial uses
    return TutorialEBM(build_conv_energy(IMAGE_SHAPE), batch_size, compiled)


# ----------------------------------------------------------------- keras-gen
def keras_gen_ebm(jit_compile="auto", seed=0):
    """`make_ebm("conv", (28, 28, 1))` with the library's defaults (the tutorial's settings)."""
    from keras_gen.models.ebm import make_ebm

    model = make_ebm("conv", IMAGE_SHAPE, seed=seed)
    model.compile(optimizer=optimizer(), jit_compile=jit_compile)
    return model


# -------------------------------------------------------------------- timing
def time_reference(model, batches, steps, batch_size):
    """Images/s over `steps` of the tutorial's training steps on batches from the
    iterator `batches`, after a first, untimed step (as `time_training` times `fit`)."""
    float(model.training_step(next(batches)))
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.training_step(next(batches))
    float(loss)
    return steps * batch_size / (time.perf_counter() - start)


def langevin_step_seconds(model, batch_size, repeats=20):
    """Seconds per Langevin step of a batch, median of `repeats` chains of 1 step,
    for a tutorial model (one Python iteration of `generate_samples`) or a
    keras-gen `EnergyModel` (its compiled chain, timed at 21 and 1 steps and
    differenced, so the chain's set-up and its extra start gradient drop out)."""
    import tensorflow as tf

    x = tf.random.uniform((batch_size, *IMAGE_SHAPE)) * 2 - 1
    if isinstance(model, TutorialEBM):

        def run(steps):
            return model.sampler.generate_samples(x, steps=steps).numpy()

        counts = (1, 0)
    else:
        # The training sampler, compiled as `fit` compiles it.
        chain = tf.function(
            lambda x, steps, seed: model.run_chains(x, seed, steps, model.step_size, model.noise_scale).x,
            jit_compile=bool(model.jit_compile),
        )
        seed = tf.constant([0, 0])

        def run(steps):
            return chain(x, tf.constant(steps), seed).numpy()

        counts = (21, 1)
    for steps in counts:
        run(steps)  # trace, warm up
    times = {}
    for steps in counts:
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(steps)
            samples.append(time.perf_counter() - start)
        times[steps] = float(np.median(samples))
    return (times[counts[0]] - times[counts[1]]) / (counts[0] - counts[1])


def network_gradient_seconds(network, batch_size, repeats=20):
    """Seconds of the network's forward pass and dE/dx of a batch in one `tf.function`
    call (median of `repeats`): what a Langevin step costs without any loop around it."""
    import tensorflow as tf

    gradient = tf.function(energy_gradient(network))
    x = tf.random.uniform((batch_size, *IMAGE_SHAPE)) * 2 - 1
    gradient(x).numpy()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        gradient(x).numpy()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples))


# ----------------------------------------------------------------------- FLOPs
def training_flops(network, langevin_steps=LANGEVIN_STEPS):
    """FLOPs of a training step per data image: each Langevin step is a forward
    pass and its input gradient (2 forward passes), the loss a training pass
    (3 forward passes) over the data image and its negative. Convolutions and
    dense layers, 2 FLOPs per multiply-add."""
    from keras_gen.benchmarking.dcgan import forward_macs

    return 2 * forward_macs(network) * (2 * langevin_steps + 2 * 3)
