"""Warnings of skmixup (as :mod:`sklearn.exceptions` holds scikit-learn's).

The classes are re-exported where users meet them:
:class:`UnboundedPenaltyWarning` from :mod:`skmixup.linear_model` and
:class:`TheoryAssumptionWarning` from :mod:`skmixup.theory`,
:class:`UnsolvedSamplesWarning` from :mod:`skmixup.metrics`. This module imports
nothing of skmixup, so every module may import it.
"""

__all__ = [
    "TheoryAssumptionWarning",
    "UnboundedPenaltyWarning",
    "UnsolvedSamplesWarning",
]


class TheoryAssumptionWarning(UserWarning):
    """A theorem is evaluated where its assumptions do not hold.

    Emitted by :func:`skmixup.theory.mixup_radius` (Theorem 3.1 of Zhang et al.,
    2021, needs centered inputs, a model without intercept or a positively
    homogeneous network, and correctly classified training points); the value
    is returned, but the inequality is not guaranteed.

    Examples
    --------
    >>> import warnings
    >>> from skmixup.exceptions import TheoryAssumptionWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn("X is not centered", TheoryAssumptionWarning)
    >>> caught[0].category.__name__
    'TheoryAssumptionWarning'
    """


class UnboundedPenaltyWarning(UserWarning):
    """The penalised objective is ill-posed: it falls as ``||W||`` grows.

    Emitted by :class:`~skmixup.linear_model.MixupRegularizedLogisticRegression`
    with ``C=np.inf`` when the training data are linearly separable (the
    solution separates them, or a small feasibility linear program finds a
    separating hyperplane), or when the coefficients diverge.

    Examples
    --------
    >>> from skmixup.exceptions import UnboundedPenaltyWarning
    >>> issubclass(UnboundedPenaltyWarning, UserWarning)
    True
    """


class UnsolvedSamplesWarning(UserWarning):
    """``attack="exact"`` left samples unsolved within its ``time_limit``.

    Emitted by :func:`skmixup.metrics.robust_accuracy_score` (and the scorers)
    with ``attack="exact"`` on a ReLU network when the mixed-integer program of
    some samples did not finish in ``time_limit`` seconds: those samples count
    as robust, so the score is an upper bound. The message gives their number.

    Examples
    --------
    >>> from skmixup.exceptions import UnsolvedSamplesWarning
    >>> issubclass(UnsolvedSamplesWarning, UserWarning)
    True
    """
