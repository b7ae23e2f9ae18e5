"""Certified robustness: per-sample proofs that no perturbation changes the prediction.

The threat model is the attacks' (:mod:`._attacks`): the ball of radius ``eps`` in
``feature_scale`` units around each sample, immutable columns and missing entries
fixed, intersected with ``clip``. For each sample, :func:`certify` answers

* ``"certified"``: a sound lower bound of the margin ``z_y - max_{k != y} z_k`` is
  positive over the whole ball, so no input in it is misclassified;
* ``"attacked"``: a counterexample inside the ball that ``predict`` misclassifies
  (from the clean point, a PGD run, the MILP's optimum or the linear model's
  worst case), checked by calling ``predict`` on it;
* ``"unknown"``: neither (the bound is too loose, or the MILP ran out of time).

Safety margin: a sample counts as certified only when the margin's lower bound
exceeds ``SAFETY[dtype] * (1 + max_k |z_k(x)|)`` (``z`` the clean logits), with
``SAFETY`` ``1e-4`` for models that compute in float32 (torch) and ``1e-9`` for
float64 ones, which covers the rounding of the model's own forward pass: the bounds
are computed in float64 on the model's exact weights.

A model family is supported by a certifier registered with
:func:`register_certifier`: a predicate on the final model and a class built from
``(estimator, model, problem)`` with ``bound()`` and ``run()`` methods that fill
``problem.status``, ``problem.margin`` and ``problem.V_adv``. The order is: the
clean prediction, cheap bounds on every sample, PGD on the samples they leave
open, then the exact method (MILP) on what is still open.
"""

import time

import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from skmixup.metrics._attacks import pgd
from skmixup.metrics._bounds import FirstLayer, Region, activate, bound_margins
from skmixup.metrics._forest_milp import ForestProgram
from skmixup.metrics._milp import exact_margins
from skmixup.metrics._network import affine_input, network_of, split_pipeline
from skmixup.metrics._trees import exact_tree_values
from skmixup.metrics._validation import attack_input, check_norm, check_real

METHODS = ("ibp", "crown", "milp")
SAFETY = {np.float32: 1e-4, np.float64: 1e-9}
# PGD steps of the attack run before bounding.
_PGD_ITER = 20

_CERTIFIERS = []


def register_certifier(predicate):
    """Register a certifier class for the final models where ``predicate(model)``.

    The class is built as ``cls(estimator, model, problem)`` (checks go in
    ``__init__``, before any attack runs). :func:`certify` then calls its
    optional ``bound()`` (cheap bounds: certify what it can, set
    ``problem.margin``), runs PGD on the samples still ``"unknown"`` if the class
    attribute ``uses_attack`` is true (the default), and calls ``run()``, which
    settles what it can of the rest: status, ``problem.margin`` (a lower bound)
    and, for attacked samples, ``problem.V_adv`` rows (checked with
    ``problem.verify``). The most recently registered matching class wins.
    """

    def decorator(cls):
        _CERTIFIERS.append((predicate, cls))
        return cls

    return decorator


