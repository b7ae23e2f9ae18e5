"""Mixup beyond the paper's models: regression (ERM vs Mixup vs C-Mixup) and a
gradient-boosted classifier wrapped in MixupClassifier.

Its own experiment with its own tables, summary and protocol lines: two sections
of the report's registry (``_report.SECTIONS``) use :func:`regression_table`,
:func:`boosting_table`, :func:`compose_summary` and :func:`compose_protocol`.
"""

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error
from sklearn.model_selection import ShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixup.compose import MixupClassifier, MixupRegressor
from skmixup.experiments._common import (
    fixed_epoch_budget,
    load_dataset,
    mean_rows,
    notify,
    stratified_splits,
    torch_available,
)
from skmixup.experiments._demo import format_table
from skmixup.utils._threads import torch_single_thread

REGRESSION_DATASETS = ("diabetes", "friedman1")
METHODS = ("ERM", "Mixup", "C-Mixup")
REGRESSION_VALUES = ("train_mse", "test_mse", "mse_gap")
CLASSIFICATION_VALUES = (
    "train_log_loss",
    "test_log_loss",
    "log_loss_gap",
    "test_accuracy",
)
REGRESSION_COLUMNS = ["dataset", "model", "method", *REGRESSION_VALUES, "test_mse_std"]
CLASSIFICATION_COLUMNS = ["dataset", "model", "method", *CLASSIFICATION_VALUES]


def load_regression(name, *, random_state=0):
    """``X, y`` of ``"diabetes"`` (442 rows) or ``"friedman1"`` (500 rows, noise 1)."""
    if name == "diabetes":
        return load_diabetes(return_X_y=True)
    if name == "friedman1":
        return make_friedman1(500, noise=1.0, random_state=random_state)
    raise ValueError(
        f"Unknown regression dataset {name!r}; choose among {REGRESSION_DATASETS}."
    )


def compose_experiment(
    *,
    regression_datasets=REGRESSION_DATASETS,
    classification_datasets=("breast_cancer", "wine"),
    mixup_alpha=1.0,
    n_mixed=4,
    hgb_params=None,
    mlp_params=None,
    n_splits=3,
    test_size=0.5,
    random_state=0,
    progress=None,
):
    """Test error and train-test gap of ERM, Mixup and C-Mixup beyond the paper.

    Regression (``regression_datasets``): a ``HistGradientBoostingRegressor``
    plain (ERM), in :class:`~skmixup.compose.MixupRegressor` with uniform partners
    (Mixup) and with label-kernel partners (C-Mixup), and a
    :class:`~skmixup.neural_network.MixupMLPRegressor` with ``mixup_prob=0``
    (ERM), uniform and label-kernel partners, each behind a ``StandardScaler``
    (the MLP's target standardised too, by a ``TransformedTargetRegressor``).
    Classification (``classification_datasets``): a
    ``HistGradientBoostingClassifier`` plain and in
    :class:`~skmixup.compose.MixupClassifier`. Scores: mean squared error (in the
    target's units) and ``mse_gap = test - train``; log-loss, its gap and
    accuracy.

    Returns
    -------
    rows : list of dict
        Averaged over the splits, with ``task`` ("regression" or
        "classification"), ``dataset``, ``model``, ``method``, the scores and
        their ``_std``, and ``n_splits``.

    Examples
    --------
    >>> from skmixup.experiments._compose import compose_experiment
    >>> rows = compose_experiment(regression_datasets=("diabetes",),
    ...     classification_datasets=(), n_splits=1, mlp_params={"max_iter": 2},
    ...     hgb_params={"max_iter": 5})
    >>> [(r["model"][:4], r["method"]) for r in rows][:3]
    [('Hist', 'ERM'), ('Hist', 'Mixup'), ('Hist', 'C-Mixup')]
    """
    config = {
        "mixup_alpha": mixup_alpha,
        "n_mixed": n_mixed,
        "hgb": {"max_iter": 100, **(hgb_params or {}), "random_state": random_state},
        "mlp": {
            "hidden_layer_sizes": (64, 64),
            "max_iter": 200,
            "learning_rate_init": 3e-3,
            "batch_size": 64,
            **(mlp_params or {}),
        },
        "random_state": random_state,
    }
    families = ["hgb"] + (["mlp"] if torch_available() else [])
    raw = []
    for name in regression_datasets:
        X, y = load_regression(name, random_state=random_state)
        splits = ShuffleSplit(n_splits, test_size=test_size, random_state=random_state)
        for s, (train, test) in enumerate(splits.split(X)):
            for family in families:
                for method in METHODS:
                    model, est = _regressor(family, method, config)
                    with torch_single_thread(), fixed_epoch_budget():
                        est.fit(X[train], y[train])
                    row = _regression_scores(est, X[train], y[train], X[test], y[test])
                    row.update(
                        task="regression",
                        dataset=name,
                        split=s,
                        model=model,
                        method=method,
                    )
                    raw.append(row)
                    notify(
                        progress,
                        f"compose {name} split {s + 1}/{n_splits} "
                        f"{model} {method}: test MSE {row['test_mse']:.4g}",
                    )
    for name in classification_datasets:
        X, y = load_dataset(name, random_state=random_state)
        splits = stratified_splits(
            y, n_splits=n_splits, test_size=test_size, random_state=random_state
        )
        for s, (train, test) in enumerate(splits):
            for method in METHODS[:2]:
                est = HistGradientBoostingClassifier(**config["hgb"])
                if method == "Mixup":
                    est = MixupClassifier(
                        est,
                        mixup_alpha=mixup_alpha,
                        n_mixed=n_mixed,
                        random_state=random_state,
                    )
                est.fit(X[train], y[train])
                row = _classification_scores(est, X[train], y[train], X[test], y[test])
                row.update(
                    task="classification",
                    dataset=name,
                    split=s,
                    model="HistGradientBoostingClassifier",
                    method=method,
                )
                raw.append(row)
                notify(
                    progress,
                    f"compose {name} split {s + 1}/{n_splits} HGB "
                    f"{method}: test log-loss {row['test_log_loss']:.4f}",
                )
    keys = ("task", "dataset", "model", "method")
    reg = mean_rows(
        [r for r in raw if r["task"] == "regression"], keys, REGRESSION_VALUES
    )
    clf = mean_rows(
        [r for r in raw if r["task"] == "classification"], keys, CLASSIFICATION_VALUES
    )
    return reg + clf


