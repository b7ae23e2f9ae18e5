"""The theory of Zhang et al. (ICLR 2021) as functions of a fitted model.

* :func:`mixup_loss` -- the exact Mixup loss of the paper's Eq. (1), either
  directly (mixed labels, ``lambda ~ Beta(alpha, beta)``) or in the form of
  Lemma 3.1 (label kept, ``lambda ~ D~``); the two agree to quadrature precision.
* :func:`approximate_mixup_loss` -- the second-order expansion
  ``L_std + R1 + R2 + R3`` of Lemma 3.1 / Eq. (3) for linear classifiers and
  PyTorch networks.
* :func:`mixup_radius` -- the adversarial radius ``eps_mix`` of Theorem 3.1.

Formulas: Zhang et al., ICLR 2021, Lemma 3.1, Eq. (3) and Theorem 3.1 (Sec. 2-4).
"""

import sys
import warnings
from typing import NamedTuple

import numpy as np
from scipy import sparse
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from skmixup._mixing import (
    beta_quadrature,
    check_n_partners,
    draw_partners,
    dtilde_quadrature,
    mix_rows,
    mixing_moments,
)
from skmixup.exceptions import TheoryAssumptionWarning
from skmixup.linear_model._penalty import logit_mixup_terms
from skmixup.linear_model._plan import MixupPlan
from skmixup.utils._labels import encode_targets, label_indices
from skmixup.utils._validation import check_sample_weight, is_frame

__all__ = [
    "MixupApproximation",
    "MixupRadius",
    "TheoryAssumptionWarning",
    "approximate_mixup_loss",
    "mixup_loss",
    "mixup_radius",
]

_PIPELINE_HINT = (
    "; for a pipeline pass its final step and the transformed data: "
    "(pipe[-1], pipe[:-1].transform(X))"
)
# Mixed rows per `predict_log_proba` call for general models.
_BLOCK_ROWS = 1 << 15


class MixupApproximation(NamedTuple):
    """Terms of the second-order Mixup loss ``L_std + R1 + R2 + R3``.

    Attributes
    ----------
    standard : float
        Standard (un-mixed) mean cross-entropy ``L_n^std``.
    R1, R2, R3 : float
        The terms of Lemma 3.1 (``R3 = 0`` for linear models).
    total : float
        ``standard + R1 + R2 + R3``, the approximate Mixup loss of Eq. (3).
    """

    standard: float
    R1: float
    R2: float
    R3: float
    total: float


class MixupRadius(NamedTuple):
    """Adversarial radius of Theorem 3.1.

    Attributes
    ----------
    eps_mix : float
        The paper's ``eps_mix = R c_x m1`` (l_inf scale).
    eps_mix_l2 : float
        ``eps_mix * sqrt(n_features)``, the l2 radius of the theorem.
    per_sample : ndarray of shape (n_samples,) or None
        Extension, not in the paper: ``m1 |theta^T x_i| / ||theta||_2``, the
        per-sample radius (``None`` unless ``per_sample=True``).
    """

    eps_mix: float
    eps_mix_l2: float
    per_sample: np.ndarray | None


