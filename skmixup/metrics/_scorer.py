"""Robust accuracy and an adversarial scorer for model selection."""

import inspect

import numpy as np
from sklearn import get_config
from sklearn.base import is_regressor
from sklearn.metrics import accuracy_score, get_scorer
from sklearn.utils.metadata_routing import MetadataRequest

from skmixup.metrics import _auto, _square  # noqa: F401 (register their attacks)
from skmixup.metrics._attacks import ATTACKS
from skmixup.metrics._validation import (
    check_feature_scale_param,
    check_real,
    unit_name,
)


def resolve_attack(attack, attack_params):
    """Return the attack function; check its name and keyword arguments."""
    if callable(attack):
        return attack
    if not isinstance(attack, str) or attack not in ATTACKS:
        raise ValueError(
            f"attack must be one of {sorted(ATTACKS)} or a callable "
            f"attack(estimator, X, y, eps=..., **params), got {attack!r}."
        )
    func = ATTACKS[attack]
    allowed = set(inspect.signature(func).parameters) - {"estimator", "X", "y", "eps"}
    unknown = set(attack_params) - allowed
    if unknown:
        raise ValueError(
            f"Unknown parameters {sorted(unknown)} for attack={attack!r}; allowed: "
            f"{sorted(allowed)}."
        )
    return func


def attacked(estimator, X, y, attack, eps, attack_params):
    """Attack X (the result keeps X's container: array or DataFrame)."""
    func = resolve_attack(attack, attack_params)
    return func(estimator, X, y, eps=eps, **attack_params)


def robust_accuracy_score(
    estimator, X, y, *, attack="fgsm", eps=0.1, sample_weight=None, **attack_params
):
    """Accuracy of a classifier on adversarially perturbed inputs.

    Every sample is attacked within the ball of radius ``eps`` and the score is the
    plain (weighted) accuracy of ``estimator.predict`` on the attacked inputs, over
    **all** samples: samples misclassified before the attack count as errors. This
    differs from the "robust accuracy among initially correct samples" that
    some toolboxes (e.g. ART's ``adversarial_accuracy``) report; ours is at most the
    clean accuracy and equals it for ``eps=0``.

    Parameters
    ----------
    estimator : fitted classifier
        The model to attack (see :func:`input_gradient` for what is supported).
    X : array-like of shape (n_samples, n_features)
        Clean samples.
    y : array-like of shape (n_samples,)
        True labels.
    attack : {"fgsm", "pgd", "square", "auto", "exact"} or callable, \
            default="fgsm"
        ``"fgsm"`` (:func:`fgsm`), ``"pgd"`` (:func:`pgd`), ``"square"``
        (:func:`square_attack`, gradient-free: any classifier with
        ``decision_function``, ``predict_proba`` or ``predict``), ``"auto"`` (per
        sample the worst of PGD with restarts, where the model has gradients, and
        the square attack: one choice for every model of a search) or ``"exact"``:
        the exact worst case of a linear classifier, binary or multiclass, or of a
        single :class:`~sklearn.tree.DecisionTreeClassifier`, optionally behind
        affine transformers (scalers, SimpleImputer, ColumnTransformer with
        encoders; PCA for linear models only); for a linear model a sample stays
        correct iff for every other class ``k`` its margin exceeds the largest
        change the ball allows in ``(w_k - w_y)^T x``, for a tree iff every leaf
        whose box meets the ball predicts its label; for networks with ReLU,
        LeakyReLU or identity activations the exact mixed-integer program of
        :func:`certify` (``time_limit=None`` by default: no limit). A callable is
        called as ``attack(estimator, X, y, eps=eps, **attack_params)`` and returns
        the attacked samples.
    eps : float, default=0.1
        Radius of the attack, ``>= 0``, by default in standard deviations of each
        feature (``feature_scale="std"``; ``feature_scale=1`` for raw units).
    sample_weight : array-like of shape (n_samples,), default=None
        Sample weights of the accuracy.
    **attack_params : dict
        Passed to the attack: ``norm``, ``clip``, ``feature_scale``, ``mutable``,
        ``gradient``, for PGD ``step``, ``n_iter``, ``random_start``,
        ``random_state``, for the square attack ``n_queries``, ``random_state``
        (and ``n_restarts`` for ``"auto"``).

    Returns
    -------
    score : float
        The robust accuracy.

    See Also
    --------
    make_adversarial_scorer : The same as a scorer for model selection.
    RobustnessCurveDisplay : Robust accuracy as a function of ``eps``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.metrics import robust_accuracy_score
    >>> X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    >>> clf = LogisticRegression().fit(X, y)
    >>> clean = robust_accuracy_score(clf, X, y, eps=0.0)
    >>> bool(clean == clf.score(X, y))
    True
    >>> fgsm_acc = robust_accuracy_score(clf, X, y, eps=0.3)
    >>> exact_acc = robust_accuracy_score(clf, X, y, attack="exact", eps=0.3)
    >>> bool(fgsm_acc == exact_acc < clean)
    True
    """
    eps = check_real(eps, "eps")
    _check_accuracy_model(estimator)
    X_adv = attacked(estimator, X, y, attack, eps, attack_params)
    return float(
        accuracy_score(y, estimator.predict(X_adv), sample_weight=sample_weight)
    )


