"""Data, splits, Mixup settings and run-time helpers shared by the experiments.

A *Mixup setting* is ``None`` (ERM, no mixing), a float ``a`` (``Beta(a, a)``) or
a pair ``(a, b)`` (``Beta(a, b)``).
"""

import contextlib
import dataclasses
import warnings
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedShuffleSplit

DATASETS = ("digits", "breast_cancer", "wine", "moons")


@dataclasses.dataclass(frozen=True, eq=False)
class Table:
    """A user's table as a data set of the experiments (``reproduce --data``).

    ``X`` is a DataFrame of the feature columns, ``y`` the target as an array;
    ``numeric`` names the columns that are imputed and scaled, ``categorical`` those
    that are one-hot encoded (see :func:`table_preprocessor`).
    """

    name: str
    X: Any
    y: Any
    numeric: tuple
    categorical: tuple


def dataset_name(dataset):
    """The name of a data set: itself, or a :class:`Table`'s name."""
    return dataset.name if isinstance(dataset, Table) else dataset


def load_dataset(name, *, random_state=0):
    """Return ``X, y`` of one of :data:`DATASETS` (moons: 500 samples, noise 0.3)
    or of a :class:`Table`."""
    if isinstance(name, Table):
        return name.X, name.y
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
    """Validate dataset names (or :class:`Table` objects), keeping their order and
    dropping duplicates."""
    if isinstance(datasets, (str, Table)):
        datasets = [datasets]
    datasets = list({dataset_name(d): d for d in datasets}.values())
    unknown = [d for d in datasets if not isinstance(d, Table) and d not in DATASETS]
    if unknown or not datasets:
        raise ValueError(f"datasets must be among {DATASETS}, got {datasets}.")
    return datasets


def table_preprocessor(numeric, categorical):
    """The standard ColumnTransformer of a user's table: the ``numeric`` columns
    mean-imputed and standardized, the ``categorical`` ones imputed with their most
    frequent value and one-hot encoded (categories unseen in training: all zeros)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    encode = make_pipeline(
        SimpleImputer(strategy="most_frequent"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    return ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(SimpleImputer(), StandardScaler()),
                list(numeric),
            ),
            ("categorical", encode, list(categorical)),
        ]
    )


def feature_scale(pipe, X_train):
    """The per-feature unit of eps: the training standard deviation.

    With a ``StandardScaler`` first, its ``scale_``; with the table preprocessor,
    the standard deviation (missing entries left out) of each numeric training
    column, by name (the one-hot columns do not move).
    """
    first = pipe[0]
    if hasattr(first, "scale_"):
        return first.scale_
    numeric = first.transformers[0][2]
    return {
        c: float(np.nanstd(np.asarray(X_train[c], dtype=np.float64))) for c in numeric
    }


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


def number(value, spec=".3f"):
    """``format(value, spec)`` without a negative zero (``-0.000`` is ``0.000``,
    ``+0.00%`` stays signed as ``+0.00%``).

    >>> number(-0.00004), number(-0.00004, "+.3f"), number(-0.00001, "+.2%")
    ('0.000', '+0.000', '+0.00%')
    """
    text = format(value, spec)
    if text.startswith("-") and not any(ch in "123456789" for ch in text):
        text = ("+" if "+" in spec else "") + text[1:]
    return text


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
