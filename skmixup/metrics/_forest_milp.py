"""The exact l_inf robustness of a random forest: Kantchelian et al.'s MILP.

Kantchelian, Tygar and Joseph, "Evasion and Hardening of Tree Ensemble
Classifiers", ICML 2016, Section 3: a forest's prediction is fixed by which side
of each threshold every feature lies on, so the worst case over a box is a
mixed-integer program in those predicates. Per sample (the box is the threat
model's, mapped to the forest's features ``z`` as in :mod:`._trees`):

* a binary ``p_{f,t} = [z_f <= t]`` for every distinct bound ``t`` of feature
  ``f`` among the reachable leaves, with ``p_{f,t} <= p_{f,t'}`` for ``t < t'``;
  the box fixes ``p_{f,t} = 1`` when ``hi_f <= t`` and ``0`` when ``lo_f > t``;
* a ``l in [0, 1]`` per reachable leaf (:func:`._trees._leaf_boxes`, on the
  float32 grid the trees compare on), ``sum_leaves l = 1`` per tree, and for a
  leaf box ``[A_f, B_f]``: ``l <= p_{f,B_f}`` and ``l <= 1 - p_{f,A_f^-}``
  (``A_f^-`` the float32 value below ``A_f``). Once the ``p`` are integral they
  pick one cell of the threshold grid, which lies in exactly one leaf per tree,
  so the leaves are integral too;
* for each wrong class ``k``, minimize the soft-voting margin
  ``sum_trees sum_leaves l (q_y - q_k) / T`` (``q`` the leaf's class fractions,
  ``T`` the number of trees), one program per ``k``.

The box is taken on the float32 grid (``float32(lo)``, ``float32(hi)``): the
trees see ``float32(z)``, and rounding is monotone, so the reachable float32
values are exactly that interval (up to the float64 rounding of the pipeline's
own map, as for one tree). Missing values are fixed and take each leaf's
missing-value branch (a leaf whose path sends NaN elsewhere is unreachable).
"""

import time

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from skmixup.metrics._trees import _affine_features, _leaf_boxes


