"""Denoising diffusion: noise schedules, the forward process and the reverse samplers.

Conventions (Ho et al. 2020, "Denoising diffusion probabilistic models";
Song et al. 2021, "Denoising diffusion implicit models"). The forward process
has T steps, indexed t = 0 .. T-1; step t adds noise of variance beta_t, so

    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,    abar_t = prod_{s <= t} (1 - beta_s).

`signal_rate` is sqrt(abar_t) and `noise_rate` sqrt(1 - abar_t). A denoiser
predicts eps ("epsilon") or the velocity v = sqrt(abar) eps - sqrt(1 - abar) x_0
("v", Salimans & Ho 2022); `split_prediction` turns either into (eps, x_0).

One reverse step from t to an earlier s (s = -1 means the data, abar = 1)
is the generalised step of Song et al. (their eq. 12):

    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z,
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s).

eta = 0 is DDIM (deterministic); eta = 1 over all T steps is exactly Ho et
al.'s ancestral sampler with the posterior variance beta_tilde. So `sample`
is both samplers, on any subsequence of the T steps, as one compiled
`tf.while_loop`. For Gaussian data the optimal denoiser is linear in x_t, so
every step is an affine map plus Gaussian noise and the moments of the
samples can be propagated exactly (`gaussian_sample_moments`): the tests
compare the compiled sampler with that prediction, and the prediction with
the data, which measures each sampler's discretisation error exactly.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from keras_gen.core.random import fold_in, seed_tensor, standard_normal

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("epsilon", "v")


# ------------------------------------------------------------------ schedules
def linear_betas(steps, beta_start=1e-4, beta_end=0.02):
    """Ho et al.'s linear betas, stretched so that any number of steps adds the
    same total noise as their T = 1000 (the form of Nichol & Dhariwal 2021)."""
    scale = 1000.0 / steps
    return np.linspace(scale * beta_start, scale * beta_end, steps, dtype=np.float64)


def cosine_betas(steps, offset=0.008, max_beta=0.999):
    """Nichol & Dhariwal's cosine schedule: abar(t) = f(t) / f(0),
    f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2), betas clipped at 0.999."""
    grid = np.arange(steps + 1, dtype=np.float64) / steps
    f = np.cos((grid + offset) / (1.0 + offset) * math.pi / 2) ** 2
    alpha_bars = f / f[0]
    return np.minimum(1.0 - alpha_bars[1:] / alpha_bars[:-1], max_beta)


class NoiseSchedule:
    """The T betas of a forward process and what follows from them (float64 numpy,
    float32 tensors for graphs)."""

    def __init__(self, kind="cosine", steps=1000):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}.")
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"A diffusion schedule needs at least 1 step, got {steps}.")
        self.kind, self.steps = kind, steps
        self.betas = linear_betas(steps) if kind == "linear" else cosine_betas(steps)
        self.alpha_bars = np.cumprod(1.0 - self.betas)
        self.alpha_bars_tensor = tf.constant(self.alpha_bars, tf.float32)

    def rates(self, t):
        """(signal rate, noise rate) at integer steps `t` (a tensor), float32."""
        alpha_bar = tf.gather(self.alpha_bars_tensor, t)
        return tf.sqrt(alpha_bar), tf.sqrt(1.0 - alpha_bar)

    def diffuse(self, x0, t, noise):
        """x_t from x_0 and eps, for per-example steps `t` (shape (batch,))."""
        signal, noise_rate = self.rates(t)
        shape = tf.concat([tf.shape(t), tf.ones([tf.rank(x0) - 1], tf.int32)], 0)
        return tf.reshape(signal, shape) * x0 + tf.reshape(noise_rate, shape) * noise

    def timesteps(self, n_steps):
        """`n_steps` steps of the T, evenly spread from T-1 down to 0 (integers,
        descending): the subsequence a DDIM sampler visits (numpy; `sample`
        computes the same in its graph, so the count can be a tensor)."""
        n_steps = int(n_steps)
        if not 1 <= n_steps <= self.steps:
            raise ValueError(f"sampling steps must be in [1, {self.steps}], got {n_steps}.")
        return np.round(np.linspace(self.steps - 1, 0, n_steps)).astype(np.int64)

    def timesteps_tensor(self, n_steps):
        """`timesteps` in a graph, for a tensor `n_steps` (clipped to [1, T])."""
        n_steps = tf.clip_by_value(tf.cast(n_steps, tf.int32), 1, self.steps)
        return tf.cast(tf.round(tf.linspace(float(self.steps - 1), 0.0, n_steps)), tf.int32)

    def get_config(self):
        return {"kind": self.kind, "steps": self.steps}


def split_prediction(prediction, output, x_t, signal, noise_rate):
    """(eps_hat, x0_hat) from a denoiser's `output` at x_t (rates broadcast to x_t)."""
    if prediction == "epsilon":
        eps = output
        return eps, (x_t - noise_rate * eps) / signal
    if prediction == "v":
        return noise_rate * x_t + signal * output, signal * x_t - noise_rate * output
    raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}.")


