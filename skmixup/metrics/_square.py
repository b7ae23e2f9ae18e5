"""The square attack: a gradient-free random search for any classifier or regressor.

Square Attack (Andriushchenko et al., ECCV 2020) needs only the model's scores. It
keeps, per sample, a current perturbation inside the threat model's ball and at each
query proposes a new one that differs on a random subset of the movable columns; the
proposal is kept when the objective does not decrease. On images the subset is a
square window of pixels; on tabular data columns have no neighbourhood, so the
subset is a random set of columns of expected size ``p * n_movable``, with ``p``
halved on the paper's schedule (Appendix A: at 10, 50, 200, 500, 1000, 2000, 4000,
6000 and 8000 of 10,000 iterations, here rescaled to ``n_queries``).

* ``norm="inf"``: the feasible set of a sample is a box (the ``eps`` ball
  intersected with ``clip``); the chosen columns move to a random vertex of it, as
  in the paper, or (for half of the proposals) to a uniform point of their
  interval: piecewise-constant models (trees) are often wrong only inside the box,
  where no vertex lies.
* ``norm=2``: in ``feature_scale`` units the chosen columns move along a random
  Gaussian direction, after which they are rescaled to the radius the other
  columns leave, so that the perturbation stays on the sphere of radius ``eps``
  (then clipped to ``clip``).

Objective (larger is worse for the model): for a classifier the margin loss
``max_{k != y} z_k - z_y`` of its ``decision_function`` scores ``z`` (or of
``log predict_proba`` when it has no ``decision_function``), the paper's loss, or
with ``predict`` alone (hard voting) whether the label is wrong; for a regressor the
squared error ``(f(x) - y)^2``. A classified sample stops once it is
misclassified. Each query is one batched call of the model on all samples still
being attacked.
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from skmixup.metrics._attacks import _clip, _in_dtype, register_attack
from skmixup.metrics._jacobians import dense
from skmixup.metrics._validation import (
    TINY,
    attack_input,
    check_norm,
    check_real,
)

# Chosen by measurement (user guide, "Which attack for which model"): on depth-8
# trees of breast_cancer and digits at eps=0.3 (l_inf) the gap to the exact robust
# accuracy is 0.07 / 0.035 after 300 queries and 0.035 / 0.002 after 1,000.
N_QUERIES = 1000
# Expected share of the movable columns a proposal changes at the start.
P_INIT = 0.3
# Share of the l_inf proposals that move inside the box rather than to a vertex.
INSIDE = 0.5
SPHERE_STEP = 2.0
_SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def check_n_queries(n_queries):
    bad = isinstance(n_queries, bool) or not isinstance(n_queries, numbers.Integral)
    if bad or n_queries < 1:
        raise ValueError(f"n_queries must be an integer >= 1, got {n_queries!r}.")
    return int(n_queries)


@register_attack("square")
def square_attack(
    estimator,
    X,
    y,
    *,
    eps,
    norm="inf",
    n_queries=N_QUERIES,
    feature_scale="std",
    mutable=None,
    clip=None,
    random_state=None,
):
    """Square attack: a random search that needs only the model's predictions.

    Works on any fitted classifier with ``decision_function`` or ``predict_proba``
    (trees, forests, boosting, nearest neighbours, SVMs, networks ...; with
    ``predict`` alone the search is a random walk until a label changes) and on any
    regressor with ``predict``, bare or in a pipeline, on arrays and DataFrames,
    with the tabular threat model of :func:`fgsm` (categorical columns and missing
    entries do not move, ``eps`` in ``feature_scale`` units, ``clip``).

    At each query a random subset of the movable columns of each sample still
    being attacked gets new values, a vertex of the ``eps`` box (``norm="inf"``) or
    a step along a random direction on the sphere (``norm=2``); the change is kept
    when the objective does not decrease. The objective is the margin loss
    ``max_{k != y} z_k - z_y`` of a classifier's scores (``decision_function``, or
    ``log predict_proba``), the squared error for a regressor. A sample stops
    once it is misclassified.

    Parameters
    ----------
    estimator : fitted classifier or regressor
        Any estimator with ``decision_function`` or ``predict_proba``
        (classifiers) or ``predict`` (regressors).
    X : array-like or DataFrame of shape (n_samples, n_features)
        Clean samples (sparse input is densified).
    y : array-like of shape (n_samples,)
        True labels (classifiers) or targets (regressors).
    eps : float
        Radius of the ball, ``>= 0``, in units of ``feature_scale``.
    norm : {"inf", 2}, default="inf"
        The norm of the ball.
    n_queries : int, default=1000
        Random-search iterations: the most model calls a sample gets, besides one
        call on the clean samples. The default was chosen by measurement on trees,
        forests and boosting (see the user guide).
    feature_scale : "std", float, array-like or mapping, default="std"
        Per-feature unit of ``eps``, as in :func:`fgsm`.
    mutable : array-like of str, int or bool, default=None
        Columns that may move, as in :func:`fgsm`.
    clip : tuple (low, high), default=None
        Valid range of the features, as in :func:`fgsm`.
    random_state : int, RandomState instance or None, default=None
        Seeds the search. Pass an int for reproducible (bit-identical) results.

    Returns
    -------
    X_adv : ndarray or DataFrame of shape (n_samples, n_features)
        Attacked samples in ``X``'s container, as for :func:`fgsm`.

    See Also
    --------
    pgd : The gradient attack, for models with input gradients.
    robust_accuracy_score : Accuracy on the attacked samples
        (``attack="square"``, or ``attack="auto"`` for the per-sample worst case
        of PGD and the square attack).

    Notes
    -----
    Like every attack it gives an upper bound on the robust accuracy: a sample
    that it does not break may still have an adversarial example. For a single
    decision tree ``attack="exact"`` gives the exact robust accuracy.

    References
    ----------
    .. [1] M. Andriushchenko, F. Croce, N. Flammarion and M. Hein, "Square Attack:
       a query-efficient black-box adversarial attack via random search",
       ECCV 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skmixup.metrics import robust_accuracy_score, square_attack
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
    >>> X_adv = square_attack(forest, X[:100], y[:100], eps=0.3, random_state=0)
    >>> bool((forest.predict(X_adv) == y[:100]).mean() < forest.score(X[:100], y[:100]))
    True
    >>> robust = robust_accuracy_score(
    ...     forest, X[:100], y[:100], attack="square", eps=0.0, random_state=0)
    >>> robust == forest.score(X[:100], y[:100])
    True
    """
    eps = check_real(eps, "eps")
    norm = check_norm(norm)
    n_queries = check_n_queries(n_queries)
    data = attack_input(
        estimator, X, y, feature_scale=feature_scale, clip=clip, mutable=mutable
    )
    rng = check_random_state(random_state)
    return data.rebuild(square_values(estimator, data, eps, norm, n_queries, rng))


def square_values(estimator, data, eps, norm, n_queries, rng, *, start=None):
    """The square attack on ``data``'s rows: attacked values (float64, n x d).

    ``start`` (optional, n x d values inside the threat model) is the point the
    search leaves from, for instance another attack's result; the default is the
    clean point followed by a random vertex (l_inf) or a random point of the
    sphere (l2).
    """
    V = np.asarray(data.V, dtype=np.float64)
    n, d = V.shape
    objective = Objective(estimator, data)
    best = V.copy()
    if n == 0:
        return best
    lo, hi = data.delta_box(eps)
    moves = (data.scale > 0) & ~np.isnan(V)  # the entries that may change
    if start is None:
        loss, done = objective(best, np.arange(n))
    else:
        best = np.asarray(start, dtype=np.float64).copy()
        loss, done = objective(best, np.arange(n))
        clean_loss, clean_done = objective(V, np.arange(n))
        back = (clean_done & ~done) | ((clean_done == done) & (clean_loss > loss))
        best[back], loss[back], done[back] = V[back], clean_loss[back], clean_done[back]
    cols = np.flatnonzero(moves.any(axis=0))
    if eps == 0 or len(cols) == 0:
        return best
    # The search works on the columns that move; the others keep X's values.
    moves, lo, hi, base_all = moves[:, cols], lo[:, cols], hi[:, cols], V[:, cols]
    best_c = best[:, cols].copy()
    inv_scale = np.divide(
        1.0, data.scale[cols], out=np.zeros(len(cols)), where=data.scale[cols] > 0
    )  # raw to scale units
    low = None if data.low is None else data.low[cols]
    high = None if data.high is None else data.high[cols]
    active = np.arange(n)
    for it in range(n_queries):
        if done[active].any():
            active = active[~done[active]]
        if len(active) == 0:
            break
        sub, current, base = moves[active], best_c[active], base_all[active]
        if it == 0 and start is None:
            chosen = sub  # the first proposal moves every column
        else:
            chosen = _random_columns(rng, sub, _share(it, n_queries))
        if norm == "inf":
            proposal = _box_proposal(
                rng,
                current,
                base,
                lo[active],
                hi[active],
                chosen,
                vertex_only=it == 0,
            )
        else:
            proposal = _sphere_proposal(
                rng,
                current,
                base,
                inv_scale,
                eps,
                chosen,
                sub,
                _share(it, n_queries),
            )
        proposal = _clip(proposal, low, high)  # also the rounding of base + offset
        candidate = best[active]
        candidate[:, cols] = proposal
        new_loss, new_done = objective(candidate, active)
        keep = (new_done & ~done[active]) | (
            (new_done == done[active]) & (new_loss >= loss[active])
        )
        rows = active[keep]
        best[rows] = candidate[keep]
        best_c[rows] = proposal[keep]
        loss[rows] = new_loss[keep]
        done[rows] = new_done[keep]
    return best


def _share(it, n_queries):
    """Expected share of the columns a proposal changes at iteration ``it``."""
    scaled = it * 10_000 / max(n_queries, 1)
    return P_INIT / 2 ** sum(scaled >= mark for mark in _SCHEDULE)


def _random_columns(rng, moves, share):
    """Each movable entry with probability ``share``, and one column per row."""
    chosen = (rng.random_sample(moves.shape) < share) & moves
    rows = np.arange(len(moves))
    pick = rng.randint(moves.shape[1], size=len(moves))
    chosen[rows, pick] |= moves[rows, pick]
    return chosen


def _box_proposal(rng, current, base, lo, hi, chosen, *, vertex_only):
    """Chosen entries to a vertex of the box (or, for some rows, inside it)."""
    r, c = np.nonzero(chosen)
    lo, hi = lo[r, c], hi[r, c]
    values = np.where(rng.random_sample(len(r)) < 0.5, lo, hi)
    if not vertex_only:
        inside = (rng.random_sample(len(current)) < INSIDE)[r]
        uniform = lo + (hi - lo) * rng.random_sample(len(r))
        values = np.where(inside, uniform, values)
    proposal = current.copy()
    proposal[r, c] = base[r, c] + values
    return proposal


def _sphere_proposal(rng, current, base, inv_scale, eps, chosen, moves, share):
    """Chosen entries along a random direction, rescaled onto the eps sphere.

    Half of the proposals also shrink the other entries by a random factor, which
    frees radius for the chosen ones: tabular models (trees above all) are often
    broken by a few columns moved far, which a perturbation spread over every
    column cannot reach.
    """
    n = len(current)
    U = (current - base) * inv_scale  # in scale units
    U[~moves] = 0.0
    step = rng.standard_normal(current.shape) * chosen
    length = np.linalg.norm(step, axis=1, keepdims=True)
    step /= np.maximum(length, TINY)
    U_chosen = np.where(chosen, U, 0.0)
    shrink = np.where(rng.random_sample((n, 1)) < 0.5, rng.random_sample((n, 1)), 1.0)
    U_rest = (U - U_chosen) * shrink
    budget = np.sqrt(np.maximum(eps**2 - np.einsum("ij,ij->i", U_rest, U_rest), 0.0))[
        :, None
    ]
    moved = U_chosen + SPHERE_STEP * np.sqrt(share) * eps * step
    norm = np.linalg.norm(moved, axis=1, keepdims=True)
    moved *= budget / np.maximum(norm, TINY)
    U = U_rest + np.where(chosen, moved, 0.0)
    scale = np.divide(1.0, inv_scale, out=np.zeros_like(inv_scale), where=inv_scale > 0)
    return base + U * scale


class Objective:
    """What the attacks maximize, from one batched model call per evaluation.

    Called as ``objective(V, rows)`` on values of ``data``'s rows ``rows``; returns
    ``(loss, done)``: the margin loss ``max_{k != y} z_k - z_y`` and whether the
    sample is misclassified (classifiers), or the squared error and all False
    (regressors).
    """

    def __init__(self, estimator, data):
        self.estimator = estimator
        self.data = data
        if data.is_regression:
            self.kind = "regression"
        elif hasattr(estimator, "decision_function"):
            self.kind = "decision_function"
        elif hasattr(estimator, "predict_proba"):
            self.kind = "predict_proba"
        else:  # labels only (hard voting ...): a flat loss, a random walk
            self.kind = "predict"

    def scores(self, V, rows):
        model_input = self.data.model_input(_in_dtype(V, self.data), rows)
        if self.kind in ("regression", "predict"):
            return np.asarray(self.estimator.predict(model_input))
        if self.kind == "decision_function":
            Z = self.estimator.decision_function(model_input)
        else:
            Z = self.estimator.predict_proba(model_input)
        return np.asarray(dense(Z), dtype=np.float64)

    def __call__(self, V, rows):
        data = self.data
        Z = self.scores(V, rows)
        if self.kind == "regression":
            error = Z.reshape(len(rows), -1)[:, 0].astype(np.float64) - data.y[rows]
            return error**2, np.zeros(len(rows), dtype=bool)
        if self.kind == "predict":
            done = Z != data.y[rows]
            return done.astype(np.float64), done
        y_idx = data.y_idx[rows]
        if Z.ndim == 1 or Z.shape[1] == 1:  # binary decision function: class 1 if > 0
            z = Z.reshape(len(rows))
            margin = np.where(y_idx == 1, z, -z)
            done = np.where(y_idx == 1, z <= 0, z > 0)
            return -margin, done
        if self.kind == "predict_proba":
            Z = np.log(np.maximum(Z, TINY))
        n = len(rows)
        z_y = Z[np.arange(n), y_idx]
        other = Z.copy()
        other[np.arange(n), y_idx] = -np.inf
        done = Z.argmax(axis=1) != y_idx
        return other.max(axis=1) - z_y, done
