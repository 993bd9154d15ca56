"""keras-gen: a Keras model zoo of deep generative models for the physical sciences.

The folder tree is the architecture; lower layers never import higher ones:

    core/        the contract every family shares (base model, validation, random
                 numbers, distribution, caching, atomic files, Keras compatibility)
    sampling/    samplers shared by the families (block Gibbs, AIS, diffusion, Langevin)
    models/      one module per family (vae, rbm, dbn, gan, diffusion, ebm, ising, classifier)
    physics/     the 2-D Ising model: lattice, Monte Carlo, exact results, observables
    zoo/         named pretrained models: cards, the factory registry, publishing
    evaluation/  likelihoods, sample quality, the evaluation table
    recipes/     training procedures shared by the command line, training/ and benchmarks/
    data, callbacks, runs, plots, export, cli: data pipelines, Keras callbacks,
                 training runs with artifacts, figures, SavedModel export, the command

`import keras_gen` is light: it starts neither TensorFlow nor Keras, so the
command line answers `--help` and `zoo list` at once. Importing
`keras_gen.models` (or any family in it) registers every family's classes
with keras.saving, so `keras.saving.load_model` finds them.
"""

__version__ = "0.2.0"

import importlib.abc  # noqa: E402
import sys  # noqa: E402

# Modules of the flat 0.1 layout and where their contents live now.
MOVED = {
    "keras_gen.base": "keras_gen.core.base",
    "keras_gen.validation": "keras_gen.core.validation",
    "keras_gen.distribute": "keras_gen.core.distribute",
    "keras_gen.samplers": "keras_gen.core.random (seeds, random numbers), keras_gen.sampling.gibbs "
    "and keras_gen.sampling.ais",
    "keras_gen.vae": "keras_gen.models.vae",
    "keras_gen.rbm": "keras_gen.models.rbm (and models.dbn, evaluation.likelihood for exact/AIS "
    "log-likelihoods, callbacks for FreeEnergyGap and GibbsStepsSchedule)",
    "keras_gen.gan": "keras_gen.models.gan (and callbacks.IterationHistory)",
    "keras_gen.ising": "keras_gen.physics (modules lattice, monte_carlo, datasets, observables, exact)",
    "keras_gen.ising_models": "keras_gen.models.ising (the models), keras_gen.recipes.ising (training), "
    "keras_gen.evaluation.ising (comparison with exact results) and "
    "keras_gen.sampling.gibbs.gibbs_chains",
    "keras_gen.metrics": "keras_gen.evaluation.metrics",
    "keras_gen.trainer": "keras_gen.runs",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Turns an import of a 0.1 module into an error that says where it went."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            raise ModuleNotFoundError(
                f"{fullname} moved in keras-gen 0.2: import from {MOVED[fullname]} instead.", name=fullname
            )
        return None


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModuleFinder())
