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


class FrechetDistance(keras.callbacks.Callback):
    """Log the Fréchet distance (and KID) of the model's samples to a
    validation set of MNIST images, on the first epoch and every `every`
    epochs after, as the metrics `val_fd` and `val_kid`.

    The values go into the epoch logs, so callbacks placed *after* this one
    see them: `ModelCheckpoint(monitor="val_fd", mode="min", save_best_only=True)`,
    `CSVLogger`, `TensorBoard`. Features come from the zoo's domain
    classifier (`keras_gen.evaluation`); samples are drawn with a fixed seed.
    With the defaults (1,000 samples, 10 KID subsets of 500) it costs a few
    seconds per evaluation on a CPU, little next to an epoch.
    """

    def __init__(self, validation_images, every=5, n_samples=1000, seed=4321, kid=True, classifier=None,
                 sample_kwargs=None, kid_subsets=10, kid_subset_size=500):
        super().__init__()
        from keras_gen import evaluation

        self.validation_images = evaluation.to_images(validation_images)
        self.every = int(every)
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {every}.")
        self.n_samples = int(n_samples)
        self.seed = seed
        self.kid = kid
        self.classifier = classifier
        self.sample_kwargs = dict(sample_kwargs or {})
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self._reference = None

    def on_train_begin(self, logs=None):
        from keras_gen import evaluation

        self.classifier = self.classifier or evaluation.load_classifier()
        if self._reference is None:
            self._reference = evaluation.ImageSet(self.validation_images, self.classifier, label="validation")

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or (epoch > 0 and (epoch + 1) % self.every):
            return
        from keras_gen import evaluation, metrics

        samples = self.model.sample(self.n_samples, seed=self.seed, **self.sample_kwargs)
        generated = evaluation.ImageSet(evaluation.to_images(samples, getattr(self.model, "data_domain", "unit")),
                                        self.classifier)
        logs["val_fd"] = metrics.frechet_distance(generated.features, self._reference.features)
        if self.kid:
            logs["val_kid"] = metrics.kernel_inception_distance(
                generated.features, self._reference.features, subsets=self.kid_subsets,
                subset_size=self.kid_subset_size, seed=epoch)["kid"]
