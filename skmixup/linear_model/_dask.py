"""Fitting the linear estimators on Dask arrays and Dask DataFrames.

``MixupLogisticRegression.fit`` and ``MixupRegularizedLogisticRegression.fit``
hand a Dask collection ``X`` to :func:`fit_dask`, which never brings ``X`` to the
client: L-BFGS-B runs on the client over the ``K (d + 1)`` coefficients, and every
evaluation of the objective is one pass over the row chunks of ``X`` (each chunk's
part of the value and of the gradient, summed by a tree reduction) on whatever
scheduler is active: a ``distributed`` cluster when a client exists, Dask's
default scheduler otherwise. Before the solver runs, one pass reads the labels
(and checks ``X``), and the penalty estimator adds one for the moments of ``X``.

**Exact Mixup (Zhang et al., ICLR 2021, Eq. (1)).** The chunks are the partner
blocks: with sampled partners (``n_partners`` resolved as in memory, from the
number of rows and the work budget) each chunk is cut, in a seeded random order
of its rows, into blocks of at least ``n_partners + 1`` rows, and pairs are
formed inside the blocks; with all pairs, each chunk is one block. Everything
else is the in-memory plan (:class:`~skmixup.linear_model._plan.MixupPlan`):
the sample weights ``pi`` and the block scaling ``c_b = (n - 1) / (m_b - 1)`` are
those of the whole data set, and the plan's two sums over all samples (the pairs'
total weight, which normalises the pair weights, and ``pi^T Y`` of the label
term) are reductions over the chunks. So the Dask fit equals the in-memory fit
whose plan has the same blocks (:func:`layout_plan`). The estimate is unbiased
for Eq. (1) when the rows are in random order across the chunks; otherwise it is
Mixup within chunks (as minibatch Mixup mixes within a batch).

**Second-order penalty (Lemma 3.1, Eq. (3)).** ``R1`` and ``R2`` depend on the
data through sums over rows and two global moments of ``X``: the weighted mean
``x_bar`` and covariance ``Sigma_X``, computed once (a pass, combined over chunks
by the pairwise update of Chan, Golub and LeVeque). The logits' centre is then
``z_bar = W x_bar + b`` and their covariance ``G = W Sigma_X W^T``, so each
chunk computes its rows' sums (:func:`~skmixup.linear_model._penalty.row_terms`)
and the client adds the population terms of the gradient, which back-propagate
to ``m2 H_bar W Sigma_X + shift x_bar^T`` (``sum_j w_j zc_j x_j^T = W Sigma_X``).
The Dask fit equals the in-memory one.
"""

import functools
import numbers

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - dask collections imply dask
    raise ImportError(
        "Fitting on Dask collections needs dask[array]: pip install 'skmixup[dask]'."
    ) from exc

from skmixup._mixing import mixing_moments
from skmixup.linear_model._loss import MixupLoss, _LinearModel
from skmixup.linear_model._penalty import population_terms, row_terms
from skmixup.linear_model._plan import MixupPlan, block_sizes_of, resolve_settings
from skmixup.utils._callbacks import begin_fit
from skmixup.utils._labels import encode_targets
from skmixup.utils._threads import one_blas_thread
from skmixup.utils._validation import MAX_SEED, check_positive_weight

__all__ = ["fit_dask", "layout_plan", "chunk_layout"]

# Partial sums added per task of the tree reduction.
_SPLIT_EVERY = 8