class CertificationResult:
    """Per-sample verdicts of :func:`certify` (which builds it).

    Parameters
    ----------
    status : ndarray of str, shape (n_samples,)
        ``"certified"``, ``"attacked"`` or ``"unknown"``.
    margin : ndarray of shape (n_samples,)
        A lower bound of the margin ``z_y - max_{k != y} z_k`` over the ball
        (positive where certified; for the MILP, the solver's dual bound).
    X_adv : ndarray or DataFrame of shape (n_samples, n_features)
        ``X`` with each attacked row replaced by its counterexample, in ``X``'s
        container.
    method : str
        The bounding method.
    eps : float
        The radius.
    norm : str
        ``"inf"`` or ``"2"``.
    time : float
        Seconds used in all (the PGD run included).
    sample_time : ndarray of shape (n_samples,)
        Seconds of the MILP per sample (0 where it was not run).

    Attributes
    ----------
    certified, attacked, unknown : ndarray of bool, shape (n_samples,)
        Masks of the three statuses.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.metrics import certify
    >>> X = np.array([[-2.0, 0.0], [-0.1, 0.0], [0.1, 0.0], [2.0, 0.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> clf = LogisticRegression().fit(X, y)
    >>> result = certify(clf, X, y, eps=0.5, feature_scale=1)
    >>> result.status.tolist()
    ['certified', 'attacked', 'attacked', 'certified']
    >>> result.certified_accuracy(), result.attacked_accuracy()
    (0.5, 0.5)
    """

    def __init__(self, *, status, margin, X_adv, method, eps, norm, time, sample_time):
        self.status = status
        self.margin = margin
        self.X_adv = X_adv
        self.method = method
        self.eps = eps
        self.norm = norm
        self.time = time
        self.sample_time = sample_time

    @property
    def certified(self):
        """Boolean mask of the certified samples."""
        return self.status == "certified"

    @property
    def attacked(self):
        """Boolean mask of the samples with a verified counterexample."""
        return self.status == "attacked"

    @property
    def unknown(self):
        """Boolean mask of the samples neither certified nor attacked."""
        return self.status == "unknown"

    def certified_accuracy(self, sample_weight=None):
        """Weighted fraction certified: a lower bound of the robust accuracy.

        Parameters
        ----------
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        accuracy : float
            The certified accuracy.
        """
        return _fraction(self.certified, sample_weight)

    def attacked_accuracy(self, sample_weight=None):
        """Weighted fraction not attacked: an upper bound of the robust accuracy.

        Parameters
        ----------
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        accuracy : float
            The accuracy under the counterexamples found.
        """
        return _fraction(~self.attacked, sample_weight)

    def __repr__(self):
        return (
            f"CertificationResult(method={self.method!r}, eps={self.eps!r}, "
            f"certified={int(self.certified.sum())}, "
            f"attacked={int(self.attacked.sum())}, "
            f"unknown={int(self.unknown.sum())}, time={self.time:.3g}s)"
        )


def _fraction(mask, sample_weight):
    if mask.size == 0:
        return 0.0
    return float(np.average(mask, weights=sample_weight))


class _Problem:
    """The threat model of one call and the verdicts being filled in."""

    def __init__(self, estimator, data, eps, norm, method, time_limit):
        self.estimator, self.data = estimator, data
        self.eps, self.norm, self.method, self.time_limit = (
            eps,
            norm,
            method,
            time_limit,
        )
        n = data.n_samples
        self.columns = np.flatnonzero(data.scale > 0)
        lo, hi = data.delta_box(eps)
        units = None
        if norm == "2":
            moves = (data.scale > 0) & ~np.isnan(data.V)
            units = np.where(moves, data.scale, 0.0)[:, self.columns]
        self.region = Region(lo[:, self.columns], hi[:, self.columns], norm, eps, units)
        self.status = np.full(n, "unknown", dtype=object)
        self.margin = np.full(n, -np.inf)
        self.V_adv = np.array(data.V, dtype=np.float64, copy=True)
        self.sample_time = np.zeros(n)

    def verify(self, rows, deltas):
        """Whether ``predict`` misclassifies ``x + delta`` (rows, deltas (r, c))."""
        rows = np.asarray(rows)
        V = np.array(self.data.V[rows], dtype=np.float64)
        V[:, self.columns] += deltas
        sub = self.data.subset(rows) if len(rows) else self.data
        wrong = self.estimator.predict(sub.rebuild(V)) != self.data.y[rows]
        return np.asarray(wrong, dtype=bool), V

    def mark_attacked(self, rows, V):
        self.status[rows] = "attacked"
        self.V_adv[rows] = V


def _is_network(model):
    try:
        return network_of(model) is not None
    except TypeError:
        return True  # a skorch net we cannot bound: the certifier says why


