"""The model zoo: named, pretrained models loaded in one line.

Each entry is a JSON card in `zoo/` (architecture, dataset, recipe, weights
file, sha256, measured metrics, training time and machine); its weights live
in `saved_models/`. `load` checks the weights' sha256 before Keras reads a
byte of them, so a corrupted or tampered file is refused with a clear error.

Cards and weights are found, in order, in `$KERAS_GEN_HOME`, the source tree
this package sits in (a checkout or an editable install), and the data folder
a regular wheel install puts them in (`<prefix>/share/keras-gen`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from pathlib import Path

import keras

DATA_FOLDER = ("share", "keras-gen")


class ZooError(KeyError):
    """Unknown zoo name or an unusable card."""

    def __str__(self):  # KeyError would print the repr with quotes
        return str(self.args[0]) if self.args else ""


class WeightsIntegrityError(ValueError):
    """A weights file whose sha256 does not match its card."""


def roots():
    """Folders holding `zoo/` and `saved_models/`, in the order searched."""
    here = Path(__file__).resolve().parent
    candidates = []
    if os.environ.get("KERAS_GEN_HOME"):
        candidates.append(Path(os.environ["KERAS_GEN_HOME"]))
    candidates.append(here.parent)  # source checkout / editable install
    candidates.append(here.parents[3].joinpath(*DATA_FOLDER) if len(here.parents) > 3 else None)
    candidates.append(Path(sys.prefix).joinpath(*DATA_FOLDER))
    seen, out = set(), []
    for c in candidates:
        if c is not None and (c / "zoo").is_dir() and c not in seen:
            seen.add(c)
            out.append(c)
    return out


def _cards():
    cards = {}
    for root in reversed(roots()):  # earlier roots win
        for f in sorted((root / "zoo").glob("*.json")):
            card = json.loads(f.read_text())
            card["_root"] = str(root)
            cards[card["name"]] = card
    return cards


def list():  # noqa: A001 - the zoo's public verb
    """Names of the zoo's entries."""
    return sorted(_cards())


def card(name):
    """The card of entry `name` (a dict)."""
    cards = _cards()
    if name not in cards:
        known = ", ".join(sorted(cards)) or "none found"
        raise ZooError(f"Unknown zoo model {name!r}. Known: {known}.")
    return cards[name]


def sha256(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def weights_path(name):
    entry = card(name)
    return Path(entry["_root"]) / "saved_models" / entry["weights"]["file"]


def verify(name):
    """Check the weights of `name` against the card's sha256; return the path."""
    entry = card(name)
    path = weights_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"Weights of zoo model {name!r} not found at {path}. Retrain with {entry.get('recipe')}."
        )
    expected = entry["weights"]["sha256"]
    actual = sha256(path)
    if actual != expected:
        raise WeightsIntegrityError(
            f"Weights file {path} for zoo model {name!r} is corrupted or was modified: "
            f"sha256 {actual} does not match the card's {expected}. Refusing to load it."
        )
    return path


def build(name_or_card, seed=None, weights=None):
    """Build the model an entry describes: built, with `weights` loaded if
    given, then compiled (a fresh optimizer, ready for fine-tuning)."""
    entry = card(name_or_card) if isinstance(name_or_card, str) else name_or_card
    model = build_from_architecture(entry["architecture"], seed=seed)
    model.build_for_data()
    if weights is not None:
        model.load_weights(weights)
    model.compile(**compile_kwargs(entry.get("compile", {})))
    return model


def build_from_architecture(architecture, seed=None):
    builder = architecture["builder"]
    module_name, _, func_name = builder.rpartition(".")
    if not module_name.startswith("keras_gen."):
        raise ZooError(f"Builder {builder!r} is not part of keras_gen; refusing to import it.")
    fn = getattr(importlib.import_module(module_name), func_name)
    kwargs = dict(architecture.get("kwargs", {}))
    if seed is not None:
        kwargs["seed"] = seed
    return fn(**kwargs)


def compile_kwargs(spec):
    """Keras objects from a card's `compile` section ({"optimizer": {...}, ...})."""
    out = {}
    for key, value in spec.items():
        if isinstance(value, dict) and "class_name" in value:
            out[key] = keras.optimizers.deserialize(value)
        else:
            out[key] = value
    return out


def load(name, pretrained=True, seed=None):
    """The zoo model `name`, built and compiled, with its verified weights."""
    entry = card(name)
    path = verify(name) if pretrained else None  # integrity first, before any work
    model = build(entry, seed=seed, weights=path)
    model.zoo_card = {k: v for k, v in entry.items() if not k.startswith("_")}
    return model
