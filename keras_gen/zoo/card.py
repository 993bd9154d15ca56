"""A zoo card: what a pretrained entry is, checked when it is read.

A card is a JSON file `zoo/NAME.json`. It is data and only data: the model
is named by a key of `keras_gen.zoo.registry.FACTORIES`, its compile
settings are plain values and optimizer configs of Keras's built-in
optimizers, and nothing in it is imported or executed. Every card is
validated on read; a malformed one raises `ZooError` with one line naming
its file and the problem.

Schema version 1 (fields in file order; `?` marks an optional field):

    schema_version   1
    name             str, the file's stem
    family           "vae" | "rbm" | "dbn" | "gan" | "diffusion" | "ebm" | "classifier"
    description      str
    architecture     {"factory": registry key, "kwargs": {...}}
    compile?         {argument: JSON value or an optimizer config}; no jit_compile
    sample_kwargs?   {argument: JSON value}: the entry's own sampling settings
    dataset          {"name": str, "split": str, ...}
    weights          {"file": "NAME.weights.h5", "sha256": 64 lowercase hex digits}
    recipe           {"script": path in a checkout, "command": what reproduces the entry}
    features?        {...}: a classifier's feature layer
    metrics          {...}: what was measured, as measured
    training         {"machine": str, "date": str, "command": str, ...}: the record of the run
    figures          [path in the zoo's root, ...]

The parts the library acts on (architecture, compile, sample settings,
weights, recipe) are typed; metrics, the training record and the dataset are
records for people, kept as they were written, with only the keys every
entry has checked.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from keras_gen.zoo import registry

SCHEMA_VERSION = 1
FAMILIES = ("vae", "rbm", "dbn", "gan", "diffusion", "ebm", "classifier")
# Built-in Keras optimizers whose configs hold plain numbers; a card's
# optimizer is rebuilt from this list by name, never from a module path.
OPTIMIZERS = (
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Ftrl",
    "Lamb",
    "Lion",
    "Nadam",
    "RMSprop",
    "SGD",
)
SHA256 = re.compile(r"[0-9a-f]{64}")
SCALARS = (str, int, float, bool, type(None))


class ZooError(KeyError):
    """Unknown zoo name or an unusable card."""

    def __str__(self):  # KeyError would print the repr with quotes
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Architecture:
    factory: str  # a key of keras_gen.zoo.registry.FACTORIES
    kwargs: dict


@dataclass(frozen=True)
class Weights:
    file: str  # in the root's saved_models/
    sha256: str


@dataclass(frozen=True)
class Recipe:
    script: str  # e.g. training/vae_mnist.py, in a source checkout
    command: str  # e.g. "python training/vae_mnist.py", run from a checkout's root


@dataclass(frozen=True)
class ZooCard:
    name: str
    family: str
    description: str
    architecture: Architecture
    dataset: dict
    weights: Weights
    recipe: Recipe
    metrics: dict
    training: dict
    figures: list
    compile: dict = field(default_factory=dict)
    sample_kwargs: dict = field(default_factory=dict)
    features: dict | None = None
    schema_version: int = SCHEMA_VERSION
    # Where the card was read from (not part of its JSON).
    path: Path | None = field(default=None, compare=False)

    @property
    def root(self):
        """The folder holding this card's `zoo/` and `saved_models/`."""
        return None if self.path is None else self.path.parent.parent

    def to_dict(self):
        """The card's JSON object, fields in schema order."""
        out = {
            "schema_version": self.schema_version,
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "architecture": {"factory": self.architecture.factory, "kwargs": self.architecture.kwargs},
        }
        if self.compile:
            out["compile"] = self.compile
        if self.sample_kwargs:
            out["sample_kwargs"] = self.sample_kwargs
        out["dataset"] = self.dataset
        out["weights"] = {"file": self.weights.file, "sha256": self.weights.sha256}
        out["recipe"] = {"script": self.recipe.script, "command": self.recipe.command}
        if self.features is not None:
            out["features"] = self.features
        out.update(metrics=self.metrics, training=self.training, figures=list(self.figures))
        return copy.deepcopy(out)  # the caller's to edit, without touching this card


FIELDS = {
    # name: (JSON type, required)
    "schema_version": (int, True),
    "name": (str, True),
    "family": (str, True),
    "description": (str, True),
    "architecture": (dict, True),
    "compile": (dict, False),
    "sample_kwargs": (dict, False),
    "dataset": (dict, True),
    "weights": (dict, True),
    "recipe": (dict, True),
    "features": (dict, False),
    "metrics": (dict, True),
    "training": (dict, True),
    "figures": (list, True),
}
TYPE_NAMES = {int: "an integer", str: "a string", dict: "an object", list: "a list", float: "a number"}


