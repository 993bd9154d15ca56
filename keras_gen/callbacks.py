"""Keras callbacks for generative models."""

from __future__ import annotations

import os

import keras

from keras_gen import plots


class SampleGrid(keras.callbacks.Callback):
    """Save a grid of samples drawn with a fixed seed at the end of every epoch.

    The seed stays the same across epochs, so the PNGs show how the same
    latent points evolve (for latent-variable models); `make_gif()` turns
    them into an animation of training.
    """

    def __init__(self, directory, n=100, seed=1234, every=1, reference=None, sample_kwargs=None):
        super().__init__()
        self.directory = directory
        self.n = n
        self.seed = seed
        self.every = every
        self.reference = reference
        self.sample_kwargs = dict(sample_kwargs or {})
        self.paths = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        os.makedirs(self.directory, exist_ok=True)
        samples = self.model.sample(self.n, seed=self.seed, **self.sample_kwargs)
        path = os.path.join(self.directory, f"epoch_{epoch + 1:03d}.png")
        plots.save_samples(samples, path, title=f"epoch {epoch + 1}", reference=self.reference)
        self.paths.append(path)

    def make_gif(self, path=None):
        path = path or os.path.join(self.directory, "training.gif")
        pngs = sorted(p for p in os.listdir(self.directory) if p.startswith("epoch_") and p.endswith(".png"))
        return plots.make_gif([os.path.join(self.directory, p) for p in pngs], path)
