"""The experiments behind ``python -m skmixup reproduce``, as plain functions.

``skmixup.__main__`` only parses arguments and prints; everything that computes lives
here, so that the experiments can be run and tested from Python. Each function
returns a list of dicts (one per table row):

* :func:`approximation_experiment` -- exact vs second-order Mixup loss along
  training (paper Fig. 2);
* :func:`robustness_experiment` -- FGSM robust accuracy against eps (Fig. 1a);
* :func:`generalization_experiment` -- train-test gaps and calibration (expected
  calibration error, reliability bins) against the Mixup parameter (Fig. 1b);
* :func:`linear_digits_demo` -- the original ERM vs Mixup table on digits.

The robustness and generalization experiments share one split/fit/score loop
(``_loop.run_splits``) and one definition of every model (``_models.MODELS``); the
settings of ``reproduce`` are ``_reproduce.SETTINGS``, and the report's protocol is
written from them (``_report.protocol``).
"""

from skmixup.experiments._approximation import approximation_experiment
from skmixup.experiments._demo import linear_digits_demo
from skmixup.experiments._generalization import generalization_experiment
from skmixup.experiments._robustness import robustness_experiment

__all__ = [
    "approximation_experiment",
    "generalization_experiment",
    "linear_digits_demo",
    "robustness_experiment",
]
