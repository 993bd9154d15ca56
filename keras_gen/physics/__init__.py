"""The 2-D Ising model on an L x L torus: numpy and scipy only, no Keras.

* `lattice`: the conventions (``H = -sum_<ij> s_i s_j``, periodic), `TC`, the
  reference temperatures, argument checks, energy / magnetization / correlation
  of configurations, the torus's symmetries, `as_pm1`.
* `monte_carlo`: checkerboard Metropolis, Wolff clusters, `simulate`.
* `datasets`: the disk cache (`load_or_simulate`), `tf.data` pipelines and the
  named dataset behind ``keras_gen.data.load("ising", ...)``.
* `observables`: observables with jackknife errors, autocorrelation times.
* `exact`: enumeration, the transfer matrix, Onsager's infinite lattice.

The main names are importable from here
(``from keras_gen.physics import simulate, transfer_matrix, TC``), except the
function `observables`, which would hide its module of the same name:
``from keras_gen.physics.observables import observables``.
"""

from keras_gen.physics.datasets import default_cache_dir, load_or_simulate  # noqa: F401
from keras_gen.physics.exact import (  # noqa: F401
    density_of_states,
    exact_enumeration,
    onsager_energy,
    onsager_magnetization,
    transfer_matrix,
)
from keras_gen.physics.lattice import (  # noqa: F401
    TC,
    as_pm1,
    correlation_function,
    lattice_energy,
    lattice_magnetization,
    lattice_symmetries,
    reference_temperatures,
)
from keras_gen.physics.monte_carlo import (  # noqa: F401
    WOLFF_MAX_T,
    metropolis_sweep,
    random_lattices,
    simulate,
    wolff_update,
)
from keras_gen.physics.observables import OBSERVABLES, integrated_autocorrelation_time  # noqa: F401