def mixup_loss(
    estimator,
    X,
    y,
    *,
    mixup_alpha,
    mixup_beta=None,
    n_partners="all",
    n_quadrature=32,
    method="dtilde",
    random_state=None,
    sample_weight=None,
):
    """Exact expected Mixup loss (mean cross-entropy) of a fitted classifier.

    The Mixup loss of the paper's Eq. (1) is

    .. math::

        L^{mix} = \\frac{1}{n^2} \\sum_{i, j} \\mathbb{E}_{\\lambda \\sim
        \\mathrm{Beta}(\\alpha, \\beta)}\\, \\ell\\big(\\lambda x_i + (1 - \\lambda)
        x_j,\\ \\lambda y_i + (1 - \\lambda) y_j\\big),

    with ``l`` the cross-entropy. ``method="pairs"`` computes it as written (mixed
    labels, Gauss-Jacobi quadrature over ``Beta(alpha, beta)``); ``method="dtilde"``
    uses Lemma 3.1: the label of the anchor ``i`` is kept and ``lambda ~ D~``. For
    a loss affine in the label (cross-entropy is) both are the same number, up to
    the quadrature error (about 1e-11 with 32 nodes for moderate logits).

    For a linear classifier (``coef_``, ``intercept_``, ``classes_``; sigmoid for
    one coefficient row, softmax otherwise, as scikit-learn's
    ``LogisticRegression``) the logits of a mixed input are the mix of the logits,
    so the cost is ``O(n * n_partners * n_quadrature * n_classes)`` on top of one
    product with ``X``. Any other classifier with ``predict_log_proba`` or
    ``predict_proba`` (an MLP, a :class:`~sklearn.pipeline.Pipeline`) is evaluated
    on explicitly mixed inputs: ``n * n_partners * n_quadrature`` rows go through
    the model (``n^2 * n_quadrature`` with all pairs; twice as many nodes with
    ``method="dtilde"`` and ``mixup_alpha != mixup_beta``), so keep ``n`` small
    or draw partners. PyTorch classifiers (:mod:`skmixup.neural_network`, skorch
    nets) are evaluated on a float64 copy of their module on the CPU.

    Parameters
    ----------
    estimator : fitted classifier
        A linear classifier, or any classifier with ``predict_proba``.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The samples to mix (the training set for the paper's training loss).
    y : array-like of shape (n_samples,)
        Labels, among ``estimator.classes_``.
    mixup_alpha : float
        First parameter of ``Beta(mixup_alpha, mixup_beta)``, ``> 0``.
    mixup_beta : float, default=None
        Second parameter; ``None`` means ``mixup_alpha``.
    n_partners : int, "all" or "auto", default="all"
        ``"all"`` sums over all ``n^2`` ordered pairs (``i = j`` included), as
        Eq. (1) does; an int ``P >= 1`` pairs each sample with the members of its
        block of at least ``P + 1`` samples in an order drawn with
        ``random_state`` (an unbiased estimate; for a linear classifier this is
        the plan of :class:`~skmixup.linear_model.MixupLogisticRegression`, so
        its settings and ``random_state`` give its training objective); any
        other classifier gets ``P`` independent draws per sample. ``"auto"``:
        the estimators' default (all pairs up to a work budget), all pairs for
        non-linear classifiers.
    n_quadrature : int, default=32
        Quadrature nodes for the expectation over ``lambda``: for a linear
        classifier with ``method="pairs"`` the interior nodes of a Gauss-Lobatto
        rule of ``Beta(alpha, beta)`` (the endpoints are free), otherwise
        Gauss-Jacobi nodes (per component of ``D~``).
    method : {"dtilde", "pairs"}, default="dtilde"
        Lemma 3.1's form (label unmixed) or Eq. (1) as written (labels mixed).
        Both use the same evaluation for linear classifiers (see
        :class:`~skmixup.linear_model.MixupLogisticRegression`).
    random_state : int, RandomState instance or None, default=None
        Seeds the partner draws (unused with ``n_partners="all"``).
    sample_weight : array-like of shape (n_samples,), default=None
        Anchor ``i`` is weighted by ``s_i`` and partner ``j`` by ``s_j``
        (normalised): a weight of 2 equals a duplicated row.

    Returns
    -------
    loss : float
        The expected Mixup cross-entropy (natural logarithm).

    See Also
    --------
    approximate_mixup_loss : Its second-order approximation.
    skmixup.linear_model.MixupLogisticRegression : Fitted on this loss.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.theory import mixup_loss
    >>> X, y = make_moons(100, noise=0.2, random_state=0)
    >>> clf = LogisticRegression().fit(X, y)
    >>> a = mixup_loss(clf, X, y, mixup_alpha=1.0)
    >>> b = mixup_loss(clf, X, y, mixup_alpha=1.0, method="pairs")
    >>> bool(abs(a - b) < 1e-10)
    True
    """
    if method not in ("dtilde", "pairs"):
        raise ValueError(f"method must be 'dtilde' or 'pairs', got {method!r}.")
    _check_fitted(estimator)
    torch_theory = _torch_theory(estimator)
    if torch_theory is not None:  # a float64 CPU copy of the network
        estimator = torch_theory.float64_classifier(estimator)
    n_partners = check_n_partners(n_partners)
    X, to_model = _mixable(X, estimator)
    sw = check_sample_weight(sample_weight, X)
    rng = check_random_state(random_state)
    if _is_linear(estimator):
        Z, Y = _linear_logits(estimator, X, y)
        plan = MixupPlan.build(
            sw,
            mixup_alpha=mixup_alpha,
            mixup_beta=mixup_beta,
            n_partners=n_partners,
            n_quadrature=n_quadrature,
            random_state=rng,
            form=method,
        )
        return plan.loss(Z, Y)
    if hasattr(estimator, "predict_proba"):
        if n_partners == "auto":
            n_partners = "all"
        partners, pair_weight = draw_partners(X.shape[0], n_partners, rng, sw)
        if method == "dtilde":
            nodes, weights = dtilde_quadrature(mixup_alpha, mixup_beta, n_quadrature)
        else:
            nodes, weights = beta_quadrature(mixup_alpha, mixup_beta, n_quadrature)
        sw = sw / sw.sum()
        return _explicit_loss(
            estimator, X, y, sw, partners, pair_weight, nodes, weights, method, to_model
        )
    raise TypeError(
        f"{type(estimator).__name__} has neither coef_/intercept_/classes_ nor "
        "predict_proba; mixup_loss cannot evaluate it."
    )


