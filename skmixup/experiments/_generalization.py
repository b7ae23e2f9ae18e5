"""Experiment E2 (paper Fig. 1b): train-test gaps and calibration against Mixup."""

from sklearn.metrics import accuracy_score, log_loss

from skmixup.experiments._common import (
    DATASETS,
    mean_rows,
    torch_available,
)
from skmixup.experiments._loop import run_splits
from skmixup.experiments._models import C_DEFAULT, check_models
from skmixup.metrics import expected_calibration_error
from skmixup.metrics._calibration import calibration_bins

GAP_VALUES = (
    "train_accuracy",
    "test_accuracy",
    "accuracy_gap",
    "train_log_loss",
    "test_log_loss",
    "log_loss_gap",
    "ece",
)
BINS = ("bin_count", "bin_confidence", "bin_correct")


def generalization_experiment(
    datasets=DATASETS,
    *,
    mixups=(None, 0.2, 1.0, (5.0, 0.5)),
    models=("logistic", "mlp", "mlp_penalty"),
    mlp_params=None,
    C=C_DEFAULT,
    n_bins=10,
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
    accuracy. Calibration on the test set: ``ece`` is the expected calibration
    error of the top-label confidence over ``n_bins`` equal-width bins, and the
    bins (summed over the splits) give a reliability diagram. ``None`` in
    ``mixups`` is ERM: scikit-learn's ``LogisticRegression``
    (same ``C``) and the MLP with ``mixup_prob=0``. The MLP has no weight decay and
    trains for a fixed number of epochs, so that ERM can over-fit.

    Parameters
    ----------
    datasets : sequence of str, default=("digits", "breast_cancer", "wine", "moons")
        Data sets among those four.
    mixups : sequence, default=(None, 0.2, 1.0, (5.0, 0.5))
        Mixup settings: None (ERM), ``alpha`` (``Beta(alpha, alpha)``) or
        ``(alpha, beta)``.
    models : sequence of str, default=("logistic", "mlp", "mlp_penalty")
        Model kinds among those of ``skmixup.experiments._models.MODELS``
        (``"logistic"``, ``"regularized"``, ``"mlp"``, ``"mlp_penalty"``: the MLP
        as a :class:`~skmixup.neural_network.MixupRegularizedMLPClassifier`, with
        no ERM row of its own, its ERM being the MLP's); those that need PyTorch
        are skipped when it is not installed.
    mlp_params : dict, default=None
        ``hidden_layer_sizes`` and ``max_iter`` (epochs) of the MLP; None means
        two layers of 128 and 150 epochs.
    C : float, default=1.0
        Inverse ridge strength of the logistic models.
    n_bins : int, default=10
        Number of confidence bins of the calibration error.
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
        ``train_log_loss``, ``test_log_loss``, ``log_loss_gap``, ``ece``, each
        value with a ``_std`` companion over the splits, ``n_splits``, and the
        reliability bins ``bin_count``, ``bin_confidence`` and ``bin_correct``
        (arrays of per-bin sums over the splits).

    Examples
    --------
    >>> from skmixup.experiments import generalization_experiment
    >>> rows = generalization_experiment(
    ...     ["wine"], mixups=(None, 1.0), models=("logistic",), n_splits=1
    ... )
    >>> [(row["model"], row["mixup"]) for row in rows]
    [('LogisticRegression', 'ERM'), ('MixupLogisticRegression(alpha=1.0)', '1.0')]
    """
    kinds = check_models(models, torch_ok=torch_available())
    config = {"C": C, "mlp_params": mlp_params, "random_state": random_state}

    def score(pipe, X_train, y_train, X_test, y_test):
        row = _scores(pipe, X_train, y_train, X_test, y_test, n_bins)
        row["progress"] = f"log-loss gap {row['log_loss_gap']:+.3f}"
        return [row]

    # the penalty MLP has no ERM row of its own: its ERM is the MLP's
    models = [
        (kind, mixup)
        for kind in kinds
        for mixup in mixups
        if not (kind == "mlp_penalty" and mixup is None)
    ]
    split = {"n_splits": n_splits, "test_size": test_size, "progress": progress}
    raw = run_splits(datasets, models, config, score, **split)
    return mean_rows(raw, ("dataset", "model", "mixup"), GAP_VALUES, sums=BINS)


def _scores(pipe, X_train, y_train, X_test, y_test, n_bins):
    labels = pipe.classes_
    train_ll = log_loss(y_train, pipe.predict_proba(X_train), labels=labels)
    test_proba = pipe.predict_proba(X_test)
    test_ll = log_loss(y_test, test_proba, labels=labels)
    bins = calibration_bins(y_test, test_proba, n_bins=n_bins, labels=labels)
    bins = {name: bins[name] for name in BINS}
    train_acc = accuracy_score(y_train, pipe.predict(X_train))
    test_acc = accuracy_score(y_test, pipe.predict(X_test))
    return {
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "accuracy_gap": train_acc - test_acc,
        "train_log_loss": train_ll,
        "test_log_loss": test_ll,
        "log_loss_gap": test_ll - train_ll,
        "ece": expected_calibration_error(
            y_test, test_proba, n_bins=n_bins, labels=labels
        ),
        **bins,
    }
