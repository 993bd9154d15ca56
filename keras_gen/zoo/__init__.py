"""The model zoo: named, pretrained models loaded in one line."""

from keras_gen.zoo.loader import (  # noqa: F401
    WeightsIntegrityError,
    ZooError,
    build,
    card,
    load,
    roots,
    sha256,
    verify,
    weights_path,
)
from keras_gen.zoo.loader import list as list  # noqa: F401,A001
