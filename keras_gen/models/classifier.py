"""The domain classifier: a small CNN trained on MNIST.

Trained by `training/mnist_classifier.py` (≥ 99.3% test accuracy) and shipped
in the zoo with family "classifier", so its weights are sha256-checked like
any zoo entry. Its penultimate layer (`features`, 128 ReLU units) is the
feature space of the sample-quality metrics in `keras_gen.evaluation`.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from keras_gen.core.base import register
from keras_gen.core.caching import compiled_once

CLASSIFIER_NAME = "mnist_classifier"
FEATURE_LAYER = "features"
FEATURE_DIM = 128
IMAGE_SHAPE = (28, 28, 1)
N_CLASSES = 10


@register
class DomainClassifier(keras.Model):
    """A small CNN for 28x28x1 images in [0, 1]: two 5x5 conv blocks, a
    128-unit ReLU feature layer, a 10-way softmax head (logits out).

    `features(x)` is the penultimate layer the sample-quality metrics use.
    """

    def __init__(self, filters=(32, 64), feature_dim=FEATURE_DIM, dropout=0.4, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.feature_dim = int(feature_dim)
        self.dropout = float(dropout)
        blocks = [keras.Input(IMAGE_SHAPE)]
        for f in self.filters:
            blocks += [
                layers.Conv2D(f, 5, use_bias=False),
                layers.BatchNormalization(),
                layers.ReLU(),
                layers.MaxPooling2D(),
            ]
        blocks += [layers.Flatten(), layers.Dense(self.feature_dim, activation="relu", name=FEATURE_LAYER)]
        self.body = keras.Sequential(blocks, name="body")
        self.head_dropout = layers.Dropout(self.dropout)
        self.head = layers.Dense(N_CLASSES, name="logits")

    @property
    def data_shape(self):
        return IMAGE_SHAPE

    def build_for_data(self):
        if not self.built or not self.weights:
            self(keras.ops.zeros((1, *IMAGE_SHAPE)))
        return self

    def build(self, input_shape=None):
        self.head.build((None, self.feature_dim))
        self.built = True

    def call(self, x, training=False):
        return self.head(self.head_dropout(self.body(x, training=training), training=training))

    def features(self, x):
        return self.body(x, training=False)

    def features_and_probabilities(self, x):
        """(features, class probabilities) of a batch, compiled once."""

        def both(x):
            features = self.body(x, training=False)
            return features, tf.nn.softmax(self.head(features))

        # A convolutional network: TensorFlow's oneDNN kernels beat XLA's on a CPU.
        return compiled_once(self, "features_and_probabilities", both, jit_compile=False)(x)

    def get_config(self):
        return {
            "filters": list(self.filters),
            "feature_dim": self.feature_dim,
            "dropout": self.dropout,
            "name": self.name,
        }


def make_mnist_classifier(filters=(32, 64), feature_dim=FEATURE_DIM, dropout=0.4, name=CLASSIFIER_NAME):
    """The zoo builder of the domain classifier."""
    return DomainClassifier(filters=filters, feature_dim=feature_dim, dropout=dropout, name=name)
