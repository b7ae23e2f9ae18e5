"""MixupLogisticRegression: logistic regression fitted on the exact Mixup loss."""

import numbers

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from skmixup.linear_model._base import _MIXUP_CONSTRAINTS, _BaseMixupLinearClassifier
from skmixup.linear_model._loss import MixupLoss
from skmixup.linear_model._plan import MixupPlan
from skmixup.utils._callbacks import begin_fit
from skmixup.utils._labels import encode_targets

# Base step of partial_fit's AdaGrad, in coefficient units (features of unit scale:
# standardized, TF-IDF, one-hot). Measured by benchmarks/bench_streaming.py: 0.1
# matches or beats SGDClassifier after 1 to 20 passes; 0.2 falls behind at 20.
_ADAGRAD_STEP = 0.1


class MixupLogisticRegression(_BaseMixupLinearClassifier):
    """Logistic regression fitted by minimising the exact expected Mixup loss.

    Mixup (Zhang et al., 2018) trains on convex combinations of pairs of examples
    and of their labels, ``x~ = lam x_i + (1 - lam) x_j`` and
    ``y~ = lam y_i + (1 - lam) y_j`` with ``lam ~ Beta(alpha, beta)``. For a linear
    model the logits of ``x~`` are the mix of the logits, so the *expected* Mixup
    loss is computed from the ``n x K`` logits alone, deterministically:

    .. math::

        \\min_{W, b} \\sum_{i, j} w_{ij}\\,
        \\mathbb{E}_{\\lambda \\sim \\mathrm{Beta}(\\alpha, \\beta)}\\,
        \\mathrm{CE}\\big(\\lambda z_i + (1 - \\lambda) z_j,\\,
        \\lambda y_i + (1 - \\lambda) y_j\\big)
        + \\frac{\\lVert W \\rVert_F^2}{2 C \\sum_i s_i}

    where ``z_i = W x_i + b``. With all pairs, ``w_ij = s_i s_j / (sum s)^2`` and
    this is the paper's Eq. (1) (Zhang et al., 2021) exactly. With sampled
    partners, one seeded random order of the samples is cut into blocks of at
    least ``n_partners + 1`` samples and each sample is paired with its block;
    the parts of the objective that are cheap over all pairs (the label term and
    the secant ``lambda LSE(z_i) + (1 - lambda) LSE(z_j)``) are taken over all
    pairs and the blocks estimate the rest, so that the objective is an unbiased
    estimate of Eq. (1). The expectation over ``lambda``
    is a Gauss-Lobatto quadrature with ``n_quadrature`` interior nodes (the
    endpoints ``lambda = 0, 1`` cost nothing: the mixed point is then a training
    point). The problem is convex and solved with L-BFGS-B; one evaluation costs
    the two matrix products with ``X`` of plain logistic regression plus, per
    interior node, a few matrix products and one logarithm per pair on the
    ``n x K`` logits.

    Two classes give one coefficient vector (sigmoid); three or more classes give a
    multinomial (softmax) model, as scikit-learn's ``LogisticRegression`` does.

    Read more in the :ref:`User Guide <linear_model>`.

    Parameters
    ----------
    mixup_alpha : float, default=1.0
        First parameter of the Mixup law ``Beta(mixup_alpha, mixup_beta)``. Small
        values mix little (``mixup_alpha -> 0`` gives plain logistic regression).
    mixup_beta : float, default=None
        Second parameter of the Mixup law; ``None`` means ``mixup_beta =
        mixup_alpha``. The objective is symmetric in the two parameters.
    C : float, default=1.0
        Inverse of the ridge strength, with scikit-learn's meaning: the penalty is
        ``||W||^2 / (2 C sum(sample_weight))``. ``C=np.inf`` fits without ridge;
        the Mixup loss alone keeps the coefficients finite even on separable data.
    fit_intercept : bool, default=True
        Whether to fit an intercept (not penalised).
    n_partners : int, "all" or "auto", default="auto"
        Partners per sample. ``"all"``: every pair, the exact objective of
        Eq. (1) (``n^2`` work per node). An int ``P``: the samples of a seeded
        random order are cut into blocks of at least ``P + 1`` and paired within
        their block (an unbiased estimate of Eq. (1)). ``"auto"``: all pairs while
        ``n^2`` times the number of node evaluations stays within ``2^24``
        (``n`` up to 2,896 with ``mixup_alpha == mixup_beta``, 2,048 otherwise);
        above, blocks sized to about ``2^21`` pair evaluations, at least 15
        partners (19 partners at 50,000 samples).
    n_quadrature : int or "auto", default="auto"
        Interior nodes of the Gauss-Lobatto rule for ``lambda ~ Beta(mixup_alpha,
        mixup_beta)`` (exact for polynomials of degree ``2 n_quadrature + 1``).
        With ``mixup_alpha == mixup_beta`` the nodes ``lambda`` and ``1 - lambda``
        give the same term and are evaluated once. ``"auto"`` is 4 (2 node
        evaluations): measured against 24 nodes, it moves the fitted
        coefficients by at most 0.5% on digits, breast_cancer and wine.
    tol : float, default=1e-4
        L-BFGS-B stops when the largest component of the projected gradient is
        below ``tol``.
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.
    class_weight : dict or "balanced", default=None
        Weights of the classes, multiplied into ``sample_weight``.
    warm_start : bool, default=False
        Start from the previous solution when refitting with the same classes.
    random_state : int, RandomState instance or None, default=None
        Seeds the partner draws (and the Mixup draws of :meth:`partial_fit`). Pass
        an int for reproducible fits; an int gives every cross-validation fold the
        same randomness.
    verbose : int, default=0
        Verbosity of L-BFGS-B.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients, of the dtype of ``X`` (float32 stays float32).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts (zeros when ``fit_intercept=False``).
    n_iter_ : ndarray of shape (1,)
        Number of L-BFGS-B iterations of the last :meth:`fit` (1 after
        :meth:`partial_fit`), as scikit-learn's ``LogisticRegression``.
    t_ : int
        Number of minibatch steps taken by :meth:`partial_fit` (absent after
        :meth:`fit`, which starts a new stream from its coefficients).
    n_samples_seen_ : float
        Total sample weight seen by :meth:`partial_fit`: its ridge is
        ``||W||^2 / (2 C n_samples_seen_)`` (absent after :meth:`fit`).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : The same model fitted on the
        standard (un-mixed) loss.
    MixupRegularizedLogisticRegression : The paper's second-order approximation
        of the Mixup loss, as an explicit penalty.

    Notes
    -----
    For a loss affine in the label (the cross-entropy is), Lemma 3.1 (part 1) of
    Zhang et al. (2021) writes the same objective with the anchor's label and
    ``lambda ~ D~``, the mixture ``alpha/(alpha+beta) Beta(alpha+1, beta) +
    beta/(alpha+beta) Beta(beta+1, alpha)``
    (:func:`skmixup.theory.mixup_loss` evaluates both forms).

    The defaults are exact where all pairs fit the work budget. Measured
    (``benchmarks/bench_linear.py``): the default fit is within 2% of the
    all-pairs minimiser on digits, breast_cancer and wine for ``mixup_alpha`` in
    {0.2, 1} and ``Beta(5, 0.5)``; at ``tol=1e-4`` most of that distance is the
    solver's tolerance, not the objective.

    :meth:`sparsify` and :meth:`densify` convert ``coef_`` as for scikit-learn's
    linear models.

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
    >>> from skmixup.linear_model import MixupLogisticRegression
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), MixupLogisticRegression(random_state=0))
    >>> clf.fit(X, y).score(X, y) > 0.95
    True
    """

    _parameter_constraints = {
        **_MIXUP_CONSTRAINTS,
        "n_partners": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"all", "auto"}),
        ],
        "n_quadrature": [
            Interval(numbers.Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        mixup_alpha=1.0,
        mixup_beta=None,
        C=1.0,
        fit_intercept=True,
        n_partners="auto",
        n_quadrature="auto",
        tol=1e-4,
        max_iter=1000,
        class_weight=None,
        warm_start=False,
        random_state=None,
        verbose=0,
    ):
        self.mixup_alpha = mixup_alpha
        self.mixup_beta = mixup_beta
        self.C = C
        self.fit_intercept = fit_intercept
        self.n_partners = n_partners
        self.n_quadrature = n_quadrature
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    # The objective is the Mixup plan of these settings (exact Eq. (1)).
    _fit_on_plan = True

    def _plan_settings(self):
        return self.n_partners, self.n_quadrature, self.random_state

    def _make_objective(self, n_classes, n_features, plan):
        return MixupLoss(n_classes, n_features, self.fit_intercept, plan)

    def _finish_fit(self, objective, coef, X, Y, sample_weight):
        # A later partial_fit starts streaming from this fit's coefficients.
        stream = ("t_", "n_samples_seen_", "_rng", "_iterate", "_average", "_grad_sq")
        for name in stream:
            self.__dict__.pop(name, None)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One pass of averaged stochastic Mixup over a chunk, for streaming data.

        The chunk is cut into random minibatches of 64 samples. On each the
        model takes one AdaGrad step (Duchi, Hazan and Singer, JMLR 2011: per
        coefficient, ``0.1 * g / sqrt(sum of the g^2 so far)``) on the
        minibatch's *exact* expected Mixup loss: the loss object of :meth:`fit`,
        over all pairs of the minibatch, the expectation over
        ``lam ~ Beta(mixup_alpha, mixup_beta)`` by quadrature. ``coef_`` and
        ``intercept_`` are the running average of the iterates (Polyak-Ruppert
        averaging). AdaGrad's per-coefficient steps suit the sparse TF-IDF and
        one-hot columns of tabular pipelines, where rare columns get few
        gradients. The ridge is ``C``'s as in :meth:`fit`, relative to the
        samples seen: ``||W||^2 / (2 C S)`` with ``S`` the total sample weight
        seen so far (``n_samples_seen_``; a chunk given again counts again, as
        new samples of a stream would). Use :meth:`fit` when the data fit in
        memory: it minimises the expected Mixup loss of all pairs exactly.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data.
        y : array-like of shape (n_samples,)
            Its labels.
        classes : array-like of shape (n_classes,), default=None
            All classes; required on the first call, ignored afterwards.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the chunk's samples.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        X, y, sample_weight = self._validate_fit_input(X, y, sample_weight, reset=first)
        if first:
            Y = self._encode_labels(y, classes)
            K = Y.shape[1]
            self.coef_ = np.zeros((K, X.shape[1]), dtype=X.dtype)
            self.intercept_ = np.zeros(K, dtype=X.dtype)
        else:
            Y = encode_targets(self.classes_, y)
        if not hasattr(self, "t_"):  # first streaming call, possibly after fit
            self.t_ = 0
            self.n_samples_seen_ = 0.0
            self._rng = check_random_state(self.random_state)
            self._iterate = np.concatenate(
                [np.ravel(self.coef_), np.ravel(self.intercept_)]
            ).astype(np.float64)
            self._average = self._iterate.copy()
            self._grad_sq = np.zeros_like(self._iterate)
        sample_weight = self._class_sample_weight(y, sample_weight)
        task = begin_fit(self, X, y, max_subtasks=0, task_name="partial_fit")
        self._sgd_pass(X, Y, sample_weight)
        task.end({})  # scikit-learn callbacks see the updated model
        self.n_iter_ = np.array([1], dtype=np.int32)
        return self

    def _sgd_pass(self, X, Y, sample_weight, batch_size=64):
        """Averaged AdaGrad steps on the exact Mixup loss of each minibatch."""
        rng = self._rng
        n, d = X.shape
        K = Y.shape[1]
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            b = order[start : start + batch_size]
            w = sample_weight[b]
            if not w.sum() > 0:
                continue
            self.n_samples_seen_ += float(w.sum())
            l2 = 0.0 if np.isinf(self.C) else 1.0 / (self.C * self.n_samples_seen_)
            plan = MixupPlan.build(
                w / w.sum(),
                mixup_alpha=self.mixup_alpha,
                mixup_beta=self.mixup_beta,
                n_partners="all",
                n_quadrature=self.n_quadrature,
            )
            # The loss object always carries the intercepts (kept at 0 without
            # fit_intercept), so the iterate's layout never changes.
            objective = MixupLoss(K, d, True, plan)
            _, grad = objective.loss_gradient(self._iterate, X[b], Y[b], None, l2)
            if not self.fit_intercept:
                grad[K * d :] = 0.0
            self._grad_sq += grad * grad
            root = np.sqrt(self._grad_sq)
            self._iterate -= _ADAGRAD_STEP * np.divide(
                grad, root, out=np.zeros_like(grad), where=root > 0
            )
            self.t_ += 1
            self._average += (self._iterate - self._average) / self.t_
        self.coef_ = self._average[: K * d].reshape(K, d).astype(X.dtype)
        self.intercept_ = self._average[K * d :].astype(X.dtype)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
