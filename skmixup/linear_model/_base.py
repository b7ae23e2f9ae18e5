"""The linear base class: it owns ``fit`` (prepare, rng, objective, solve, set
coefficients) and the Mixup loss of the fitted model."""

import numbers
import sys
import warnings

import numpy as np
from scipy import optimize, sparse, special
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin, SparseCoefMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from skmixup._constraints import MIXUP_LAW_CONSTRAINTS
from skmixup.linear_model._plan import MixupPlan
from skmixup.utils._callbacks import CallbackSupportMixin, begin_fit
from skmixup.utils._labels import encode_targets
from skmixup.utils._threads import one_blas_thread
from skmixup.utils._validation import check_positive_weight, class_sample_weight


def _is_dask_collection(X):
    """Whether ``X`` is a Dask collection (without importing dask)."""
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(X)


# scipy.optimize.minimize's status when the callback raised StopIteration
_CALLBACK_STOP = 99

_MIXUP_CONSTRAINTS = {
    **MIXUP_LAW_CONSTRAINTS,
    "C": [Interval(numbers.Real, 0, None, closed="right")],
    "fit_intercept": ["boolean"],
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
    "class_weight": [dict, StrOptions({"balanced"}), None],
    "warm_start": ["boolean"],
    "verbose": ["verbose"],
}