def training_target(prediction, x0, noise, signal, noise_rate):
    """What the denoiser regresses: eps, or v = signal eps - noise_rate x_0."""
    return noise if prediction == "epsilon" else signal * noise - noise_rate * x0


# ------------------------------------------------------------------- samplers
def _step_coefficients(alpha_bar_t, alpha_bar_s, eta):
    """(sqrt(abar_s), sqrt(1 - abar_s - sigma^2), sigma) of one reverse step t -> s."""
    sigma = eta * tf.sqrt((1.0 - alpha_bar_s) / (1.0 - alpha_bar_t)) * tf.sqrt(1.0 - alpha_bar_t / alpha_bar_s)
    direction = tf.sqrt(tf.maximum(1.0 - alpha_bar_s - sigma**2, 0.0))
    return tf.sqrt(alpha_bar_s), direction, sigma


def sample(denoise, x_T, schedule, steps, eta=0.0, seed=0, prediction="epsilon", clip=None, stop_after=None):
    """Run the reverse process from x_T over `steps` of the schedule's steps.

    `denoise(x_t, t)` returns the network's output (eps or v) for a batch at
    the scalar integer step t. eta = 0: DDIM; eta = 1 with steps = T: DDPM's
    ancestral sampler. `clip`: clip x0_hat to [-clip, clip] at every step
    (images in [-1, 1]). `stop_after=k` returns the state after the first k
    of the `steps` steps (a point on the trajectory, for figures). The whole
    chain is one `tf.while_loop`; call it from a `tf.function` (XLA where
    faster) to compile it once.
    """
    if isinstance(steps, int):
        schedule.timesteps(steps)  # a clear error for a bad count
    taus = schedule.timesteps_tensor(steps)
    alpha_bars = schedule.alpha_bars_tensor
    eta = tf.cast(eta, tf.float32)
    seed = seed_tensor(seed)
    n = tf.shape(taus)[0]
    last = n if stop_after is None else tf.minimum(n, tf.cast(stop_after, tf.int32))

    def body(i, x):
        t = taus[i]
        alpha_bar_t = alpha_bars[t]
        alpha_bar_s = tf.where(i + 1 < n, tf.gather(alpha_bars, taus[tf.minimum(i + 1, n - 1)]), 1.0)
        signal, noise_rate = tf.sqrt(alpha_bar_t), tf.sqrt(1.0 - alpha_bar_t)
        eps, x0 = split_prediction(prediction, denoise(x, t), x, signal, noise_rate)
        if clip is not None:
            x0 = tf.clip_by_value(x0, -clip, clip)
            eps = (x - signal * x0) / noise_rate
        a_s, direction, sigma = _step_coefficients(alpha_bar_t, alpha_bar_s, eta)
        z = standard_normal(tf.shape(x), fold_in(seed, i), x.dtype)
        return i + 1, a_s * x0 + direction * eps + sigma * z

    _, x0 = tf.while_loop(lambda i, _: i < last, body, (tf.constant(0), tf.convert_to_tensor(x_T)))
    return x0