def approximate_mixup_loss(
    estimator,
    X,
    y,
    *,
    mixup_alpha,
    mixup_beta=None,
    sample_weight=None,
    n_partners="all",
    random_state=None,
):
    """Second-order approximation of the Mixup loss of a linear classifier or network.

    Lemma 3.1 / Eq. (3) of Zhang et al. (2021): with ``m1 = E[1 - lambda]`` and
    ``m2 = E[(1 - lambda)^2]`` under ``D~``, ``x_bar`` the mean and ``Sigma_X`` the
    1/n covariance of ``X``, ``zc_i = W (x_i - x_bar)``, ``p_i`` the predicted
    probabilities and ``H_i = diag(p_i) - p_i p_i^T``,

    .. math::

        R_1 = -\\frac{m_1}{n} \\sum_i (p_i - y_i)^\\top z^c_i, \\qquad
        R_2 = \\frac{m_2}{2n} \\sum_i \\mathrm{tr}\\big(H_i (W \\Sigma_X W^\\top
        + z^c_i z^{c\\top}_i)\\big),

    and ``R3 = 0`` because the model is linear in ``x``. For two classes with one
    coefficient row this is the paper's logistic form (Lemma 3.1, logistic model:
    ``H_i = sigma_i (1 - sigma_i)``); the multiclass form is derived for this
    library. The expansion needs neither centered data nor a zero intercept.

    **X must be the training set the model was fitted on** (or the set whose Mixup
    loss is approximated): ``x_bar`` and ``Sigma_X`` come from it, because Mixup
    partners are drawn from it.

    For a PyTorch network (:class:`~skmixup.neural_network.MixupMLPClassifier`,
    :class:`~skmixup.neural_network.MixupRegularizedMLPClassifier`,
    :class:`~skmixup.neural_network.MixupNeuralNetClassifier` or another skorch
    classifier) ``W`` becomes the input Jacobian ``J_i`` of the logits at ``x_i``
    and ``R3 = (m2 / (2n)) sum_i sum_k (p_ik - y_ik) E_r[Delta_i^T Hess f_k(x_i)
    Delta_i]`` with ``Delta_i = r - x_i``, ``r`` a training input; all terms are
    computed from directional derivatives of a float64 copy of the network, over
    all partners through ``x_bar`` and ``Sigma_X`` (``rank(Sigma_X) + 1``
    directions per sample) or over ``n_partners`` drawn partners. ``R3 = 0`` for
    ReLU networks, which are piecewise linear in ``x``.

    Parameters
    ----------
    estimator : fitted linear classifier or PyTorch classifier
        A linear classifier has ``coef_``, ``intercept_`` and ``classes_`` (for
        instance :class:`~sklearn.linear_model.LogisticRegression` or
        :class:`~skmixup.linear_model.MixupLogisticRegression`). Pipelines are
        not accepted: pass the final step and the transformed training data.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The training set.
    y : array-like of shape (n_samples,)
        Its labels.
    mixup_alpha : float
        First parameter of ``Beta(mixup_alpha, mixup_beta)``.
    mixup_beta : float, default=None
        Second parameter; ``None`` means ``mixup_alpha``.
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the samples; ``x_bar`` and ``Sigma_X`` are then the weighted
        mean and weighted (normalised by the weight sum) covariance, matching
        :func:`mixup_loss` with the same weights.
    n_partners : int or "all", default="all"
        PyTorch networks only (linear models are always exact): ``"all"`` is the
        exact expectation over every training input; an int draws that many
        partners per sample with ``random_state`` (an unbiased estimate, for
        many features).
    random_state : int, RandomState instance or None, default=None
        Seeds the partner draws (unused with ``n_partners="all"``).

    Returns
    -------
    result : MixupApproximation
        Named tuple ``(standard, R1, R2, R3, total)``.

    See Also
    --------
    mixup_loss : The exact Mixup loss.
    skmixup.linear_model.MixupRegularizedLogisticRegression : Minimises
        ``standard + R1 + R2`` plus a ridge term.

    Notes
    -----
    The approximation is accurate when the logit differences along mixing
    segments are small (``|f(x_j) - f(x_i)| <~ 1``); it underestimates the exact
    loss badly (15-60%) for confident models such as the ERM solution on
    well-separated data, whatever ``mixup_alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_moons
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.theory import approximate_mixup_loss, mixup_loss
    >>> X, y = make_moons(200, noise=0.2, random_state=0)
    >>> X = (X - X.mean(0)) / X.std(0)
    >>> clf = LogisticRegression(C=0.01).fit(X, y)
    >>> approx = approximate_mixup_loss(clf, X, y, mixup_alpha=1.0)
    >>> exact = mixup_loss(clf, X, y, mixup_alpha=1.0)
    >>> bool(abs(approx.total - exact) / exact < 0.01), approx.R3
    (True, 0.0)
    """
    _check_fitted(estimator)
    torch_theory = _torch_theory(estimator)
    if not _is_linear(estimator) and torch_theory is None:
        raise TypeError(
            "approximate_mixup_loss needs a fitted linear classifier with coef_, "
            "intercept_ and classes_, or a PyTorch classifier of "
            f"skmixup.neural_network; got {type(estimator).__name__}"
            + _PIPELINE_HINT * isinstance(estimator, Pipeline)
            + "."
        )
    X = _check_X(X)
    sw = check_sample_weight(sample_weight, X)
    m1, m2 = mixing_moments(mixup_alpha, mixup_beta)
    if torch_theory is not None:
        rng = check_random_state(random_state)
        terms = torch_theory.approximate_mixup_loss(
            estimator, X, y, sw, (m1, m2), n_partners, rng
        )
        return MixupApproximation(*terms, sum(terms))
    Z, Y = _linear_logits(estimator, X, y)
    standard, r1, r2, _ = logit_mixup_terms(Z, Y, sw / sw.sum(), m1, m2, gradient=False)
    return MixupApproximation(standard, r1, r2, 0.0, standard + r1 + r2)