def _check_accuracy_model(estimator):
    if is_regressor(estimator):
        raise ValueError(
            f"Robust accuracy scores classifiers; {type(estimator).__name__} is a "
            "regressor: use make_adversarial_scorer(metric='neg_mean_squared_error') "
            "(or 'neg_mean_absolute_error', 'r2')."
        )


class _AdversarialScorer:
    """Scorer ``(estimator, X, y, sample_weight=None)`` evaluated on attacked X."""

    def __init__(self, attack, eps, metric, attack_params):
        self.attack = attack
        self.eps = eps
        self.metric = metric
        self.attack_params = attack_params

    def __call__(self, estimator, X, y, sample_weight=None):
        if self.metric == "accuracy":
            _check_accuracy_model(estimator)
        X_adv = attacked(estimator, X, y, self.attack, self.eps, self.attack_params)
        if self.metric == "accuracy":
            return float(
                accuracy_score(y, estimator.predict(X_adv), sample_weight=sample_weight)
            )
        scorer = get_scorer(self.metric)
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        return scorer(estimator, X_adv, y, **kwargs)

    def set_score_request(self, *, sample_weight=None):
        """Request ``sample_weight`` when metadata routing is enabled.

        As for scikit-learn's own scorers, the default (None) raises an error if
        ``sample_weight`` is routed to this scorer without being requested.

        Parameters
        ----------
        sample_weight : bool, None or str, default=None
            True to receive ``sample_weight``, False to ignore it, a string to
            receive metadata of that name as ``sample_weight``.

        Returns
        -------
        self : object
            The scorer.
        """
        if not get_config()["enable_metadata_routing"]:
            raise RuntimeError(
                "set_score_request is only available when metadata routing is "
                "enabled: sklearn.set_config(enable_metadata_routing=True)."
            )
        self._sample_weight_request = sample_weight
        return self

    def get_metadata_routing(self):
        """The scorer's metadata request (``sample_weight`` of ``score``).

        Returns
        -------
        request : sklearn.utils.metadata_routing.MetadataRequest
            What the scorer consumes.
        """
        request = MetadataRequest(owner=self)
        request.score.add_request(
            param="sample_weight",
            alias=getattr(self, "_sample_weight_request", None),
        )
        return request

    def _routing_repr(self):  # name used in scikit-learn's routing messages
        return repr(self)

    @property
    def unit(self):
        """How ``eps`` is measured: ``"standard deviations"``, ``"raw units"``..."""
        return unit_name(self.attack_params.get("feature_scale", "std"))

    def __repr__(self):
        attack = getattr(self.attack, "__name__", self.attack)
        parts = [f"attack={attack!r}", f"eps={self.eps!r}"]
        params = dict(self.attack_params)
        if not callable(self.attack):
            params.setdefault("feature_scale", "std")
        scale = params.pop("feature_scale", None)
        if scale is not None:
            parts.append(f"feature_scale={_short_repr(scale)}")
        parts.append(f"metric={self.metric!r}")
        for key, value in params.items():
            parts.append(f"{key}={_short_repr(value)}")
        return f"make_adversarial_scorer({', '.join(parts)})"