class ForestProgram:
    """The sample-independent part: every tree's leaf boxes and class fractions."""

    def __init__(self, estimator, forest, data):
        self.Z, self.a, self.source = _affine_features(estimator, data, forest)
        self.trees = []
        for tree in forest.estimators_:
            low, high, nan_ok, _, value = _leaf_boxes(tree)
            q = value / np.maximum(value.sum(axis=1, keepdims=True), 1e-300)
            self.trees.append((low, high, nan_ok, q))

    def box(self, data, eps):
        """Per sample and feature, the reachable float32 interval of ``z``."""
        Z, a, source = self.Z, self.a, self.source
        lo, hi = data.delta_box(eps)
        r_lo, r_hi = Z.copy(), Z.copy()
        f = np.flatnonzero(source >= 0)
        s = source[f]
        af = a[:, f]
        r_lo[:, f] = Z[:, f] + np.minimum(af * lo[:, s], af * hi[:, s])
        r_hi[:, f] = Z[:, f] + np.maximum(af * lo[:, s], af * hi[:, s])
        with np.errstate(over="ignore"):
            return (
                r_lo.astype(np.float32).astype(np.float64),
                r_hi.astype(np.float32).astype(np.float64),
            )

    def margins(self, r_lo, r_hi, y, tol, time_limit):
        """Solve one sample: ``(status, margin, leaves)``.

        ``status`` is ``"certified"`` (every class's minimal margin above
        ``tol``), ``"open"`` (some class reaches a margin below ``tol``; ``leaves``
        then lists the chosen leaf per tree of the worst solution found) or
        ``"unknown"`` (out of time with no such solution). ``margin`` is a lower
        bound of the smallest margin.
        """
        start = time.perf_counter()
        missing = np.isnan(r_lo)
        parts, n_leaf = [], 0
        for low, high, nan_ok, _ in self.trees:
            ok = np.all(np.where(missing, nan_ok, (low <= r_hi) & (high >= r_lo)), 1)
            leaves = np.flatnonzero(ok)
            parts.append((leaves, n_leaf))
            n_leaf += len(leaves)
        # Predicates: (feature, t) for each finite upper bound B and each finite
        # lower bound A (as t = A^-) of the reachable leaves on present features.
        keys, refs = [], []  # refs: (leaf var, key index, +1 upper / -1 lower)
        for (low, high, _, _), (leaves, offset) in zip(self.trees, parts, strict=True):
            for sign, bound in ((1, high), (-1, low)):
                B = bound[leaves]
                li, fi = np.nonzero(np.isfinite(B) & ~missing[None])
                t = B[li, fi]
                if sign < 0:
                    t = np.nextafter(t.astype(np.float32), np.float32(-np.inf))
                    t = t.astype(np.float64)
                keys.append(np.column_stack([fi, t]))
                refs.append(np.column_stack([offset + li, np.full(len(li), sign)]))
        keys = np.concatenate(keys) if keys else np.zeros((0, 2))
        refs = np.concatenate(refs) if refs else np.zeros((0, 2))
        uniq, which = np.unique(keys, axis=0, return_inverse=True)
        which = np.ravel(which)
        n_pred = len(uniq)
        n_var = n_pred + n_leaf
        pf, pt = uniq[:, 0].astype(int), uniq[:, 1]
        rows, cols, vals, c_lo, c_hi = [], [], [], [], []

        def add(r, c, v, lo, hi):
            rows.append(r + sum(map(len, c_lo)))
            cols.append(c)
            vals.append(v)
            c_lo.append(lo)
            c_hi.append(hi)

        # p_{f,t} <= p_{f,t'} for consecutive t < t' of one feature (sorted).
        same = np.flatnonzero(pf[:-1] == pf[1:])
        r = np.arange(len(same))
        ones = np.ones(len(same))
        add(
            np.concatenate([r, r]),
            np.concatenate([same, same + 1]),
            np.concatenate([ones, -ones]),
            np.full(len(same), -np.inf),
            np.zeros(len(same)),
        )
        # sum of each tree's leaves = 1.
        tree_of_leaf = np.concatenate(
            [np.full(len(leaves), i) for i, (leaves, _) in enumerate(parts)]
        ).astype(int)
        add(
            tree_of_leaf,
            n_pred + np.arange(n_leaf),
            np.ones(n_leaf),
            np.ones(len(parts)),
            np.ones(len(parts)),
        )
        # l - p <= 0 (upper bounds), l + p <= 1 (lower bounds).
        leaf, sign = refs[:, 0].astype(int), refs[:, 1]
        r = np.arange(len(refs))
        add(
            np.concatenate([r, r]),
            np.concatenate([n_pred + leaf, which]),
            np.concatenate([np.ones(len(refs)), -sign]),
            np.full(len(refs), -np.inf),
            np.where(sign > 0, 0.0, 1.0),
        )
        A = sparse.csr_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(int(sum(map(len, c_lo))), n_var),
        )
        constraints = LinearConstraint(A, np.concatenate(c_lo), np.concatenate(c_hi))
        p_lo = (r_hi[pf] <= pt).astype(float)  # z_f <= t everywhere: p = 1
        p_hi = np.where(r_lo[pf] > pt, 0.0, 1.0)  # z_f > t everywhere: p = 0
        bounds = Bounds(
            np.concatenate([p_lo, np.zeros(n_leaf)]),
            np.concatenate([p_hi, np.ones(n_leaf)]),
        )
        integrality = np.concatenate([np.ones(n_pred), np.zeros(n_leaf)])
        Q = np.concatenate(
            [q[lv] for (_, _, _, q), (lv, _) in zip(self.trees, parts, strict=True)]
        )
        T = len(self.trees)
        margin, status = np.inf, "certified"
        for k in range(Q.shape[1]):
            if k == y:
                continue
            options = {}
            if time_limit is not None:
                options["time_limit"] = time_limit - (time.perf_counter() - start)
                if options["time_limit"] <= 0:
                    return "unknown", -np.inf, None
            c = np.concatenate([np.zeros(n_pred), (Q[:, y] - Q[:, k]) / T])
            res = milp(
                c,
                constraints=constraints,
                integrality=integrality,
                bounds=bounds,
                options=options,
            )
            if res.status == 0:
                bound = float(res.fun)
            else:
                bound = getattr(res, "mip_dual_bound", None)
                bound = -np.inf if bound is None or np.isnan(bound) else bound
            margin = min(margin, bound)
            if res.x is not None and res.fun <= tol:
                choice = res.x[n_pred:] > 0.5
                worst = [
                    lv[choice[tree_of_leaf == i]] for i, (lv, _) in enumerate(parts)
                ]
                if all(len(w) == 1 for w in worst):
                    return "open", margin, [int(w[0]) for w in worst]
            if res.status != 0 or res.fun <= tol:
                status = "unknown"
        return status, margin, None

    def points(self, i, data, eps, r_lo, r_hi, leaves):
        """Raw values of sample ``i`` meant to reach the given leaf of every tree.

        Two candidates, shape (2, d): the clean point clipped into the leaves'
        common box (the smallest move), and the box's centre, which survives
        the rounding of the raw columns' dtypes (a float32 column, say) and of
        the map back through the pipeline.
        """
        z = self.Z[i]
        lo, hi = r_lo.copy(), r_hi.copy()
        for (low, high, _, _), leaf in zip(self.trees, leaves, strict=True):
            lo = np.fmax(lo, low[leaf])
            hi = np.fmin(hi, high[leaf])
        V = np.array(data.V[i], dtype=np.float64)
        d_lo, d_hi = data.delta_box(eps)
        f = np.flatnonzero(self.source >= 0)
        af = self.a[i, f]
        present = ~np.isnan(V)
        out = []
        for z_new in (np.clip(z, lo, hi), np.where(np.isnan(z), z, (lo + hi) / 2)):
            with np.errstate(invalid="ignore", divide="ignore"):
                dx = np.where(af != 0, (z_new[f] - z[f]) / af, 0.0)
            V_new = V.copy()
            V_new[self.source[f]] += np.nan_to_num(dx)
            V_new[present] = np.clip(
                V_new[present], (V + d_lo[i])[present], (V + d_hi[i])[present]
            )
            out.append(V_new)
        return np.array(out)
