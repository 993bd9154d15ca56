"""The families, one module each: layers, model, `train_step`, metrics.

* `vae`: variational autoencoders (`Sampling`, dense and conv, IWAE).
* `rbm` (layers in `rbm_layers`, lattice tying in `lattice`) and `dbn`:
  restricted Boltzmann machines and deep belief networks.
* `gan` (networks in `gan_networks`): MLP GAN, DCGAN, WGAN, WGAN-GP.
* `diffusion`: denoising diffusion (UNet and MLP denoisers, DDPM/DDIM sampling,
  classifier-free guidance).
* `ebm`: energy-based models trained with Langevin negatives from a replay
  buffer (MLP and conv energies).
* `ising`: the models of the 2-D Ising model (one RBM per temperature, the
  exact bond RBM, the periodic VAE).
* `classifier`: the MNIST domain classifier behind the sample-quality metrics.
"""

import importlib

# Importing the families registers their classes with keras.saving, so
# `keras.saving.load_model` finds every one of them once any is imported.
for _family in ("classifier", "dbn", "diffusion", "ebm", "gan", "ising", "rbm", "vae"):
    importlib.import_module(f"keras_gen.models.{_family}")
