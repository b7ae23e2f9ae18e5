"""The exact attack on a decision tree: which leaves the threat model reaches.

A fitted :class:`~sklearn.tree.DecisionTreeClassifier` sends ``x`` to the leaf whose
box ``{v : a_j < v_j <= b_j}`` contains it (the thresholds of the nodes on the leaf's
path), and predicts that leaf's majority class. Under ``norm="inf"`` the threat model
of one sample is a box too (the ``eps`` ball intersected with ``clip``, a point on the
columns that may not move), so the sample can be sent to a leaf iff the two boxes
intersect, one interval per feature; under ``norm=2`` iff the scaled l2 distance
from ``x`` to the leaf's box (intersected with ``clip``) is at most ``eps``:
``sum_k (gap_k / scale_k)^2 <= eps^2`` with ``gap_k`` the distance from ``x_k`` to
the leaf's interval. The sample is robust iff every leaf it can reach predicts its
label. This is closed form: no search, no solver.

Behind pipeline steps that are affine on the movable columns (scalers,
SimpleImputer, ColumnTransformer with encoders ...) the tree sees ``z = a * x + c``
per feature; the same holds in ``z`` when every feature the tree splits on depends
on at most one movable column and every movable column feeds at most one of them
(a diagonal map; PCA is not). Missing entries stay missing and take the node's
missing-value branch.

The tree compares ``float32(z)`` with its thresholds, so the leaf intervals are taken
on the float32 grid: ``a_j < v`` becomes ``v >= A`` with ``A`` the smallest float32
above ``a_j``, and the attacked point lies on that grid where it meets a bound.
"""

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from skmixup.metrics._jacobians import as_float, forward_steps

_ROWS = 2**20  # samples x leaves x features per chunk of the reachability test


def tree_of(estimator):
    """The decision tree at the end of ``estimator`` (or None) and the steps."""
    if hasattr(estimator, "steps"):
        final = estimator.steps[-1][1]
        if isinstance(final, DecisionTreeClassifier):
            return final
        return None
    return estimator if isinstance(estimator, DecisionTreeClassifier) else None


