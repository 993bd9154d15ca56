"""Judging generative models: likelihoods, sample quality and the zoo table.

* `likelihood`: exact log Z by enumeration, AIS and reverse AIS (RBMs).
* `metrics`: Fréchet distance, classifier score, KID, precision/recall, MMD.
* `ood`: out-of-distribution detection by a model's `log_density` (AUROC).
* `sample_quality`: the classifier's view of image sets, and the reference rows.
* `sample_cache`: `SampleCache`, samples kept batch by batch so a long evaluation resumes.
* `table`: `evaluate(model_or_name)`, one row of the zoo's evaluation table.
* `zoo_table`: `evaluate_zoo`, the whole table as a section of BENCHMARKS.md
  (`keras-gen evaluate --all`, benchmarks/evaluate_zoo.py).
"""

from keras_gen.evaluation.sample_cache import SampleCache  # noqa: F401
from keras_gen.evaluation.sample_quality import (  # noqa: F401
    ImageSet,
    NotEvaluable,
    classifier_available,
    load_classifier,
    mnist_set,
    reference_rows,
    sample_quality,
    to_images,
)
from keras_gen.evaluation.table import (  # noqa: F401
    conditional_accuracy,
    evaluate,
    format_row,
    format_verdict,
    generate,
    mnist_test_nll,
    quality_sweep,
    stage_lines,
    targets,
    verdict,
)