@register_certifier(_is_network)
class _NetworkCertifier:
    """Linear models, MLPClassifier, skorch nets: IBP, CROWN and the MILP."""

    uses_attack = True

    def __init__(self, estimator, model, problem):
        self.network = network = network_of(model)
        self.problem = problem
        if problem.method == "milp" and not network.piecewise_linear:
            kinds = sorted({k for k, _ in network.activations} - {"relu", "identity"})
            raise TypeError(
                "method='milp' and attack='exact' need piecewise-linear "
                f"activations (ReLU, LeakyReLU, identity); this network has "
                f"{kinds}. Use method='crown' for a lower bound."
            )
        data = problem.data
        Xm, J = affine_input(estimator, data, problem.columns)
        W0, b0 = network.weights[0]
        if W0.shape[1] != Xm.shape[1]:
            raise ValueError(
                f"The model takes {W0.shape[1]} inputs but its pipeline gives "
                f"{Xm.shape[1]}."
            )
        c0 = Xm @ W0.T + b0
        if J is not None and np.all(J == J[:1]):
            J = J[0]  # the same map for every sample (no imputed entries)
        if J is None:
            A = np.ascontiguousarray(W0[:, problem.columns])
        elif J.ndim == 2:
            A = W0 @ J
        else:
            A = np.matmul(W0, J)
        if np.any(np.isnan(c0)):
            raise ValueError(
                "The model's inputs hold NaN: put a SimpleImputer before it in "
                "the pipeline."
            )
        self.first = FirstLayer(A, c0)
        logits = _forward(network, c0)
        self.tol = SAFETY[network.dtype] * (1.0 + np.abs(logits).max(axis=1))

    def bound(self):
        """IBP or CROWN margins of every sample; certify those above the margin."""
        problem = self.problem
        y_idx = problem.data.y_idx
        kind = "ibp" if problem.method == "ibp" else "crown"
        low, pre = bound_margins(self.network, self.first, problem.region, y_idx, kind)
        margin = low.min(axis=1) if low.shape[1] else np.full(len(y_idx), np.inf)
        open_ = problem.status == "unknown"
        problem.margin[:] = margin
        problem.status[open_ & (margin > self.tol)] = "certified"
        self.low, self.pre = low, pre

    def run(self):
        """Settle the samples still open: linear worst case, or the MILP."""
        todo = np.flatnonzero(self.problem.status == "unknown")
        if not len(todo):
            return
        if not self.network.activations:  # linear: the bound is exact
            self._linear_worst_case(todo, self.low)
        elif self.problem.method == "milp":
            self._milp(todo, self.low, self.pre)

    def _linear_worst_case(self, rows, low):
        problem = self.problem
        K = low.shape[1]
        y_idx = problem.data.y_idx[rows]
        worst = low[rows].argmin(axis=1)
        C = np.zeros((len(rows), 1, K))
        C[np.arange(len(rows)), 0, y_idx] = 1.0
        C[np.arange(len(rows)), 0, worst] -= 1.0
        D = self.first.subset(rows).apply(C)[:, 0, :]
        region = problem.region.subset(rows)
        # inside clip too (for norm=2 the ellipsoid's minimizer may leave the box;
        # pulling coordinates towards 0 keeps it in the ellipsoid)
        deltas = np.clip(region.argmin(D), region.lo, region.hi)
        wrong, V = problem.verify(rows, deltas)
        problem.mark_attacked(rows[wrong], V[wrong])

    def _milp(self, rows, low, pre):
        problem, first, region = self.problem, self.first, self.problem.region
        for i in rows:
            start = time.perf_counter()
            A = first.A if first.A.ndim == 2 else first.A[i]

            def verify(delta, i=i):
                wrong, V = problem.verify([i], delta[None])
                if wrong[0]:
                    problem.mark_attacked([i], V)
                return bool(wrong[0])

            status, margin, _ = exact_margins(
                self.network,
                A,
                first.c0[i],
                region.lo[i],
                region.hi[i],
                [(l[i], u[i]) for l, u in pre],
                problem.data.y_idx[i],
                low[i],
                tol=self.tol[i],
                time_limit=problem.time_limit,
                verify=verify,
            )
            problem.status[i] = status
            problem.margin[i] = max(problem.margin[i], margin)
            problem.sample_time[i] = time.perf_counter() - start


