"""The model zoo: named, pretrained models loaded in one line.

Each entry is a card in `zoo/` (`keras_gen.zoo.card`: architecture, dataset,
recipe, weights file, sha256, measured metrics, training record); its
weights live in `saved_models/`. `load` checks the weights' sha256 before
Keras reads a byte of them, so a corrupted or tampered file is refused with
a clear error.

Cards and weights are found, in order, in `$KERAS_GEN_HOME`, the source tree
this package sits in (a checkout or an editable install), and the data folder
a regular wheel install puts them in (`<prefix>/share/keras-gen`). A card in
an earlier folder replaces one of the same name in a later folder.

A malformed card spoils only its own entry: `names()` lists the others (and
warns, naming the bad file), `load` of a good entry works, and `card` or
`load` of the bad one raises its `ZooError`.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from keras_gen.core.files import sha256
from keras_gen.zoo import registry
from keras_gen.zoo.card import ZooCard, ZooError, compile_kwargs, read

DATA_FOLDER = ("share", "keras-gen")


class WeightsIntegrityError(ValueError):
    """A weights file whose sha256 does not match its card."""


class ZooCardWarning(UserWarning):
    """A malformed card was skipped while listing the zoo."""


def roots():
    """Folders holding `zoo/` and `saved_models/`, in the order searched."""
    here = Path(__file__).resolve().parent  # keras_gen/zoo
    candidates = []
    if os.environ.get("KERAS_GEN_HOME"):
        candidates.append(Path(os.environ["KERAS_GEN_HOME"]))
    candidates.append(here.parents[1])  # source checkout / editable install
    # <prefix>/lib/pythonX.Y/site-packages/keras_gen/zoo -> <prefix>/share/keras-gen
    candidates.append(here.parents[4].joinpath(*DATA_FOLDER) if len(here.parents) > 4 else None)
    candidates.append(Path(sys.prefix).joinpath(*DATA_FOLDER))
    seen, out = set(), []
    for c in candidates:
        if c is not None and (c / "zoo").is_dir() and c not in seen:
            seen.add(c)
            out.append(c)
    return out


def entries():
    """{name: ZooCard, or the ZooError of its malformed card}, earlier roots winning."""
    found = {}
    for root in reversed(roots()):
        for path in sorted((root / "zoo").glob("*.json")):
            try:
                found[path.name.removesuffix(".json")] = read(path)
            except ZooError as err:
                found[path.name.removesuffix(".json")] = err
    return found


def problems():
    """The ZooErrors of the malformed cards (one line each, naming the file)."""
    return [e for _, e in sorted(entries().items()) if isinstance(e, ZooError)]


def names():
    """Names of the zoo's well-formed entries; each malformed card is reported
    as a `ZooCardWarning` naming its file, and left out."""
    found = entries()
    for name in sorted(found):
        if isinstance(found[name], ZooError):
            warnings.warn(f"skipped: {found[name]}", ZooCardWarning, stacklevel=2)
    return sorted(name for name, entry in found.items() if isinstance(entry, ZooCard))


def card(name):
    """The validated `ZooCard` of entry `name`."""
    found = entries()
    entry = found.get(name)
    if isinstance(entry, ZooError):
        raise entry
    if entry is None:
        known = ", ".join(n for n in sorted(found) if isinstance(found[n], ZooCard)) or "none found"
        raise ZooError(f"Unknown zoo model {name!r}. Known: {known}.")
    return entry


def weights_path(name):
    entry = card(name)
    return entry.root / "saved_models" / entry.weights.file


def verify(name):
    """Check the weights of `name` against the card's sha256; return the path."""
    entry = card(name)
    path = weights_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"Weights of zoo model {name!r} not found at {path}. "
            f"Retrain from a source checkout with: {entry.recipe.command}"
        )
    actual = sha256(path)
    if actual != entry.weights.sha256:
        raise WeightsIntegrityError(
            f"Weights file {path} for zoo model {name!r} is corrupted or was modified: "
            f"sha256 {actual} does not match the card's {entry.weights.sha256}. Refusing to load it."
        )
    return path


def build(name_or_card, seed=None, weights=None):
    """Build the model an entry describes: built, with `weights` loaded if
    given, then compiled (a fresh optimizer, ready for fine-tuning)."""
    entry = card(name_or_card) if isinstance(name_or_card, str) else name_or_card
    source = entry.path or entry.name
    try:
        model = registry.build_model(entry.architecture.factory, entry.architecture.kwargs, seed=seed)
    except TypeError as err:
        raise ZooError(f"Zoo card {source}: {err}") from None
    model.build_for_data()
    if weights is not None:
        # Before compiling: the file holds the model's variables only, and an
        # uncompiled model has no optimizer state for Keras to look for.
        model.load_weights(weights)
    try:
        model.compile(**compile_kwargs(entry))
    except (TypeError, ValueError) as err:
        raise ZooError(f"Zoo card {source}: compile: {err}") from None
    return model


def load(name, pretrained=True, seed=None):
    """The zoo model `name`, built and compiled, with its verified weights.

    `model.zoo_card` holds the card's JSON object (a dict)."""
    entry = card(name)
    path = verify(name) if pretrained else None  # integrity first, before any work
    model = build(entry, seed=seed, weights=path)
    model.zoo_card = entry.to_dict()
    return model
