"""Is the exact robust accuracy of a tree ensemble affordable with scipy's MILP?

A prototype of Kantchelian et al.'s mixed-integer program (ICML 2016, "Evasion and
Hardening of Tree Ensemble Classifiers", Section 3) for a binary
RandomForestClassifier under the l_inf threat model, timed per sample with
:func:`scipy.optimize.milp` (HiGHS). Variables: one binary predicate
``p_{f,j} = [x_f <= t_{f,j}]`` per distinct threshold of each feature
(``p_{f,j} <= p_{f,j+1}``), one leaf variable ``l in [0, 1]`` per leaf,
``sum_leaves l = 1`` per tree, and per internal node ``v``:
``sum_{leaves left of v} l <= p_v`` and ``sum_{leaves right of v} l <= 1 - p_v``.
The eps box fixes every predicate whose threshold lies outside
``[x_f - r_f, x_f + r_f)``. The objective is the forest's mean class-1 probability,
minimized for samples of class 1 (maximized for class 0); a sample is robust iff
the optimum stays on its side of 1/2. The square attack's robust accuracy on the
same forest, which can only be higher, is printed next to it.

Run ``python benchmarks/bench_tree_milp.py`` (``--quick``: fewer samples and sizes).
"""

import argparse
import os
import time

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

from skmixup.metrics import robust_accuracy_score


def forest_program(forest):
    """The sample-independent part: variables, constraints, objective."""
    thresholds = {}
    for est in forest.estimators_:
        t = est.tree_
        for f, thr in zip(t.feature, t.threshold, strict=True):
            if f >= 0:
                thresholds.setdefault(f, set()).add(float(thr))
    pred_index, pred_list = {}, []
    for f in sorted(thresholds):
        for thr in sorted(thresholds[f]):
            pred_index[(f, thr)] = len(pred_list)
            pred_list.append((f, thr))
    n_pred = len(pred_list)
    rows, cols, vals, lo, hi = [], [], [], [], []
    objective = []
    leaf_offset = n_pred

    def add(row_entries, low, high):
        r = len(lo)
        for c, v in row_entries:
            rows.append(r)
            cols.append(c)
            vals.append(v)
        lo.append(low)
        hi.append(high)

    for i in range(n_pred - 1):  # p_{f,j} <= p_{f,j+1}
        if pred_list[i][0] == pred_list[i + 1][0]:
            add([(i, 1.0), (i + 1, -1.0)], -np.inf, 0.0)
    T = len(forest.estimators_)
    for est in forest.estimators_:
        t = est.tree_
        leaves = np.flatnonzero(t.children_left < 0)
        leaf_var = {node: leaf_offset + k for k, node in enumerate(leaves)}
        leaf_offset += len(leaves)
        value = t.value[leaves, 0, :]
        value = value / value.sum(axis=1, keepdims=True)
        objective.extend(value[:, 1] / T)
        add([(leaf_var[node], 1.0) for node in leaves], 1.0, 1.0)
        below = {}

        def collect(node, below=below, t=t):
            if t.children_left[node] < 0:
                below[node] = [node]
            else:
                below[node] = collect(t.children_left[node]) + collect(
                    t.children_right[node]
                )
            return below[node]

        collect(0)
        for node in range(t.node_count):
            if t.children_left[node] < 0:
                continue
            p = pred_index[(t.feature[node], float(t.threshold[node]))]
            left = [(leaf_var[leaf], 1.0) for leaf in below[t.children_left[node]]]
            right = [(leaf_var[leaf], 1.0) for leaf in below[t.children_right[node]]]
            add(left + [(p, -1.0)], -np.inf, 0.0)
            add(right + [(p, 1.0)], -np.inf, 1.0)
    n_var = leaf_offset
    A = sparse.csr_array((vals, (rows, cols)), shape=(len(lo), n_var))
    c = np.concatenate([np.zeros(n_pred), np.asarray(objective)])
    integrality = np.concatenate([np.ones(n_pred), np.zeros(n_var - n_pred)])
    return A, np.asarray(lo), np.asarray(hi), c, integrality, pred_list


def robust_by_milp(forest, X, y, eps, scale, time_limit):
    A, lo, hi, c, integrality, preds = forest_program(forest)
    feats = np.array([f for f, _ in preds])
    thr = np.array([t for _, t in preds])
    n_var = len(c)
    robust, times, status = [], [], []
    for x, label in zip(X, y, strict=True):
        r = eps * scale[feats]
        low = np.zeros(n_var)
        high = np.ones(n_var)
        # x_f + delta <= thr for every delta in the box: the predicate is 1.
        low[: len(preds)][thr >= x[feats] + r] = 1.0
        # x_f + delta > thr for every delta: 0.
        high[: len(preds)][thr < x[feats] - r] = 0.0
        sign = 1.0 if label == 1 else -1.0
        start = time.perf_counter()
        res = milp(
            sign * c,
            constraints=LinearConstraint(A, lo, hi),
            integrality=integrality,
            bounds=Bounds(low, high),
            options={"time_limit": time_limit},
        )
        times.append(time.perf_counter() - start)
        status.append(res.status)
        if res.x is None:
            robust.append(np.nan)
            continue
        score = float(c @ res.x)
        robust.append(score > 0.5 if label == 1 else score <= 0.5)
    return np.array(robust, dtype=float), np.array(times), np.array(status)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    X, y = load_breast_cancer(return_X_y=True)
    n = 20 if args.quick else 60
    Xs, ys = X[:n], y[:n]
    scale = X[:n].std(axis=0)
    eps = 0.3
    sizes = [(10, 4), (50, 6)] if args.quick else [(10, 4), (50, 6), (100, 8)]
    print(
        f"Kantchelian MILP (scipy.optimize.milp), breast_cancer, {n} samples, "
        f"eps={eps} std, l_inf; load average {os.getloadavg()}"
    )
    print(
        f"{'trees':>6}{'depth':>6}{'vars':>8}{'median s':>10}{'max s':>8}"
        f"{'timeouts':>9}{'exact':>8}{'square':>8}"
    )
    for n_trees, depth in sizes:
        forest = RandomForestClassifier(
            n_estimators=n_trees, max_depth=depth, random_state=0
        ).fit(X, y)
        robust, times, status = robust_by_milp(forest, Xs, ys, eps, scale, 60.0)
        square = robust_accuracy_score(
            forest,
            Xs,
            ys,
            attack="square",
            eps=eps,
            feature_scale=scale,
            random_state=0,
        )
        n_var = len(forest_program(forest)[3])
        print(
            f"{n_trees:>6}{depth:>6}{n_var:>8}{np.median(times):>10.3f}"
            f"{times.max():>8.2f}{int(np.sum(status == 1)):>9}"
            f"{np.nanmean(robust):>8.3f}{square:>8.3f}"
        )


if __name__ == "__main__":
    main()
