"""MixupClassifier and MixupRegressor: Mixup for any scikit-learn estimator that
accepts ``sample_weight``, by fitting it on weighted mixed rows."""

from numbers import Integral

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    RegressorMixin,
    _fit_context,
    clone,
)
from sklearn.utils import check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_array,
    check_is_fitted,
    column_or_1d,
    has_fit_parameter,
)

from skmixup._constraints import MIXUP_LAW_CONSTRAINTS, PARTNER_CONSTRAINTS
from skmixup._mixing import draw_mixed_samples, resolve_kernel_bandwidth
from skmixup.compose._tabular import categorical_mask, mix_table
from skmixup.utils._validation import check_sample_weight, is_frame

__all__ = ["MixupClassifier", "MixupRegressor"]

# Measured with HistGradientBoostingClassifier(max_iter=100) on breast_cancer and
# wine (3 stratified 70/30 splits): held-out log-loss improved from 1 to 4 mixed
# rows per training row (0.156 -> 0.145 and 0.093 -> 0.056), changed by less than
# 0.005 from 4 to 8 and got worse at 16, while fit time grows linearly.
_DEFAULT_N_MIXED = 4


def _estimator_has(attr):
    def check(self):
        est = getattr(self, "estimator_", self.estimator)
        return hasattr(est, attr)

    return check