class _Reader:
    """Checks one card's JSON; every problem is a one-line ZooError naming the card."""

    def __init__(self, source):
        self.source = source

    def fail(self, problem):
        raise ZooError(f"Zoo card {self.source}: {problem}")

    def typed(self, value, kind, where):
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            self.fail(f"{where} must be {TYPE_NAMES.get(kind, kind.__name__)}, got {type(value).__name__}")
        return value

    def fields(self, obj, spec, where=""):
        """`obj`'s fields checked against spec {key: (type, required)}; unknown keys refused."""
        unknown = sorted(set(obj) - set(spec))
        if unknown:
            self.fail(f"unknown field {where}{unknown[0]}")
        for key, (kind, required) in spec.items():
            if key in obj:
                self.typed(obj[key], kind, f"{where}{key}")
            elif required:
                self.fail(f"missing field {where}{key}")
        return obj

    def scalars(self, obj, where):
        for key, value in obj.items():
            if not isinstance(value, SCALARS) and not (
                isinstance(value, list) and all(isinstance(v, SCALARS) for v in value)
            ):
                self.fail(f"{where}.{key} must be a plain value, got {type(value).__name__}")

    def optimizer(self, value, where):
        self.fields(
            value,
            {
                "module": (str, True),
                "class_name": (str, True),
                "config": (dict, True),
                "registered_name": (type(None), False),
            },
            f"{where}.",
        )
        if value["module"] != "keras.optimizers" or value["class_name"] not in OPTIMIZERS:
            self.fail(
                f"{where} must be one of Keras's built-in optimizers ({', '.join(OPTIMIZERS)}), "
                f"got {value['module']}.{value['class_name']}"
            )
        self.scalars(value["config"], f"{where}.config")

    def compile(self, spec):
        for key, value in spec.items():
            if key == "jit_compile":
                # XLA is the loading machine's choice (the model's "auto"), not the training machine's.
                self.fail("compile.jit_compile is not stored on a card (the model's default applies)")
            if isinstance(value, dict):
                self.optimizer(value, f"compile.{key}")
            elif not isinstance(value, SCALARS):
                self.fail(f"compile.{key} must be a plain value or an optimizer config")

    def card(self, data, stem=None):
        if not isinstance(data, dict):
            self.fail(f"must be a JSON object, got {type(data).__name__}")
        if "schema_version" not in data:
            self.fail(f"missing field schema_version (this keras-gen reads schema version {SCHEMA_VERSION})")
        version = data["schema_version"]
        if version != SCHEMA_VERSION or isinstance(version, bool):
            self.fail(f"schema_version {version!r} is not supported (this keras-gen reads version {SCHEMA_VERSION})")
        self.fields(data, FIELDS)
        if stem is not None and data["name"] != stem:
            self.fail(f"name {data['name']!r} differs from the file's name {stem!r}")
        if data["family"] not in FAMILIES:
            self.fail(f"family {data['family']!r} is not one of {', '.join(FAMILIES)}")

        arch = self.fields(data["architecture"], {"factory": (str, True), "kwargs": (dict, True)}, "architecture.")
        if arch["factory"] not in registry.FACTORIES:
            self.fail(
                f"architecture.factory {arch['factory']!r} is not a registered model factory "
                f"(known: {', '.join(sorted(registry.FACTORIES))})"
            )
        try:
            registry.check_kwargs(arch["factory"], arch["kwargs"])
        except TypeError as err:
            self.fail(f"architecture.kwargs: {err}")
        self.compile(data.get("compile", {}))
        self.scalars(data.get("sample_kwargs", {}), "sample_kwargs")

        self.fields(
            data["dataset"],
            {"name": (str, True), "split": (str, True)}
            | {k: (object, False) for k in data["dataset"] if k not in ("name", "split")},
            "dataset.",
        )
        weights = self.fields(data["weights"], {"file": (str, True), "sha256": (str, True)}, "weights.")
        if "/" in weights["file"] or "\\" in weights["file"] or not weights["file"].endswith(".weights.h5"):
            self.fail(f"weights.file must be a file name ending in .weights.h5, got {weights['file']!r}")
        if not SHA256.fullmatch(weights["sha256"]):
            self.fail(f"weights.sha256 must be 64 lowercase hex digits, got {weights['sha256']!r}")
        recipe = self.fields(data["recipe"], {"script": (str, True), "command": (str, True)}, "recipe.")
        self.fields(
            data["training"],
            {"machine": (str, True), "date": (str, True), "command": (str, True)}
            | {k: (object, False) for k in data["training"] if k not in ("machine", "date", "command")},
            "training.",
        )
        for i, figure in enumerate(data["figures"]):
            self.typed(figure, str, f"figures[{i}]")
        return ZooCard(
            name=data["name"],
            family=data["family"],
            description=data["description"],
            architecture=Architecture(arch["factory"], arch["kwargs"]),
            dataset=data["dataset"],
            weights=Weights(weights["file"], weights["sha256"]),
            recipe=Recipe(recipe["script"], recipe["command"]),
            metrics=data["metrics"],
            training=data["training"],
            figures=list(data["figures"]),
            compile=data.get("compile", {}),
            sample_kwargs=data.get("sample_kwargs", {}),
            features=data.get("features"),
            schema_version=version,
        )


def from_dict(data, source="<card>"):
    """A validated `ZooCard` from a card's JSON object (ZooError naming `source` if malformed)."""
    return _Reader(source).card(data)


def read(path):
    """The validated card in file `path` (ZooError naming the file if malformed)."""
    path = Path(path)
    reader = _Reader(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        reader.fail(f"not valid JSON ({err})")
    except (OSError, UnicodeDecodeError) as err:
        reader.fail(f"unreadable ({err})")
    return replace(reader.card(data, stem=path.name.removesuffix(".json")), path=path)


def compile_kwargs(card):
    """The card's compile section as Keras objects: optimizers rebuilt from their configs."""
    import keras

    # deserialize edits the config it is given (class_name to lower case): give it a copy.
    return {
        key: keras.optimizers.deserialize(copy.deepcopy(value)) if isinstance(value, dict) else value
        for key, value in card.compile.items()
    }
