"""Deep belief networks: RBMs stacked and trained greedily."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_gen.core.base import GenerativeModel, register
from keras_gen.core.caching import compiled_once
from keras_gen.core.random import fold_in, seed_tensor
from keras_gen.models.rbm import DEFAULT_GIBBS_STEPS, RBM, RBM_LAYERS, BernoulliRBM
from keras_gen.sampling.gibbs import block_gibbs


@register
class DBN(GenerativeModel):
    """A deep belief network: a stack of RBM layers trained greedily.

    `layers[0]` models the data; `layers[i]` models the hidden probabilities
    of `layers[i-1]`. `fit` trains them bottom-up, each as an `RBM` model on
    the previous layer's hidden probabilities (a tf.data pipeline mapped
    through the trained layers). Sampling runs Gibbs in the top RBM, then
    passes the top RBM's visible state down through the lower layers'
    visible means (the directed, sigmoid-belief-net part of a DBN).
    """

    nested_config_keys = ("rbm_layers",)

    def __init__(self, rbm_layers, k=1, persistent=True, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        rbm_layers = list(rbm_layers)
        if not rbm_layers:
            raise ValueError("A DBN needs at least one RBM layer.")
        for lower, upper in zip(rbm_layers, rbm_layers[1:]):
            if not isinstance(upper, BernoulliRBM):
                raise TypeError("Upper DBN layers must be BernoulliRBMs (they model binary hiddens).")
            if upper.n_visible != lower.n_hidden:
                raise ValueError(f"Layer sizes do not chain: {lower.n_hidden} hidden -> {upper.n_visible} visible.")
        self.rbm_layers = rbm_layers
        self.k = int(k)
        self.persistent = bool(persistent)
        self.built = True

    @property
    def data_shape(self):
        return (self.rbm_layers[0].n_visible,)

    @property
    def data_domain(self):
        return "binary" if self.rbm_layers[0].visible_type == "bernoulli" else "real"

    def call(self, x, training=False):
        """Top-layer hidden probabilities (the deterministic up-pass)."""
        return self.transform(x)

    def transform(self, x, depth=None):
        x = self.rbm_layers[0]._cast(x)
        for layer in self.rbm_layers[:depth]:
            x = layer.hidden_probabilities(x)
        return x

    def fit(
        self,
        x=None,
        y=None,
        epochs=1,
        batch_size=None,
        optimizer=None,
        verbose="auto",
        validation_data=None,
        jit_compile=True,
        **kwargs,
    ):
        """Greedy layer-wise training; returns one History per layer.

        `x` is an array (shuffled every epoch, seeded) or a batched
        tf.data.Dataset. `epochs` is an int or one per layer. `optimizer`
        (default: the compiled one, else SGD 0.1) is cloned for each layer;
        each layer's `RBM` is compiled with `jit_compile`. Other keyword
        arguments go to each `fit`.
        """
        self.validate_data(x)
        if validation_data is not None:
            self.validate_data(validation_data)
        epochs = list(epochs) if isinstance(epochs, (list, tuple)) else [int(epochs)] * len(self.rbm_layers)
        if len(epochs) != len(self.rbm_layers):
            raise ValueError(f"Give one epoch count per layer ({len(self.rbm_layers)}), got {len(epochs)}.")
        if optimizer is None:
            optimizer = getattr(self, "optimizer", None) or keras.optimizers.SGD(0.1)
        optimizer = keras.optimizers.get(optimizer)
        opt_config = keras.optimizers.serialize(optimizer)
        seed = seed_tensor(self.seed_generator).numpy()
        if isinstance(x, tf.data.Dataset):
            data = x
        else:
            x = np.asarray(x[0] if isinstance(x, (tuple, list)) else x, np.float32)
            data = (
                tf.data.Dataset.from_tensor_slices(x)
                .shuffle(len(x), seed=int(seed[0]), reshuffle_each_iteration=True)
                .batch(batch_size or 32)
            )
        val = validation_data
        if val is not None and not isinstance(val, tf.data.Dataset):
            val = tf.data.Dataset.from_tensor_slices(np.asarray(val, np.float32)).batch(batch_size or 32)
        kwargs.setdefault("shuffle", False)  # datasets carry their own order
        histories = []
        for i, (layer, n_epochs) in enumerate(zip(self.rbm_layers, epochs)):
            model = RBM(
                layer,
                k=self.k,
                persistent=self.persistent,
                data_domain=None if i == 0 else "unit",
                seed=int(seed[0]) * 7919 + int(seed[1]) + i,
                name=f"{self.name}_rbm{i}",
            )
            model.compile(optimizer=keras.optimizers.deserialize(opt_config), jit_compile=jit_compile)
            histories.append(model.fit(data, epochs=n_epochs, verbose=verbose, validation_data=val, **kwargs))
            data = data.map(layer.hidden_probabilities, num_parallel_calls=tf.data.AUTOTUNE)
            if val is not None:
                val = val.map(layer.hidden_probabilities)
        return histories

    def train_step(self, data):
        raise NotImplementedError("A DBN is trained greedily by DBN.fit, one RBM at a time.")

    def generate_samples(self, n, seed, gibbs_steps=DEFAULT_GIBBS_STEPS, return_probabilities=True):
        seed = seed_tensor(seed)
        top = self.rbm_layers[-1]
        v0 = top.random_visible(n, fold_in(seed, 1))
        v, mean = self._sampler()(v0, tf.constant(max(int(gibbs_steps), 1), tf.int32), fold_in(seed, 2))
        return mean if return_probabilities else v

    def _down(self, v_top, h_top, seed):
        """(mean, sample) of the data layer from the top RBM's last Gibbs state.

        With one layer that is E[v | h_top] and v_top. Otherwise v_top (a
        sample of the penultimate hidden layer) goes down through the lower
        layers' visible means; the data layer is sampled from its mean.
        """
        if len(self.rbm_layers) == 1:
            return self.rbm_layers[0].visible_mean(h_top), v_top
        h = v_top
        for layer in reversed(self.rbm_layers[1:-1]):
            h = layer.visible_mean(h)
        bottom = self.rbm_layers[0]
        return bottom.visible_mean(h), bottom.sample_visible(h, seed)

    def _sampler(self):
        def sample(v0, steps, seed):
            v, h = block_gibbs(self.rbm_layers[-1], v0, steps, seed)
            mean, sample = self._down(v, h, fold_in(seed, -2))
            return sample, mean

        return compiled_once(self, "sample", sample)

    def serving_endpoints(self):
        def sample(n, seed, gibbs_steps=DEFAULT_GIBBS_STEPS):  # optional in the export
            s = tf.stack([seed, 0])
            top = self.rbm_layers[-1]
            v0 = top.random_visible(n, fold_in(s, 1))
            v, h = block_gibbs(top, v0, tf.maximum(gibbs_steps, 1), fold_in(s, 2))
            mean, sample = self._down(v, h, fold_in(fold_in(s, 2), -2))
            return {"mean": mean, "sample": sample}

        return {
            "sample": (
                sample,
                [
                    tf.TensorSpec([], tf.int32, name="n"),
                    tf.TensorSpec([], tf.int32, name="seed"),
                    tf.TensorSpec([], tf.int32, name="gibbs_steps"),
                ],
            ),
            "transform": (
                lambda v: {"features": self.transform(v)},
                [tf.TensorSpec([None, self.rbm_layers[0].n_visible], tf.float32, name="v")],
            ),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "rbm_layers": self.serialize_nested(self.rbm_layers),
            "k": self.k,
            "persistent": self.persistent,
        }


def make_dbn(sizes=(784, 500, 500, 2000), visible="bernoulli", k=1, persistent=True, seed=None, name="dbn"):
    """A DBN with layer sizes `sizes` (data first), e.g. Hinton et al.'s 784-500-500-2000."""
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2:
        raise ValueError("sizes needs the data size and at least one hidden layer size.")
    rbm_layers = []
    for i, (n_v, n_h) in enumerate(zip(sizes, sizes[1:])):
        cls = RBM_LAYERS[visible] if i == 0 else BernoulliRBM
        rbm_layers.append(cls(n_v, n_h, seed=None if seed is None else int(seed) + i, name=f"{name}_layer{i}"))
    return DBN(rbm_layers, k=k, persistent=persistent, seed=seed, name=name)
