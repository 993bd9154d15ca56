"""What the scripts in benchmarks/ share, so that no benchmark imports another.

* `report`: a benchmark's results as a section of BENCHMARKS.md, headed by
  the machine, date and command (`BenchmarksFile`, `markdown_table`).
* `timing`: the float32 matmul ceiling, repetitions in rotating order, and
  background processes paused while the clock runs (`paused`).
* `vae`, `dcgan`, `diffusion`, `ebm`: the reference implementations keras-gen
  is timed against (the keras.io VAE example, the TensorFlow DCGAN tutorial,
  the keras.io DDIM example, the UvA deep-learning course's EBM tutorial),
  keras-gen's own contenders in the same configuration, and their FLOP counts.
"""
