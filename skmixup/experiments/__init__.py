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
(``_loop.run_splits``) and one definition of every model (``_models.MODELS``); they
run on the bundled data sets or on a user's table (``_common.Table``, read by
``_table.load_table`` for ``reproduce --data``). The experiments of ``reproduce``
are ``_reproduce.EXPERIMENTS`` with their settings ``_reproduce.SETTINGS``; each
one's part of the report (table, summary, figure, protocol) is one entry of
``_report.SECTIONS``, and ``report.md`` comes with a machine-readable
``summary.json`` (``_report.load_summary``, ``_report.rebuild_report``).
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