@register_certifier(lambda model: isinstance(model, DecisionTreeClassifier))
class _TreeCertifier:
    """A single decision tree: exact in closed form for every method.

    The threat model's box (l_inf) or ellipsoid (l2) reaches a leaf iff it meets
    the leaf's box (:mod:`._trees`); the sample is certified iff every leaf it
    reaches predicts its label, and attacked otherwise, with a point of a wrong
    leaf. The margin is that of the leaves' class fractions.
    """

    uses_attack = False

    def __init__(self, estimator, model, problem):
        self.estimator, self.problem = estimator, problem

    def run(self):
        problem = self.problem
        rows = np.flatnonzero(problem.status == "unknown")
        if not len(rows):
            return
        start = time.perf_counter()
        sub = problem.data.subset(rows)
        V_adv, robust, margin = exact_tree_values(
            self.estimator, sub, problem.eps, problem.norm
        )
        problem.margin[rows] = margin
        problem.status[rows[robust]] = "certified"
        broken = rows[~robust]
        if len(broken):
            deltas = (V_adv[~robust] - sub.V[~robust])[:, problem.columns]
            wrong, V = problem.verify(broken, np.nan_to_num(deltas))
            problem.mark_attacked(broken[wrong], V[wrong])
        problem.sample_time[rows] = (time.perf_counter() - start) / len(rows)


def _is_forest(model):
    return isinstance(model, (RandomForestClassifier, ExtraTreesClassifier))


@register_certifier(_is_forest)
class _ForestCertifier:
    """Random forests and extra trees (soft voting): exact for every method.

    Kantchelian et al.'s mixed-integer program (:mod:`._forest_milp`), one per
    sample and wrong class, for ``norm="inf"``. A sample is certified when every
    class's minimal margin of the mean class probabilities exceeds ``1e-9``
    (``SAFETY[float64]``), attacked when a point of the program's solution is
    misclassified by ``predict``, and unknown otherwise (out of time, or a tie,
    which ``predict`` breaks by the first class).
    """

    uses_attack = False

    def __init__(self, estimator, model, problem):
        if problem.norm != "inf":
            raise ValueError(
                "certify supports norm='inf' only for random forests and extra "
                "trees (the mixed-integer program is over a box); use "
                "robust_accuracy_score(..., attack='square') for norm=2."
            )
        if getattr(model, "n_outputs_", 1) != 1:
            raise ValueError("certify supports single-output forests only.")
        self.problem = problem
        self.program = ForestProgram(estimator, model, problem.data)

    def run(self):
        problem, program = self.problem, self.program
        data = problem.data
        rows = np.flatnonzero(problem.status == "unknown")
        r_lo, r_hi = program.box(data, problem.eps)
        tol = SAFETY[np.float64]
        for i in rows:
            start = time.perf_counter()
            status, margin, leaves = program.margins(
                r_lo[i], r_hi[i], data.y_idx[i], tol, problem.time_limit
            )
            problem.margin[i] = margin
            if status == "open":
                V = program.points(i, data, problem.eps, r_lo[i], r_hi[i], leaves)
                delta = (V - np.nan_to_num(data.V[i]))[:, problem.columns]
                wrong, V = problem.verify([i, i], np.nan_to_num(delta))
                if wrong.any():
                    problem.mark_attacked([i], V[wrong][:1])
            else:
                problem.status[i] = status
            problem.sample_time[i] = time.perf_counter() - start


def _attack_open(problem, rows, clip, random_state):
    """PGD on the samples the bounds leave open; the ones it breaks are attacked."""
    data = problem.data.subset(rows)
    X_pgd = pgd(
        problem.estimator,
        data.X,
        data.y,
        eps=problem.eps,
        norm=problem.norm,
        clip=clip,
        feature_scale=problem.data.scale,
        mutable=problem.data.movable,
        n_iter=_PGD_ITER,
        random_state=random_state,
    )
    broken = problem.estimator.predict(X_pgd) != data.y
    V_pgd = attack_input(problem.estimator, X_pgd, data.y, needs_scale=False).V
    problem.mark_attacked(rows[broken], V_pgd[broken])


