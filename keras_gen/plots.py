"""Figures a person reads: sample grids, training GIFs, loss curves, latent plots.

Everything is written to files with matplotlib's non-interactive backend.
"""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def _as_images(samples):
    """(N, H, W[, 1]) or flat square (N, H*W) -> (N, H, W) in [0, 1] for display."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        side = int(round(math.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise ValueError(f"Cannot show flat samples of size {x.shape[1]} as square images.")
        x = x.reshape(-1, side, side)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"Expected images, got samples of shape {np.shape(samples)}.")
    if x.min() < -1e-6:  # [-1, 1] data from tanh generators
        x = (x + 1) / 2
    return np.clip(x, 0, 1)


def image_grid(samples, ncols=None, pad=2):
    """Tile images into one array (white separators)."""
    x = _as_images(samples)
    n, h, w = x.shape
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    grid = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = x[i]
    return grid


def save_samples(samples, path, title=None, ncols=None, reference=None):
    """A sample grid for images, a scatter plot for 2-D points; `path` may be a binary file object (PNG)."""
    samples = np.asarray(samples)
    if isinstance(path, (str, os.PathLike)):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if samples.ndim == 2 and samples.shape[1] == 2:
        fig, ax = plt.subplots(figsize=(5, 5))
        if reference is not None:
            ax.scatter(reference[:, 0], reference[:, 1], s=2, c="0.75", label="data")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:blue", label="samples")
        ax.set_aspect("equal")
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.legend(loc="upper right", markerscale=4)
    elif samples.ndim == 2 and round(math.sqrt(samples.shape[1])) ** 2 != samples.shape[1]:
        # Vectors that are not images (e.g. spins of a chain, tabular data): one row each.
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.imshow(samples, aspect="auto", cmap="gray_r", interpolation="nearest")
        ax.set_xlabel("feature")
        ax.set_ylabel("sample")
    else:
        grid = image_grid(samples, ncols=ncols)
        fig, ax = plt.subplots(figsize=(grid.shape[1] / 40, grid.shape[0] / 40 + (0.4 if title else 0)))
        ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
    return path


def make_gif(png_paths, gif_path, duration_ms=400):
    """Assemble per-epoch PNGs into an animated GIF of training."""
    from PIL import Image

    frames = [Image.open(p).convert("RGB") for p in png_paths]
    if not frames:
        raise ValueError("No frames to assemble into a GIF.")
    size = frames[0].size
    frames = [f.resize(size) for f in frames]
    frames[0].save(gif_path, save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)
    return gif_path


def epoch_grids(png_paths, path, title, panels=6):
    """The run's per-epoch sample grids (`samples/epoch_NNN.png`) side by side: up to
    `panels` epochs evenly spread from the first kept to the last, each titled by its
    epoch. Returns the epochs shown."""
    import re

    by_epoch = {}
    for p in png_paths:
        match = re.search(r"epoch_(\d+)\.png$", os.fspath(p))
        if match:
            by_epoch[int(match.group(1))] = p
    if not by_epoch:
        raise ValueError("No epoch_NNN.png sample grids to show.")
    epochs = sorted(by_epoch)
    picks = sorted({epochs[round(i)] for i in np.linspace(0, len(epochs) - 1, min(panels, len(epochs)))})
    fig, axes = plt.subplots(1, len(picks), figsize=(3.0 * len(picks), 3.4), squeeze=False)
    for ax, epoch in zip(axes[0], picks):
        ax.imshow(plt.imread(by_epoch[epoch]))
        ax.set_title(f"epoch {epoch}")
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return picks


def plot_history(history, path, title="Training"):
    """Loss curves (one panel per metric) from a `History` or its `.history` dict."""
    logs = getattr(history, "history", history)
    names = sorted({k[4:] if k.startswith("val_") else k for k in logs} - {"epoch_seconds", "learning_rate"})
    if not names:
        raise ValueError("The history holds no metrics to plot.")
    # At most three panels a row: a long row of panels is too wide to read.
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        for key, style in ((name, "-"), ("val_" + name, "--")):
            if key in logs and not np.all(np.isnan(np.asarray(logs[key], dtype=float))):
                values = logs[key]
                # Markers on short runs: a one-epoch curve is a single point.
                marker = "o" if len(values) < 20 else None
                ax.plot(np.arange(1, len(values) + 1), values, style, marker=marker, label=key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        _zoom_past_the_first_epochs(ax, [logs[k] for k in (name, "val_" + name) if k in logs])
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _zoom_past_the_first_epochs(ax, series):
    """Long runs: let the y-range follow the epochs after the first 5%, so the
    first epochs' large losses do not flatten the curve a reader cares about."""
    tails = [np.asarray(v, dtype=float)[max(1, len(v) // 20) :] for v in series if len(v) >= 20]
    tails = [t[np.isfinite(t)] for t in tails if np.isfinite(t).any()]
    if not tails:
        return
    lo, hi = min(t.min() for t in tails), max(t.max() for t in tails)
    pad = 0.1 * (hi - lo) or 0.05 * abs(hi) or 1.0
    ax.set_ylim(lo - pad, hi + pad)


def plot_latent_clusters(vae, x, labels, path, batch_size=500):
    """Posterior means of x coloured by label; PCA to 2-D when the latent is larger."""
    means = np.concatenate([np.asarray(vae.encode(x[i : i + batch_size])[0]) for i in range(0, len(x), batch_size)])
    if means.shape[1] > 2:
        centred = means - means.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        coords, axis_names = centred @ vt[:2].T, ("PC 1", "PC 2")
    else:
        coords, axis_names = means, ("z[0]", "z[1]")
    fig, ax = plt.subplots(figsize=(7, 6))
    sc = ax.scatter(coords[:, 0], coords[:, 1], c=labels, cmap="tab10", s=3)
    fig.colorbar(sc, ax=ax, label="label")
    ax.set_xlabel(axis_names[0])
    ax.set_ylabel(axis_names[1])
    ax.set_title("Latent means by class")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_gan_iterations(iterations, path, title="GAN training", probabilities=True, window=50):
    """The two-panel figure of the course notes: the players' losses by
    iteration (left) and mean D(x), D(G(z)) by iteration (right), raw values
    faint with a moving average over `window` iterations on top.

    `iterations` maps "d_loss", "g_loss", "d_x", "d_g_z" to per-iteration
    values (`keras_gen.callbacks.IterationHistory`). With `probabilities`, the
    right panel marks the 0.5 at which D can no longer tell real from fake.
    """
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    panels = (
        (axes[0], (("g_loss", "generator loss"), ("d_loss", "discriminator loss")), "loss"),
        (
            axes[1],
            (("d_x", "real: D(x)"), ("d_g_z", "fake: D(G(z))")),
            "probability" if probabilities else "critic value",
        ),
    )
    for ax, series, ylabel in panels:
        for (key, label), color in zip(series, ("tab:blue", "tab:orange")):
            values = np.asarray(iterations.get(key, []), dtype=float)
            if not len(values):
                continue
            steps = np.arange(1, len(values) + 1)
            ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.6)
            if len(values) >= window:
                smooth = np.convolve(values, np.ones(window) / window, mode="valid")
                ax.plot(steps[window - 1 :], smooth, color=color, label=f"{label} ({window}-step mean)")
            else:
                ax.lines[-1].set_label(label)
        if ylabel == "probability":
            ax.axhline(0.5, color="0.4", linestyle="--", linewidth=0.8)
            ax.set_ylim(0, 1)
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_image_rows(rows, path, row_labels=None, title=None):
    """Rows of images (each an (n, H, W[, 1]) array, or flat squares), one
    labelled row per entry: latent interpolations and explorations."""
    grids = [image_grid(r, ncols=len(r)) for r in rows]
    width = max(g.shape[1] for g in grids)
    height = sum(g.shape[0] for g in grids)
    fig, axes = plt.subplots(
        len(grids), 1, figsize=(width / 40 + 2.2, height / 40 + (0.5 if title else 0.1)), squeeze=False
    )
    for ax, grid, label in zip(axes[:, 0], grids, row_labels or [None] * len(grids)):
        ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if label:
            ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
