"""Experiment E1 (paper Fig. 1a): FGSM robust test accuracy against eps."""

from skmixup.experiments._common import (
    MLP_DEFAULTS,
    check_datasets,
    fixed_epoch_budget,
    linear_model,
    load_dataset,
    mean_rows,
    mlp_model,
    notify,
    stratified_splits,
    torch_available,
    torch_single_thread,
)
from skmixup.metrics import robust_accuracy_score


def robustness_experiment(
    datasets=("digits", "breast_cancer", "wine", "moons"),
    *,
    eps=(0.0, 0.05, 0.1, 0.2),
    mixup=(5.0, 0.5),
    mlp=True,
    mlp_params=None,
    C=1.0,
    n_splits=3,
    test_size=0.5,
    random_state=0,
    progress=None,
):
    """FGSM robust test accuracy of ERM and Mixup models as a function of eps.

    On each data set and each of ``n_splits`` stratified splits, six models are
    fitted in a ``StandardScaler`` pipeline: scikit-learn's ``LogisticRegression``
    (ERM), :class:`~skmixup.linear_model.MixupLogisticRegression` and
    :class:`~skmixup.linear_model.MixupRegularizedLogisticRegression` (same ``C``),
    a :class:`~skmixup.neural_network.MixupMLPClassifier` without weight decay
    trained with ``mixup_prob=0`` (ERM) and with Mixup, and the same network as a
    :class:`~skmixup.neural_network.MixupRegularizedMLPClassifier` (penalty).
    Each is attacked with :func:`~skmixup.metrics.fgsm` (l_inf) on the raw test
    inputs, through the pipeline, with ``feature_scale`` the scaler's ``scale_``
    (the training standard deviation): ``eps`` is in standardized units, exactly
    as if the scaled inputs were attacked. No clipping to the feature range.

    Parameters
    ----------
    datasets : sequence of str, default=("digits", "breast_cancer", "wine", "moons")
        Data sets among those four.
    eps : sequence of float, default=(0.0, 0.05, 0.1, 0.2)
        Attack radii, in training standard deviations.
    mixup : float or tuple of (float, float), default=(5.0, 0.5)
        Mixup law ``Beta(alpha, alpha)`` or ``Beta(alpha, beta)`` of every Mixup
        model; ``(5.0, 0.5)`` is the setting of the paper's Fig. 1a.
    mlp : bool, default=True
        Include the three MLP rows (skipped when PyTorch is not installed).
    mlp_params : dict, default=None
        ``hidden_layer_sizes`` and ``max_iter`` (epochs) of the MLP; None means
        two layers of 128 and 150 epochs.
    C : float, default=1.0
        Inverse ridge strength of the three logistic models.
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
        One row per data set, model and eps, averaged over the splits:
        ``dataset``, ``model``, ``eps``, ``robust_accuracy``,
        ``robust_accuracy_std`` and ``n_splits``.

    Examples
    --------
    >>> from skmixup.experiments import robustness_experiment
    >>> rows = robustness_experiment(["moons"], eps=(0.0, 0.1), mlp=False, n_splits=1)
    >>> sorted({row["model"] for row in rows})[:2]
    ['LogisticRegression', 'MixupLogisticRegression(alpha=5.0, beta=0.5)']
    >>> rows[0]["robust_accuracy"] >= rows[1]["robust_accuracy"]
    True
    """
    datasets = check_datasets(datasets)
    mlp = mlp and torch_available()
    mlp_params = {**MLP_DEFAULTS, **(mlp_params or {})}
    raw = []
    for name in datasets:
        X, y = load_dataset(name, random_state=random_state)
        splits = stratified_splits(
            y, n_splits=n_splits, test_size=test_size, random_state=random_state
        )
        for s, (train, test) in enumerate(splits):
            models = [
                linear_model("mixup", None, C=C),
                linear_model("mixup", mixup, C=C, random_state=random_state),
                linear_model("regularized", mixup, C=C),
            ]
            if mlp:
                models += [
                    mlp_model(m, random_state=random_state, **mlp_params)
                    for m in (None, mixup)
                ]
                models.append(
                    mlp_model(
                        mixup, penalty=True, random_state=random_state, **mlp_params
                    )
                )
            for model_name, pipe in models:
                with torch_single_thread(), fixed_epoch_budget():
                    pipe.fit(X[train], y[train])
                    accs = _robust_curve(pipe, X[test], y[test], eps)
                raw += [
                    {"dataset": name, "model": model_name, "eps": e, "acc": a}
                    for e, a in zip(eps, accs, strict=True)
                ]
                notify(
                    progress,
                    f"robustness {name} split {s + 1}/{n_splits} {model_name}: "
                    + " ".join(f"{a:.3f}" for a in accs),
                )
    rows = mean_rows(raw, ("dataset", "model", "eps"), ("acc",))
    for row in rows:
        row["robust_accuracy"] = row.pop("acc")
        row["robust_accuracy_std"] = row.pop("acc_std")
    return rows


def _robust_curve(pipe, X, y, eps):
    scale = pipe[0].scale_
    return [robust_accuracy_score(pipe, X, y, eps=e, feature_scale=scale) for e in eps]
