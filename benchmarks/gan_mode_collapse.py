"""Mode collapse on the 8-Gaussian ring: the standard GAN against the WGAN-GP.

The experiment note 004 shows only as figures, made reproducible. Both
models are the same MLP GAN for 2-D data (`keras_gen.models.gan.make_toy_gan`:
latent 8, two hidden layers of 128 LeakyReLU units for each player) trained
on the embedded ring (`keras_gen.data`, radius 2, std 0.02) with the same
budget: the same number of generator updates, each seeing `--batch` real
points per discriminator update.

* standard GAN: non-saturating loss, one discriminator update per generator
  update, Adam 1e-3 (Keras defaults) for both players, as in the notes;
* WGAN-GP: Wasserstein loss with gradient penalty 10, five critic updates
  per generator update (each with its own `--batch` real points), Adam
  1e-4, beta1 0.5, beta2 0.9 (Gulrajani et al. 2017).

Every `--every` generator updates, 2,000 samples drawn with a fixed seed are
scored by `keras_gen.data.mode_coverage`: modes covered (of 8; a mode counts
when it receives at least a fifth of its fair share of high-quality samples)
and the fraction of high-quality samples (within 3 std of a mode). Repeated
over `--seeds` seeds; one PNG per model shows its samples over training
(first seed).

    python benchmarks/gan_mode_collapse.py [--steps 3000] [--seeds 3]
    # the WGAN-GP at the standard GAN's learning rate, in a section of its own:
    python benchmarks/gan_mode_collapse.py --games wgan_gp_lr1e-3 --section gan_mode_collapse_equal_lr

Writes the `gan_mode_collapse` section of BENCHMARKS.md and
benchmarks/figures/gan_mode_collapse_{standard,wgan_gp}.png.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

FIGURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")
BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "BENCHMARKS.md")
GAMES = {
    "standard": "standard GAN (non-saturating, Adam 1e-3)",
    "wgan_gp": "WGAN-GP (λ 10, 5 critic steps, Adam 1e-4 β 0.5/0.9)",
    "wgan_gp_lr1e-3": "WGAN-GP (λ 10, 5 critic steps, Adam 1e-3 β 0.5/0.9: the standard GAN's learning rate)",
}


def train(game, seed, steps, every, batch, n_samples=2000):
    import keras

    from keras_gen import data
    from keras_gen.models import gan

    keras.utils.set_random_seed(seed)
    model = gan.make_toy_gan(seed=seed, name=f"{game}_ring8")
    if game == "standard":
        model.compile(**gan.standard_compile_kwargs())
    else:
        model.compile(**gan.wgan_gp_compile_kwargs(learning_rate=1e-3 if game == "wgan_gp_lr1e-3" else 1e-4))
    # One fit step is one generator update; the WGAN-GP's batch holds its 5 critic batches.
    ds = data.load("ring8", "train", batch_size=batch * model.n_critic, seed=seed, drop_remainder=True).repeat()
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            points = model.sample(n_samples, seed=10_000 + seed)
            snapshots.append(((epoch + 1) * every, points, data.mode_coverage(points, "ring8")))

    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=every, epochs=steps // every, verbose=0, callbacks=[Snapshot()])
    seconds = time.perf_counter() - start
    return snapshots, seconds, int(model.d_optimizer.iterations.numpy())


def plot_over_training(game, snapshots, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_gen import data

    reference = data.toy_2d("ring8", 2000, seed=1)
    fig, axes = plt.subplots(1, len(snapshots), figsize=(2.6 * len(snapshots), 3.0), squeeze=False)
    for ax, (step, points, coverage) in zip(axes[0], snapshots):
        ax.scatter(reference[:, 0], reference[:, 1], s=1, c="0.75")
        ax.scatter(points[:, 0], points[:, 1], s=1, c="tab:blue", alpha=0.5)
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(
            f"step {step}\n{coverage['modes_covered']}/8 modes, {coverage['high_quality_fraction']:.0%} hq", fontsize=8
        )
    fig.suptitle(f"{GAMES[game]}: samples (blue) over the ring (grey) by generator update", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="generator updates per run")
    parser.add_argument("--every", type=int, default=500, help="generator updates between snapshots")
    parser.add_argument("--batch", type=int, default=256, help="real points per discriminator update")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--games", nargs="+", default=["standard", "wgan_gp"], choices=sorted(GAMES))
    parser.add_argument("--section", default="gan_mode_collapse", help="the BENCHMARKS.md section to write")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    from keras_gen.benchmarking.report import BenchmarksFile, markdown_table

    report = BenchmarksFile(BENCHMARKS)

    rows, figures = [], []
    for game in args.games:
        covered, quality, seconds, per_seed = [], [], [], []
        for seed in range(args.seeds):
            snapshots, secs, d_steps = train(game, seed, args.steps, args.every, args.batch)
            final = snapshots[-1][2]
            covered.append(final["modes_covered"])
            quality.append(final["high_quality_fraction"])
            seconds.append(secs)
            per_seed.append(f"{final['modes_covered']} ({final['high_quality_fraction']:.0%})")
            print(game, seed, final, f"{secs:.0f} s", flush=True)
            if seed == 0:
                figures.append(
                    plot_over_training(game, snapshots, os.path.join(FIGURES, f"gan_mode_collapse_{game}.png"))
                )
        rows.append(
            {
                "model": GAMES[game],
                "g_steps": args.steps,
                "d_steps": d_steps,
                "modes": f"{np.mean(covered):.1f} (min {min(covered)}, max {max(covered)})",
                "hq": f"{np.mean(quality):.1%}",
                "per_seed": ", ".join(per_seed),
                "seconds": float(np.median(seconds)),
            }
        )
    table = markdown_table(
        rows,
        [
            ("model", "model"),
            ("g_steps", "generator updates"),
            ("d_steps", "discriminator updates"),
            ("modes", "modes covered of 8, mean"),
            ("hq", "high-quality fraction, mean"),
            ("per_seed", "per seed: modes (high-quality)"),
            ("seconds", "median wall s per run"),
        ],
    )
    text = (
        report.header("GAN mode collapse on the 8-Gaussian ring")
        + "\n"
        + f"Same MLP for both (latent 8, 2x128 hidden per player), batch {args.batch} real points per "
        f"discriminator update, {args.seeds} seeds, scored on 2,000 samples at the end by "
        "`data.mode_coverage` (high quality: within 3 std = 0.06 of a mode; a mode is covered with at "
        "least a fifth of its fair share of high-quality samples). Wall times on a shared CPU.\n\n"
        + table
        + "\n\n"
        + "Samples over training (seed 0): "
        + ", ".join(f"[{os.path.basename(f)}](benchmarks/figures/{os.path.basename(f)})" for f in figures)
        + "\n"
    )
    print(text)
    if not args.no_write:
        report.write_section(args.section, text)


if __name__ == "__main__":
    main()
