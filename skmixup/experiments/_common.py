"""Data, splits, Mixup settings and run-time helpers shared by the experiments.

A *Mixup setting* is ``None`` (ERM, no mixing), a float ``a`` (``Beta(a, a)``) or
a pair ``(a, b)`` (``Beta(a, b)``).
"""

import contextlib
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedShuffleSplit

DATASETS = ("digits", "breast_cancer", "wine", "moons")


def load_dataset(name, *, random_state=0):
    """Return ``X, y`` of one of :data:`DATASETS` (moons: 500 samples, noise 0.3)."""
    if name == "digits":
        return load_digits(return_X_y=True)
    if name == "breast_cancer":
        return load_breast_cancer(return_X_y=True)
    if name == "wine":
        return load_wine(return_X_y=True)
    if name == "moons":
        return make_moons(n_samples=500, noise=0.3, random_state=random_state)
    raise ValueError(f"Unknown dataset {name!r}; choose among {DATASETS}.")


def check_datasets(datasets):
    """Validate dataset names, keeping their order and dropping duplicates."""
    datasets = list(dict.fromkeys(datasets))
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown or not datasets:
        raise ValueError(f"datasets must be among {DATASETS}, got {datasets}.")
    return datasets


def stratified_splits(y, *, n_splits, test_size=0.5, random_state=0):
    """Indices ``(train, test)`` of ``n_splits`` seeded stratified splits."""
    sss = StratifiedShuffleSplit(
        n_splits=n_splits, test_size=test_size, random_state=random_state
    )
    return list(sss.split(np.zeros((len(y), 1)), y))


def mixup_label(mixup):
    """Short text of a Mixup setting: ``"ERM"``, ``"1.0"`` or ``"(5.0, 0.5)"``."""
    if mixup is None:
        return "ERM"
    alpha, beta = alpha_beta(mixup)
    return f"{alpha}" if beta is None else f"({alpha}, {beta})"


def alpha_beta(mixup):
    """``(alpha, beta)`` of a Mixup setting (``beta`` None: ``Beta(alpha, alpha)``)."""
    if isinstance(mixup, tuple):
        alpha, beta = mixup
        return float(alpha), (None if beta is None else float(beta))
    return float(mixup), None


def torch_available():
    """Whether the ``torch`` extra (PyTorch and skorch) can be imported."""
    try:
        import skmixup.neural_network  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def fixed_epoch_budget():
    """Silence the MLPs' ``ConvergenceWarning`` at ``max_iter``, and only that one.

    The networks of the experiments run exactly ``max_iter`` epochs by design (the
    paper's protocol), so reaching it is not a convergence failure.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="Stochastic optimizer: maximum iterations",
            category=ConvergenceWarning,
        )
        yield


def notify(progress, message):
    """Call ``progress(message)`` when a progress callback is given."""
    if progress is not None:
        progress(message)


def mean_rows(rows, keys, values, sums=()):
    """Average ``values`` over the rows sharing ``keys`` (first-seen order).

    Each output row also has ``n_splits`` (the number of rows averaged), for every
    value ``v``, ``v + "_std"`` (population standard deviation), and for every key
    in ``sums`` the element-wise sum of its arrays over the group.
    """
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, group in groups.items():
        row = dict(zip(keys, key, strict=True))
        for v in values:
            arr = np.array([g[v] for g in group], dtype=np.float64)
            row[v] = float(arr.mean())
            row[v + "_std"] = float(arr.std())
        for v in sums:
            row[v] = np.sum([g[v] for g in group], axis=0)
        row["n_splits"] = len(group)
        out.append(row)
    return out