def invert(denoise, x0, schedule, steps, prediction="epsilon"):
    """Deterministic DDIM inversion: x_0 -> x_T along the same steps run forward,
    each using the denoiser's prediction at the previous point (Song et al. 2021,
    sec. 4.3). `sample(..., eta=0)` of the result returns close to x0; the latents
    of two real images can be interpolated (spherically) and decoded."""
    taus = tf.constant(schedule.timesteps(steps)[::-1].copy(), tf.int32)  # ascending
    alpha_bars = schedule.alpha_bars_tensor
    n = tf.shape(taus)[0]

    def body(i, x):
        t_prev = taus[tf.maximum(i - 1, 0)]
        alpha_bar_prev = tf.where(i > 0, alpha_bars[t_prev], 1.0)
        t_model = tf.where(i > 0, t_prev, taus[0])  # at the data, the smallest step's prediction
        signal, noise_rate = tf.sqrt(alpha_bar_prev), tf.sqrt(1.0 - alpha_bar_prev)
        out = denoise(x, t_model)
        if prediction == "epsilon":
            eps = out
            x0_hat = (x - noise_rate * eps) / signal
        else:
            a_m, s_m = tf.sqrt(alpha_bars[t_model]), tf.sqrt(1.0 - alpha_bars[t_model])
            eps = s_m * x + a_m * out
            x0_hat = (x - noise_rate * eps) / signal
        alpha_bar_t = alpha_bars[taus[i]]
        return i + 1, tf.sqrt(alpha_bar_t) * x0_hat + tf.sqrt(1.0 - alpha_bar_t) * eps

    _, x_T = tf.while_loop(lambda i, _: i < n, body, (tf.constant(0), tf.convert_to_tensor(x0)))
    return x_T


# ----------------------------------------------------- exact Gaussian answers
def gaussian_denoiser(mean, covariance, schedule, prediction="epsilon"):
    """The optimal (minimum-MSE) denoiser for data ~ N(mean, covariance):
    E[eps | x_t] = s (a^2 S + s^2 I)^{-1} (x_t - a mean), a and s the rates at t;
    as v when asked. A function of (x_t, scalar t), ready for `sample`."""
    mean = np.asarray(mean, np.float64)
    values, vectors = np.linalg.eigh(np.asarray(covariance, np.float64))
    values_t, vectors_t = tf.constant(values, tf.float32), tf.constant(vectors, tf.float32)
    mean_t = tf.constant(mean, tf.float32)

    def denoise(x, t):
        signal, noise_rate = schedule.rates(t)
        centered = tf.matmul(x - signal * mean_t, vectors_t)
        eps = tf.matmul(noise_rate * centered / (signal**2 * values_t + noise_rate**2), vectors_t, transpose_b=True)
        if prediction == "epsilon":
            return eps
        x0 = (x - noise_rate * eps) / signal
        return signal * eps - noise_rate * x0

    return denoise


def gaussian_sample_moments(mean, covariance, schedule, steps, eta=0.0):
    """The exact mean and covariance of `sample`'s output, started from N(0, I), when
    the denoiser is `gaussian_denoiser(mean, covariance)`: each step is affine in x
    plus independent Gaussian noise, so moments propagate in closed form (float64).
    Their distance from (mean, covariance) is the sampler's discretisation error."""
    mean = np.asarray(mean, np.float64)
    cov_data = np.asarray(covariance, np.float64)
    d = len(mean)
    eye = np.eye(d)
    taus = schedule.timesteps(steps)
    m, c = np.zeros(d), eye.copy()
    for i, t in enumerate(taus):
        ab_t = schedule.alpha_bars[t]
        ab_s = schedule.alpha_bars[taus[i + 1]] if i + 1 < len(taus) else 1.0
        a, s = math.sqrt(ab_t), math.sqrt(1.0 - ab_t)
        sigma = eta * math.sqrt((1 - ab_s) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_s)
        a_s, direction = math.sqrt(ab_s), math.sqrt(max(1 - ab_s - sigma**2, 0.0))
        # eps_hat = K (x - a mean) with K = s (a^2 S + s^2 I)^-1; x0_hat = (x - s eps_hat) / a.
        gain = s * np.linalg.inv(a**2 * cov_data + s**2 * eye)
        # x_s = A x + b: A = a_s/a (I - s K) + direction K, b = -(a_s/a (-s) + direction) K a mean.
        A = a_s / a * (eye - s * gain) + direction * gain
        b = (a_s / a * s - direction) * gain @ (a * mean)
        m, c = A @ m + b, A @ c @ A.T + sigma**2 * eye
    return m, c
