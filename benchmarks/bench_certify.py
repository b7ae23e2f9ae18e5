"""Speed and tightness of :func:`skmixup.metrics.certify`: IBP, CROWN and the MILP.

Data: breast_cancer and digits, standardized on a stratified half (the training
split), the other half is the test split; models: ``MLPClassifier`` (ReLU) with
hidden sizes (50,), (100,), (200,), (100, 100), fitted on the training split
(``max_iter=300``). ``eps`` in standard deviations (``feature_scale=1`` on the
standardized data): 0.05, 0.1, 0.2.

Columns, for each data set, network and eps:

* ``pgd/s``: samples per second of the 20-step PGD that ``certify`` runs first
  (:func:`skmixup.metrics.pgd`), the baseline measured in the same run;
* ``ibp/s``, ``crown/s``: samples per second of ``certify(method=...)`` over the
  whole test split (PGD included, on the samples the bounds leave open), and
  ``crown/pgd``, its ratio to PGD;
* on the first ``--n-exact`` test samples (30): the certified counts of IBP, CROWN,
  the LP relaxation (the MILP with its integrality dropped: the "triangle"
  relaxation of each unstable ReLU, solved per sample and class by HiGHS, with the
  same CROWN bounds), the MILP (``time_limit=10`` s per sample), the attacked
  samples (``att``: a verified counterexample), the MILP's unknowns (``unk``), and
  the median seconds per sample of the MILP over all those samples (``milp med``)
  and over the samples it had to solve (``solved med``; those CROWN and PGD leave
  open).

Run ``python benchmarks/bench_certify.py`` (``--quick``: breast_cancer and (100,)
only; ``--n-exact N``). The machine's load average is printed first: on a shared
machine compare the ratios, not the seconds.
"""

import argparse
import os
import time
import warnings
from functools import partial

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skmixup.metrics import certify, pgd
from skmixup.metrics._bounds import FirstLayer, Region, bound_margins
from skmixup.metrics._milp import _program
from skmixup.metrics._network import mlp_network

HIDDEN = [(50,), (100,), (200,), (100, 100)]
EPS = [0.05, 0.1, 0.2]


def data(name):
    X, y = (load_breast_cancer if name == "breast_cancer" else load_digits)(
        return_X_y=True
    )
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=0
    )
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), y_tr, scaler.transform(X_te), y_te


def lp_certified(clf, X, y, eps):
    """Samples the LP relaxation certifies (CROWN's intermediate bounds)."""
    network = mlp_network(clf)
    W0, b0 = network.weights[0]
    first = FirstLayer(W0, X @ W0.T + b0)
    region = Region(np.full(X.shape, -eps), np.full(X.shape, eps))
    y_idx = np.searchsorted(clf.classes_, y)
    low, pre = bound_margins(network, first, region, y_idx, "crown")
    W, b = network.weights[-1]
    count = 0
    for i in range(len(y)):
        M, r_lo, r_hi, v_lo, v_hi, _, (at, width) = _program(
            network,
            W0,
            first.c0[i],
            region.lo[i],
            region.hi[i],
            [(lo[i], hi[i]) for lo, hi in pre],
        )
        ok = clf.predict(X[i : i + 1])[0] == y[i]
        for k in range(W.shape[0]):
            if not ok:
                break
            if k == y_idx[i]:
                continue
            c = np.zeros(len(v_lo))
            c[at : at + width] = W[y_idx[i]] - W[k]
            res = milp(
                c,
                bounds=Bounds(v_lo, v_hi),
                constraints=LinearConstraint(M, r_lo, r_hi),
            )
            ok = res.status == 0 and res.fun + b[y_idx[i]] - b[k] > 0
        count += ok
    return count


def rate(func, n, repeats=3):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - start)
    return n / best, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n-exact", type=int, default=30)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")
    datasets = ["breast_cancer"] if args.quick else ["breast_cancer", "digits"]
    hidden_sizes = [(100,)] if args.quick else HIDDEN
    header = (
        f"{'data':>13} {'hidden':>10} {'eps':>5} {'pgd/s':>7} {'ibp/s':>7} "
        f"{'crown/s':>8} {'crown/pgd':>9} | {'n':>3} {'ibp':>4} {'crown':>5} "
        f"{'lp':>4} {'milp':>4} {'att':>4} {'unk':>4} {'milp med':>8} "
        f"{'solved med':>10}"
    )
    print(header)
    print("-" * len(header))
    for name in datasets:
        X_tr, y_tr, X_te, y_te = data(name)
        for hidden in hidden_sizes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf = MLPClassifier(hidden, max_iter=300, random_state=0)
                clf.fit(X_tr, y_tr)
            n = len(y_te)
            common = {"feature_scale": 1.0, "random_state": 0}
            for eps in EPS:
                args_ = (clf, X_te, y_te)
                pgd_rate, _ = rate(
                    partial(pgd, *args_, eps=eps, n_iter=20, **common), n
                )
                ibp_rate, _ = rate(
                    partial(certify, *args_, eps=eps, method="ibp", **common), n
                )
                crown_rate, _ = rate(partial(certify, *args_, eps=eps, **common), n)
                m = min(args.n_exact, n)
                X_s, y_s = X_te[:m], y_te[:m]
                ibp = certify(clf, X_s, y_s, eps=eps, method="ibp", **common)
                crown = certify(clf, X_s, y_s, eps=eps, **common)
                exact = certify(
                    clf, X_s, y_s, eps=eps, method="milp", time_limit=10.0, **common
                )
                lp = lp_certified(clf, X_s, y_s, eps)
                solved = exact.sample_time[exact.sample_time > 0]
                per_sample = np.full(m, (exact.time - exact.sample_time.sum()) / m)
                per_sample += exact.sample_time
                print(
                    f"{name:>13} {str(hidden):>10} {eps:>5} {pgd_rate:>7.0f} "
                    f"{ibp_rate:>7.0f} {crown_rate:>8.0f} "
                    f"{crown_rate / pgd_rate:>9.2f} | {m:>3} "
                    f"{ibp.certified.sum():>4} {crown.certified.sum():>5} {lp:>4} "
                    f"{exact.certified.sum():>4} {exact.attacked.sum():>4} "
                    f"{exact.unknown.sum():>4} {np.median(per_sample):>8.3f} "
                    f"{np.median(solved) if len(solved) else 0.0:>10.3f}",
                    flush=True,
                )
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