def _forward(network, c0):
    """Logits from the first pre-activations."""
    Z = c0
    for (kind, slope), (W, b) in zip(
        network.activations, network.weights[1:], strict=True
    ):
        Z = activate(kind, slope, Z) @ W.T + b
    return Z


def _check_time_limit(time_limit):
    if time_limit is None:
        return None
    return check_real(time_limit, "time_limit", include_low=False)


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}.")
    return method


def certify(
    estimator,
    X,
    y,
    *,
    eps,
    method="crown",
    norm="inf",
    feature_scale="std",
    mutable=None,
    clip=None,
    time_limit=10.0,
    random_state=None,
):
    """Prove, sample by sample, that no input in the ball changes the prediction.

    A sample is *certified* when the model predicts its true label for **every**
    input of the threat model around it (the attacks' threat model: radius ``eps``
    in ``feature_scale`` units, immutable columns and missing entries fixed,
    clipped to ``clip``). Certified accuracy is a lower bound of the true robust
    accuracy; an attack's robust accuracy is an upper bound. The cheap bounds
    (IBP or CROWN) run on every sample; a PGD attack then looks for
    counterexamples among the samples they leave open, and, for
    ``method="milp"``, the mixed-integer program settles the rest.

    Parameters
    ----------
    estimator : fitted classifier
        A linear classifier (``coef_``), :class:`~sklearn.neural_network.
        MLPClassifier` (relu, identity, tanh, logistic),
        :class:`~skmixup.neural_network.MixupMLPClassifier`,
        :class:`~skmixup.neural_network.MixupRegularizedMLPClassifier`, or a skorch
        net whose module is an ``nn.Sequential`` of ``Linear`` and
        ReLU/LeakyReLU/Tanh/Sigmoid/Identity layers (or
        :class:`~skmixup.neural_network.MLPModule`); optionally the last step of a
        pipeline whose transformers are affine on the movable columns (scalers,
        PCA, SimpleImputer, ColumnTransformer with encoders, which make their
        columns immutable). Also a DecisionTreeClassifier (closed form), a
        RandomForestClassifier or ExtraTreesClassifier (Kantchelian et al.'s
        mixed-integer program, ``norm="inf"`` only), behind steps that map each
        feature the trees split on to at most one movable column; for these
        every ``method`` is exact, and an exact tie of the forest's mean class
        probabilities is ``"unknown"``.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Clean samples.
    y : array-like of shape (n_samples,)
        True labels.
    eps : float
        Radius of the ball, ``>= 0``, in units of ``feature_scale``.
    method : {"ibp", "crown", "milp"}, default="crown"
        ``"ibp"``: interval bound propagation (fastest, loosest); ``"crown"``:
        backward linear relaxation (CROWN), never looser than IBP;
        ``"milp"``: exact for piecewise-linear networks (ReLU, LeakyReLU, identity),
        a mixed-integer program per sample and class solved by HiGHS, on the
        samples CROWN leaves open. For linear models every method is exact.
    norm : {"inf", 2}, default="inf"
        Norm of the ball (``"milp"`` supports ``"inf"`` only).
    feature_scale : "std", float, array-like or mapping, default="std"
        Per-feature unit of ``eps``, as in :func:`fgsm`.
    mutable : array-like of str, int or bool, default=None
        Columns that may move, as in :func:`fgsm`.
    clip : tuple (low, high), default=None
        Valid range of the features, as in :func:`fgsm`.
    time_limit : float or None, default=10.0
        Seconds of the MILP per sample; a sample it cannot settle in time is
        ``"unknown"``. None: no limit.
    random_state : int, RandomState instance or None, default=None
        Seeds the PGD run.

    Returns
    -------
    result : CertificationResult
        Per-sample ``status``, ``margin`` lower bounds, counterexamples
        ``X_adv``, the method and the time used.

    See Also
    --------
    certified_accuracy_score : The fraction certified.
    robust_accuracy_score : Accuracy under an attack (an upper bound).

    References
    ----------
    .. [1] S. Gowal et al., "On the Effectiveness of Interval Bound Propagation for
       Training Verifiably Robust Models", 2018.
    .. [2] H. Zhang, T.-W. Weng, P.-Y. Chen, C.-J. Hsieh and L. Daniel, "Efficient
       Neural Network Robustness Certification with General Activation Functions"
       (CROWN), NeurIPS 2018.
    .. [3] V. Tjeng, K. Xiao and R. Tedrake, "Evaluating Robustness of Neural
       Networks with Mixed Integer Programming", ICLR 2019.
    .. [4] A. Kantchelian, J. D. Tygar and A. D. Joseph, "Evasion and Hardening
       of Tree Ensemble Classifiers", ICML 2016.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from sklearn.neural_network import MLPClassifier
    >>> from skmixup.metrics import certify
    >>> X, y = make_moons(n_samples=60, noise=0.1, random_state=0)
    >>> clf = MLPClassifier((8,), max_iter=2000, random_state=0).fit(X, y)
    >>> result = certify(clf, X, y, eps=0.05, method="milp", random_state=0)
    >>> sorted(set(result.status) - {"certified", "attacked"})
    []
    >>> bool((result.margin[result.certified] > 0).all())
    True
    >>> bool((clf.predict(result.X_adv)[result.attacked] != y[result.attacked]).all())
    True
    """
    return _certify(
        estimator,
        X,
        y,
        eps=eps,
        method=method,
        norm=norm,
        feature_scale=feature_scale,
        mutable=mutable,
        clip=clip,
        time_limit=time_limit,
        random_state=random_state,
        attack=True,
    )


