"""keras-gen: a Keras model zoo of deep generative models for the physical sciences."""

__version__ = "0.1.0"

# Importing the families registers their classes with keras.saving, so
# `keras.saving.load_model` finds them once keras_gen is imported.
from keras_gen.base import GenerativeModel  # noqa: E402,F401
from keras_gen import vae  # noqa: E402,F401
from keras_gen import rbm  # noqa: E402,F401
from keras_gen import gan  # noqa: E402,F401
from keras_gen import ising_models  # noqa: E402,F401