# ------------------------------------------------------------------ inputs
def _as_dask_arrays(estimator, X, y, sample_weight):
    """``X`` as a float Dask array with one column chunk and known row chunks,
    and ``y`` and ``sample_weight`` (or ``None``) as 1-d Dask arrays with the same
    row chunks; sets ``n_features_in_`` (and ``feature_names_in_``)."""
    if hasattr(X, "to_dask_array"):  # a Dask DataFrame
        import pandas as pd

        bad = [
            c
            for c, t in X.dtypes.items()
            if not (pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t))
        ]
        if bad:
            raise TypeError(
                f"Dask DataFrame columns {bad} are not numeric: encode them first "
                "(dask-ml's Categorizer and DummyEncoder, or map_partitions with a "
                "fitted scikit-learn transformer)."
            )
        # Feature names and count from the (empty) pandas frame of the metadata.
        validate_data(estimator, X._meta, skip_check_array=True, reset=True)
        is32 = all(t == np.float32 for t in X.dtypes)
        X = X.astype(np.float32 if is32 else np.float64).to_dask_array(lengths=True)
    else:
        X = da.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-d Dask array X, got shape {X.shape}.")
        validate_data(estimator, X, skip_check_array=True, reset=True)
    if X.dtype not in (np.float32, np.float64):
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must be numeric, got dtype {X.dtype}.")
        X = X.astype(np.float64)
    if any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if X.shape[0] == 0:
        raise ValueError("X has 0 rows; a minimum of 1 is required.")
    X = X.rechunk({1: -1})
    y = _aligned(y, X, "y")
    if sample_weight is not None:
        if isinstance(sample_weight, numbers.Number):
            sample_weight = np.full(X.shape[0], float(sample_weight))
        sample_weight = _aligned(sample_weight, X, "sample_weight")
        sample_weight = sample_weight.astype(np.float64)
    return X, y, sample_weight


def _aligned(v, X, name):
    """``v`` as a 1-d Dask array with the row chunks of ``X``."""
    if hasattr(v, "to_dask_array"):  # Dask Series
        import pandas as pd

        if pd.api.types.is_extension_array_dtype(v.dtype):  # e.g. string labels
            v = v.astype(object)
        v = v.to_dask_array(lengths=True)
    elif not dask.is_dask_collection(v):
        v = np.asarray(v)
        if v.ndim == 2 and v.shape[1] == 1:
            v = v[:, 0]
        if v.shape != (X.shape[0],):
            raise ValueError(
                f"{name} has shape {v.shape}; expected ({X.shape[0]},), one entry "
                "per row of X."
            )
        return da.from_array(v, chunks=(X.chunks[0],))
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if any(np.isnan(c) for c in v.chunks[0]):
        v = v.compute_chunk_sizes()
    if v.ndim != 1 or v.shape[0] != X.shape[0]:
        raise ValueError(
            f"{name} has shape {v.shape}; expected ({X.shape[0]},), one entry per "
            "row of X."
        )
    return v.rechunk((X.chunks[0],))


def _blocks(a):
    return list(a.to_delayed().ravel())


def _delayed(fn):
    return dask.delayed(fn, pure=True)


def _add(*parts):
    return functools.reduce(np.add, parts)


def _tree_sum(parts):
    """The sum of ``parts`` (Delayed arrays) by a tree of ``_SPLIT_EVERY``-ary
    additions, computed on the active scheduler."""
    while len(parts) > 1:
        parts = [
            _delayed(_add)(*parts[i : i + _SPLIT_EVERY])
            for i in range(0, len(parts), _SPLIT_EVERY)
        ]
    return dask.compute(parts[0])[0]


# ------------------------------------------------------------- label pass
def _label_stats(x, y, sw):
    """Classes, their counts and weight sums; whether ``x`` is finite and the
    weights non-negative."""
    y = np.asarray(y)
    classes, codes, counts = np.unique(y, return_inverse=True, return_counts=True)
    w = np.ones(y.shape[0]) if sw is None else np.asarray(sw, dtype=np.float64)
    weight = np.bincount(codes.ravel(), weights=w, minlength=classes.size)
    finite = bool(np.isfinite(x).all())
    non_negative = bool(np.all(w >= 0)) and bool(np.isfinite(w).all())
    return classes, counts, weight, finite, non_negative


