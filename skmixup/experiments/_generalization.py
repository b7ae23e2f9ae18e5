"""Experiment E2 (paper Fig. 1b): train-test gap against the Mixup parameter."""

from sklearn.metrics import accuracy_score, log_loss

from skmixup.experiments._common import (
    MLP_DEFAULTS,
    check_datasets,
    fixed_epoch_budget,
    linear_model,
    load_dataset,
    mean_rows,
    mixup_label,
    mlp_model,
    notify,
    stratified_splits,
    torch_available,
    torch_single_thread,
)

GAP_VALUES = (
    "train_accuracy",
    "test_accuracy",
    "accuracy_gap",
    "train_log_loss",
    "test_log_loss",
    "log_loss_gap",
)


def generalization_experiment(
    datasets=("digits", "breast_cancer", "wine", "moons"),
    *,
    mixups=(None, 0.2, 1.0, (5.0, 0.5)),
    models=("logistic", "mlp", "mlp_penalty"),
    mlp_params=None,
    C=1.0,
    n_splits=3,
    test_size=0.5,
    random_state=0,
    progress=None,
):
    """Train-test gaps of logistic models and MLPs for several Mixup settings.

    For each data set, split, model family and Mixup setting, a model is fitted in a
    ``StandardScaler`` pipeline and scored on its training and test sets. The gaps
    follow the paper: ``log_loss_gap`` is test cross-entropy minus the standard
    (un-mixed) training cross-entropy; ``accuracy_gap`` is train minus test
    accuracy. ``None`` in ``mixups`` is ERM: scikit-learn's ``LogisticRegression``
    (same ``C``) and the MLP with ``mixup_prob=0``. The MLP has no weight decay and
    trains for a fixed number of epochs, so that ERM can over-fit.

    Parameters
    ----------
    datasets : sequence of str, default=("digits", "breast_cancer", "wine", "moons")
        Data sets among those four.
    mixups : sequence, default=(None, 0.2, 1.0, (5.0, 0.5))
        Mixup settings: None (ERM), ``alpha`` (``Beta(alpha, alpha)``) or
        ``(alpha, beta)``.
    models : sequence of {"logistic", "mlp", "mlp_penalty"}, \
            default=("logistic", "mlp", "mlp_penalty")
        Model families; ``"mlp_penalty"`` is the MLP as a
        :class:`~skmixup.neural_network.MixupRegularizedMLPClassifier` (no ERM
        row: its ERM is the MLP's). The MLPs are skipped when PyTorch is not
        installed.
    mlp_params : dict, default=None
        ``hidden_layer_sizes`` and ``max_iter`` (epochs) of the MLP; None means
        two layers of 128 and 150 epochs.
    C : float, default=1.0
        Inverse ridge strength of the logistic models.
    n_splits : int, default=3
        Number of stratified train/test splits averaged.
    test_size : float, default=0.5
        Test fraction of each split.
    random_state : int, default=0
        Seeds the splits, the moons data and the models.
    progress : callable, default=None
        Called with a one-line message after each fit.

    Returns
    -------
    rows : list of dict
        One row per data set, model and Mixup setting, averaged over the splits:
        ``dataset``, ``model``, ``mixup`` (``"ERM"``, ``"1.0"``, ``"(5.0, 0.5)"``),
        ``train_accuracy``, ``test_accuracy``, ``accuracy_gap``,
        ``train_log_loss``, ``test_log_loss``, ``log_loss_gap``, each value with a
        ``_std`` companion over the splits, and ``n_splits``.

    Examples
    --------
    >>> from skmixup.experiments import generalization_experiment
    >>> rows = generalization_experiment(
    ...     ["wine"], mixups=(None, 1.0), models=("logistic",), n_splits=1
    ... )
    >>> [(row["model"], row["mixup"]) for row in rows]
    [('LogisticRegression', 'ERM'), ('MixupLogisticRegression(alpha=1.0)', '1.0')]
    """
    datasets = check_datasets(datasets)
    unknown = set(models) - {"logistic", "mlp", "mlp_penalty"}
    if unknown:
        raise ValueError(
            f"models must be among 'logistic', 'mlp', 'mlp_penalty'; got {unknown}."
        )
    if not torch_available():
        models = [m for m in models if m == "logistic"]
    mlp_params = {**MLP_DEFAULTS, **(mlp_params or {})}
    raw = []
    for name in datasets:
        X, y = load_dataset(name, random_state=random_state)
        splits = stratified_splits(
            y, n_splits=n_splits, test_size=test_size, random_state=random_state
        )
        for s, (train, test) in enumerate(splits):
            for family in models:
                for mixup in mixups:
                    if family == "logistic":
                        model_name, pipe = linear_model(
                            "mixup", mixup, C=C, random_state=random_state
                        )
                    elif family == "mlp_penalty" and mixup is None:
                        continue
                    else:
                        model_name, pipe = mlp_model(
                            mixup,
                            penalty=family == "mlp_penalty",
                            random_state=random_state,
                            **mlp_params,
                        )
                    with torch_single_thread(), fixed_epoch_budget():
                        pipe.fit(X[train], y[train])
                        row = _scores(pipe, X[train], y[train], X[test], y[test])
                    row.update(dataset=name, model=model_name, mixup=mixup_label(mixup))
                    raw.append(row)
                    notify(
                        progress,
                        f"generalization {name} split {s + 1}/{n_splits} "
                        f"{model_name}: log-loss gap {row['log_loss_gap']:+.3f}",
                    )
    return mean_rows(raw, ("dataset", "model", "mixup"), GAP_VALUES)


def _scores(pipe, X_train, y_train, X_test, y_test):
    labels = pipe.classes_
    train_ll = log_loss(y_train, pipe.predict_proba(X_train), labels=labels)
    test_ll = log_loss(y_test, pipe.predict_proba(X_test), labels=labels)
    train_acc = accuracy_score(y_train, pipe.predict(X_train))
    test_acc = accuracy_score(y_test, pipe.predict(X_test))
    return {
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "accuracy_gap": train_acc - test_acc,
        "train_log_loss": train_ll,
        "test_log_loss": test_ll,
        "log_loss_gap": test_ll - train_ll,
    }
