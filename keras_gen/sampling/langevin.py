"""Langevin dynamics on any differentiable energy, as one compiled loop.

The target is p(x) proportional to exp(-E(x)) for an energy E that maps a
batch to one number per example; every example is an independent chain.

* Unadjusted Langevin (ULA; "SGLD" in the energy-based-model literature,
  Welling & Teh 2011, Du & Mordatch 2019):

      x_{i+1} = x_i - step_i * g(x_i) + noise_i * w_i,     w_i ~ N(0, I),

  g the gradient of E, optionally clipped element-wise (what keeps the
  large steps of EBM training stable). With noise = sqrt(2 step) (the
  default) this is the Euler-Maruyama discretisation of the Langevin
  diffusion; its stationary law is p up to an O(step) bias, known in closed
  form for Gaussians (`ula_gaussian_variance`, which the tests check). EBM
  training decouples the two (the UvA tutorial: step 10, noise 0.005): the
  chain is then a noisy gradient descent, not a sampler of p, and the model
  learns whatever makes its short-run chains look like data.

* Metropolis-adjusted Langevin (MALA, Roberts & Tweedie 1996): the ULA move
  with noise sqrt(2 step) is a proposal, accepted with the Metropolis-Hastings
  probability, so p is exactly stationary at any step size. The acceptance
  rate is returned; for smooth targets ~0.57 is the efficient regime.

Steps and noise may be scalars or one value per step (schedules, e.g.
`geometric_schedule`). `bounds` clips every state into a box (images in
[-1, 1]); under MALA a proposal outside the box is rejected instead, which
keeps the chain exact for the target restricted to the box.

`clamp=(values, known)` makes the chains conditional: coordinates where
`known` is true hold `values` throughout and only the others move (their
gradient and noise are masked), so the chain targets p(x_free | x_known):
inpainting with known pixels clamped. Under MALA this conditional is
exactly stationary too.

Randomness comes from a stateless seed folded with the step number, and the
draws are pluggable (`normal`, `uniform`), so a training step under
`tf.distribute` passes the replica-invariant draws of
`keras_gen.core.distribute` and gets the chains of one device.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from keras_gen.core.random import fold_in, seed_tensor, standard_normal, uniform

METHODS = ("ula", "mala")


class LangevinResult(NamedTuple):
    """What a chain returns: the final states and diagnostics averaged over steps and chains."""

    x: tf.Tensor
    energy: tf.Tensor  # E at the final states, per chain
    acceptance_rate: tf.Tensor  # MALA's mean acceptance; 1 for ULA
    gradient_norm: tf.Tensor  # mean L2 norm of dE/dx (before clipping) per chain and step


def geometric_schedule(start, end, steps):
    """`steps` values from `start` to `end` in geometric progression (float32 numpy)."""
    if start <= 0 or end <= 0:
        raise ValueError(f"A geometric schedule needs positive ends, got {start} and {end}.")
    return np.geomspace(start, end, int(steps)).astype(np.float32)


def ula_gaussian_variance(variance, step, noise=None):
    """Stationary variance of ULA on N(0, variance) (per eigen-direction).

    x' = (1 - step / v) x + noise w has the fixed point v' = noise^2 / (1 - (1 - step / v)^2);
    with noise^2 = 2 step it is v / (1 - step / (2 v)): ULA over-disperses by a
    factor 1 / (1 - step / (2 v)), and diverges for step >= 2 v.
    """
    variance = np.asarray(variance, np.float64)
    noise_sq = 2.0 * step if noise is None else float(noise) ** 2
    contraction = 1.0 - step / variance
    if np.any(np.abs(contraction) >= 1.0):
        raise ValueError(f"ULA with step {step} diverges on a variance of {variance.min()} (needs step < 2 v).")
    return noise_sq / (1.0 - contraction**2)


def energy_and_gradient(energy_fn, x):
    """(E(x) per example, dE/dx)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        energy = tf.cast(energy_fn(x), tf.float32)
        total = tf.reduce_sum(energy)
    return energy, tf.cast(tape.gradient(total, x), x.dtype)


def _per_step(value, steps, name):
    value = tf.convert_to_tensor(value, tf.float32)
    if value.shape.rank == 0:
        # At least one entry: XLA compiles the loop body's read of entry i even
        # when a chain of no steps never runs it.
        return tf.fill([tf.maximum(steps, 1)], value)
    if value.shape.rank != 1:
        raise ValueError(f"{name} must be a scalar or one value per step, got shape {value.shape}.")
    return value


