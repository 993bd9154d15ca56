"""Errors a user's input can cause, defined apart from the checks that raise
them so that the command line can name them without starting TensorFlow."""


class DataError(ValueError):
    """Data that a model cannot accept (shape, dtype, NaN, domain)."""
