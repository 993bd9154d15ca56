"""The model zoo: named, pretrained models loaded in one line.

* `loader`: finding, verifying and loading entries (`names`, `card`, `load`).
* `card`: the card schema, validated on read (`ZooCard`, `ZooError`).
* `registry`: the model factories a card may name.
* `publish`: writing an entry (weights, sha256, card) from a trained model.
* `summary` and `gallery`: the zoo at a glance (`keras-gen zoo list`, `show`),
  README's zoo table and the gallery page (docs/zoo.md).
"""

import warnings

from keras_gen.core.files import sha256  # noqa: F401
from keras_gen.zoo.card import SCHEMA_VERSION, ZooCard, ZooError  # noqa: F401
from keras_gen.zoo.loader import (  # noqa: F401
    WeightsIntegrityError,
    ZooCardWarning,
    build,
    card,
    entries,
    load,
    names,
    problems,
    roots,
    verify,
    weights_path,
)


def __getattr__(attribute):
    # `zoo.list` shadowed the builtin inside the zoo's own module; the old
    # spelling still answers, with a warning, until callers have moved.
    if attribute == "list":
        warnings.warn("keras_gen.zoo.list() is now keras_gen.zoo.names()", DeprecationWarning, stacklevel=2)
        return names
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
