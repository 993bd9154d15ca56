"""Samplers shared by the families, written against small interfaces.

* `gibbs.block_gibbs`: any model with `sample_hidden` / `sample_visible`.
* `ais`: annealed importance sampling of log Z and reverse AIS for anything
  with the `ais_*` hooks (the RBM layers).
"""
