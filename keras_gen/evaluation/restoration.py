"""Restoring corrupted digits with a model's energy: denoising and inpainting.

A model that knows which images are likely can repair an image that is not:
Langevin chains that start at a noisy digit move it down the energy
(`EnergyModel.denoise`), and chains that hold the known pixels clamped fill
in the rest (`EnergyModel.inpaint`, a sample of p(unknown | known)). Each
task corrupts MNIST test digits (intensities in [0, 1]) and is measured
twice, on the corrupted input and on its restoration:

* the mean squared error to the clean digit, over the pixels the task
  corrupted (the noisy or missing ones);
* the domain classifier's accuracy on the digits' true labels: a restored
  digit should be recognisable as the one it was.

Missing pixels enter as background (0) in the corrupted input, which is the
image a reader (and the classifier) would see without the model.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_gen import data
from keras_gen.evaluation.ood import to_model_domain

NOISE_STD = 0.3
MISSING_FRACTION = 0.7
TASKS = (f"noise std {NOISE_STD:g}", "lower half missing", f"{MISSING_FRACTION:.0%} of pixels missing")


def corrupt(x_unit, seed=0):
    """{task: (corrupted images in [0, 1], known-pixel mask or None for denoising)}."""
    x = np.asarray(x_unit, np.float32)
    rng = np.random.default_rng(seed)
    noisy = np.clip(x + NOISE_STD * rng.standard_normal(x.shape).astype(np.float32), 0.0, 1.0)
    upper = np.zeros(x.shape[1:], bool)
    upper[: x.shape[1] // 2] = True
    scattered = rng.random(x.shape) >= MISSING_FRACTION
    out = {TASKS[0]: (noisy, None)}
    for task, known in ((TASKS[1], np.broadcast_to(upper, x.shape)), (TASKS[2], scattered)):
        out[task] = (np.where(known, x, 0.0).astype(np.float32), known)
    return out


def restore(model, corrupted_unit, known=None, batch_size=500, seed=0, **chain_kwargs):
    """`model.denoise` (known None) or `model.inpaint` of images in [0, 1], in
    batches; returns images in [0, 1]. `chain_kwargs`: steps, step_size, ..."""
    x = to_model_domain(model, corrupted_unit)
    parts = []
    for i, start in enumerate(range(0, len(x), batch_size)):
        batch = x[start : start + batch_size]
        if known is None:
            parts.append(model.denoise(batch, seed=seed + i, **chain_kwargs))
        else:
            mask = np.asarray(known[start : start + batch_size]).reshape(batch.shape)
            parts.append(model.inpaint(batch, mask, seed=seed + i, **chain_kwargs))
    restored = np.concatenate(parts).reshape(np.shape(corrupted_unit))
    restored = data.to_unit_interval(restored, model.data_domain)
    return np.clip(restored, 0.0, 1.0).astype(np.float32)


def accuracy(classifier, images_unit, labels, batch_size=500):
    """Share of images the classifier assigns their true label, and its standard error."""
    hits = []
    for start in range(0, len(images_unit), batch_size):
        _, p = classifier.features_and_probabilities(tf.constant(images_unit[start : start + batch_size]))
        hits.append(np.argmax(p.numpy(), axis=1) == labels[start : start + batch_size])
    hits = np.concatenate(hits)
    return float(hits.mean()), float(hits.std(ddof=1) / np.sqrt(len(hits)))


def corrupted_mse(images_unit, clean_unit, known):
    """Mean squared error over the corrupted pixels (all of them for noise), and its standard
    error over images."""
    changed = np.ones(clean_unit.shape, bool) if known is None else ~np.asarray(known, bool)
    squared = np.where(changed, (images_unit - clean_unit) ** 2, 0.0).reshape(len(clean_unit), -1)
    per_image = squared.sum(1) / np.maximum(changed.reshape(len(clean_unit), -1).sum(1), 1)
    return float(per_image.mean()), float(per_image.std(ddof=1) / np.sqrt(len(per_image)))


def restoration_table(model, x_unit, labels, classifier, steps=(20, 60, 256), seed=0, **chain_kwargs):
    """Rows {task, steps, mse, mse_se, accuracy, accuracy_se}: the clean digits first,
    then per task the corrupted input itself (steps None) and each chain length."""
    labels = np.asarray(labels)

    def row(task, k, images, known):
        mse, mse_se = corrupted_mse(images, x_unit, known)
        acc, acc_se = accuracy(classifier, images, labels)
        return {"task": task, "steps": k, "mse": mse, "mse_se": mse_se, "accuracy": acc, "accuracy_se": acc_se}

    rows = [row("clean digits", None, x_unit, None)]
    for task, (corrupted, known) in corrupt(x_unit, seed).items():
        rows.append(row(task, None, corrupted, known))
        for k in steps:
            rows.append(row(task, k, restore(model, corrupted, known, seed=seed, steps=k, **chain_kwargs), known))
    return rows
