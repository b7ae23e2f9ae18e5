"""Calibration of predicted probabilities: the expected calibration error (ECE) of
the top-label confidence, and its reliability diagram for any number of classes.

scikit-learn's ``calibration_curve`` and ``CalibrationDisplay`` are binary (the
probability of the positive class). Here the *confidence* of a prediction is its
largest class probability and it is *correct* when that class is the true one
(top-label calibration, Guo et al., ICML 2017, Sec. 2), which is defined for two
classes or more. The bins follow ``calibration_curve``: edges ``linspace(0, 1,
n_bins + 1)`` (``strategy="uniform"``) or the percentiles of the confidences
(``"quantile"``, equal-count bins), a value on an inner edge in the lower bin.
"""

import numbers

import numpy as np
from sklearn.utils import check_consistent_length, column_or_1d
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted

from skmixup.utils._plot import pyplot
from skmixup.utils._validation import check_sample_weight

_STRATEGIES = ("uniform", "quantile")


def _check_bins(n_bins, strategy):
    bad = isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral)
    if bad or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}.")
    if strategy not in _STRATEGIES:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}.")


def _top_label(y_true, y_prob, labels):
    """``(confidence, correct)`` of each prediction, with the input checks."""
    y_true = column_or_1d(y_true)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if y_prob.ndim not in (1, 2):
        raise ValueError(
            "y_prob must be of shape (n_samples,) (binary: probability of the "
            f"second label) or (n_samples, n_classes), got shape {y_prob.shape}."
        )
    check_consistent_length(y_true, y_prob)
    if y_true.shape[0] == 0:
        raise ValueError("y_true is empty: the calibration error needs samples.")
    labels = unique_labels(y_true) if labels is None else np.asarray(labels)
    if labels.ndim != 1 or len(np.unique(labels)) != len(labels):
        raise ValueError(f"labels must be distinct values, got {labels.tolist()!r}.")
    unknown = ~np.isin(y_true, labels)
    if unknown.any():
        raise ValueError(
            f"y_true contains labels not in labels {labels.tolist()!r}: "
            f"{np.unique(y_true[unknown]).tolist()!r}."
        )
    if not np.all(np.isfinite(y_prob)) or y_prob.min() < 0 or y_prob.max() > 1:
        raise ValueError("y_prob must hold probabilities: finite, in [0, 1].")
    if y_prob.ndim == 1:
        if len(labels) != 2:
            raise ValueError(
                "A 1-d y_prob is the probability of the second of two labels, but "
                f"there are {len(labels)} labels ({labels.tolist()!r}); pass "
                "labels=[negative, positive] or y_prob of shape (n_samples, "
                "n_classes)."
            )
        y_prob = np.column_stack([1.0 - y_prob, y_prob])
    if y_prob.shape[1] != len(labels):
        raise ValueError(
            f"y_prob has {y_prob.shape[1]} columns but there are {len(labels)} "
            f"labels ({labels.tolist()!r}); its columns are the labels in sorted "
            "order (an estimator's classes_), or pass labels=."
        )
    confidence = y_prob.max(axis=1)
    correct = labels[y_prob.argmax(axis=1)] == y_true
    return confidence, correct.astype(np.float64)


def calibration_bins(
    y_true, y_prob, *, n_bins=10, strategy="uniform", sample_weight=None, labels=None
):
    """Per-bin sums of the weights, confidences and correct predictions.

    Sums, so that the bins of several test sets with the same edges add up (the
    pooled reliability diagram of ``reproduce``).

    Returns
    -------
    bins : dict
        ``bin_count`` (sum of the weights), ``bin_confidence`` (weighted sum of
        the confidences), ``bin_correct`` (weighted number of correct
        predictions), arrays of shape ``(n_bins,)``, and ``edges``, of shape
        ``(n_bins + 1,)``.
    """
    _check_bins(n_bins, strategy)
    confidence, correct = _top_label(y_true, y_prob, labels)
    weight = check_sample_weight(sample_weight, confidence.shape[0])
    if strategy == "quantile":  # equal-count bins of the confidences
        edges = np.percentile(confidence, np.linspace(0, 100, n_bins + 1))
    else:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.searchsorted(edges[1:-1], confidence)
    return {
        "bin_count": np.bincount(index, weight, minlength=n_bins),
        "bin_confidence": np.bincount(index, weight * confidence, minlength=n_bins),
        "bin_correct": np.bincount(index, weight * correct, minlength=n_bins),
        "edges": edges,
    }


def ece_from_bins(bins):
    """ECE from the sums of :func:`calibration_bins` (possibly pooled)."""
    gaps = np.abs(bins["bin_correct"] - bins["bin_confidence"])
    return float(gaps.sum() / bins["bin_count"].sum())


