"""Is the exact robust accuracy of a tree ensemble affordable with scipy's MILP?

Times :func:`skmixup.metrics.certify` on random forests, which solves Kantchelian
et al.'s mixed-integer program (ICML 2016, "Evasion and Hardening of Tree Ensemble
Classifiers", Section 3; ``skmixup/metrics/_forest_milp.py``) per sample and wrong
class with :func:`scipy.optimize.milp` (HiGHS), under the l_inf threat model. The
square attack's robust accuracy on the same forest, an upper bound, is printed next
to the exact one, and the forest's own prediction time of the same samples as the
baseline (the ratio column: MILP seconds per sample over prediction seconds per
sample).

Run ``python benchmarks/bench_tree_milp.py`` (``--quick``: fewer samples and sizes).
"""

import argparse
import os
import time

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

from skmixup.metrics import certify, robust_accuracy_score


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
        f"Kantchelian MILP (certify, scipy.optimize.milp), breast_cancer, {n} "
        f"samples, eps={eps} std, l_inf; load average {os.getloadavg()}"
    )
    print(
        f"{'trees':>6}{'depth':>6}{'median s':>10}{'max s':>8}{'ratio':>8}"
        f"{'unknown':>8}{'exact':>8}{'square':>8}"
    )
    for n_trees, depth in sizes:
        forest = RandomForestClassifier(
            n_estimators=n_trees, max_depth=depth, random_state=0
        ).fit(X, y)
        start = time.perf_counter()
        forest.predict(Xs)
        predict = (time.perf_counter() - start) / n
        result = certify(forest, Xs, ys, eps=eps, feature_scale=scale, time_limit=60)
        times = result.sample_time[result.sample_time > 0]
        square = robust_accuracy_score(
            forest,
            Xs,
            ys,
            attack="square",
            eps=eps,
            feature_scale=scale,
            random_state=0,
        )
        print(
            f"{n_trees:>6}{depth:>6}{np.median(times):>10.3f}{times.max():>8.2f}"
            f"{np.median(times) / predict:>8.0f}{int(result.unknown.sum()):>8}"
            f"{result.certified_accuracy():>8.3f}{square:>8.3f}"
        )


if __name__ == "__main__":
    main()
