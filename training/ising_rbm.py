"""Recipe: the `ising_rbm_L8` zoo entry.

One Bernoulli RBM (64 visible, 64 hidden) per temperature for the 2-D Ising
model on the 8 x 8 torus, at the eleven temperatures of Torlai & Melko (2016)
(1.0 .. 3.54 with Tc), each trained with `make_rbm` + `fit` by centered CD-20
(`keras_gen.recipes.ising.train_ising_rbm`, recipe `RBM_RECIPE`) on Monte Carlo
samples of `keras_gen.physics`. Then every RBM is sampled with long thinned
Gibbs chains and its energy, |m|, specific heat and susceptibility are
compared with the exact transfer-matrix values; the numbers go on the card,
the figures to `zoo/figures/`, the weights (all temperatures in one file) to
`saved_models/`.

    python training/ising_rbm.py                    # train all, evaluate, write the card
    python training/ising_rbm.py --evaluate-only    # re-measure the saved weights

Resumable: each temperature's trained RBM is kept in the run folder and
skipped when the command is run again. The procedure, shared with
`training/ising_bond_rbm.py`, is `keras_gen.recipes.ising_zoo`; this file is the
entry's variant.
"""

from __future__ import annotations

import os

from keras_gen.recipes.ising_zoo import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANT = {
    "name": "ising_rbm_L8",
    "recipe": {},  # overrides of keras_gen.recipes.ising.RBM_RECIPE
    "ordered_start": False,
    "recipe_file": "training/ising_rbm.py",
    "description": (
        "Eleven Bernoulli RBMs (64 visible, 64 hidden), one per temperature, of the 2-D Ising "
        "model on the 8x8 torus (Torlai & Melko 2016). "
        "model.sample(n, seed, temperature=T, gibbs_steps=...) draws {0,1} spins."
    ),
}
"""What distinguishes the zoo entry made by this recipe (`training/ising_bond_rbm.py` is another)."""

if __name__ == "__main__":
    main(VARIANT, ROOT, doc=__doc__)