class _BaseMixupLinearClassifier(
    CallbackSupportMixin,
    LinearClassifierMixin,
    SparseCoefMixin,
    ClassifierMixin,
    BaseEstimator,
):
    """Base class: a linear model ``z = X W^T + b`` fitted by minimising a smooth
    objective of its logits with scipy's L-BFGS-B.

    The base class owns :meth:`fit`: validate and encode the labels, resolve
    ``random_state``, build the Mixup plan from the subclass's settings
    (``_plan_settings()``) when the objective trains on it (``_fit_on_plan``),
    build the objective (``_make_objective(n_classes, n_features, plan)``,
    supplied by the subclass: a loss object with ``loss_gradient(coef, X, Y,
    sample_weight, l2_reg_strength)``, a function of the coefficients and a data
    block, and the coefficient layout of
    :class:`skmixup.linear_model._loss._LinearModel`), solve, set the
    coefficients once, then ``_finish_fit`` (a subclass hook). It also owns
    :meth:`mixup_loss`, which evaluates the Mixup plan of ``_plan_settings()``.
    The base calls the subclass; the subclass never calls back into the base
    while the objective is built.
    """

    # Whether the training objective is the Mixup plan's (the plan is then built
    # in fit and handed to _make_objective; otherwise plan is None).
    _fit_on_plan = False

    # predict_proba is the sigmoid (one logit) or softmax of decision_function:
    # skmixup.metrics differentiates it analytically (metrics/_models.py).
    _proba_from_decision = True

    # ----------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; float32 is kept as float32.
        y : array-like of shape (n_samples,)
            Target labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples (a weight of 2 counts a sample
            twice, as anchor and as partner).

        Returns
        -------
        self : object
            Fitted estimator.
        """
        if _is_dask_collection(X):  # one big fit on a cluster: chunk by chunk
            from skmixup.linear_model._dask import fit_dask

            return fit_dask(self, X, y, sample_weight)
        X, y, Y, sample_weight = self._prepare_fit(X, y, sample_weight)
        plan = self._mixup_plan(sample_weight) if self._fit_on_plan else None
        objective = self._make_objective(Y.shape[1], X.shape[1], plan)
        task = begin_fit(self, X, y, max_subtasks=self.max_iter)
        coef, n_iter = self._solve(
            objective,
            X,
            Y,
            sample_weight,
            self._l2_reg_strength(sample_weight),
            self._initial_coef(objective),
            task,
        )
        # scikit-learn's LogisticRegression shape: one solver run, shape (1,).
        self.n_iter_ = np.array([n_iter], dtype=np.int32)
        attributes = self._coef_attributes(objective, coef, X.dtype)
        for name, value in attributes.items():
            setattr(self, name, value)
        task.end(attributes)
        self._finish_fit(objective, coef, X, Y, sample_weight)
        return self

    def _finish_fit(self, objective, coef, X, Y, sample_weight):
        """Subclass hook after the coefficients are set (default: nothing)."""

    def _validate_fit_input(self, X, y, sample_weight, reset=True):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse="csr",
            dtype=[np.float64, np.float32],
            order="C",
            reset=reset,
        )
        check_classification_targets(y)
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        return X, y, sample_weight

    def _prepare_fit(self, X, y, sample_weight):
        """Validate, set ``classes_``; return ``X``, the labels ``y``, targets
        ``Y`` and the sample weights with the class weights folded in."""
        X, y, sample_weight = self._validate_fit_input(X, y, sample_weight)
        Y = self._encode_labels(y)
        sample_weight = self._class_sample_weight(y, sample_weight)
        return X, y, Y, check_positive_weight(sample_weight)

    def _encode_labels(self, y, classes=None):
        """Set ``classes_`` (from ``classes`` if given, else ``y``) and return the
        target matrix ``Y`` (float64, :func:`~skmixup.utils._labels.
        encode_targets`)."""
        self.classes_ = np.unique(y if classes is None else np.asarray(classes))
        if self.classes_.size < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the "
                f"data contains only one class: {self.classes_[0]!r}."
            )
        return encode_targets(self.classes_, y)

    def _class_sample_weight(self, y, sample_weight):
        return class_sample_weight(self.class_weight, y, sample_weight)

    def _l2_reg_strength(self, sample_weight):
        # sum_i s_i l_i / S + ||W||^2 / (2 C S): sklearn's meaning of C.
        return 0.0 if np.isinf(self.C) else 1.0 / (self.C * sample_weight.sum())

    def _initial_coef(self, objective):
        if self.warm_start and hasattr(self, "coef_"):
            if self.coef_.shape == (objective.n_classes, objective.n_features):
                coef = self.coef_
                coef = coef.toarray() if sparse.issparse(coef) else coef
                b = self.intercept_ if objective.fit_intercept else None
                return objective.pack(coef, b).astype(np.float64)
        return np.zeros(objective.n_dof)

    def _solve(self, objective, X, Y, sample_weight, l2_reg_strength, coef0, task):
        """Minimise with L-BFGS-B; returns the coefficients and the iteration
        count. Each iteration is reported to the scikit-learn callbacks' ``task``
        (which :meth:`fit` ends)."""
        if self.max_iter == 0:  # scipy would still take one step
            warnings.warn(
                f"{type(self).__name__} with max_iter=0 returns its starting point.",
                ConvergenceWarning,
                stacklevel=4,  # past fit and sklearn's _fit_context wrapper
            )
            return coef0, 0
        sw = (sample_weight / sample_weight.sum()).astype(X.dtype)
        Y = Y.astype(X.dtype, copy=False)

        def fun(coef):
            return objective.loss_gradient(coef, X, Y, sw, l2_reg_strength)

        # Pin the BLAS pools to one thread: the objective makes many small BLAS
        # calls, and on few cores numpy's and scipy's OpenBLAS pools (and OpenMP)
        # oversubscribe them badly; the Mixup plan runs its own worker threads.
        with one_blas_thread():
            result = optimize.minimize(
                fun,
                coef0,
                method="L-BFGS-B",
                jac=True,
                options={
                    "maxiter": self.max_iter,
                    "maxls": 50,
                    "gtol": self.tol,
                    "ftol": 64 * np.finfo(float).eps,
                },
                callback=self._iteration_callback(task, objective, X.dtype),
            )
        n_iter = int(result.nit)
        self._check_solver_result(result, n_iter)
        return result.x, max(n_iter, 1)

    def _iteration_callback(self, task, objective, dtype):
        """The per-iteration hook of L-BFGS-B (``callback(intermediate_result)``):
        reports the iterate to scikit-learn's callbacks (a stop request ends
        L-BFGS-B) and prints the objective when ``verbose``."""
        name = type(self).__name__

        def report(intermediate_result):
            report.n += 1
            x = intermediate_result.x
            if task.step(lambda: self._coef_attributes(objective, x, dtype)):
                raise StopIteration
            if self.verbose:
                print(  # noqa: T201 - verbose output, as scikit-learn's solvers print
                    f"[{name}] iteration {report.n}: "
                    f"objective {intermediate_result.fun:.8g}"
                )

        report.n = 0
        return report

    def _check_solver_result(self, result, n_iter):
        """Warn as scikit-learn's ``LogisticRegression`` does when L-BFGS-B did not
        converge: the iteration limit (status 1) or an abnormal stop (status 2,
        e.g. the line search fails on badly scaled features). A stop requested by
        a scikit-learn callback (``StopIteration``, status 99) is not a failure."""
        if result.status in (0, _CALLBACK_STOP):
            return
        message = result.message
        if isinstance(message, bytes):  # pragma: no cover - old scipy
            message = message.decode()
        name = type(self).__name__
        if result.status == 1 or n_iter >= self.max_iter:
            text = (
                f"{name} did not converge in max_iter={self.max_iter} iterations "
                f"(L-BFGS-B status={result.status}: {message}). Increase max_iter "
                "or tol, or scale the data."
            )
        else:
            text = (
                f"{name}: L-BFGS-B stopped abnormally after {n_iter} iteration(s) "
                f"(status={result.status}): {message}. The solution may be far "
                "from the minimum: scale the features (e.g. StandardScaler) or "
                "increase tol."
            )
        warnings.warn(
            text,
            ConvergenceWarning,
            stacklevel=5,  # past _solve, fit and sklearn's _fit_context wrapper
        )

    def _coef_attributes(self, objective, coef, dtype):
        """``coef_`` and ``intercept_`` (of ``dtype``) of the flat ``coef``: the
        fitted attributes, and those of each iterate for the callbacks."""
        W, b = objective.unpack(coef)
        b = np.zeros(objective.n_classes) if b is None else b
        return {"coef_": np.array(W, dtype=dtype), "intercept_": np.array(b, dtype)}

    # --------------------------------------------------------------- Mixup loss
    def _plan_settings(self):
        """``(n_partners, n_quadrature, random_state)`` of the Mixup plan."""
        return "auto", "auto", 0

    def _mixup_plan(self, sample_weight):
        """The Mixup plan of ``_plan_settings()`` for these sample weights (class
        weights folded in): the plan of :meth:`fit` for the same inputs."""
        n_partners, n_quadrature, random_state = self._plan_settings()
        return MixupPlan.build(
            sample_weight,
            mixup_alpha=self.mixup_alpha,
            mixup_beta=self.mixup_beta,
            n_partners=n_partners,
            n_quadrature=n_quadrature,
            random_state=random_state,
        )

    def mixup_loss(self, X, y, sample_weight=None):
        """Expected Mixup loss of the fitted model (ridge term not included).

        The mean soft-label cross-entropy of Eq. (1) of Zhang et al. (2021) with
        this estimator's ``mixup_alpha`` and ``mixup_beta``, evaluated with the
        plan (pairs and quadrature nodes) that :meth:`fit` uses for the same
        data: exact (all pairs) whenever the fit was; otherwise the same seeded
        partner blocks as the fit when ``random_state`` is an int (the training
        objective itself). For other settings use
        :func:`skmixup.theory.mixup_loss`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples to mix, usually the training set.
        y : array-like of shape (n_samples,)
            Labels, among ``classes_``.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of anchors and partners (a weight of 2 equals a duplicated
            row); the class weights are folded in, as in :meth:`fit`.

        Returns
        -------
        loss : float
            Mean expected Mixup cross-entropy (nats per sample).
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            accept_sparse="csr",
            reset=False,
            dtype=[np.float64, np.float32],
            order="C",
        )
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}.")
        Y = encode_targets(self.classes_, y).astype(X.dtype)
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        sample_weight = check_positive_weight(
            self._class_sample_weight(y, sample_weight)
        )
        plan = self._mixup_plan(sample_weight)
        W = self.coef_.toarray() if sparse.issparse(self.coef_) else self.coef_
        Z = np.asarray(safe_sparse_dot(X, W.T.astype(X.dtype)))
        Z += self.intercept_.astype(X.dtype)
        return plan.loss(Z, Y)

    # -------------------------------------------------------------- prediction
    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Sigmoid of the logit for two classes, softmax of the logits otherwise;
            columns follow ``classes_``.
        """
        check_is_fitted(self)
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p1 = special.expit(scores)
            return np.column_stack([1.0 - p1, p1])
        return special.softmax(scores, axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities of the classes, in the order of ``classes_``.
        """
        check_is_fitted(self)
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return np.column_stack(
                [-np.logaddexp(0, scores), -np.logaddexp(0, -scores)]
            )
        return special.log_softmax(scores, axis=1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