def expected_calibration_error(
    y_true, y_prob, *, n_bins=10, strategy="uniform", sample_weight=None, labels=None
):
    """Expected calibration error (ECE) of the top-label confidence.

    ``ECE = sum_b (n_b / n) |accuracy_b - confidence_b|``: the predictions are put
    in ``n_bins`` bins of their confidence (largest class probability); in each,
    the accuracy (fraction whose most probable class is the true one) is compared
    with the mean confidence, and the gaps are averaged with the bins' weights.
    It is the binned estimate of ``E |P(correct | confidence) - confidence|``
    (Naeini et al., AAAI 2015; Guo et al., ICML 2017, Eq. 3). 0 is perfect
    calibration; lower is better.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, as returned by ``predict_proba``: columns in the
        order of ``labels`` (sorted labels of ``y_true`` when None, which is an
        estimator's ``classes_``). A 1-d array is the probability of the second
        of two labels (the positive class), as scikit-learn's binary scorers
        pass it.
    n_bins : int, default=10
        Number of confidence bins.
    strategy : {"uniform", "quantile"}, default="uniform"
        ``"uniform"``: bins of equal width on ``[0, 1]``; ``"quantile"``: bins
        holding the same number of predictions (edges at the percentiles of the
        confidences, unweighted).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights: the bins' sizes, accuracies and confidences are weighted.
    labels : array-like of shape (n_classes,), default=None
        The labels the columns of ``y_prob`` stand for, in order; None means
        the sorted labels of ``y_true`` (pass it when a test set lacks a class).

    Returns
    -------
    ece : float
        In ``[0, 1]``.

    See Also
    --------
    ReliabilityDisplay : The reliability diagram of the same bins.
    sklearn.calibration.calibration_curve : Binary, positive-class calibration.

    Notes
    -----
    For model selection (lower is better) use it as a scorer::

        from sklearn.metrics import make_scorer
        ece_scorer = make_scorer(
            expected_calibration_error,
            greater_is_better=False,
            response_method="predict_proba",
        )
        GridSearchCV(model, grid, scoring={"accuracy": "accuracy",
                                           "ece": ece_scorer}, refit="accuracy")

    The scores are then negative ECEs, as ``neg_log_loss`` is a negative loss.

    Examples
    --------
    >>> import numpy as np
    >>> from skmixup.metrics import expected_calibration_error
    >>> y_prob = np.array([[0.95, 0.05], [0.85, 0.15], [0.25, 0.75], [0.65, 0.35]])
    >>> y_true = ["no", "no", "yes", "yes"]
    >>> # confidences 0.95, 0.85 (both right) in bin (0.8, 1]; 0.75 (right) and
    >>> # 0.65 (wrong) in bin (0.6, 0.8]: (|2 - 1.8| + |1 - 1.4|) / 4
    >>> round(expected_calibration_error(y_true, y_prob, n_bins=5), 4)
    0.15
    """
    bins = calibration_bins(
        y_true,
        y_prob,
        n_bins=n_bins,
        strategy=strategy,
        sample_weight=sample_weight,
        labels=labels,
    )
    return ece_from_bins(bins)


