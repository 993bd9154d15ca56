"""Physics: the 2-D Ising model (lattice, Monte Carlo, exact results, observables)."""
