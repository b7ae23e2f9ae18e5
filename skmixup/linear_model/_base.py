"""Shared plumbing of skmixup's linear classifiers: validation, labels, solver."""

import numbers
import warnings

import numpy as np
from scipy import optimize, special
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)
from threadpoolctl import threadpool_limits

from skmixup.utils._callbacks import CallbackSupportMixin, begin_fit

# Up to this many samples, `mixup_loss` sums over all n^2 pairs.
_ALL_PAIRS_MAX_SAMPLES = 2000

_MIXUP_CONSTRAINTS = {
    "mixup_alpha": [Interval(numbers.Real, 0, None, closed="neither")],
    "mixup_beta": [Interval(numbers.Real, 0, None, closed="neither"), None],
    "C": [Interval(numbers.Real, 0, None, closed="right")],
    "fit_intercept": ["boolean"],
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
    "class_weight": [dict, StrOptions({"balanced"}), None],
    "warm_start": ["boolean"],
    "verbose": ["verbose"],
}


class _BaseMixupLinearClassifier(
    CallbackSupportMixin, LinearClassifierMixin, ClassifierMixin, BaseEstimator
):
    """Base class: a linear model ``z = X W^T + b`` fitted by minimising a smooth
    objective of its logits with scipy's L-BFGS-B.

    Subclasses implement ``_make_objective(X, Y, sample_weight, random_state)``, which
    returns a loss object with ``loss_gradient(coef, X, Y, sample_weight,
    l2_reg_strength)`` and the coefficient layout of
    :class:`skmixup.linear_model._loss._LinearModel`.
    """

    # ----------------------------------------------------------------- fitting
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
        """Validate, set ``classes_``; return ``X``, targets ``Y`` and the sample
        weights with the class weights folded in."""
        X, y, sample_weight = self._validate_fit_input(X, y, sample_weight)
        Y = self._encode_labels(y)
        sample_weight = self._class_sample_weight(y, sample_weight)
        if not np.any(sample_weight > 0):
            raise ValueError("sample_weight must have at least one positive entry.")
        return X, Y, sample_weight

    def _encode_labels(self, y, classes=None):
        """Set ``classes_`` and return the target matrix ``Y`` (float64)."""
        encoder = LabelEncoder()
        if classes is None:
            encoder.fit(y)
        else:
            encoder.fit(np.asarray(classes))
            unknown = np.setdiff1d(y, encoder.classes_)
            if unknown.size:
                raise ValueError(
                    f"y contains labels {unknown} that are not in classes."
                )
        self.classes_ = encoder.classes_
        if self.classes_.size < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the "
                f"data contains only one class: {self.classes_[0]!r}."
            )
        codes = encoder.transform(y)
        if self.classes_.size == 2:
            return codes[:, None].astype(np.float64)
        return np.eye(self.classes_.size)[codes]

    def _class_sample_weight(self, y, sample_weight):
        if self.class_weight is None:
            return sample_weight
        return sample_weight * compute_sample_weight(self.class_weight, y)

    def _l2_reg_strength(self, sample_weight):
        # sum_i s_i l_i / S + ||W||^2 / (2 C S): sklearn's meaning of C.
        return 0.0 if np.isinf(self.C) else 1.0 / (self.C * sample_weight.sum())

    def _initial_coef(self, objective):
        if self.warm_start and hasattr(self, "coef_"):
            if self.coef_.shape == (objective.n_classes, objective.n_features):
                b = self.intercept_ if objective.fit_intercept else None
                return objective.pack(self.coef_, b).astype(np.float64)
        return np.zeros(objective.n_dof)

    def _solve(self, objective, X, Y, sample_weight, l2_reg_strength, coef0):
        """Minimise with L-BFGS-B; returns the coefficients and the iteration count."""
        labels = self.classes_[Y.argmax(1) if Y.shape[1] > 1 else Y[:, 0].astype(int)]
        task = begin_fit(self, X, labels, max_subtasks=self.max_iter)
        if self.max_iter == 0:  # scipy would still take one step
            task.end(lambda: self._coef_attributes(objective, coef0, X.dtype))
            warnings.warn(
                f"{type(self).__name__} with max_iter=0 returns its starting point.",
                ConvergenceWarning,
                stacklevel=4,  # past fit and sklearn's _fit_context wrapper
            )
            return coef0, 0
        sw = (sample_weight / sample_weight.sum()).astype(X.dtype)
        Y = Y.astype(X.dtype)

        def fun(coef):
            return objective.loss_gradient(coef, X, Y, sw, l2_reg_strength)

        def report(intermediate_result):
            x = intermediate_result.x  # sklearn callbacks: a stop ends L-BFGS
            if task.step(lambda: self._coef_attributes(objective, x, X.dtype)):
                raise StopIteration
            if self.verbose:
                print(  # noqa: T201 - verbose output, as scikit-learn's solvers print
                    f"[{type(self).__name__}] iteration {report.n}: "
                    f"objective {intermediate_result.fun:.8g}"
                )
            report.n += 1

        report.n = 1

        # Pin the BLAS pools to one thread: the objective makes many small BLAS
        # calls, and on few cores numpy's and scipy's OpenBLAS pools (and OpenMP)
        # oversubscribe them badly; the loss object runs its own worker threads.
        with threadpool_limits(limits=1, user_api="blas"):
            result = self._minimize(fun, coef0, report)
        n_iter = int(result.nit)
        if result.status == 1 or (not result.success and n_iter >= self.max_iter):
            warnings.warn(
                f"{type(self).__name__} did not converge in max_iter={self.max_iter} "
                f"iterations (L-BFGS-B: {result.message}). Increase max_iter or tol, "
                "or scale the data.",
                ConvergenceWarning,
                stacklevel=4,  # past fit and sklearn's _fit_context wrapper
            )
        task.end(lambda: self._coef_attributes(objective, result.x, X.dtype))
        return result.x, max(n_iter, 1)

    def _minimize(self, fun, coef0, report):
        return optimize.minimize(
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
            callback=report,
        )

    def _coef_attributes(self, objective, coef, dtype):
        W, b = objective.unpack(coef)
        b = np.zeros(objective.n_classes) if b is None else b
        return {"coef_": np.array(W, dtype=dtype), "intercept_": np.array(b, dtype)}

    def _set_coef(self, objective, coef, dtype):
        W, b = objective.unpack(coef)
        self.coef_ = np.array(W, dtype=dtype)
        self.intercept_ = (
            np.array(b, dtype=dtype)
            if b is not None
            else np.zeros(objective.n_classes, dtype=dtype)
        )

    # --------------------------------------------------------------- Mixup loss
    def _mixup_loss_settings(self):
        """``(n_partners, n_quadrature, random_state)`` of :meth:`mixup_loss` above
        ``_ALL_PAIRS_MAX_SAMPLES`` samples."""
        return 8, 16, 0

    def mixup_loss(self, X, y, sample_weight=None):
        """Exact expected Mixup loss of the fitted model (ridge not included).

        The mean soft-label cross-entropy of Eq. (1) of Zhang et al. (2021) with this
        estimator's ``mixup_alpha`` and ``mixup_beta``. All ``n^2`` pairs are used for
        up to 2000 samples; above that, seeded partner draws (the estimator's
        ``n_partners`` and ``random_state`` where it has them, else 8 partners and
        seed 0). For other settings use :func:`skmixup.theory.mixup_loss`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The samples to mix, usually the training set.
        y : array-like of shape (n_samples,)
            Labels, among ``classes_``.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of anchors and partners (a weight of 2 equals a duplicated
            row).

        Returns
        -------
        loss : float
            Mean expected Mixup cross-entropy (nats per sample).
        """
        from skmixup.theory import mixup_loss  # theory imports this package

        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse="csr", reset=False, dtype=[np.float64, np.float32]
        )
        sample_weight = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
        n_partners, n_quadrature, random_state = self._mixup_loss_settings()
        if X.shape[0] <= _ALL_PAIRS_MAX_SAMPLES:
            n_partners = "all"
        return mixup_loss(
            self,
            X,
            y,
            mixup_alpha=self.mixup_alpha,
            mixup_beta=self.mixup_beta,
            n_partners=n_partners,
            n_quadrature=n_quadrature,
            random_state=random_state,
            sample_weight=sample_weight,
        )

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