def _row_sum(x):
    return tf.reduce_sum(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


def _broadcast_rows(per_row, like):
    return tf.reshape(per_row, tf.concat([[-1], tf.ones([tf.rank(like) - 1], tf.int32)], 0))


def langevin(
    energy_fn,
    x0,
    steps,
    step_size,
    noise_scale=None,
    seed=None,
    method="ula",
    gradient_clip=None,
    bounds=None,
    normal=standard_normal,
    uniform_draw=uniform,
    clamp=None,
):
    """Run `steps` Langevin moves from `x0`; returns a `LangevinResult`.

    `energy_fn(x)`: energies (batch,) of a batch; differentiable in x.
    `step_size`, `noise_scale`: scalars or (steps,) schedules; noise defaults
    to sqrt(2 step) (and must be that for MALA). `gradient_clip` clips dE/dx
    element-wise (ULA only). `bounds=(low, high)` keeps states in a box.
    `normal(shape, seed)` / `uniform_draw(shape, seed)` make the random
    numbers (replace them with the replica draws under tf.distribute).
    `clamp=(values, known)`: hold the coordinates where `known` (bool,
    broadcastable to x) is true at `values`; the chains move the rest.
    A `tf.while_loop`: one graph, and XLA compiles it whole inside a
    `jit_compile` function.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    mala = method == "mala"
    if mala and (noise_scale is not None or gradient_clip is not None):
        raise ValueError("MALA's proposal is fixed by the step size: leave noise_scale and gradient_clip unset.")
    x0 = tf.convert_to_tensor(x0, tf.float32)
    steps_tensor = tf.convert_to_tensor(steps, tf.int32)
    step_sizes = _per_step(step_size, steps_tensor, "step_size")
    noises = tf.sqrt(2.0 * step_sizes) if noise_scale is None else _per_step(noise_scale, steps_tensor, "noise_scale")
    seed = seed_tensor(seed)
    low, high = (None, None) if bounds is None else (float(bounds[0]), float(bounds[1]))

    if clamp is None:
        known, free = None, 1.0
    else:
        known = tf.broadcast_to(tf.cast(clamp[1], tf.bool), tf.shape(x0))
        values = tf.broadcast_to(tf.convert_to_tensor(clamp[0], tf.float32), tf.shape(x0))
        free = 1.0 - tf.cast(known, tf.float32)

    def inside(x):
        x = tf.clip_by_value(x, low, high) if bounds is not None else x
        return x if known is None else tf.where(known, values, x)

    def moving_gradient(x):
        # Clamped coordinates do not move: their gradient is no force, and
        # MALA's proposal densities then involve the free coordinates only.
        energy, grad = energy_and_gradient(energy_fn, x)
        return energy, grad * free

    x0 = inside(x0)
    energy0, grad0 = moving_gradient(x0)
    batch = tf.shape(x0)[0]

    def body(i, x, energy, grad, accepted, grad_norm):
        step, noise = step_sizes[i], noises[i]
        key = fold_in(seed, i)
        grad_norm = grad_norm + tf.sqrt(_row_sum(tf.square(grad)))
        drift = grad if gradient_clip is None else tf.clip_by_value(grad, -gradient_clip, gradient_clip)
        proposal = x - step * drift + noise * free * normal(tf.shape(x), fold_in(key, 0))
        if not mala:
            proposal = inside(proposal)
            new_energy, new_grad = moving_gradient(proposal)
            return i + 1, proposal, new_energy, new_grad, accepted + 1.0, grad_norm
        new_energy, new_grad = moving_gradient(proposal)
        # log q(a | b) = -|a - b + step g(b)|^2 / (4 step) for the Langevin proposal.
        forward = _row_sum(tf.square(proposal - x + step * grad)) / (4.0 * step)
        backward = _row_sum(tf.square(x - proposal + step * new_grad)) / (4.0 * step)
        log_ratio = energy - new_energy - backward + forward
        ok = tf.math.log(uniform_draw([batch], fold_in(key, 1))) < log_ratio
        if bounds is not None:
            in_box = (proposal >= low) & (proposal <= high)
            if known is not None:
                in_box = in_box | known  # clamped values are given, not proposed
            ok = tf.logical_and(ok, tf.reduce_all(tf.reshape(in_box, [batch, -1]), 1))
        ok = tf.logical_and(ok, tf.math.is_finite(new_energy))
        rows = _broadcast_rows(ok, x)
        return (
            i + 1,
            tf.where(rows, proposal, x),
            tf.where(ok, new_energy, energy),
            tf.where(rows, new_grad, grad),
            accepted + tf.cast(ok, tf.float32),
            grad_norm,
        )

    zeros = tf.zeros([batch], tf.float32)
    _, x, energy, _, accepted, grad_norm = tf.while_loop(
        lambda i, *_: i < steps_tensor,
        body,
        (tf.constant(0), x0, energy0, grad0, zeros, zeros),
    )
    count = tf.maximum(tf.cast(steps_tensor, tf.float32), 1.0)
    return LangevinResult(
        x=x,
        energy=energy,
        acceptance_rate=tf.reduce_mean(accepted) / count,
        gradient_norm=tf.reduce_mean(grad_norm) / count,
    )


def quadratic_energy(precision, mean=None):
    """E(x) = (x - m)^T P (x - m) / 2 for a precision matrix P: a Gaussian's energy (tests, examples)."""
    precision = tf.constant(precision, tf.float32)
    mean = None if mean is None else tf.constant(mean, tf.float32)

    def energy(x):
        centred = x if mean is None else x - mean
        return 0.5 * tf.reduce_sum(centred * tf.linalg.matvec(precision, centred), axis=-1)

    return energy


def gaussian_mixture_energy(means, stds, weights):
    """-log of an isotropic Gaussian mixture's density, per point (exact, normalised)."""
    means = tf.constant(means, tf.float32)
    stds = tf.constant(stds, tf.float32)
    log_weights = tf.math.log(tf.constant(weights, tf.float32) / float(np.sum(weights)))
    dim = float(means.shape[-1])

    def energy(x):
        squared = tf.reduce_sum(tf.square(x[:, None, :] - means[None]), axis=-1)
        log_components = (
            log_weights - 0.5 * squared / tf.square(stds) - dim * tf.math.log(stds) - 0.5 * dim * np.log(2 * np.pi)
        )
        return -tf.reduce_logsumexp(log_components, axis=1)

    return energy
