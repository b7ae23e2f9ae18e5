"""Data, splits and model factories shared by the experiments.

Every model is a ``StandardScaler`` pipeline. A *Mixup setting* is ``None`` (ERM,
no mixing), a float ``a`` (``Beta(a, a)``) or a pair ``(a, b)`` (``Beta(a, b)``).
"""

import contextlib
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixup.linear_model import (
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
)

DATASETS = ("digits", "breast_cancer", "wine", "moons")

# The MLP of paper-notes section 7: two ReLU layers, Adam 1e-3, no weight decay.
MLP_DEFAULTS = {"hidden_layer_sizes": (128, 128), "max_iter": 150}


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
    alpha, beta = _alpha_beta(mixup)
    return f"{alpha}" if beta is None else f"({alpha}, {beta})"


def _alpha_beta(mixup):
    if isinstance(mixup, tuple):
        alpha, beta = mixup
        return float(alpha), (None if beta is None else float(beta))
    return float(mixup), None


def linear_model(kind, mixup, *, C=1.0, random_state=0):
    """``(name, pipeline)`` of a logistic model.

    ``kind`` is ``"mixup"`` (:class:`MixupLogisticRegression`, or scikit-learn's
    ``LogisticRegression`` when ``mixup`` is None) or ``"regularized"``
    (:class:`MixupRegularizedLogisticRegression`).
    """
    if mixup is None:
        est = LogisticRegression(C=C, max_iter=1000)
        return "LogisticRegression", make_pipeline(StandardScaler(), est)
    alpha, beta = _alpha_beta(mixup)
    params = f"alpha={alpha}" + ("" if beta is None else f", beta={beta}")
    if kind == "regularized":
        est = MixupRegularizedLogisticRegression(
            mixup_alpha=alpha, mixup_beta=beta, C=C
        )
        name = f"MixupRegularizedLogisticRegression({params})"
    else:
        est = MixupLogisticRegression(
            mixup_alpha=alpha, mixup_beta=beta, C=C, random_state=random_state
        )
        name = f"MixupLogisticRegression({params})"
    return name, make_pipeline(StandardScaler(), est)


def mlp_model(mixup, *, hidden_layer_sizes, max_iter, random_state=0, penalty=False):
    """``(name, pipeline)`` of a :class:`MixupMLPClassifier` (ERM: ``mixup_prob=0``).

    No weight decay (``alpha=0``), Adam 1e-3, batches of 200, CPU, and exactly
    ``max_iter`` epochs (``tol=0`` with a patience of ``max_iter``). With
    ``penalty=True`` (and a Mixup setting) the same network is a
    :class:`MixupRegularizedMLPClassifier` (explicit ``R1 + R2 + R3``).
    """
    from skmixup.neural_network import (
        MixupMLPClassifier,
        MixupRegularizedMLPClassifier,
    )

    params = {
        "hidden_layer_sizes": hidden_layer_sizes,
        "alpha": 0.0,
        "max_iter": max_iter,
        "tol": 0.0,
        "n_iter_no_change": max_iter,
        "device": "cpu",
        "random_state": random_state,
    }
    if mixup is None:
        est = MixupMLPClassifier(mixup_prob=0.0, **params)
        return "MLP ERM (mixup_prob=0)", make_pipeline(StandardScaler(), est)
    alpha, beta = _alpha_beta(mixup)
    cls = MixupRegularizedMLPClassifier if penalty else MixupMLPClassifier
    est = cls(mixup_alpha=alpha, mixup_beta=beta, **params)
    text = f"alpha={alpha}" + ("" if beta is None else f", beta={beta}")
    return f"{cls.__name__}({text})", make_pipeline(StandardScaler(), est)


def torch_available():
    """Whether the ``torch`` extra (PyTorch and skorch) can be imported."""
    try:
        import skmixup.neural_network  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def torch_single_thread():
    """Run torch on one thread, then restore the previous setting.

    The networks and batches here are tiny: on a 2-core machine shared with other
    work, torch's default intra-op threads made a fit 5-10 times slower.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - MLP rows are skipped without torch
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def fixed_epoch_budget():
    """Silence the MLPs' ``ConvergenceWarning`` at ``max_iter``, and only that one.

    The networks of :func:`mlp_model` run exactly ``max_iter`` epochs by design
    (the paper's protocol), so reaching it is not a convergence failure.
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


def mean_rows(rows, keys, values):
    """Average ``values`` over the rows sharing ``keys`` (first-seen order).

    Each output row also has ``n_splits`` (the number of rows averaged) and, for
    every value ``v``, ``v + "_std"`` (population standard deviation).
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
        row["n_splits"] = len(group)
        out.append(row)
    return out