def _labels(estimator, xb, yb, swb):
    """One pass: sets ``classes_``; returns the per-class weights (class weights)
    and the total of the weights with the class weights folded in."""
    stats = dask.compute(
        *[_delayed(_label_stats)(x, y, s) for x, y, s in zip(xb, yb, swb, strict=True)]
    )
    if not all(s[3] for s in stats):
        raise ValueError(
            "Input X contains NaN or infinity: impute or drop those values first."
        )
    if not all(s[4] for s in stats):
        raise ValueError("Negative values in data passed to sample_weight.")
    classes = np.unique(np.concatenate([s[0] for s in stats]))
    check_classification_targets(classes)
    estimator._encode_labels(classes)  # sets classes_, checks >= 2 classes
    counts = np.zeros(classes.size)
    weight = np.zeros(classes.size)
    for c, n, w, _, _ in stats:
        idx = np.searchsorted(classes, c)
        counts[idx] += n
        weight[idx] += w
    if estimator.class_weight is None:
        cw = np.ones(classes.size)
    elif isinstance(estimator.class_weight, str):
        # "balanced", as compute_sample_weight: n / (n_classes * n_k)
        cw = counts.sum() / (classes.size * counts)
    else:  # a dict: y is not used
        cw = compute_class_weight(estimator.class_weight, classes=classes, y=classes)
    check_positive_weight(cw * weight)  # per-class sums of the weights
    return cw, float(cw @ weight)


def _chunk_targets(y, sw, classes, class_weight, dtype):
    """A chunk's targets ``Y`` (in ``dtype``) and class-weighted sample weights."""
    y = np.asarray(y)
    Y = encode_targets(classes, y)
    codes = np.searchsorted(classes, y)
    s = class_weight[codes]
    if sw is not None:
        s = s * np.asarray(sw, dtype=np.float64)
    return Y.astype(dtype), s


# -------------------------------------------------------- Mixup objective
def chunk_layout(n_rows, n_partners, seed):
    """``(order, block_sizes)`` of one chunk of ``n_rows``: all its rows in one
    block for all pairs (``n_partners=None``), else a random order (from
    ``seed``) cut by :func:`~skmixup.linear_model._plan.block_sizes_of`."""
    if n_partners is None:
        return np.arange(n_rows), np.array([n_rows], dtype=np.intp)
    order = np.random.RandomState(seed).permutation(n_rows)
    return order, block_sizes_of(n_rows, n_partners)


def _plan_inputs(estimator, n_samples, n_chunks):
    """Partners, quadrature rule and one seed per chunk, as the in-memory fit
    resolves them (``n_partners`` and the work budget from ``n_samples``)."""
    n_partners, n_quadrature, random_state = estimator._plan_settings()
    P, rule = resolve_settings(
        n_samples,
        estimator.mixup_alpha,
        estimator.mixup_beta,
        n_partners,
        n_quadrature,
    )
    seeds = check_random_state(random_state).randint(MAX_SEED, size=n_chunks)
    return P, rule, seeds


def layout_plan(estimator, sample_weight, chunk_sizes):
    """The in-memory :class:`~skmixup.linear_model._plan.MixupPlan` with the
    blocks that :func:`fit_dask` forms on a Dask array with row chunks
    ``chunk_sizes`` (class weights folded into ``sample_weight``): the
    in-memory fit with this plan equals the Dask fit."""
    chunk_sizes = [int(m) for m in chunk_sizes if m > 0]  # as fit_dask
    P, (nodes, weights, share), seeds = _plan_inputs(
        estimator, sum(chunk_sizes), len(chunk_sizes)
    )
    orders, sizes, start = [], [], 0
    for m, seed in zip(chunk_sizes, seeds, strict=True):
        order, block_sizes = chunk_layout(m, P, seed)
        orders.append(order + start)
        sizes.append(block_sizes)
        start += m
    return MixupPlan(
        sample_weight,
        nodes,
        weights,
        share,
        P,
        np.concatenate(orders),
        block_sizes=np.concatenate(sizes),
    )


