"""Recipe: the `ising_bond_rbm_L8` zoo entry.

The same eleven temperatures, data and evaluation as `training/ising_rbm.py`,
with a different RBM at each: a translation-tied ("convolutional", periodic)
RBM whose hidden units sit on the bonds of the lattice. Two filters, a 1 x 2
window (the bond to the right neighbour) and a 2 x 1 window (the bond below),
one hidden unit per filter and site: 128 hidden units, and seven free parameters
per temperature (four filter weights, one visible bias, two hidden biases: W is
tied by `make_rbm(..., periodic_lattice=(8, 8), filter_shape=[(1, 2), (2, 1)])`).

Why: the fully connected entry learns how often single spins flip but prices two
adjacent flips as two independent ones below T = 1.6
(`benchmarks/ising_excitations.py`), so its susceptibility there is that of
independent flips. The Ising model is exactly an RBM of this bond form
(`keras_gen.models.ising.exact_ising_rbm`). Whether CD learns the right weights from samples
is the question this entry answers: the weights start random, and the recipe
is plain (uncentered) CD-20 from the Monte Carlo samples, with Adam (learning
rate 0.01, cosine decay to 2%) over 30 epochs. Adam, because the parameters are few and
their scales differ (at T = 1 the bond weight is 5.4 and the single-flip cost a
small difference of large terms): with SGD the single-flip cost was still 7.3-7.9
instead of 8 after 30-90 epochs, so C and chi came out 13-100% high. Centered
updates collapse this model (every hidden unit switched off).

Sampling: a model with only nearest-neighbour couplings, quenched from random
spins below Tc, freezes into striped domains that block Gibbs updates do not
remove, as Metropolis does. The card's chains therefore start ordered: half all up,
half all down (`make_ising_rbms(..., start="ordered")`, on the card), then 2000 sweeps of burn-in.

    python training/ising_bond_rbm.py                    # train all, evaluate, write the card
    python training/ising_bond_rbm.py --evaluate-only    # re-measure the saved weights
"""

from __future__ import annotations

import os

from keras_gen.recipes.ising_zoo import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANT = {
    "name": "ising_bond_rbm_L8",
    "recipe": {
        "n_hidden": 128,
        "translation_tied": True,
        "filter_shape": [(1, 2), (2, 1)],
        "centering": False,
        "optimizer": "adam",
        "learning_rate": 0.01,
        "epochs": 30,
        "weight_stddev": 0.1,
    },
    "ordered_start": True,
    "recipe_file": "training/ising_bond_rbm.py",
    "description": (
        "Eleven bond RBMs of the 2-D Ising model on the 8x8 torus, one per temperature: 64 visible "
        "units, 128 hidden units on the lattice's bonds (translation-tied filters of 1x2 and 2x1 "
        "sites), trained by CD-20. model.sample(n, seed, temperature=T, gibbs_steps=...) draws "
        "{0,1} spins from chains started ordered (half all up, half all down)."
    ),
}

if __name__ == "__main__":
    main(VARIANT, ROOT, doc=__doc__)