def exact_tree_values(estimator, data, eps, norm):
    """Attacked values: a point of a wrongly predicting reachable leaf, if any.

    Returns ``(V_adv, robust, margin)``: ``V_adv`` (float64, n x d) equals the
    clean values for robust samples; ``robust`` marks them; ``margin`` is the
    smallest ``p_y - max_{k != y} p_k`` of the leaves each sample reaches (leaf
    class fractions ``p``), positive iff the sample is robust.
    """
    tree = tree_of(estimator)
    Z, a, source = _affine_features(estimator, data, tree)
    n = Z.shape[0]
    V = np.asarray(data.V, dtype=np.float64)
    lo, hi = data.delta_box(eps)  # raw offsets per input column
    low, high, nan_ok, leaf_class, leaf_value = _leaf_boxes(tree)
    features = np.flatnonzero(source >= 0)
    # Per sample and tree feature: the reachable interval of z (l_inf box), or the
    # clip interval and the unit (l2).
    zf = Z[:, features]
    af = a[:, features]
    src = source[features]
    if norm == "inf":
        r_lo = zf + np.minimum(af * lo[:, src], af * hi[:, src])
        r_hi = zf + np.maximum(af * lo[:, src], af * hi[:, src])
    else:
        r_lo, r_hi = _clip_interval(data, zf, af, V, src)
        unit = np.abs(af) * data.scale[src]  # z change per unit of eps
    used = np.unique(tree.tree_.feature[tree.tree_.feature >= 0])
    fixed = [j for j in used if source[j] < 0]  # split on, but nothing moves them
    y_idx = data.y_idx
    robust = np.ones(n, dtype=bool)
    target = np.full(n, -1)
    margin = np.empty(n)
    fractions = leaf_value / np.maximum(leaf_value.sum(axis=1, keepdims=True), 1e-300)
    K = fractions.shape[1]
    others = np.where(np.eye(K, dtype=bool)[None], -np.inf, fractions[:, None, :])
    leaf_margin = fractions - others.max(axis=2)  # (L, K): class k's margin per leaf
    L, k = low.shape[0], max(len(features), 1)
    chunk = max(1, _ROWS // (L * k))
    Lf, Hf, nanf = low[:, features], high[:, features], nan_ok[:, features]
    for start in range(0, n, chunk):
        rows = slice(start, start + chunk)
        z = zf[rows][:, None, :]
        missing = np.isnan(z)
        a_lo = np.maximum(r_lo[rows][:, None, :], Lf[None])
        a_hi = np.minimum(r_hi[rows][:, None, :], Hf[None])
        if norm == "inf":
            ok = a_lo <= a_hi
        else:
            ok = a_lo <= a_hi
            gap = np.maximum(np.maximum(a_lo - z, z - a_hi), 0.0)
            u = unit[rows][:, None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(gap > 0, gap / u, 0.0)
            ratio = np.where(missing, 0.0, np.where(np.isnan(ratio), np.inf, ratio))
            ok &= np.sum(ratio**2, axis=2, keepdims=True) <= eps**2 * (1 + 1e-12)
        ok = np.where(missing, nanf[None], ok).all(axis=2)
        for j in fixed:
            zj = Z[rows, j][:, None]
            inside = (zj >= low[None, :, j]) & (zj <= high[None, :, j])
            ok &= np.where(np.isnan(zj), nan_ok[None, :, j], inside)
        wrong = ok & (leaf_class[None, :] != y_idx[rows][:, None])
        m = np.where(ok, leaf_margin[:, y_idx[rows]].T, np.inf)
        margin[rows] = m.min(axis=1)
        any_wrong = wrong.any(axis=1)
        robust[rows] = ~any_wrong
        target[rows] = np.where(any_wrong, wrong.argmax(axis=1), -1)
    V_adv = V.copy()
    attacked = np.flatnonzero(~robust)
    if len(attacked):
        leaves = target[attacked]
        z = zf[attacked]
        a_lo = np.maximum(r_lo[attacked], Lf[leaves])
        a_hi = np.minimum(r_hi[attacked], Hf[leaves])
        z_new = np.clip(z, a_lo, a_hi)  # NaN stays NaN
        with np.errstate(invalid="ignore", divide="ignore"):
            dx = np.where(af[attacked] != 0, (z_new - z) / af[attacked], 0.0)
        dx = np.nan_to_num(dx)
        for col_pos, j in enumerate(src):
            V_adv[attacked, j] += dx[:, col_pos]
        if norm == "inf":  # rounding of the map back: stay inside the box
            np.clip(V_adv, V + lo, V + hi, out=V_adv, where=~np.isnan(V))
    return V_adv, robust, margin


def _clip_interval(data, zf, af, V, src):
    """The ``clip`` box of the moving columns, mapped to the tree's features."""
    low = np.full(V.shape[1], -np.inf) if data.low is None else data.low
    high = np.full(V.shape[1], np.inf) if data.high is None else data.high
    d_lo = low[src] - V[:, src]
    d_hi = high[src] - V[:, src]
    with np.errstate(invalid="ignore"):
        one = np.where(af != 0, af * d_lo, -np.inf)
        two = np.where(af != 0, af * d_hi, np.inf)
    one = np.where(np.isnan(one), -np.inf, one)
    two = np.where(np.isnan(two), np.inf, two)
    return zf + np.minimum(one, two), zf + np.maximum(one, two)


def _affine_features(estimator, data, tree):
    """The tree's input ``Z`` and its diagonal map from the raw movable columns.

    ``tree`` is a fitted tree or a forest (the features of all its trees).

    Returns ``(Z, a, source)``: ``Z`` of shape (n, n_tree_features), ``a`` (same
    shape) the factor ``dz_j / dx_source[j]`` per sample, and ``source[j]`` the raw
    column that moves feature ``j`` (-1 for features nothing moves).
    """
    X = data.model_input(data.V)
    name = type(estimator).__name__
    steps = []
    if hasattr(estimator, "steps"):
        X, steps = forward_steps(estimator.steps[:-1], X, name)
        for (step_name, _), step in zip(estimator.steps[:-1], steps, strict=True):
            if not step.affine:
                raise TypeError(
                    f"attack='exact' needs affine pipeline steps; {name}/{step_name} "
                    "is not (its Jacobian depends on the input). Use "
                    "attack='square' (or 'auto')."
                )
    Z = as_float(X, name)
    n, m = Z.shape
    d = data.V.shape[1]
    a = np.zeros((n, m))
    source = np.full(m, -1)
    used = split_features(tree)
    movable = data.movable & (data.scale > 0)
    if not steps:
        a[:, used] = 1.0
        source[used] = used
        source[~movable[: len(source)]] = -1
        a[:, source < 0] = 0.0
        return Z, a, source
    owner = np.full(d, -1)
    for j in used:
        G = np.zeros((n, m))
        G[:, j] = 1.0
        for step in reversed(steps):
            G = step.vjp(G)
        J = np.asarray(G, dtype=np.float64)  # dz_j / dx, per sample
        J[:, ~movable] = 0.0
        inputs = np.flatnonzero(np.any(J != 0, axis=0))
        if len(inputs) == 0:
            continue
        if len(inputs) > 1 or owner[inputs[0]] >= 0:
            raise TypeError(
                "attack='exact' on a tree behind pipeline steps needs each feature "
                "the tree splits on to depend on at most one movable column, and "
                "each column to feed at most one of them (scalers, imputers, "
                f"column selection); {name} mixes columns (PCA, for instance). Use "
                "attack='square' (or 'auto')."
            )
        owner[inputs[0]] = j
        source[j] = inputs[0]
        a[:, j] = J[:, inputs[0]]
    return Z, a, source


def split_features(model):
    """The features a tree, or any tree of a forest (``estimators_``), splits on."""
    trees = getattr(model, "estimators_", [model])
    return np.unique(
        np.concatenate([t.tree_.feature[t.tree_.feature >= 0] for t in trees])
    )


def _leaf_boxes(tree):
    """Per leaf: inclusive float32-grid bounds, NaN admissibility, class index."""
    t = tree.tree_
    m = tree.n_features_in_
    is_leaf = t.children_left < 0
    leaves = np.flatnonzero(is_leaf)
    index = np.full(t.node_count, -1)
    index[leaves] = np.arange(len(leaves))
    low = np.full((len(leaves), m), -np.inf)
    high = np.full((len(leaves), m), np.inf)
    nan_ok = np.ones((len(leaves), m), dtype=bool)
    missing_left = getattr(t, "missing_go_to_left", np.zeros(t.node_count, bool))
    # Depth-first walk carrying each node's box.
    stack = [(0, np.full(m, -np.inf), np.full(m, np.inf), np.ones(m, dtype=bool))]
    while stack:
        node, lo, hi, ok = stack.pop()
        if is_leaf[node]:
            i = index[node]
            low[i], high[i], nan_ok[i] = lo, hi, ok
            continue
        f, thr = t.feature[node], t.threshold[node]
        below = _float32_at_most(thr)  # v <= thr on the float32 grid
        above = _float32_above(thr)  # v > thr
        lo_left, hi_left, ok_left = lo.copy(), hi.copy(), ok.copy()
        hi_left[f] = min(hi_left[f], below)
        ok_left[f] &= bool(missing_left[node])
        lo_right, hi_right, ok_right = lo.copy(), hi.copy(), ok.copy()
        lo_right[f] = max(lo_right[f], above)
        ok_right[f] &= not bool(missing_left[node])
        stack.append((t.children_left[node], lo_left, hi_left, ok_left))
        stack.append((t.children_right[node], lo_right, hi_right, ok_right))
    leaf_value = np.asarray(t.value[leaves, 0, :], dtype=np.float64)
    return low, high, nan_ok, leaf_value.argmax(axis=1), leaf_value


def _float32_at_most(value):
    v = np.float32(value)
    if float(v) > value:
        v = np.nextafter(v, np.float32(-np.inf))
    return float(v)


def _float32_above(value):
    v = np.float32(value)
    if float(v) <= value:
        v = np.nextafter(v, np.float32(np.inf))
    return float(v)
