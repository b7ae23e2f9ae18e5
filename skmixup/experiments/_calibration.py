"""Calibration of predicted probabilities: reliability bins and the expected
calibration error (ECE) of the top-label confidence."""

import numpy as np


def reliability_bins(y_true, proba, classes, *, n_bins=10):
    """Per-bin sums of the top-label confidence and correctness.

    The confidence of a prediction is its largest class probability; predictions
    are put in ``n_bins`` equal-width bins of confidence over ``[0, 1]`` (a
    confidence of exactly 1 goes in the last bin).

    Returns
    -------
    bins : dict
        ``bin_count``, ``bin_confidence`` (sum of confidences) and ``bin_correct``
        (number of correct predictions), arrays of length ``n_bins``; sums, so
        that bins of several splits add up.
    """
    proba = np.asarray(proba, dtype=np.float64)
    confidence = proba.max(axis=1)
    correct = np.asarray(classes)[proba.argmax(axis=1)] == np.asarray(y_true)
    index = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    return {
        "bin_count": np.bincount(index, minlength=n_bins).astype(np.float64),
        "bin_confidence": np.bincount(index, confidence, minlength=n_bins),
        "bin_correct": np.bincount(index, correct, minlength=n_bins),
    }


def expected_calibration_error(bins):
    """ECE = sum over bins of ``n_b / n * |accuracy_b - confidence_b|``.

    The binned estimate of ``E|P(correct | confidence) - confidence|`` (Naeini
    et al., AAAI 2015; Guo et al., ICML 2017, Eq. 3), from the sums of
    :func:`reliability_bins`.

    Examples
    --------
    >>> import numpy as np
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    >>> bins = reliability_bins([0, 0, 1, 1], proba, [0, 1], n_bins=5)
    >>> # bin [0.8, 1): 2 right at 0.9, 0.8; bin [0.6, 0.8): 1 of 2 right at 0.7, 0.6
    >>> round(expected_calibration_error(bins), 4)  # (|2 - 1.7| + |1 - 1.3|) / 4
    0.15
    """
    count = bins["bin_count"]
    gaps = np.abs(bins["bin_correct"] - bins["bin_confidence"])
    return float(gaps.sum() / count.sum())


def reliability_curve(bins):
    """``(confidence, accuracy, count)`` of the non-empty bins, for a diagram."""
    count = bins["bin_count"]
    keep = count > 0
    return (
        bins["bin_confidence"][keep] / count[keep],
        bins["bin_correct"][keep] / count[keep],
        count[keep],
    )