class _BaseMixupWrapper(MetaEstimatorMixin, BaseEstimator):
    """Validation, the mixed rows and the delegation that both wrappers share.

    Subclasses supply ``_check_targets(y)`` and ``_mixed_targets(y, anchor,
    partner, lam, weight)`` (the targets and weights of the rows handed to the
    inner estimator, and the row of the mixed table that each one uses).
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"])],
        **MIXUP_LAW_CONSTRAINTS,
        "n_mixed": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit a clone of ``estimator`` on ``n_mixed`` weighted mixed rows per row.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            A DataFrame is mixed column by column and handed on as a DataFrame,
            its categorical, boolean and string columns by the dominant-row rule.
        y : array-like of shape (n_samples,)
            Targets (class labels of any type, or numbers for the regressor).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative; the weights of the mixed rows sum to ``sum(sample_weight)``.

        Returns
        -------
        self : object
            The fitted wrapper.
        """
        if not has_fit_parameter(self.estimator, "sample_weight"):
            raise TypeError(
                f"{type(self).__name__} needs an estimator whose fit accepts "
                f"sample_weight (the soft labels and the weights of the mixed rows "
                f"are sample weights); {type(self.estimator).__name__}.fit does not. "
                "For a Pipeline, put the Mixup wrapper around its last step instead: "
                "make_pipeline(preprocessing, "
                f"{type(self).__name__}(estimator))."
            )
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is "
                "None."
            )
        X = self._check_X(X)
        y = self._check_targets(y)
        if len(y) != X.shape[0]:
            raise ValueError(
                f"X has {X.shape[0]} samples but y has {len(y)}; they must match."
            )
        sample_weight = check_sample_weight(sample_weight, X, type(self).__name__)
        rng = check_random_state(self.random_state)
        anchor, partner, lam, weight = draw_mixed_samples(
            X.shape[0],
            self.n_mixed,
            self.mixup_alpha,
            self.mixup_beta,
            rng,
            sample_weight,
            **self._partner_args(y, sample_weight),
        )
        categorical = self.estimator.get_params().get("categorical_features")
        mask = categorical_mask(X, categorical)
        X_mixed = mix_table(X, anchor, partner, lam, mask)
        rows, y_mixed, w_mixed = self._mixed_targets(y, anchor, partner, lam, weight)
        if rows is not None:
            X_mixed = X_mixed.iloc[rows] if is_frame(X_mixed) else X_mixed[rows]
        self.estimator_ = clone(self.estimator).fit(
            X_mixed, y_mixed, sample_weight=w_mixed
        )
        self.n_mixed_rows_ = len(y_mixed)
        return self

    def _partner_args(self, y, sample_weight):
        return {}

    def _check_X(self, X):
        if is_frame(X):
            return X
        allow_nan = get_tags(self.estimator).input_tags.allow_nan
        return check_array(
            X,
            accept_sparse=["csr", "csc", "coo"],
            dtype="numeric",
            ensure_all_finite="allow-nan" if allow_nan else True,
            input_name="X",
        )

    @property
    def n_features_in_(self):
        """Number of features seen during fit (the inner estimator's)."""
        return self.estimator_.n_features_in_

    @property
    def feature_names_in_(self):
        """Names of the features seen during fit, for DataFrame input."""
        return self.estimator_.feature_names_in_

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Predict with the fitted inner estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Input data, as the inner estimator takes it.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            The inner estimator's predictions.
        """
        check_is_fitted(self)
        return self.estimator_.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        tags.input_tags.categorical = inner.input_tags.categorical
        tags.target_tags.multi_output = inner.target_tags.multi_output
        return tags


class MixupClassifier(ClassifierMixin, _BaseMixupWrapper):
    """Mixup for any classifier that accepts ``sample_weight``.

    Fits a clone of ``estimator`` on ``n_mixed`` mixed rows per training row,
    ``x~ = lam x_i + (1 - lam) x_j`` with ``lam ~ Beta(mixup_alpha, mixup_beta)``
    and a partner ``j`` drawn at random (weighted by ``sample_weight``). The soft
    label ``lam e_{y_i} + (1 - lam) e_{y_j}`` of a mixed row is represented
    exactly by two weighted copies of it: label ``y_i`` with weight ``lam`` and
    label ``y_j`` with weight ``1 - lam`` (one copy when ``y_i == y_j``).
    Cross-entropy is linear in the target,

    .. math::

        \\mathrm{CE}(p, \\lambda e_{y_i} + (1 - \\lambda) e_{y_j})
        = \\lambda\\,\\mathrm{CE}(p, e_{y_i})
        + (1 - \\lambda)\\,\\mathrm{CE}(p, e_{y_j}),

    so a learner that minimises a weighted log-loss (logistic regression,
    gradient boosting with ``loss="log_loss"``, a network) minimises an unbiased
    sample of the Mixup objective, Eq. (1) of Zhang et al. (2021). Learners with
    other criteria (Gini or entropy trees, forests) see the same weighted soft
    labels through their own impurity.

    Read more in the :ref:`User Guide <compose>`.

    Parameters
    ----------
    estimator : classifier
        Any scikit-learn classifier whose ``fit`` takes ``sample_weight``; cloned
        in ``fit``.
    mixup_alpha : float, default=1.0
        First parameter of the Mixup law ``Beta(mixup_alpha, mixup_beta)``; small
        values mix little.
    mixup_beta : float, default=None
        Second parameter; ``None`` means ``mixup_beta = mixup_alpha``.
    n_mixed : int, default=4
        Mixed rows per training row (the estimator sees up to ``2 n_mixed n``
        weighted rows). A larger value samples Eq. (1) more finely at a linear
        cost; 4 was chosen by measurement (see the User Guide).
    random_state : int, RandomState instance or None, default=None
        Seeds the partners and the Mixup weights (not the inner estimator, which
        keeps its own ``random_state``).

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone of ``estimator``.
    classes_ : ndarray of shape (n_classes,)
        Class labels (the inner estimator's).
    n_mixed_rows_ : int
        Number of weighted rows the inner estimator was fitted on.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, for DataFrame input.

    See Also
    --------
    MixupRegressor : The same for regression, with C-Mixup partners.
    skmixup.linear_model.MixupLogisticRegression : The exact expected Mixup
        objective for logistic regression, without sampling.

    Notes
    -----
    **Weights.** A mixed row weighs ``s_i / n_mixed`` (``s`` the sample weights),
    split into ``lam`` and ``1 - lam`` between its two copies, so the weights
    handed to the estimator sum to the training weight ``sum(s)`` (``n`` without
    weights). Parameters that scale with the total weight therefore keep their
    meaning: ``C`` of ``LogisticRegression`` (``C sum_i w_i CE_i + ||W||^2 / 2``
    with ``sum w = n``), ``alpha`` of ridge-type models, ``min_weight_fraction_leaf``
    and HistGradientBoosting's ``l2_regularization``. Parameters that *count rows*
    (``min_samples_leaf``, ``min_samples_split``) count weighted copies, of which
    there are up to ``2 n n_mixed``: scale them by ``2 n_mixed`` to keep their
    meaning.

    **Tables.** Put the wrapper after a ColumnTransformer (it mixes the encoded
    numeric output), or give a DataFrame directly to an estimator with native
    categorical support (HistGradientBoosting): numeric columns are mixed,
    categorical, boolean and string columns take the value of the row with the
    larger weight (``x_i`` when ``lam >= 1/2``), and a missing numeric entry on
    either side gives the dominant row's value.

    References
    ----------
    H. Zhang, M. Cisse, Y. N. Dauphin and D. Lopez-Paz, "mixup: Beyond Empirical
    Risk Minimization", ICLR 2018.

    L. Zhang, Z. Deng, K. Kawaguchi, A. Ghorbani and J. Zou, "How Does Mixup Help
    With Robustness and Generalization?", ICLR 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skmixup.compose import MixupClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = MixupClassifier(HistGradientBoostingClassifier(max_iter=20),
    ...                       n_mixed=2, random_state=0).fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    """

    def __init__(
        self,
        estimator,
        *,
        mixup_alpha=1.0,
        mixup_beta=None,
        n_mixed=_DEFAULT_N_MIXED,
        random_state=None,
    ):
        self.estimator = estimator
        self.mixup_alpha = mixup_alpha
        self.mixup_beta = mixup_beta
        self.n_mixed = n_mixed
        self.random_state = random_state

    def _check_targets(self, y):
        y = column_or_1d(y, warn=True)
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        check_classification_targets(y)
        return y

    def _mixed_targets(self, y, anchor, partner, lam, weight):
        same = y[anchor] == y[partner]
        other = np.flatnonzero(~same)
        n_rows = len(anchor)
        rows = np.concatenate([np.arange(n_rows), other])
        targets = np.concatenate([y[anchor], y[partner[other]]])
        w = np.concatenate(
            [np.where(same, weight, lam * weight), (1 - lam[other]) * weight[other]]
        )
        return rows, targets, w

    @property
    def classes_(self):
        """Class labels known to the fitted inner estimator."""
        return self.estimator_.classes_

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the fitted inner estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Input data, as the inner estimator takes it.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of the fitted inner estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Input data, as the inner estimator takes it.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the fitted inner estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Input data, as the inner estimator takes it.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The inner estimator's decision function.
        """
        check_is_fitted(self)
        return self.estimator_.decision_function(X)


