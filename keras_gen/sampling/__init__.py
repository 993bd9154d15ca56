"""Samplers shared by the families, written against small interfaces.

* `gibbs.block_gibbs`: any model with `sample_hidden` / `sample_visible`.
* `ais`: annealed importance sampling of log Z and reverse AIS for anything
  with the `ais_*` hooks (the RBM layers).
* `diffusion`: noise schedules, the forward process, DDPM/DDIM sampling and
  DDIM inversion for any denoiser, with the exact Gaussian answers that
  check them.
* `langevin`: unadjusted (ULA/SGLD) and Metropolis-adjusted (MALA) Langevin
  dynamics on any differentiable energy, with the exact Gaussian answers.
"""