def mixup_radius(
    estimator, X, *, mixup_alpha, mixup_beta=None, per_sample=False, y=None
):
    """Adversarial radius ``eps_mix`` of Theorem 3.1 for binary logistic regression.

    Theorem 3.1 of Zhang et al. (2021): for centered training inputs, a linear
    model without intercept and any ``theta`` with zero training error,

    .. math::

        \\tilde L^{mix}(\\theta) \\ge \\tilde L^{adv}(\\varepsilon_{mix}\\sqrt{d},
        \\theta), \\qquad \\varepsilon_{mix} = R\\, c_x\\, m_1,

    where ``c_x = min_i ||x_i||_2 / sqrt(d)``, ``R = min_i |cos(theta, x_i)|`` and
    ``m1 = E[1 - lambda]`` under ``D~``: minimising the approximate Mixup loss
    minimises an upper bound of the second-order l2-adversarial loss of radius
    ``eps_mix sqrt(d)``, hence of the l_inf one of radius ``eps_mix``.

    For a PyTorch network (the neural-network version of the theorem: ReLU
    networks without biases, so that ``f(x_i) = grad f(x_i)^T x_i``) each sample's
    input gradient ``grad f(x_i)`` replaces ``theta``: ``R = min_i |cos(grad
    f(x_i), x_i)|``, with ``f`` the logit difference for two classes. For more
    classes (an extension derived for this library, needs ``y``) the direction is
    the loss gradient ``J_i^T (p_i - y_i)``.

    Parameters
    ----------
    estimator : fitted binary linear classifier or PyTorch classifier
        One coefficient row ``theta = coef_[0]``, or a network of
        :mod:`skmixup.neural_network` (or another skorch classifier).
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The training set (both minima run over it).
    mixup_alpha : float
        First parameter of ``Beta(mixup_alpha, mixup_beta)``.
    mixup_beta : float, default=None
        Second parameter; ``None`` means ``mixup_alpha``.
    per_sample : bool, default=False
        Also return ``m1 |theta^T x_i| / ||theta||_2``, ``m1`` times the distance
        of ``x_i`` to the hyperplane ``theta^T x = 0``. **This is an extension, not
        the paper's result**: with centered data, no intercept and zero training
        error, ``R1 = (1/n) sum_i eps_i |sigma_i - y_i| ||theta||`` exactly, so
        ``eps_i`` is the radius that sample ``i`` actually gets; ``eps_mix`` is
        the worst case over the training set.
    y : array-like of shape (n_samples,), default=None
        Training labels. When given, zero training error (``theta`` in the set
        ``Theta`` of the theorem: ``(2 y_i - 1) theta^T x_i >= 0``) is checked.

    Returns
    -------
    result : MixupRadius
        Named tuple ``(eps_mix, eps_mix_l2, per_sample)``.

    Warns
    -----
    TheoryAssumptionWarning
        When the theorem's assumptions fail: ``X`` not centered, a non-zero
        intercept (a network that is not positively homogeneous), or (when ``y``
        is given) ``theta`` misclassifies a training point. The numbers are
        still returned but the theorem's inequality need not hold.

    Notes
    -----
    ``eps_mix`` is ``0`` as soon as one training point lies on the decision
    boundary or at the origin; on real data it is about ``1e-3`` (standardized
    features) and is not a recommended attack radius.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.theory import mixup_radius
    >>> X = np.array([[1.0, 1.0], [2.0, 0.5], [-1.0, -1.0], [-2.0, -0.5]])
    >>> clf = LogisticRegression(fit_intercept=False).fit(X, [1, 1, 0, 0])
    >>> radius = mixup_radius(clf, X, mixup_alpha=1.0)
    >>> bool(radius.eps_mix > 0)
    True
    """
    _check_fitted(estimator)
    torch_theory = _torch_theory(estimator)
    if torch_theory is not None:
        return MixupRadius(
            *torch_theory.mixup_radius(
                estimator,
                _check_X(X),
                mixup_alpha=mixup_alpha,
                mixup_beta=mixup_beta,
                per_sample=per_sample,
                y=y,
            )
        )
    if not _is_linear(estimator) or np.shape(estimator.coef_)[0] != 1:
        raise TypeError(
            "mixup_radius needs a fitted binary linear classifier (one row of "
            "coef_, as LogisticRegression has for two classes)"
            + _PIPELINE_HINT * isinstance(estimator, Pipeline)
            + "."
        )
    X = _check_X(X)
    theta = np.asarray(estimator.coef_, dtype=np.float64)[0]
    if X.shape[1] != theta.size:
        raise ValueError(
            f"X has {X.shape[1]} features, the estimator expects {theta.size}."
        )
    m1, _ = mixing_moments(mixup_alpha, mixup_beta)
    d = X.shape[1]
    f = np.asarray(X @ theta).ravel()
    if sparse.issparse(X):
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    else:
        norms = np.linalg.norm(X, axis=1)
    theta_norm = float(np.linalg.norm(theta))
    _check_radius_assumptions(estimator, X, y, f, norms)
    c_x = float(norms.min()) / np.sqrt(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.where(norms > 0, np.abs(f) / (theta_norm * norms), 0.0)
    R = float(cos.min()) if theta_norm > 0 else 0.0
    eps = R * c_x * m1
    ps = None
    if per_sample:
        ps = m1 * np.abs(f) / theta_norm if theta_norm > 0 else np.zeros_like(f)
    return MixupRadius(eps, eps * np.sqrt(d), ps)


# ----------------------------------------------------------------------- helpers
def _torch_theory(estimator):
    """The torch side of this module when ``estimator`` is a PyTorch classifier."""
    if "skorch" not in sys.modules:  # then no PyTorch classifier can exist
        return None
    from skmixup.neural_network import _theory

    return _theory if _theory.is_torch_classifier(estimator) else None


def _check_fitted(estimator):
    """NotFittedError for an unfitted estimator (duck-typed models pass as fitted)."""
    if hasattr(estimator, "fit"):
        check_is_fitted(estimator)


def _check_X(X):
    return check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32])


