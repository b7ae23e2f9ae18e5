"""scikit-learn's own estimator checks over every skmixup estimator.

Each estimator is found by :func:`skmixup.utils.all_estimators`; ``FAST_PARAMS`` makes
the instances small enough for the suite, and ``EXPECTED_FAILED_CHECKS`` is the one
table of checks that are known to fail, each with its reason. ``xfail_strict`` is on,
so an entry must go once its check passes.
"""

import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.utils.estimator_checks import (
    check_param_validation,
    parametrize_with_checks,
)

from skmixup.utils import all_estimators

pytestmark = pytest.mark.usefixtures("torch_single_thread")

# Small, fast configurations for the checks (class name -> parameters).
FAST_PARAMS = {
    "MixupLogisticRegression": {"random_state": 0},
    # Deterministic and exact (no partners drawn): defaults pass every check,
    # sample-weight equivalence included, so it has no expected failures.
    "MixupRegularizedLogisticRegression": {},
    # 10 epochs of Adam (lr 0.05), one full batch each, on an 8-unit layer: passes
    # check_classifiers_train, about 20 times faster than 30 epochs of minibatches.
    "MixupMLPClassifier": {
        "hidden_layer_sizes": (8,),
        "max_iter": 10,
        "learning_rate_init": 0.05,
        "batch_size": 1000,
        "random_state": 0,
    },
    # Full-batch Adam as for the classifier; the regression checks need a fit
    # with R^2 > 0.5 on their small problems.
    "MixupMLPRegressor": {
        "hidden_layer_sizes": (16,),
        "max_iter": 30,
        "learning_rate_init": 0.05,
        "batch_size": 1000,
        "random_state": 0,
    },
    "MixupRegularizedMLPClassifier": {
        "hidden_layer_sizes": (16,),
        "max_iter": 30,
        "learning_rate_init": 0.01,
        "random_state": 0,
    },
}
# The Mixup wrappers around fast inner estimators.
FAST_PARAMS["MixupClassifier"] = {
    "estimator": LogisticRegression(),
    "n_mixed": 2,
    "random_state": 0,
}
FAST_PARAMS["MixupRegressor"] = {"estimator": Ridge(), "n_mixed": 2, "random_state": 0}
try:  # MixupNeuralNetClassifier is a skorch net (a BaseEstimator), found only
    import torch  # with the torch extra; a lazy linear layer fits any n_features.

    FAST_PARAMS["MixupNeuralNetClassifier"] = {
        "module": torch.nn.LazyLinear,
        "module__out_features": 3,
        "max_epochs": 5,
        "train_split": None,
        "verbose": 0,
        "random_state": 0,
    }
    _HAS_TORCH = True
except ImportError:
    _HAS_TORCH = False

_SW_MINIBATCH = (
    "Minibatch training with Mixup: a weight of 2 and a repeated row give other "
    "batches and partner draws, so the fits agree in expectation, not in one "
    "realisation (as for sklearn's SGDClassifier and MLPClassifier). "
    "tests/test_nn_input.py checks exact equivalence with full batches and no "
    "mixing."
)
_SKORCH_NO_VALIDATION = (
    "skorch nets pass 2d y and y=None on to skorch, which hands them to the "
    "module as given. Use MixupMLPClassifier for the scikit-learn "
    "contract."
)
_SKORCH_LABELS = (
    "skorch convention: y must be integer class indices 0..K-1 for a module with K "
    "outputs (here 3); string labels, one class or a binary problem with a 3-output "
    "module do not fit that contract. MixupMLPClassifier encodes labels."
)
_SKORCH_INIT = (
    "skorch sets history_, initialized_ and virtual_params_ in __init__, and "
    "set_params re-initialises components; both are skorch's design."
)

_NET_EPOCHS = (
    "the check gives class_weight time by setting max_iter=1000, which the net "
    "does not have (its epochs are skorch's max_epochs, 5 here): measured, the "
    "share of class-0 predictions is 0.46 after 5 epochs and 0.98 (2 classes), "
    "1.0 (3 classes) after 1000; tests/test_nn_tables.py checks class_weight."
)

_SW_MIXED_ROWS = (
    "The mixed rows are a seeded sample: a weight of 2 and a repeated row give other "
    "partner and lambda draws, so the fits agree in expectation, not in one "
    "realisation. tests/test_compose.py checks the weights of the mixed rows and "
    "the expectation."
)
EXPECTED_FAILED_CHECKS = {
    "MixupClassifier": {
        "check_sample_weight_equivalence_on_dense_data": _SW_MIXED_ROWS,
        "check_sample_weight_equivalence_on_sparse_data": _SW_MIXED_ROWS,
    },
    "MixupRegressor": {
        "check_sample_weight_equivalence_on_dense_data": _SW_MIXED_ROWS,
        "check_sample_weight_equivalence_on_sparse_data": _SW_MIXED_ROWS,
    },
    "MixupMLPClassifier": {
        "check_sample_weight_equivalence_on_dense_data": _SW_MINIBATCH,
        "check_sample_weight_equivalence_on_sparse_data": _SW_MINIBATCH,
    },
    "MixupMLPRegressor": {
        "check_sample_weight_equivalence_on_dense_data": _SW_MINIBATCH,
        "check_sample_weight_equivalence_on_sparse_data": _SW_MINIBATCH,
    },
    "MixupNeuralNetClassifier": {
        "check_sample_weight_equivalence_on_dense_data": _SW_MINIBATCH,
        "check_sample_weight_equivalence_on_sparse_data": _SW_MINIBATCH,
        "check_class_weight_classifiers": _NET_EPOCHS,
        "check_no_attributes_set_in_init": _SKORCH_INIT,
        "check_set_params": _SKORCH_INIT,
        # The net fits CSR input (kept sparse until the batch); the check's y
        # holds 4 classes for a 3-output module.
        "check_estimator_sparse_array": _SKORCH_LABELS,
        "check_estimator_sparse_matrix": _SKORCH_LABELS,
        "check_supervised_y_2d": _SKORCH_NO_VALIDATION,
        "check_requires_y_none": _SKORCH_NO_VALIDATION,
        "check_dtype_object": _SKORCH_LABELS,  # y holds 4 classes, the module 3
        "check_classifiers_regression_target": _SKORCH_LABELS,
        "check_classifiers_one_label": _SKORCH_LABELS,
        "check_classifiers_classes": _SKORCH_LABELS,
        "check_classifiers_train": _SKORCH_LABELS,
    },
}


def _instances():
    for name, cls in all_estimators():
        yield cls(**FAST_PARAMS.get(name, {}))


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


# MixupMLPClassifier runs a short fixed budget (10 epochs) in the checks; its
# ConvergenceWarning at max_iter is tested in test_neural_network.py.
@pytest.mark.filterwarnings(
    "ignore:Stochastic optimizer. maximum iterations:"
    "sklearn.exceptions.ConvergenceWarning"
)
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
