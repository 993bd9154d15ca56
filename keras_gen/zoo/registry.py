"""The model factories a zoo card may name.

A card is data: its `architecture.factory` is a key of `FACTORIES`, never a
module path, so reading a card imports and runs nothing the library did not
list here. Its `architecture.kwargs` are checked against the factory's
signature before anything is built, so a card with a misspelt argument is
refused when it is read, not halfway through a load.
"""

from __future__ import annotations

import inspect

from keras_gen.models.classifier import make_mnist_classifier
from keras_gen.models.dbn import make_dbn
from keras_gen.models.diffusion import make_diffusion
from keras_gen.models.ebm import make_ebm
from keras_gen.models.gan import make_gan, make_toy_gan
from keras_gen.models.ising import make_ising_rbms, make_ising_vae
from keras_gen.models.rbm import make_rbm
from keras_gen.models.vae import make_vae

FACTORIES = {
    "vae": make_vae,
    "rbm": make_rbm,
    "dbn": make_dbn,
    "diffusion": make_diffusion,
    "ebm": make_ebm,
    "gan": make_gan,
    "toy_gan": make_toy_gan,
    "ising_rbms": make_ising_rbms,
    "ising_vae": make_ising_vae,
    "mnist_classifier": make_mnist_classifier,
}

# Passed by `zoo.load(name, seed=...)`, never stored: a card describes the
# trained model, whose variables the weights file restores.
RESERVED_KWARGS = ("seed",)


def factory(key):
    """The factory registered as `key` (KeyError with the known keys otherwise)."""
    if key not in FACTORIES:
        raise KeyError(f"{key!r} is not a registered model factory (known: {', '.join(sorted(FACTORIES))})")
    return FACTORIES[key]


def key_of(fn):
    """The registry key of factory `fn` (what a card names), or None."""
    return next((key for key, registered in FACTORIES.items() if registered is fn), None)


def check_kwargs(key, kwargs):
    """Raise TypeError if `kwargs` do not bind to factory `key`'s signature."""
    reserved = [name for name in RESERVED_KWARGS if name in kwargs]
    if reserved:
        raise TypeError(f"{', '.join(reserved)} is chosen when the model is loaded, not stored on a card")
    try:
        inspect.signature(factory(key)).bind(**kwargs)
    except TypeError as err:
        raise TypeError(f"factory {key!r}: {err}") from None


def accepts_seed(key):
    return "seed" in inspect.signature(factory(key)).parameters


def build_model(key, kwargs, seed=None):
    """The model factory `key` makes from `kwargs` (and `seed`, if given)."""
    check_kwargs(key, kwargs)
    kwargs = dict(kwargs)
    if seed is not None:
        if not accepts_seed(key):
            raise TypeError(f"factory {key!r} takes no seed")
        kwargs["seed"] = seed
    return factory(key)(**kwargs)