def _mixable(X, estimator):
    """X as numbers to mix, and how to give mixed rows to the model.

    A DataFrame given to a model that is not linear (a Pipeline whose
    ColumnTransformer selects columns by name, say) gets its mixed rows back as a
    DataFrame with the same columns: Mixup's ``lambda x_i + (1 - lambda) x_j`` is
    taken column by column in the raw input. Only numeric columns (nullable
    Float64/Int64 included, pd.NA as NaN) can be mixed: a text, category or
    boolean column raises a TypeError that names it.
    """
    if not is_frame(X) or _is_linear(estimator):
        return _check_X(X), lambda A: A
    from skmixup.metrics._jacobians import numeric_dtype

    bad = [
        c for c, dt in zip(X.columns, X.dtypes, strict=True) if not numeric_dtype(dt)
    ]
    if bad:
        raise TypeError(
            f"Mixup mixes inputs, and X's columns {bad!r} are not numeric (text, "
            "category or boolean), so their mixed values are undefined. Evaluate "
            "the final estimator on the transformed features instead: "
            "mixup_loss(pipe[-1], pipe[:-1].transform(X), y, ...)."
        )
    columns = X.columns
    values = (
        np.column_stack(
            [
                X.iloc[:, j].to_numpy(dtype=np.float64, na_value=np.nan)
                for j in range(X.shape[1])
            ]
        )
        if X.shape[1]
        else np.zeros((X.shape[0], 0))
    )
    frame = type(X)
    return _check_X_missing(values), lambda A: frame(A, columns=columns)


