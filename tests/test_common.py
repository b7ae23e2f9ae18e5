"""scikit-learn's own estimator checks over every skmixup estimator.

Each estimator is found by :func:`skmixup.utils.all_estimators`; ``FAST_PARAMS`` makes
the instances small enough for the suite, and ``EXPECTED_FAILED_CHECKS`` is the one
table of checks that are known to fail, each with its reason. ``xfail_strict`` is on,
so an entry must go once its check passes.
"""

import pytest
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

from skmixup.utils import all_estimators

# Small, fast configurations for the checks (class name -> parameters).
FAST_PARAMS = {
    "MixupLogisticRegression": {"random_state": 0},
}

_SW_STOCHASTIC = (
    "Mixup draws partners at random: a weight of 2 equals a duplicated row in "
    "expectation over the draws, not in one realisation (as for sklearn's "
    "SGDClassifier; scikit-learn#16298). tests/test_logistic.py checks the "
    "expectation and the exact no-mixing limit."
)

EXPECTED_FAILED_CHECKS = {
    "MixupLogisticRegression": {
        "check_sample_weight_equivalence_on_dense_data": _SW_STOCHASTIC,
        "check_sample_weight_equivalence_on_sparse_data": _SW_STOCHASTIC,
    },
}


def _instances():
    for name, cls in all_estimators():
        yield cls(**FAST_PARAMS.get(name, {}))


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(
    list(_instances()), expected_failed_checks=_expected_failed_checks
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "estimator", list(_instances()), ids=lambda est: type(est).__name__
)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


def test_every_estimator_is_configured():
    # A new estimator must be given a fast configuration here deliberately.
    names = {name for name, _ in all_estimators()}
    assert names <= set(FAST_PARAMS), names - set(FAST_PARAMS)
