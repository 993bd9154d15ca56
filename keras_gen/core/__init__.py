"""The contract every family shares, and the lowest layer of the library.

`base` (the `GenerativeModel` contract), `validation` (input checks, raising
`errors.DataError`), `random` (counter-based random numbers), `distribute`
(strategies and replica-invariant draws), `caching` (compile-once
tf.functions), `files` (atomic writes), `hardware` (what the machine
computes fast) and `compat` (every private
Keras/TensorFlow API, in one place). Nothing here imports from the rest of
keras_gen.
"""
