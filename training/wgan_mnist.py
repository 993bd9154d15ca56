"""Recipe: the `wgan_mnist` zoo entry.

The TensorFlow tutorial's DCGAN generator and its convolutional critic
without dropout, trained as the original WGAN (Arjovsky et al. 2017):
Wasserstein loss, every critic weight clipped to [-0.01, 0.01] after each
critic update, 5 critic updates per generator update, RMSprop 5e-5, 64 real
images per critic update (fit's batch of 320 is split over the 5 critic
steps). MNIST scaled to [-1, 1]. Resumable;
the shared steps (training, figures, card) are `keras_gen.recipes.gan`.

    TFDS_DATA_DIR=../shared/tensorflow_datasets python training/wgan_mnist.py --epochs 20
    python training/wgan_mnist.py --finalize runs/wgan_mnist/checkpoints/epoch_005.keras
"""

from __future__ import annotations

import os

from keras_gen.models import gan
from keras_gen.recipes.gan import GanRecipe, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECIPE = GanRecipe(
    name="wgan_mnist",
    description="WGAN with weight clipping (c 0.01, n_critic 5) with the DCGAN tutorial's generator and a "
    "dropout-free critic, on MNIST in [-1, 1].",
    architecture={
        "factory": "gan",
        "kwargs": {
            "architecture": "dcgan",
            "data_shape": [28, 28, 1],
            "latent_dim": 100,
            "noise": "normal",
            "discriminator_kwargs": {"dropout": 0.0},
            "name": "wgan_mnist",
        },
    },
    compile=gan.wgan_compile_kwargs,
    batch_size=5 * 64,
    training_note="RMSprop 5e-5 (both players), 5 critic updates of 64 real images per generator "
    "update, critic weights clipped to [-0.01, 0.01]",
    epochs=20,
)

if __name__ == "__main__":
    main(RECIPE, ROOT, doc=__doc__)