class MixupRegressor(RegressorMixin, _BaseMixupWrapper):
    """Mixup and C-Mixup for any regressor that accepts ``sample_weight``.

    Fits a clone of ``estimator`` on ``n_mixed`` mixed rows per training row,
    ``x~ = lam x_i + (1 - lam) x_j`` and ``y~ = lam y_i + (1 - lam) y_j`` with
    ``lam ~ Beta(mixup_alpha, mixup_beta)``, each weighing ``s_i / n_mixed``. With
    ``partners="uniform"`` the partner ``j`` is drawn in proportion to its sample
    weight (Mixup, Eq. (1) of Zhang et al., 2021); with ``"label_kernel"`` in
    proportion to ``s_j exp(-||y_i - y_j||^2 / (2 h^2))``, so that rows are mixed
    with rows of similar label (C-Mixup, Yao et al., 2022, Eq. 6): mixing labels
    far apart is what makes plain Mixup hurt regression.

    Read more in the :ref:`User Guide <compose>`.

    Parameters
    ----------
    estimator : regressor
        Any scikit-learn regressor whose ``fit`` takes ``sample_weight``; cloned
        in ``fit``.
    mixup_alpha : float, default=1.0
        First parameter of the Mixup law ``Beta(mixup_alpha, mixup_beta)``.
    mixup_beta : float, default=None
        Second parameter; ``None`` means ``mixup_beta = mixup_alpha``.
    n_mixed : int, default=4
        Mixed rows per training row.
    partners : {"uniform", "label_kernel"}, default="uniform"
        How partners are drawn: uniformly (Mixup) or by the Gaussian kernel of
        the label distance (C-Mixup).
    kernel_bandwidth : float, default=None
        Bandwidth ``h`` of the label kernel, in units of ``y``. ``None``:
        Silverman's rule of thumb ``0.9 min(sd, IQR / 1.34) n^(-1/5)`` of the
        training labels (averaged over the targets). Ignored with
        ``partners="uniform"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the partners and the Mixup weights.

    Attributes
    ----------
    estimator_ : regressor
        The fitted clone of ``estimator``.
    kernel_bandwidth_ : float or None
        The bandwidth used (``None`` with uniform partners).
    n_mixed_rows_ : int
        Number of weighted rows the inner estimator was fitted on.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, for DataFrame input.

    See Also
    --------
    MixupClassifier : The same for classification.

    Notes
    -----
    The weights, and the meaning of ``C``-, ``alpha``- and ``min_samples_leaf``-like
    parameters, are as in :class:`MixupClassifier` (one row per mixed sample here:
    ``n n_mixed`` rows). Squared error is not linear in the target, so the target
    itself is mixed. For a linear least-squares model with an intercept, uniform
    Mixup has the ordinary least-squares solution (see the User Guide); use it
    with a nonlinear learner or with label-kernel partners.

    References
    ----------
    H. Yao, Y. Wang, L. Zhang, J. Zou and C. Finn, "C-Mixup: Improving
    Generalization in Regression", NeurIPS 2022.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import HistGradientBoostingRegressor
    >>> from skmixup.compose import MixupRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = MixupRegressor(HistGradientBoostingRegressor(max_iter=20),
    ...                      partners="label_kernel", random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints = {
        **_BaseMixupWrapper._parameter_constraints,
        **PARTNER_CONSTRAINTS,
    }

    def __init__(
        self,
        estimator,
        *,
        mixup_alpha=1.0,
        mixup_beta=None,
        n_mixed=_DEFAULT_N_MIXED,
        partners="uniform",
        kernel_bandwidth=None,
        random_state=None,
    ):
        self.estimator = estimator
        self.mixup_alpha = mixup_alpha
        self.mixup_beta = mixup_beta
        self.n_mixed = n_mixed
        self.partners = partners
        self.kernel_bandwidth = kernel_bandwidth
        self.random_state = random_state

    def _check_targets(self, y):
        if get_tags(self.estimator).target_tags.multi_output:
            y = check_array(y, ensure_2d=False, dtype="numeric", input_name="y")
            if y.ndim == 2 and y.shape[1] == 1:
                y = y.ravel()
            return y
        y = column_or_1d(y, warn=True)
        return check_array(y, ensure_2d=False, dtype="numeric", input_name="y")

    def _partner_args(self, y, sample_weight):
        self.kernel_bandwidth_ = resolve_kernel_bandwidth(
            self.partners, self.kernel_bandwidth, y, sample_weight
        )
        if self.kernel_bandwidth_ is None:
            return {}
        return {"partner_labels": y, "bandwidth": self.kernel_bandwidth_}

    def _mixed_targets(self, y, anchor, partner, lam, weight):
        lam_y = lam.reshape((-1,) + (1,) * (y.ndim - 1))
        return None, lam_y * y[anchor] + (1 - lam_y) * y[partner], weight