def _check_X_missing(values):
    """Float rows that may hold NaN (the model's own imputer handles them)."""
    return check_array(values, dtype=np.float64, ensure_all_finite="allow-nan")


def _is_linear(estimator):
    return not isinstance(estimator, Pipeline) and hasattr(estimator, "coef_")


def _linear_logits(estimator, X, y):
    """Float64 logits ``(n, K)`` (``K = 1``: sigmoid) and target matrix ``Y``."""
    for attr in ("coef_", "intercept_", "classes_"):
        if not hasattr(estimator, attr):
            raise NotFittedError(
                f"{type(estimator).__name__} has no {attr}; fit it first."
            )
    W = estimator.coef_
    W = np.atleast_2d(W.toarray() if sparse.issparse(W) else np.asarray(W, np.float64))
    b = np.broadcast_to(
        np.asarray(estimator.intercept_, dtype=np.float64), (W.shape[0],)
    )
    classes = np.asarray(estimator.classes_)
    if W.shape[1] != X.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features, the estimator expects {W.shape[1]}."
        )
    if not (W.shape[0] == classes.size or (W.shape[0] == 1 and classes.size == 2)):
        raise ValueError(
            f"coef_ has {W.shape[0]} rows for {classes.size} classes: expected one "
            "row (binary sigmoid) or one row per class (softmax)."
        )
    Z = np.asarray(X @ W.T, dtype=np.float64) + b
    Y = encode_targets(classes, y)
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have shape ({X.shape[0]},), got {np.shape(y)}.")
    if W.shape[0] != 1 and classes.size == 2:  # two softmax rows
        Y = np.column_stack([1.0 - Y[:, 0], Y[:, 0]])
    return Z, Y


