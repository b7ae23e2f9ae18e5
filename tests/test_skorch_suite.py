"""skorch's own tests of NeuralNetClassifier, run against MixupNeuralNetClassifier.

skorch's wheel ships its test suite (``skorch.tests``). The test classes below
inherit skorch's classifier tests and swap the net class, once with
``mixup_prob=0.0`` (no batch is mixed: the net must then behave as skorch's
``NeuralNetClassifier``) and once with the default ``mixup_prob=1.0``. The net
class takes skorch's classifier defaults (``NLLLoss`` on the probabilities that
skorch's test modules return), so that only Mixup differs.

Each remaining difference is listed in ``EXPECTED_DIFFERENCES`` with its reason,
as ``tests/test_common.py`` does for scikit-learn's checks; the tests are then
strict xfails, so an entry must go once its test passes.
"""

import functools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")
skorch_classifier_tests = pytest.importorskip("skorch.tests.test_classifier")
skorch_net_tests = pytest.importorskip("skorch.tests.test_net")

from skorch.tests.conftest import (  # noqa: E402, F401 (skorch's fixtures)
    classifier_data,
    classifier_module,
    seeds_fixed,
)

from skmixup.neural_network import MixupNeuralNetClassifier  # noqa: E402

pytestmark = [
    # skorch's tests train a few epochs with lr=0.1: warnings that its own CI
    # tolerates are not ours to turn into errors here
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def _net_class(mixup_prob):
    class Net(MixupNeuralNetClassifier):
        """MixupNeuralNetClassifier with skorch's classifier defaults."""

        def __init__(
            self, module, *args, criterion=torch.nn.NLLLoss, mixup_prob=mixup_prob,
            **kwargs,
        ):
            super().__init__(
                module, *args, criterion=criterion, mixup_prob=mixup_prob, **kwargs
            )

    # skorch's tests expect messages naming the class "NeuralNetClassifier"
    Net.__name__ = Net.__qualname__ = "NeuralNetClassifier"
    return Net


# test name -> reason; separate tables for the two settings
EXPECTED_DIFFERENCES = {
    "no_mixing": {},
    "default": {},
    "net": {},
}


def _with_expected_differences(cls, table):
    for name, reason in table.items():
        func = getattr(cls, name)

        @functools.wraps(func)
        def expected(*args, __func=func, **kwargs):
            return __func(*args, **kwargs)

        setattr(cls, name, pytest.mark.xfail(reason=reason, strict=True)(expected))
    return cls


@functools.partial(
    _with_expected_differences, table=EXPECTED_DIFFERENCES["no_mixing"]
)
class TestClassifierNoMixing(skorch_classifier_tests.TestNeuralNet):
    @pytest.fixture(scope="module")
    def net_cls(self):
        return _net_class(0.0)


@functools.partial(_with_expected_differences, table=EXPECTED_DIFFERENCES["default"])
class TestClassifierDefault(skorch_classifier_tests.TestNeuralNet):
    @pytest.fixture(scope="module")
    def net_cls(self):
        return _net_class(1.0)


@functools.partial(_with_expected_differences, table=EXPECTED_DIFFERENCES["net"])
class TestNetNoMixing(skorch_net_tests.TestNeuralNet):
    @pytest.fixture(scope="module")
    def net_cls(self):
        return _net_class(0.0)
