"""numpydoc validation of the public API (imbalanced-learn / skglm pattern)."""

import importlib
import inspect

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

MODULES = [
    "skmixup.linear_model",
    "skmixup.compose",
    "skmixup.metrics",
    "skmixup.theory",
    "skmixup.neural_network",
    "skmixup.utils",
    "skmixup.experiments",
]
METHODS = [
    "fit",
    "partial_fit",
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "mixup_loss",
    "from_estimator",
    "plot",
]
# Every parameter and return documented, in order, with a description.
ALWAYS = {"GL08", "PR01", "PR02", "PR03", "PR07", "RT01", "RT03"}
# Public classes and functions also carry a runnable Examples section.
TOP_LEVEL = ALWAYS | {"EX01"}


def _targets():
    for module_name in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # optional extra missing
            continue
        for name in module.__all__:
            obj = getattr(module, name)
            if not getattr(obj, "__module__", "").startswith("skmixup"):
                continue
            if inspect.isclass(obj) and issubclass(obj, tuple):  # named results
                continue
            if inspect.isclass(obj) and issubclass(obj, Warning):
                yield f"{module_name}.{name}", {"GL08"}
                continue
            yield f"{module_name}.{name}", TOP_LEVEL
            if inspect.isclass(obj):
                for method in METHODS:
                    func = getattr(obj, method, None)
                    if func is not None and func.__module__.startswith("skmixup"):
                        yield f"{module_name}.{name}.{method}", ALWAYS


_TARGETS = list(_targets())


@pytest.mark.parametrize("target, codes", _TARGETS, ids=[t for t, _ in _TARGETS])
def test_docstring(target, codes):
    result = numpydoc_validate.validate(target)
    errors = [f"{code}: {msg}" for code, msg in result["errors"] if code in codes]
    assert not errors, "\n".join(errors)
