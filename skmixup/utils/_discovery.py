"""Discovery of every public skmixup estimator, for the common tests."""

import importlib
import inspect
import pkgutil

from sklearn.base import BaseEstimator


def all_estimators():
    """Return ``(name, class)`` for every public scikit-learn estimator in skmixup.

    Sub-packages that need an optional dependency which is not installed (the
    ``torch`` extra) are skipped. Classes defined in skmixup whose name has no
    leading underscore are returned (wherever they are defined, private modules
    included); abstract classes are left out. skorch nets such as
    :class:`~skmixup.neural_network.MixupNeuralNetClassifier` are ``BaseEstimator``
    subclasses and are included.

    Returns
    -------
    estimators : list of (str, type)
        Sorted by name.

    Examples
    --------
    >>> from skmixup.utils import all_estimators
    >>> "MixupLogisticRegression" in dict(all_estimators())
    True
    """
    import skmixup

    found = {}
    for info in pkgutil.walk_packages(skmixup.__path__, prefix="skmixup."):
        parts = info.name.split(".")
        if any(p in {"tests", "experiments", "__main__"} for p in parts):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # optional dependency missing
            continue
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                name.startswith("_")
                or not cls.__module__.startswith("skmixup.")
                or not issubclass(cls, BaseEstimator)
                or inspect.isabstract(cls)
            ):
                continue
            found[name] = cls
    return sorted(found.items())