def _mixup_chunk_plan(y, sw, classes, class_weight, dtype, inputs, seed, population):
    Y, s = _chunk_targets(y, sw, classes, class_weight, dtype)
    P, (nodes, weights, share) = inputs
    order, sizes = chunk_layout(Y.shape[0], P, seed)
    plan = MixupPlan(
        s, nodes, weights, share, P, order, block_sizes=sizes, population=population
    )
    return Y, plan


def _mixup_chunk_sums(*args):
    Y, plan = _mixup_chunk_plan(*args)
    return np.concatenate([[plan.pair_weight_sum], plan.label_sum(Y)])


def _mixup_chunk_state(*args, sums):
    Y, plan = _mixup_chunk_plan(*args)
    plan.set_population_sums(sums[0], sums[1:])
    return Y, plan


def _mixup_chunk_value_gradient(x, state, coef, model):
    Y, plan = state
    loss = MixupLoss(model.n_classes, model.n_features, model.fit_intercept, plan)
    with one_blas_thread():
        value, grad = loss.loss_gradient(coef, np.ascontiguousarray(x), Y, None)
    return np.concatenate([[value], grad])


class _DaskObjective(_LinearModel):
    """An objective whose every evaluation is one pass over persisted chunk
    states: ``loss_gradient(coef, ...)`` ignores its data arguments (the chunks
    hold them) and counts the passes in ``n_passes``."""

    def __init__(self, model, xb, states, chunk_fn, combine=None):
        super().__init__(model.n_classes, model.n_features, model.fit_intercept)
        self._xb, self._states = xb, states
        self._chunk_fn, self._combine = chunk_fn, combine
        self.n_passes = 0

    def chunk_sums(self, coef, chunk_fn=None, **kwargs):
        """Sum over the chunks of ``chunk_fn(x, state, coef, model, **kwargs)``."""
        fn = _delayed(chunk_fn or self._chunk_fn)
        model = _LinearModel(self.n_classes, self.n_features, self.fit_intercept)
        coef = np.asarray(coef, dtype=np.float64)
        parts = [
            fn(x, s, coef, model, **kwargs)
            for x, s in zip(self._xb, self._states, strict=True)
        ]
        return _tree_sum(parts)

    def loss_gradient(self, coef, X=None, Y=None, sample_weight=None, l2=0.0):
        total = self.chunk_sums(coef)
        self.n_passes += 1
        if self._combine is None:
            value, grad = float(total[0]), total[1:]
        else:
            value, grad = self._combine(coef, total)
        value += self.ridge(coef, l2)
        if l2:
            K, d = self.n_classes, self.n_features
            grad[: K * d] += l2 * coef[: K * d]
        return value, grad


def _mixup_objective(estimator, X, xb, yb, swb, class_weight, total):
    K = 1 if estimator.classes_.size == 2 else estimator.classes_.size
    P, rule, seeds = _plan_inputs(estimator, X.shape[0], len(xb))
    args = [
        (y, s, estimator.classes_, class_weight, X.dtype, (P, rule), seed)
        for y, s, seed in zip(yb, swb, seeds, strict=True)
    ]
    population = (X.shape[0], total)
    sums = _tree_sum(
        [_delayed(_mixup_chunk_sums)(*a, population) for a in args]
    )
    states = dask.persist(
        *[_delayed(_mixup_chunk_state)(*a, population, sums=sums) for a in args]
    )
    model = _LinearModel(K, X.shape[1], estimator.fit_intercept)
    return _DaskObjective(model, xb, list(states), _mixup_chunk_value_gradient)


# ------------------------------------------------------ penalty objective
def _penalty_chunk_state(y, sw, classes, class_weight, total):
    Y, s = _chunk_targets(y, sw, classes, class_weight, np.float64)
    return Y, s / total


