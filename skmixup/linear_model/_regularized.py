"""MixupRegularizedLogisticRegression: ERM plus the second-order Mixup penalty."""

import warnings

import numpy as np
from scipy import optimize, sparse
from sklearn.utils._param_validation import StrOptions

from skmixup._mixing import mixing_moments
from skmixup.exceptions import UnboundedPenaltyWarning
from skmixup.linear_model._base import _MIXUP_CONSTRAINTS, _BaseMixupLinearClassifier
from skmixup.linear_model._penalty import MixupPenaltyLoss

# Largest linear program (constraints x variables, n (K - 1) x K (d + 1)) solved to
# test linear separability when C=np.inf; above it only the solution is inspected.
_LP_MAX_SIZE = 2_000_000


class MixupRegularizedLogisticRegression(_BaseMixupLinearClassifier):
    """Logistic regression with the paper's second-order Mixup penalty.

    Lemma 3.1 of Zhang et al. (2021) writes the Mixup loss as the standard loss
    plus data-dependent terms ``R1 + R2`` (``R3 = 0`` for linear models) plus a
    higher-order remainder. This estimator minimises the truncated expansion,
    deterministically and without any augmentation:

    .. math::

        \\min_{W, b}\\ \\sum_i s_i\\, \\mathrm{CE}(z_i, y_i) + [R_1] + R_2
        + \\frac{\\lVert W \\rVert_F^2}{2 C \\sum_i s_i},

    with ``z_i = W x_i + b``, ``s_i`` the normalised sample weights,
    ``zc_i = W (x_i - x_bar)``, ``p_i`` the predicted probabilities,
    ``H_i = diag(p_i) - p_i p_i^T`` and

    .. math::

        R_1 = -m_1 \\sum_i s_i (p_i - y_i)^\\top z^c_i, \\qquad
        R_2 = \\frac{m_2}{2} \\sum_i s_i\\, \\mathrm{tr}\\big(H_i (W \\Sigma_X W^\\top
        + z^c_i z^{c\\top}_i)\\big).

    ``m1 = E[1 - lambda]`` and ``m2 = E[(1 - lambda)^2]`` are the moments of the
    law ``D~`` of Lemma 3.1 for ``lambda ~ Beta(mixup_alpha, mixup_beta)``;
    ``x_bar`` and ``Sigma_X`` are the weighted mean and weighted covariance
    (normalised by the weight sum, the paper's 1/n) of the training inputs. ``R2``
    is the "data-adaptive" penalty of the paper's section 4: a curvature-weighted
    ``W Sigma_X W^T`` instead of ridge's ``W W^T``. Everything is a function of the
    logits ``Z`` (``W Sigma_X W^T`` is the covariance of the centered logits), so
    one evaluation costs the two matrix products with ``X`` of plain logistic
    regression plus ``O(n K^2)``, with analytic gradients; sparse ``X`` is never
    centered nor densified.

    Read more in the :ref:`User Guide <linear_model>`.

    Parameters
    ----------
    mixup_alpha : float, default=1.0
        First parameter of the Mixup law ``Beta(mixup_alpha, mixup_beta)``; it sets
        the penalty strength through ``m1`` and ``m2 = m1 / 2``
        (``mixup_alpha -> 0`` gives plain logistic regression).
    mixup_beta : float, default=None
        Second parameter; ``None`` means ``mixup_beta = mixup_alpha``. The
        objective is symmetric in the two parameters.
    terms : {"R1+R2", "R2"}, default="R1+R2"
        Penalty terms. ``R1`` vanishes at every stationary point of the standard
        loss and rewards larger weights; ``"R2"`` keeps only the data-adaptive
        quadratic penalty.
    C : float, default=1.0
        Inverse of the ridge strength, with scikit-learn's meaning: the penalty is
        ``||W||^2 / (2 C sum(sample_weight))``. With ``C=np.inf`` the objective has
        no minimiser on separable data (``||W|| -> inf``, see Notes).
    fit_intercept : bool, default=True
        Whether to fit an intercept (not penalised).
    tol : float, default=1e-4
        L-BFGS-B stops when the largest component of the projected gradient is
        below ``tol``.
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.
    class_weight : dict or "balanced", default=None
        Weights of the classes, multiplied into ``sample_weight`` (and so into
        ``x_bar`` and ``Sigma_X``).
    warm_start : bool, default=False
        Start from the previous solution when refitting with the same classes.
    verbose : int, default=0
        Verbosity of L-BFGS-B.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients, of the dtype of ``X``.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts (zeros when ``fit_intercept=False``).
    penalty_terms_ : dict
        ``{"R1": float, "R2": float}`` at the solution (both are reported whatever
        ``terms`` is), with the training set's weighted ``x_bar`` and ``Sigma_X``.
    n_iter_ : ndarray of shape (1,)
        Number of L-BFGS-B iterations, as scikit-learn's ``LogisticRegression``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during fit, when ``X`` has string column names.

    See Also
    --------
    MixupLogisticRegression : Minimises the exact Mixup loss.
    skmixup.theory.approximate_mixup_loss : The same terms for any fitted linear
        classifier.

    Notes
    -----
    This is not Mixup: it minimises the second-order approximation, which is
    accurate only where the logits vary little along mixing segments. Its
    minimiser differs from the exact-Mixup one, most on well-separated data. The
    objective is not convex in general; L-BFGS-B starts from zero (or the
    previous solution with ``warm_start``).

    On linearly separable data the standard loss, ``R1`` and ``R2`` all tend to
    0 along a separating direction, so without ridge (``C=np.inf``) the problem
    is ill-posed (its infimum is approached as ``||W|| -> inf``); L-BFGS-B then
    stops at a local minimum or an arbitrary point of a diverging path, and the
    fit warns with :class:`UnboundedPenaltyWarning`. Separability is detected
    from the solution's margins and, for small problems
    (``n (K - 1) K (d + 1) <= 2e6``), by a feasibility linear program. Use a
    finite ``C``.

    Integer sample weights are equivalent to repeated rows, including in
    ``x_bar`` and ``Sigma_X``.

    References
    ----------
    .. [1] H. Zhang, M. Cisse, Y. N. Dauphin, D. Lopez-Paz, "mixup: Beyond
       Empirical Risk Minimization", ICLR 2018.
    .. [2] L. Zhang, Z. Deng, K. Kawaguchi, A. Ghorbani, J. Zou, "How Does Mixup
       Help With Robustness and Generalization?", ICLR 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skmixup.linear_model import MixupRegularizedLogisticRegression
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), MixupRegularizedLogisticRegression())
    >>> clf.fit(X, y).score(X, y) > 0.95
    True
    >>> sorted(clf[-1].penalty_terms_)
    ['R1', 'R2']
    """

    _parameter_constraints = {
        **_MIXUP_CONSTRAINTS,
        "terms": [StrOptions({"R1+R2", "R2"})],
    }

    def __init__(
        self,
        *,
        mixup_alpha=1.0,
        mixup_beta=None,
        terms="R1+R2",
        C=1.0,
        fit_intercept=True,
        tol=1e-4,
        max_iter=1000,
        class_weight=None,
        warm_start=False,
        verbose=0,
    ):
        self.mixup_alpha = mixup_alpha
        self.mixup_beta = mixup_beta
        self.terms = terms
        self.C = C
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.verbose = verbose

    def _make_objective(self, n_classes, n_features, plan):
        m1, m2 = mixing_moments(self.mixup_alpha, self.mixup_beta)
        return MixupPenaltyLoss(
            n_classes, n_features, self.fit_intercept, m1, m2, self.terms
        )

    def _finish_fit(self, objective, coef, X, Y, sample_weight):
        sw = (sample_weight / sample_weight.sum()).astype(X.dtype)
        if self._l2_reg_strength(sample_weight) == 0.0:
            self._check_bounded(objective, coef, X, Y.astype(X.dtype), sw)
        _, r1, r2 = objective.terms_at(coef, X, Y, sw)
        self.penalty_terms_ = {"R1": r1, "R2": r2}

    def _check_bounded(self, objective, coef, X, Y, sw):
        """With ``C=np.inf``, warn when the data are linearly separable: the
        infimum (0) of the objective is then approached only as ``||W|| -> inf``,
        and L-BFGS-B stops at a local minimum or an arbitrary point of a
        diverging path."""
        if not np.all(np.isfinite(coef)):
            reason = "the coefficients diverged to non-finite values"
        elif _separates(objective, coef, X, Y, sw):
            reason = "the solution separates the training data"
        elif _linearly_separable(X, Y, sw, objective.fit_intercept):
            reason = "a linear program finds a separating hyperplane"
        else:
            return
        W = objective.unpack(coef)[0]
        warnings.warn(
            f"C=np.inf on linearly separable training data ({reason}): the "
            "problem is ill-posed, cross-entropy + Mixup penalty tends to 0 as "
            "||W|| -> inf along every separating direction. L-BFGS-B stopped at "
            f"||W|| = {np.linalg.norm(W):.3g}, a local minimum or an arbitrary "
            "point of a diverging path. Use a finite C.",
            UnboundedPenaltyWarning,
            stacklevel=5,  # past _finish_fit, fit and sklearn's _fit_context
        )