def _certify(
    estimator,
    X,
    y,
    *,
    eps,
    method="crown",
    norm="inf",
    feature_scale="std",
    mutable=None,
    clip=None,
    time_limit=10.0,
    random_state=None,
    attack=True,
):
    """:func:`certify`; ``attack=False`` skips PGD (the certified set is the same)."""
    start = time.perf_counter()
    eps = check_real(eps, "eps")
    method = _check_method(method)
    norm = check_norm(norm)
    time_limit = _check_time_limit(time_limit)
    if method == "milp" and norm != "inf":
        raise ValueError(
            "method='milp' supports norm='inf' only; use method='crown' for norm=2."
        )
    data = attack_input(
        estimator, X, y, feature_scale=feature_scale, clip=clip, mutable=mutable
    )
    _, model = split_pipeline(estimator)
    problem = _Problem(estimator, data, eps, norm, method, time_limit)
    certifier = None
    for predicate, cls in reversed(_CERTIFIERS):
        if predicate(model):
            certifier = cls(estimator, model, problem)
            break
    if certifier is None:
        raise TypeError(
            f"certify does not support {type(model).__name__}: it bounds linear "
            "classifiers, MLPClassifier, skmixup's MLP classifiers, skorch nets "
            "of Linear and ReLU/LeakyReLU/Tanh/Sigmoid/Identity layers, decision "
            "trees, random forests and extra trees."
        )
    if data.n_samples:
        wrong = estimator.predict(X) != data.y
        problem.status[wrong] = "attacked"
        if hasattr(certifier, "bound"):
            certifier.bound()
        open_ = np.flatnonzero(problem.status == "unknown")
        uses_attack = attack and getattr(certifier, "uses_attack", True)
        if uses_attack and eps > 0 and len(open_):
            _attack_open(problem, open_, clip, random_state)
        certifier.run()
    return CertificationResult(
        status=problem.status.astype(str),
        margin=problem.margin,
        X_adv=data.rebuild(problem.V_adv),
        method=method,
        eps=eps,
        norm=norm,
        time=time.perf_counter() - start,
        sample_time=problem.sample_time,
    )