def _chunk_moments(x, state, coef=None, model=None):
    """``[W, W mean, M2]`` of a chunk: its weight, weighted mean times the weight
    and weighted centred second moment (flattened)."""
    _, w = state
    x = np.asarray(x, dtype=np.float64)
    W = float(w.sum())
    mean = w @ x / W if W > 0 else np.zeros(x.shape[1])
    xc = x - mean
    M2 = (xc * w[:, None]).T @ xc
    return W, mean, M2


def _combine_moments(parts):
    """Weighted mean and covariance of the union of chunks from their
    ``(W, mean, M2)``, by the pairwise update of Chan, Golub and LeVeque (1979):
    ``M2 = sum M2_c + sum W_c (mean_c - mean)(mean_c - mean)^T``."""
    W = sum(p[0] for p in parts)
    mean = sum(p[0] * p[1] for p in parts) / W
    M2 = sum(p[2] + p[0] * np.outer(p[1] - mean, p[1] - mean) for p in parts)
    return mean, M2 / W


def _penalty_chunk_value_gradient(x, state, coef, model, zbar, G, m1, m2, with_r1):
    Y, w = state
    x = np.ascontiguousarray(x)
    with one_blas_thread():
        Z = np.asarray(model.logits(coef, x), dtype=np.float64)
        standard, r1, r2, sums, g = row_terms(
            Z, Y, Z - zbar, w, G, m1, m2, with_r1=with_r1
        )
        grad = model.backprop(coef, x, g.astype(x.dtype, copy=False), 0.0)
    return np.concatenate([[standard, r1, r2], *[np.ravel(v) for v in sums], grad])


def _penalty_chunk_terms(x, state, coef, model, zbar, G, m1, m2, separable):
    from skmixup.linear_model._regularized import _separates

    Y, w = state
    x = np.ascontiguousarray(x)
    Z = np.asarray(model.logits(coef, x), dtype=np.float64)
    standard, r1, r2, _, _ = row_terms(Z, Y, Z - zbar, w, G, m1, m2, gradient=False)
    separates = not separable or _separates(model, coef, x, Y, w)
    return np.array([standard, r1, r2, float(not separates)])


class _PenaltyCombine:
    """The client's side of a penalty evaluation: the logits' centre and
    covariance before the pass, the population terms of the gradient after."""

    def __init__(self, model, mean, cov, m1, m2, with_r1):
        self.model, self.mean, self.cov = model, mean, cov
        self.m1, self.m2, self.with_r1 = m1, m2, with_r1

    def logit_moments(self, coef):
        W, b = self.model.unpack(coef)
        zbar = W @ self.mean + (0.0 if b is None else b)
        return zbar, W @ self.cov @ W.T

    def __call__(self, coef, total):
        K = self.model.n_classes
        standard, r1, r2 = total[:3]
        cut = np.cumsum([3, K, K * K, K, K])
        wP, PtwP, wE, wHZc = np.split(total[: cut[-1]], cut[:-1])[1:]
        grad = total[cut[-1] :].copy()
        a1 = self.m1 if self.with_r1 else 0.0
        H_bar, shift = population_terms((wP, PtwP.reshape(K, K), wE, wHZc), a1, self.m2)
        W, _ = self.model.unpack(coef)
        d = self.model.n_features
        grad[: K * d] += (
            self.m2 * H_bar @ (W @ self.cov) + np.outer(shift, self.mean)
        ).ravel()
        if self.model.fit_intercept:
            grad[K * d :] += shift
        value = standard + r2 + (r1 if self.with_r1 else 0.0)
        return float(value), grad


class _PenaltyObjective(_DaskObjective):
    def __init__(self, model, xb, states, combine):
        super().__init__(model, xb, states, _penalty_chunk_value_gradient, combine)

    def chunk_sums(self, coef, chunk_fn=None, **kwargs):
        c = self._combine
        zbar, G = c.logit_moments(coef)
        if chunk_fn is None:
            kwargs = {"with_r1": c.with_r1, **kwargs}
        return super().chunk_sums(
            coef, chunk_fn, zbar=zbar, G=G, m1=c.m1, m2=c.m2, **kwargs
        )