class ReliabilityDisplay:
    """Reliability diagram of the top-label confidence, for any number of classes.

    The accuracy of the predictions in each confidence bin against their mean
    confidence; a calibrated model lies on the diagonal. Each point is drawn with
    an area proportional to the number of predictions in its bin, and the number
    is written beside it, so that a bin of one or two predictions does not look
    like evidence. Build it with :meth:`from_estimator` or
    :meth:`from_predictions` (matplotlib is imported only to plot; install it with
    the ``skmixup[plot]`` extra).

    Parameters
    ----------
    prob_true : ndarray of shape (n_nonempty_bins,)
        Accuracy in each non-empty bin.
    prob_pred : ndarray of shape (n_nonempty_bins,)
        Mean confidence in each non-empty bin.
    bin_count : ndarray of shape (n_nonempty_bins,)
        Number (sum of the weights) of predictions in each non-empty bin.
    ece : float
        Expected calibration error of these bins.
    estimator_name : str, default=None
        Name in the legend.

    Attributes
    ----------
    line_ : matplotlib Line2D
        The curve.
    ax_ : matplotlib Axes
        Axes with the diagram.
    figure_ : matplotlib Figure
        Figure containing the diagram.

    See Also
    --------
    expected_calibration_error : The number the diagram shows.
    sklearn.calibration.CalibrationDisplay : Binary, positive-class diagram.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_wine
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.metrics import ReliabilityDisplay
    >>> X, y = load_wine(return_X_y=True)
    >>> clf = LogisticRegression(max_iter=5000).fit(X, y)
    >>> display = ReliabilityDisplay.from_estimator(clf, X, y, n_bins=5)
    >>> int(display.bin_count.sum())
    178
    >>> display.ax_.get_xlabel()
    'Confidence (top-label probability)'
    >>> plt.close(display.figure_)
    """

    def __init__(self, *, prob_true, prob_pred, bin_count, ece, estimator_name=None):
        self.prob_true = np.asarray(prob_true, dtype=np.float64)
        self.prob_pred = np.asarray(prob_pred, dtype=np.float64)
        self.bin_count = np.asarray(bin_count, dtype=np.float64)
        self.ece = ece
        self.estimator_name = estimator_name

    @classmethod
    def from_bins(cls, bins, *, estimator_name=None):
        """The display of the sums of :func:`calibration_bins` (possibly pooled)."""
        count = np.asarray(bins["bin_count"], dtype=np.float64)
        keep = count > 0
        return cls(
            prob_true=bins["bin_correct"][keep] / count[keep],
            prob_pred=bins["bin_confidence"][keep] / count[keep],
            bin_count=count[keep],
            ece=ece_from_bins(bins),
            estimator_name=estimator_name,
        )

    def plot(self, ax=None, *, name=None, ref_line=True, show_counts=True, **kwargs):
        """Plot the diagram.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a new figure.
        name : str, default=None
            Legend label (the ECE is appended); None uses ``estimator_name``.
        ref_line : bool, default=True
            Draw the diagonal of perfect calibration.
        show_counts : bool, default=True
            Write the number of predictions beside each point.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot` (the curve).

        Returns
        -------
        display : ReliabilityDisplay
            ``self``, with ``line_``, ``ax_`` and ``figure_`` set.
        """
        plt = pyplot()
        if ax is None:
            _, ax = plt.subplots()
        name = self.estimator_name if name is None else name
        label = f"ECE {self.ece:.3f}" if name is None else f"{name}: ECE {self.ece:.3f}"
        diagonal = "perfectly calibrated"
        if ref_line and diagonal not in [x.get_label() for x in ax.get_lines()]:
            ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":", label=diagonal)
        line_kwargs = {"marker": "o", "markersize": 3, "label": label, **kwargs}
        (self.line_,) = ax.plot(self.prob_pred, self.prob_true, **line_kwargs)
        color = self.line_.get_color()
        total = self.bin_count.sum()
        if total > 0:  # marker area proportional to the bin's share of predictions
            sizes = 900 * self.bin_count / total
            ax.scatter(self.prob_pred, self.prob_true, s=sizes, color=color, alpha=0.3)
        if show_counts:
            for x, y, n in zip(
                self.prob_pred, self.prob_true, self.bin_count, strict=True
            ):
                ax.annotate(
                    f"{n:g}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(3, -9),
                    fontsize=6,
                    color=color,
                )
        ax.set(
            xlim=(0, 1.02),
            ylim=(0, 1.02),
            xlabel="Confidence (top-label probability)",
            ylabel="Accuracy",
        )
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_predictions(
        cls,
        y_true,
        y_prob,
        *,
        n_bins=10,
        strategy="uniform",
        sample_weight=None,
        labels=None,
        name=None,
        ax=None,
        **kwargs,
    ):
        """Reliability diagram of predicted probabilities.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
            Predicted probabilities; see :func:`expected_calibration_error`.
        n_bins : int, default=10
            Number of confidence bins.
        strategy : {"uniform", "quantile"}, default="uniform"
            Bins of equal width or of equal counts.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        labels : array-like of shape (n_classes,), default=None
            The labels of the columns of ``y_prob``; None: sorted labels of
            ``y_true``.
        name : str, default=None
            Legend label.
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a new figure.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : ReliabilityDisplay
            The display, plotted.
        """
        pyplot()  # fail before any work when matplotlib is missing
        bins = calibration_bins(
            y_true,
            y_prob,
            n_bins=n_bins,
            strategy=strategy,
            sample_weight=sample_weight,
            labels=labels,
        )
        return cls.from_bins(bins, estimator_name=name).plot(ax=ax, **kwargs)

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        y,
        *,
        n_bins=10,
        strategy="uniform",
        sample_weight=None,
        name=None,
        ax=None,
        **kwargs,
    ):
        """Reliability diagram of a fitted classifier's ``predict_proba`` on ``X``.

        Parameters
        ----------
        estimator : fitted classifier with ``predict_proba``
            The model (a Pipeline too).
        X : array-like or DataFrame of shape (n_samples, n_features)
            Samples.
        y : array-like of shape (n_samples,)
            True labels.
        n_bins : int, default=10
            Number of confidence bins.
        strategy : {"uniform", "quantile"}, default="uniform"
            Bins of equal width or of equal counts.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        name : str, default=None
            Legend label; None uses the estimator's class name.
        ax : matplotlib Axes, default=None
            Axes to draw on; None creates a new figure.
        **kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.plot`.

        Returns
        -------
        display : ReliabilityDisplay
            The display, plotted.
        """
        pyplot()
        check_is_fitted(estimator)
        if not hasattr(estimator, "predict_proba"):
            raise TypeError(
                f"{type(estimator).__name__} has no predict_proba: a reliability "
                "diagram needs predicted probabilities."
            )
        name = type(estimator).__name__ if name is None else name
        return cls.from_predictions(
            y,
            estimator.predict_proba(X),
            n_bins=n_bins,
            strategy=strategy,
            sample_weight=sample_weight,
            labels=estimator.classes_,
            name=name,
            ax=ax,
            **kwargs,
        )