def _encode(classes, y, n_samples):
    """Class index of each label (``classes`` need not be sorted)."""
    y = np.asarray(y)
    if y.shape != (n_samples,):
        raise ValueError(f"y must have shape ({n_samples},), got {y.shape}.")
    return label_indices(classes, y)


def _explicit_loss(
    estimator, X, y, sw, partners, pair_weight, nodes, weights, method, to_model
):
    """Mix the inputs explicitly and call ``predict_log_proba`` (any classifier).

    ``to_model`` gives the mixed rows the container the model was fitted on (a
    DataFrame with X's columns for a model that selects columns by name).
    """
    classes = np.asarray(estimator.classes_)
    codes = _encode(classes, y, X.shape[0])
    n, Q = X.shape[0], nodes.size
    P = n if partners is None else partners.shape[1]
    rows = max(1, _BLOCK_ROWS // (P * Q))
    total = 0.0
    for start in range(0, n, rows):
        anchors = np.arange(start, min(start + rows, n))
        c = anchors.size
        if partners is None:
            j = np.broadcast_to(np.arange(n)[None, :, None], (c, P, Q))
            pw = np.broadcast_to(pair_weight[None, :], (c, P))
        else:
            j = np.broadcast_to(partners[anchors][:, :, None], (c, P, Q))
            pw = pair_weight[anchors]
        i = np.broadcast_to(anchors[:, None, None], (c, P, Q))
        lam = np.broadcast_to(nodes, (c, P, Q))
        Xm = mix_rows(X, i.ravel(), j.ravel(), lam.ravel())
        logp = _log_proba(estimator, to_model(Xm))
        flat = np.arange(c * P * Q)
        li = logp[flat, codes[i.ravel()]]
        if method == "pairs":
            lj = logp[flat, codes[j.ravel()]]
            ce = -(lam.ravel() * li + (1 - lam.ravel()) * lj)
        else:
            ce = -li
        per_pair = ce.reshape(c, P, Q) @ weights
        total += float(sw[anchors] @ (per_pair * pw).sum(axis=1))
    return total


def _log_proba(estimator, X):
    if hasattr(estimator, "predict_log_proba"):
        return np.asarray(estimator.predict_log_proba(X), dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(estimator.predict_proba(X), dtype=np.float64))


def _check_radius_assumptions(estimator, X, y, f, norms):
    problems = []
    mean = np.asarray(X.mean(axis=0)).ravel()
    if np.linalg.norm(mean) > 1e-8 * max(1.0, float(norms.max())):
        problems.append(
            f"X is not centered (||x_bar|| = {np.linalg.norm(mean):.3g}; the "
            "theorem needs x_bar = 0, e.g. StandardScaler on the training set)"
        )
    b = float(np.ravel(estimator.intercept_)[0])
    if b != 0.0:
        problems.append(f"the intercept is {b:.3g}, not 0 (fit_intercept=False)")
    if y is not None:
        sign = 2.0 * _encode(np.asarray(estimator.classes_), y, X.shape[0]) - 1.0
        n_wrong = int(np.sum(sign * f < 0))
        if n_wrong:
            problems.append(f"theta misclassifies {n_wrong} training points")
    if problems:
        warnings.warn(
            "Theorem 3.1 assumptions do not hold: "
            + "; ".join(problems)
            + ". eps_mix is returned but the inequality is not guaranteed.",
            TheoryAssumptionWarning,
            stacklevel=3,
        )