def _regressor(family, method, config):
    seed = config["random_state"]
    if family == "hgb":
        est = HistGradientBoostingRegressor(**config["hgb"])
        if method != "ERM":
            partners = "uniform" if method == "Mixup" else "label_kernel"
            est = MixupRegressor(
                est,
                mixup_alpha=config["mixup_alpha"],
                n_mixed=config["n_mixed"],
                partners=partners,
                random_state=seed,
            )
        return "HistGradientBoostingRegressor", est
    from skmixup.neural_network import MixupMLPRegressor

    mlp = MixupMLPRegressor(
        **config["mlp"],
        mixup_alpha=config["mixup_alpha"],
        mixup_prob=0.0 if method == "ERM" else 1.0,
        partners="label_kernel" if method == "C-Mixup" else "uniform",
        alpha=0.0,
        device="cpu",
        random_state=seed,
    )
    est = make_pipeline(
        StandardScaler(),
        TransformedTargetRegressor(regressor=mlp, transformer=StandardScaler()),
    )
    return "MixupMLPRegressor", est


def _regression_scores(est, X_train, y_train, X_test, y_test):
    train = mean_squared_error(y_train, est.predict(X_train))
    test = mean_squared_error(y_test, est.predict(X_test))
    return {"train_mse": train, "test_mse": test, "mse_gap": test - train}


def _classification_scores(est, X_train, y_train, X_test, y_test):
    labels = est.classes_
    train = log_loss(y_train, est.predict_proba(X_train), labels=labels)
    proba = est.predict_proba(X_test)
    test = log_loss(y_test, proba, labels=labels)
    acc = accuracy_score(y_test, labels[np.argmax(proba, axis=1)])
    return {
        "train_log_loss": train,
        "test_log_loss": test,
        "log_loss_gap": test - train,
        "test_accuracy": acc,
    }


def regression_table(rows):
    """Markdown table of the regression rows."""
    reg = [r for r in rows if r["task"] == "regression"]
    return format_table(reg, REGRESSION_COLUMNS) if reg else "(no regression rows)"


def boosting_table(rows):
    """Markdown table of the wrapped gradient-boosting classifier's rows."""
    clf = [r for r in rows if r["task"] == "classification"]
    return format_table(clf, CLASSIFICATION_COLUMNS) if clf else "(no rows)"


def compose_summary(rows):
    """Sentences stating what the rows show: which method has the lowest test
    error per data set and model, and whether Mixup narrowed the gap."""
    lines = []
    groups = {}
    for r in rows:
        groups.setdefault((r["task"], r["dataset"], r["model"]), []).append(r)
    for (task, dataset, model), group in groups.items():
        score = "test_mse" if task == "regression" else "test_log_loss"
        gap = "mse_gap" if task == "regression" else "log_loss_gap"
        best = min(group, key=lambda r: r[score])
        erm = next(r for r in group if r["method"] == "ERM")
        parts = ", ".join(f"{r['method']} {r[score]:.4g}" for r in group)
        narrower = [
            r["method"]
            for r in group
            if r["method"] != "ERM" and abs(r[gap]) < abs(erm[gap])
        ]
        lines.append(
            f"{dataset}, {model}: lowest {score.replace('_', ' ')} with "
            f"{best['method']} ({parts}); train-test gap narrower than ERM's with "
            f"{', '.join(narrower) if narrower else 'none'}."
        )
    return lines


def compose_protocol(settings):
    """Protocol lines of the experiment from the keyword arguments it was given."""
    kw = {
        "n_splits": 3,
        "test_size": 0.5,
        "mixup_alpha": 1.0,
        "n_mixed": 4,
        "random_state": 0,
        **(settings or {}),
    }
    return [
        f"Regression and boosting: {kw['n_splits']} seeded train/test split(s) per "
        f"data set (test fraction {kw['test_size']}, random_state="
        f"{kw['random_state']}); Mixup Beta({kw['mixup_alpha']}, "
        f"{kw['mixup_alpha']}); the wrappers fit {kw['n_mixed']} mixed rows per "
        "training row; C-Mixup draws partners by a Gaussian kernel of the label "
        "distance with Silverman's bandwidth; the MLP (two layers of 64, Adam, no "
        "weight decay) has standardised inputs and targets, ERM is mixup_prob=0."
    ]
