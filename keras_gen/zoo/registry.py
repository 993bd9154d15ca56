"""The model factories a zoo card may name.

A card is data: its `architecture.factory` is a key of `FACTORIES`, never a
module path, so reading a card imports and runs nothing the library did not
list here. Its `architecture.kwargs` are checked against the factory's
signature before anything is built, so a card with a misspelt argument is
refused when it is read, not halfway through a load.

Reading a card does not import the factories: their signatures are read from
their modules' source, so listing the zoo (`keras-gen zoo list`) never starts
TensorFlow. A factory is imported when a model is built.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
from pathlib import Path

# key -> "module:function"
FACTORIES = {
    "vae": "keras_gen.models.vae:make_vae",
    "rbm": "keras_gen.models.rbm:make_rbm",
    "dbn": "keras_gen.models.dbn:make_dbn",
    "diffusion": "keras_gen.models.diffusion:make_diffusion",
    "ebm": "keras_gen.models.ebm:make_ebm",
    "gan": "keras_gen.models.gan:make_gan",
    "toy_gan": "keras_gen.models.gan:make_toy_gan",
    "ising_rbms": "keras_gen.models.ising:make_ising_rbms",
    "ising_vae": "keras_gen.models.ising:make_ising_vae",
    "mnist_classifier": "keras_gen.models.classifier:make_mnist_classifier",
}

# Passed by `zoo.load(name, seed=...)`, never stored: a card describes the
# trained model, whose variables the weights file restores.
RESERVED_KWARGS = ("seed",)
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # keras_gen/


def _target(key):
    if key not in FACTORIES:
        raise KeyError(f"{key!r} is not a registered model factory (known: {', '.join(sorted(FACTORIES))})")
    module, function = FACTORIES[key].split(":")
    return module, function


def factory(key):
    """The factory registered as `key`, imported (KeyError with the known keys otherwise)."""
    module, function = _target(key)
    return getattr(importlib.import_module(module), function)


def key_of(fn):
    """The registry key of factory `fn` (what a card names), or None."""
    target = f"{getattr(fn, '__module__', '')}:{getattr(fn, '__name__', '')}"
    return next((key for key, registered in FACTORIES.items() if registered == target), None)


@functools.cache
def signature(key):
    """Factory `key`'s signature, read from its module's source without importing it
    (defaults stand as `...`: only their presence matters for binding arguments)."""
    module, function = _target(key)
    source = PACKAGE_ROOT.joinpath(*module.split(".")[1:]).with_suffix(".py")
    node = None
    if source.is_file():
        tree = ast.parse(source.read_text(), filename=str(source))
        node = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function), None)
    if node is None:  # an install without sources: import the factory after all
        return inspect.signature(factory(key))
    return _signature_of(node.args)


def _signature_of(args):
    P = inspect.Parameter
    positional = [(a, P.POSITIONAL_ONLY) for a in args.posonlyargs] + [(a, P.POSITIONAL_OR_KEYWORD) for a in args.args]
    first_default = len(positional) - len(args.defaults)
    parameters = [
        P(a.arg, kind, default=... if i >= first_default else P.empty) for i, (a, kind) in enumerate(positional)
    ]
    if args.vararg:
        parameters.append(P(args.vararg.arg, P.VAR_POSITIONAL))
    parameters += [
        P(a.arg, P.KEYWORD_ONLY, default=P.empty if d is None else ...)
        for a, d in zip(args.kwonlyargs, args.kw_defaults)
    ]
    if args.kwarg:
        parameters.append(P(args.kwarg.arg, P.VAR_KEYWORD))
    return inspect.Signature(parameters)


def check_kwargs(key, kwargs):
    """Raise TypeError if `kwargs` do not bind to factory `key`'s signature."""
    reserved = [name for name in RESERVED_KWARGS if name in kwargs]
    if reserved:
        raise TypeError(f"{', '.join(reserved)} is chosen when the model is loaded, not stored on a card")
    try:
        signature(key).bind(**kwargs)
    except TypeError as err:
        raise TypeError(f"factory {key!r}: {err}") from None


def accepts_seed(key):
    return "seed" in signature(key).parameters


def build_model(key, kwargs, seed=None):
    """The model factory `key` makes from `kwargs` (and `seed`, if given)."""
    check_kwargs(key, kwargs)
    kwargs = dict(kwargs)
    if seed is not None:
        if not accepts_seed(key):
            raise TypeError(f"factory {key!r} takes no seed")
        kwargs["seed"] = seed
    return factory(key)(**kwargs)