def _separates(objective, coef, X, Y, sw):
    """Whether the model ``coef`` classifies every weighted sample strictly right."""
    Z = np.asarray(objective.logits(coef, X), dtype=np.float64)
    if Z.shape[1] == 1:
        margin = (2.0 * Y[:, 0] - 1.0) * Z[:, 0]
    else:
        true = np.einsum("ik,ik->i", Y, Z)
        margin = true - np.where(Y > 0.5, -np.inf, Z).max(axis=1)
    return bool(np.all(margin[sw > 0] > 0))


def _linearly_separable(X, Y, sw, fit_intercept):
    """Feasibility LP: is there ``(W, b)`` with all margins >= 1?

    Binary: ``(2 y_i - 1)(theta^T x_i + b) >= 1``; multiclass:
    ``(w_{y_i} - w_k)^T x_i + b_{y_i} - b_k >= 1`` for all ``k != y_i``. Returns
    False (not tested) when the program would be too large.
    """
    keep = sw > 0
    Xa = sparse.csr_matrix(X[keep], dtype=np.float64)
    if fit_intercept:
        Xa = sparse.hstack([Xa, np.ones((Xa.shape[0], 1))], format="csr")
    Y = np.asarray(Y[keep], dtype=np.float64)
    n, p = Xa.shape
    if Y.shape[1] == 1:
        K, codes = 1, None
        if n * p > _LP_MAX_SIZE:
            return False
        A = -sparse.diags(2.0 * Y[:, 0] - 1.0) @ Xa
    else:
        K = Y.shape[1]
        if n * (K - 1) * K * p > _LP_MAX_SIZE:
            return False
        codes = Y.argmax(axis=1)
        blocks = []
        for k in range(K):  # rows (i, k) for every i with y_i != k
            rows = np.flatnonzero(codes != k)
            coef = np.zeros((rows.size, K))
            coef[np.arange(rows.size), codes[rows]] = -1.0
            coef[:, k] = 1.0
            Xr = Xa[rows]
            blocks.append(sparse.hstack([sparse.diags(c) @ Xr for c in coef.T]))
        A = sparse.vstack(blocks, format="csr")
    result = optimize.linprog(
        np.zeros(A.shape[1]),
        A_ub=A,
        b_ub=-np.ones(A.shape[0]),
        bounds=(None, None),
        method="highs",
    )
    return result.status == 0