def _short_repr(value):
    if isinstance(value, np.ndarray):
        return f"<array of shape {value.shape}>"
    if hasattr(value, "items") and not isinstance(value, dict):
        return f"<{type(value).__name__} of {len(value)} columns>"
    return repr(value)


def make_adversarial_scorer(
    *, attack="fgsm", eps=0.1, metric="accuracy", **attack_params
):
    """Make a scorer that evaluates a metric on adversarially perturbed inputs.

    The returned object is called as ``scorer(estimator, X, y, sample_weight=None)``:
    it attacks ``X`` with ``attack`` at radius ``eps`` and scores the estimator on the
    attacked samples. It can be pickled and used wherever scikit-learn accepts a
    scorer, for instance
    ``GridSearchCV(scoring={"clean": "accuracy", "robust": scorer}, refit="robust")``
    or :func:`~sklearn.model_selection.cross_validate` with ``n_jobs``.

    Parameters
    ----------
    attack : {"fgsm", "pgd", "square", "auto", "exact"} or callable, \
            default="fgsm"
        The attack; see :func:`robust_accuracy_score`. In a search over model
        types use ``"auto"``: trees, forests, boosting and nearest neighbours
        have no input gradient, and a gradient attack raises a TypeError on them
        (which the search turns into a NaN score).
    eps : float, default=0.1
        Radius of the attack, ``>= 0``, by default in standard deviations of each
        feature of the scored data: inside cross-validation, of the scored fold,
        the same unit for every candidate of a search. Pass
        ``feature_scale=X.std()`` (an array or a Series of the whole data's
        standard deviations) for one unit across folds, or ``feature_scale=1``
        for raw units.
    metric : str or callable, default="accuracy"
        ``"accuracy"`` (plain accuracy over all samples, see
        :func:`robust_accuracy_score`), another scikit-learn scorer name such as
        ``"balanced_accuracy"``, ``"f1_macro"``, ``"roc_auc"`` or
        ``"neg_log_loss"``, or a scorer callable ``(estimator, X, y)``. For
        regressors ``"neg_mean_squared_error"``, ``"neg_mean_absolute_error"``,
        ``"r2"`` (or another regression scorer name); the attacks then increase
        each sample's squared error (gradient attacks through linear regressors,
        MLPRegressor, skorch nets and pipelines of these; ``"square"`` and
        ``"auto"`` for any regressor).
    **attack_params : dict
        Passed to the attack (``norm``, ``clip``, ``feature_scale``, ``mutable``,
        ``gradient``, for PGD ``step``, ``n_iter``, ``random_start``,
        ``random_state``, for ``"square"`` and ``"auto"`` ``n_queries`` and
        ``random_state``). Give PGD, square and auto an int ``random_state`` for
        reproducible scores.

    Returns
    -------
    scorer : callable
        The adversarial scorer; larger is better. Under metadata routing
        (``sklearn.set_config(enable_metadata_routing=True)``) call
        ``scorer.set_score_request(sample_weight=True)`` to have it receive
        ``sample_weight``, as with scikit-learn's scorers.

    See Also
    --------
    robust_accuracy_score : The robust accuracy as a function.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_validate
    >>> from skmixup.metrics import make_adversarial_scorer
    >>> X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    >>> scorer = make_adversarial_scorer(eps=0.2)
    >>> scorer.unit  # eps=0.2 standard deviations of each feature
    'standard deviations'
    >>> "feature_scale='std'" in repr(scorer)
    True
    >>> scores = cross_validate(
    ...     LogisticRegression(), X, y, cv=3,
    ...     scoring={"clean": "accuracy", "robust": scorer},
    ... )
    >>> bool((scores["test_robust"] <= scores["test_clean"]).all())
    True
    """
    eps = check_real(eps, "eps")
    resolve_attack(attack, attack_params)
    if "feature_scale" in attack_params:
        check_feature_scale_param(attack_params["feature_scale"])
    if not (isinstance(metric, str) or callable(metric)):
        raise ValueError(f"metric must be a scorer name or callable, got {metric!r}.")
    if isinstance(metric, str) and metric != "accuracy":
        get_scorer(metric)  # raises ValueError for unknown names
    return _AdversarialScorer(attack, eps, metric, dict(attack_params))