def _penalty_objective(estimator, X, xb, yb, swb, class_weight, total):
    K = 1 if estimator.classes_.size == 2 else estimator.classes_.size
    states = dask.persist(
        *[
            _delayed(_penalty_chunk_state)(
                y, s, estimator.classes_, class_weight, total
            )
            for y, s in zip(yb, swb, strict=True)
        ]
    )
    parts = dask.compute(
        *[_delayed(_chunk_moments)(x, s) for x, s in zip(xb, states, strict=True)]
    )
    mean, cov = _combine_moments(parts)
    model = _LinearModel(K, X.shape[1], estimator.fit_intercept)
    m1, m2 = mixing_moments(estimator.mixup_alpha, estimator.mixup_beta)
    combine = _PenaltyCombine(model, mean, cov, m1, m2, estimator.terms == "R1+R2")
    return _PenaltyObjective(model, xb, list(states), combine)


def _finish_penalty(estimator, objective, coef, l2):
    import warnings

    from skmixup.linear_model._regularized import UnboundedPenaltyWarning

    check = l2 == 0.0
    if check and not np.all(np.isfinite(coef)):
        reason = "the coefficients diverged to non-finite values"
        r1 = r2 = np.nan
    else:
        total = objective.chunk_sums(coef, _penalty_chunk_terms, separable=check)
        _, r1, r2, misclassified = total
        reason = None
        if not misclassified:
            reason = "the solution separates the training data"
    estimator.penalty_terms_ = {"R1": float(r1), "R2": float(r2)}
    if check and reason is not None:
        W = objective.unpack(coef)[0]
        warnings.warn(
            f"C=np.inf on linearly separable training data ({reason}): the "
            "problem is ill-posed, cross-entropy + Mixup penalty tends to 0 as "
            "||W|| -> inf along every separating direction. L-BFGS-B stopped at "
            f"||W|| = {np.linalg.norm(W):.3g}. Use a finite C.",
            UnboundedPenaltyWarning,
            stacklevel=4,
        )


# -------------------------------------------------------------------- fit
def fit_dask(estimator, X, y, sample_weight=None):
    """Fit a linear Mixup estimator on a Dask array or DataFrame ``X`` (see the
    module docstring); ``y`` and ``sample_weight`` may be Dask or NumPy arrays
    with one entry per row of ``X``. Records the solver's passes over ``X`` (its
    objective evaluations) in ``estimator._n_passes``."""
    X, y, sample_weight = _as_dask_arrays(estimator, X, y, sample_weight)
    keep = [i for i, m in enumerate(X.chunks[0]) if m > 0]  # no empty chunks
    xb = [_blocks(X)[i] for i in keep]
    yb = [_blocks(y)[i] for i in keep]
    swb = [None] * len(xb)
    if sample_weight is not None:
        swb = [_blocks(sample_weight)[i] for i in keep]
    class_weight, total = _labels(estimator, xb, yb, swb)
    penalty = not estimator._fit_on_plan  # the explicit penalty's objective
    build = _penalty_objective if penalty else _mixup_objective
    objective = build(estimator, X, xb, yb, swb, class_weight, total)
    l2 = estimator._l2_reg_strength(np.array([total]))
    K = objective.n_classes
    task = begin_fit(estimator, X, lambda: y, max_subtasks=estimator.max_iter)
    coef, n_iter = estimator._solve(
        objective,
        X,
        np.zeros((0, K)),  # the chunk states hold the targets and weights
        np.ones(1),
        l2,
        estimator._initial_coef(objective),
        task,
    )
    estimator.n_iter_ = np.array([n_iter], dtype=np.int32)
    estimator._n_passes = objective.n_passes  # L-BFGS-B's evaluations
    attributes = estimator._coef_attributes(objective, coef, X.dtype)
    for name, value in attributes.items():
        setattr(estimator, name, value)
    task.end(attributes)
    if penalty:
        _finish_penalty(estimator, objective, coef, l2)
    return estimator
