"""The certified accuracy as a score and as a scorer for model selection."""

from skmixup.metrics._certify import _certify, _check_method, _check_time_limit
from skmixup.metrics._scorer import _AdversarialScorer, _short_repr
from skmixup.metrics._validation import (
    check_feature_scale_param,
    check_norm,
    check_real,
)


def certified_accuracy_score(
    estimator, X, y, *, eps, method="crown", sample_weight=None, **params
):
    """Fraction of samples certified robust: a lower bound of the robust accuracy.

    Samples whose status is ``"unknown"`` count as not certified, so the score
    stays a lower bound (see :func:`certify`).

    Parameters
    ----------
    estimator : fitted classifier
        See :func:`certify`.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Clean samples.
    y : array-like of shape (n_samples,)
        True labels.
    eps : float
        Radius, in units of ``feature_scale`` (standard deviations by default).
    method : {"ibp", "crown", "milp"}, default="crown"
        The bounding method.
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights.
    **params : dict
        ``norm``, ``feature_scale``, ``mutable``, ``clip``, ``time_limit``,
        ``random_state`` of :func:`certify`.

    Returns
    -------
    score : float
        The (weighted) certified accuracy.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.metrics import certified_accuracy_score, robust_accuracy_score
    >>> X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    >>> clf = LogisticRegression().fit(X, y)
    >>> certified = certified_accuracy_score(clf, X, y, eps=0.2)
    >>> certified == robust_accuracy_score(clf, X, y, attack="exact", eps=0.2)
    True
    """
    # Attacks only label samples "attacked"; for the bounds they change nothing
    # certified, for the MILP they spare it the samples PGD breaks.
    result = _certify(
        estimator, X, y, eps=eps, method=method, attack=method == "milp", **params
    )
    return result.certified_accuracy(sample_weight)


_CERTIFY_PARAMS = (
    "norm",
    "feature_scale",
    "mutable",
    "clip",
    "time_limit",
    "random_state",
)


class _CertifiedScorer(_AdversarialScorer):
    """Scorer ``(estimator, X, y, sample_weight=None)``: the certified accuracy."""

    def __init__(self, method, eps, params):
        super().__init__("certify", eps, "accuracy", params)
        self.method = method

    def __call__(self, estimator, X, y, sample_weight=None):
        return certified_accuracy_score(
            estimator,
            X,
            y,
            eps=self.eps,
            method=self.method,
            sample_weight=sample_weight,
            **self.attack_params,
        )

    def __repr__(self):
        params = {"feature_scale": "std", **self.attack_params}
        parts = [f"eps={self.eps!r}", f"method={self.method!r}"]
        parts += [f"{key}={_short_repr(value)}" for key, value in params.items()]
        return f"make_certified_scorer({', '.join(parts)})"


def make_certified_scorer(*, eps, method="crown", **params):
    """Make a scorer of the certified accuracy, for model selection.

    ``scorer(estimator, X, y, sample_weight=None)`` returns
    :func:`certified_accuracy_score`; it pickles and works wherever scikit-learn
    takes a scorer (``GridSearchCV(scoring=..., refit=...)``,
    :func:`~sklearn.model_selection.cross_validate`). Unlike an attack's score,
    it cannot be raised by a model that is merely hard to attack.

    Parameters
    ----------
    eps : float
        Radius, in units of ``feature_scale`` (standard deviations of the scored
        fold by default).
    method : {"ibp", "crown", "milp"}, default="crown"
        The bounding method.
    **params : dict
        ``norm``, ``feature_scale``, ``mutable``, ``clip``, ``time_limit``,
        ``random_state`` of :func:`certify`.

    Returns
    -------
    scorer : callable
        The certified-accuracy scorer; larger is better.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_validate
    >>> from skmixup.metrics import make_certified_scorer
    >>> X, y = make_classification(n_samples=120, n_features=4, random_state=0)
    >>> scorer = make_certified_scorer(eps=0.1)
    >>> scorer
    make_certified_scorer(eps=0.1, method='crown', feature_scale='std')
    >>> scores = cross_validate(
    ...     LogisticRegression(), X, y, cv=3,
    ...     scoring={"clean": "accuracy", "certified": scorer})
    >>> bool((scores["test_certified"] <= scores["test_clean"]).all())
    True
    """
    eps = check_real(eps, "eps")
    _check_method(method)
    unknown = set(params) - set(_CERTIFY_PARAMS)
    if unknown:
        raise ValueError(
            f"Unknown parameters {sorted(unknown)} for make_certified_scorer; "
            f"allowed: {sorted(_CERTIFY_PARAMS)}."
        )
    if "norm" in params:
        check_norm(params["norm"])
    if "feature_scale" in params:
        check_feature_scale_param(params["feature_scale"])
    if "time_limit" in params:
        _check_time_limit(params["time_limit"])
    return _CertifiedScorer(method, eps, dict(params))
