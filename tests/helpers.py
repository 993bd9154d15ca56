"""Helpers for the test modules that need Keras (conftest.py stays free of TensorFlow)."""

import keras


class Interrupt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at the end of epoch `at_epoch` (1-based): a run stopped by hand."""

    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.at_epoch:
            raise KeyboardInterrupt(f"simulated interruption after epoch {epoch + 1}")
