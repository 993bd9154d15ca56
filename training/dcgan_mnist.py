"""Recipe: the `dcgan_mnist` zoo entry.

The DCGAN of the TensorFlow tutorial (latent 100, Dense -> 7x7x256,
transposed convolutions 128/64/1 with batch normalization; a two-layer conv
discriminator with dropout 0.3) on MNIST scaled to [-1, 1], with the
tutorial's training step (simultaneous updates, non-saturating loss) run by
`fit`, and the DCGAN paper's optimizer (Adam 2e-4, beta1 0.5, batch 64).
The model samples from a moving average of the generator's weights
(momentum 0.999: about one epoch). Resumable: run the same command again
after an interruption. Then `keras_gen.recipes.gan.finalize` draws the
figures into `zoo/figures/` (samples, the two-panel losses and D(x)/D(G(z))
by iteration, latent interpolation and exploration) and publishes the
weights to `saved_models/` and the card `zoo/dcgan_mnist.json`.

    TFDS_DATA_DIR=../shared/tensorflow_datasets python training/dcgan_mnist.py --epochs 50
    # finish from a checkpoint of an interrupted or shortened run:
    python training/dcgan_mnist.py --finalize runs/dcgan_mnist/checkpoints/epoch_008.keras

The zoo's weights were trained in two stages: 10 epochs without the average
(its record is kept on the card), then more from those weights with the
average and fresh optimizers:

    python training/dcgan_mnist.py --epochs 40 --continue-from dcgan_mnist --out runs/dcgan_mnist_average
    python training/dcgan_mnist.py --out runs/dcgan_mnist_average \
        --finalize runs/dcgan_mnist_average/checkpoints/epoch_NNN.keras
"""

from __future__ import annotations

import os

import keras

from keras_gen.models import gan
from keras_gen.recipes.gan import GanRecipe, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECIPE = GanRecipe(
    name="dcgan_mnist",
    description="DCGAN of the TensorFlow tutorial (latent 100) on MNIST in [-1, 1], non-saturating loss.",
    architecture={
        "factory": "gan",
        "kwargs": {
            "architecture": "dcgan",
            "data_shape": [28, 28, 1],
            "latent_dim": 100,
            "noise": "normal",
            "ema_momentum": 0.999,
            "name": "dcgan_mnist",
        },
    },
    compile=lambda: {
        **gan.dcgan_compile_kwargs(),
        "d_optimizer": keras.optimizers.Adam(2e-4, beta_1=0.5),
        "g_optimizer": keras.optimizers.Adam(2e-4, beta_1=0.5),
    },
    batch_size=64,
    training_note="Adam 2e-4, beta1 0.5 (both players; Radford et al. 2016), batch 64, simultaneous "
    "updates (the tutorial's step). The tutorial's Adam 1e-4 at batch 256 makes 4x fewer, "
    "smaller updates per epoch: too slow for the CPU budget of this entry.",
    epochs=50,
)

if __name__ == "__main__":
    main(RECIPE, ROOT, doc=__doc__)
