"""Experiment E1 (paper Fig. 1a): FGSM robust test accuracy against eps.

Beside the attack's accuracy (an upper bound of the true robust accuracy), each
row has the certified accuracy (a lower bound, :func:`~skmixup.metrics.
certified_accuracy_score` with CROWN; exact for the linear models) and the width of
the band between the two, where the truth lies.
"""

from skmixup.experiments._common import (
    DATASETS,
    feature_scale,
    mean_rows,
    torch_available,
)
from skmixup.experiments._loop import run_splits
from skmixup.experiments._models import C_DEFAULT, check_models
from skmixup.metrics import certified_accuracy_score, robust_accuracy_score

# (model kind, Mixup or ERM) of every curve; "mixup" is the experiment's setting.
CURVES = (
    ("logistic", None),
    ("logistic", "mixup"),
    ("regularized", "mixup"),
    ("mlp", None),
    ("mlp", "mixup"),
    ("mlp_penalty", "mixup"),
)


def robustness_experiment(
    datasets=DATASETS,
    *,
    eps=(0.0, 0.05, 0.1, 0.2),
    mixup=(5.0, 0.5),
    mlp=True,
    mlp_params=None,
    C=C_DEFAULT,
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
    Each is attacked with
    :func:`~skmixup.metrics.fgsm` (l_inf) on the raw test inputs, through the
    pipeline, with ``feature_scale`` the scaler's ``scale_`` (the training standard
    deviation): ``eps`` is in standardized units, exactly as if the scaled inputs
    were attacked. No clipping to the feature range. Each model is also
    certified on the test split, with the same threat model
    (:func:`~skmixup.metrics.certified_accuracy_score`, CROWN; closed form for
    the linear models).

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
        ``robust_accuracy_std``, ``certified_accuracy``,
        ``certified_accuracy_std``, ``band`` (``robust_accuracy -
        certified_accuracy``, the mean of the splits' bands) and ``n_splits``.

    Examples
    --------
    >>> from skmixup.experiments import robustness_experiment
    >>> rows = robustness_experiment(["moons"], eps=(0.0, 0.1), mlp=False, n_splits=1)
    >>> sorted({row["model"] for row in rows})[:2]
    ['LogisticRegression', 'MixupLogisticRegression(alpha=5.0, beta=0.5)']
    >>> rows[0]["robust_accuracy"] >= rows[1]["robust_accuracy"]
    True
    >>> all(r["certified_accuracy"] <= r["robust_accuracy"] for r in rows)
    True
    """
    kinds = check_models(
        [k for k, _ in CURVES if mlp or not k.startswith("mlp")],
        torch_ok=torch_available(),
    )
    config = {"C": C, "mlp_params": mlp_params, "random_state": random_state}

    def score(pipe, X_train, y_train, X_test, y_test):
        accs = _robust_curve(pipe, X_train, X_test, y_test, eps)
        certified = _certified_curve(pipe, X_train, X_test, y_test, eps)
        rows = [
            {"eps": e, "acc": a, "cert": c, "band": a - c}
            for e, a, c in zip(eps, accs, certified, strict=True)
        ]
        rows[0]["progress"] = ", ".join(
            f"eps {e:g}: {a:.3f}" for e, a in zip(eps, accs, strict=True)
        )
        return rows

    models = [(k, mixup if m else None) for k, m in CURVES if k in kinds]
    split = {"n_splits": n_splits, "test_size": test_size, "progress": progress}
    raw = run_splits(datasets, models, config, score, **split)
    rows = mean_rows(raw, ("dataset", "model", "eps"), ("acc", "cert", "band"))
    for row in rows:
        row["robust_accuracy"] = row.pop("acc")
        row["robust_accuracy_std"] = row.pop("acc_std")
        row["certified_accuracy"] = row.pop("cert")
        row["certified_accuracy_std"] = row.pop("cert_std")
        del row["band_std"]
    return rows


def _robust_curve(pipe, X_train, X, y, eps):
    scale = feature_scale(pipe, X_train)
    return [robust_accuracy_score(pipe, X, y, eps=e, feature_scale=scale) for e in eps]


def _certified_curve(pipe, X_train, X, y, eps):
    """Certified accuracy at each eps; at eps=0 the ball is the sample itself."""
    scale = feature_scale(pipe, X_train)
    return [
        certified_accuracy_score(pipe, X, y, eps=e, feature_scale=scale)
        if e > 0
        else pipe.score(X, y)
        for e in eps
    ]
