"""Recipe: the `wgan_gp_mnist` zoo entry.

The TensorFlow tutorial's DCGAN generator and its convolutional critic
without dropout (no normalization in the critic: the gradient penalty is
taken per example), trained as a WGAN-GP (Gulrajani et al. 2017): Wasserstein
loss, gradient penalty 10 at points drawn uniformly between real and
generated images, 5 critic updates per generator update, Adam 1e-4 with
beta1 0.5 and beta2 0.9, 64 real images per critic update (fit's batch of
320 is split over the 5 critic steps). MNIST scaled to [-1, 1]. The model
samples from a moving average of the generator's weights (momentum 0.995:
about one epoch of 187 generator steps). Resumable; the shared steps
(training, figures, card) are `keras_gen.recipes.gan`.

    TFDS_DATA_DIR=../shared/tensorflow_datasets python training/wgan_gp_mnist.py --epochs 20
    python training/wgan_gp_mnist.py --finalize runs/wgan_gp_mnist/checkpoints/epoch_005.keras

The zoo's weights were trained in three stages: 16 epochs without the
average, then 12 and 15 more epochs, each continued from the zoo entry of the
stage before with the average and fresh optimizers (the card keeps every
stage's record):

    python training/wgan_gp_mnist.py --epochs 15 --continue-from wgan_gp_mnist --out runs/wgan_gp_more
    python training/wgan_gp_mnist.py --out runs/wgan_gp_more --finalize runs/wgan_gp_more/checkpoints/epoch_015.keras
"""

from __future__ import annotations

import os

from keras_gen.models import gan
from keras_gen.recipes.gan import GanRecipe, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECIPE = GanRecipe(
    name="wgan_gp_mnist",
    description="WGAN-GP (lambda 10, n_critic 5) with the DCGAN tutorial's generator and a dropout-free "
    "critic, on MNIST in [-1, 1].",
    architecture={
        "factory": "gan",
        "kwargs": {
            "architecture": "dcgan",
            "data_shape": [28, 28, 1],
            "latent_dim": 100,
            "noise": "normal",
            "discriminator_kwargs": {"dropout": 0.0},
            "ema_momentum": 0.995,
            "name": "wgan_gp_mnist",
        },
    },
    compile=gan.wgan_gp_compile_kwargs,
    batch_size=5 * 64,
    training_note="Adam 1e-4, beta1 0.5, beta2 0.9 (both players), 5 critic updates of 64 real images "
    "per generator update, gradient penalty 10",
    epochs=20,
)

if __name__ == "__main__":
    main(RECIPE, ROOT, doc=__doc__)
