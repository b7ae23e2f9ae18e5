"""Benchmarks for skmixup.theory and MixupRegularizedLogisticRegression.

(a) Fit time of MixupRegularizedLogisticRegression against scikit-learn's
    LogisticRegression (same C, tol, max_iter) in the same run, interleaved, with
    default thread settings (as a user runs them); median of ``--repeats`` fits.
(b) Relative error (approx - exact) / exact of the second-order Mixup loss
    ``L_std + R1 + R2`` against the exact Mixup loss (all pairs, 32 Gauss-Jacobi
    nodes) at several parameter scales (it grows with the model's confidence).

Run::

    python benchmarks/bench_theory.py            # full
    python benchmarks/bench_theory.py --quick    # seconds
"""

import argparse
import platform
import time
import warnings

import numpy as np
import sklearn
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_wine,
    make_classification,
    make_moons,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from skmixup.linear_model import MixupRegularizedLogisticRegression
from skmixup.theory import approximate_mixup_loss, mixup_loss

MIXUP_PARAMS = [(0.2, 0.2), (1.0, 1.0), (5.0, 0.5)]


def _fit_time(estimator, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        estimator.fit(X, y)
        elapsed = time.perf_counter() - start
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return elapsed, int(np.max(estimator.n_iter_)), converged


def _cases(quick):
    n = 10_000 if quick else 50_000
    X, y = make_classification(
        n_samples=n, n_features=100, n_informative=30, n_classes=10, random_state=0
    )
    Xd, yd = load_digits(return_X_y=True)
    return [
        (f"make_classification {n}x100, 10 cl.", X, y),
        (f"make_classification {n}x100, 10 cl.", X.astype(np.float32), y),
        ("load_digits (raw pixels)", Xd, yd),
        ("load_digits (raw pixels)", Xd.astype(np.float32), yd),
        ("load_digits (standardized)", StandardScaler().fit_transform(Xd), yd),
    ]


def _compare(X, y, repeats):
    times = {"sklearn": [], "ours": []}
    info = {}
    for _ in range(repeats):
        for key, est in (
            ("sklearn", LogisticRegression(C=1.0, tol=1e-4, max_iter=1000)),
            ("ours", MixupRegularizedLogisticRegression(C=1.0, tol=1e-4)),
        ):
            t, it, ok = _fit_time(est, X, y)
            times[key].append(t)
            info[key] = (it, ok)
    return {key: (np.median(times[key]), *info[key]) for key in times}


def _cell(t, it, ok):
    return f"{t:.3f} ({it}{'' if ok else ', max_iter'})"


def timing_table(quick, repeats):
    print("\n(a) Fit time, MixupRegularizedLogisticRegression (alpha=1, R1+R2) vs")
    print("    LogisticRegression (lbfgs), C=1, tol=1e-4, max_iter=1000, median of")
    print(f"    {repeats}; default threads, then all thread pools (BLAS, OpenMP) at 1")
    print()
    print(
        "| data | dtype | sklearn s (iter) | ours s (iter) | ratio "
        "| sklearn 1 thread | ours 1 thread | ratio 1 thread |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, X, y in _cases(quick):
        default = _compare(X, y, repeats)
        with threadpool_limits(limits=1):
            single = _compare(X, y, repeats)
        cells = []
        for res in (default, single):
            sk, ours = res["sklearn"], res["ours"]
            cells += [_cell(*sk), _cell(*ours), f"{ours[0] / sk[0]:.2f}x"]
        print(f"| {name} | {X.dtype.name} | " + " | ".join(cells) + " |")


def _linear(W, b, classes):
    est = LogisticRegression()
    est.coef_ = np.atleast_2d(W)
    est.intercept_ = np.atleast_1d(b)
    est.classes_ = classes
    return est


def _datasets(quick):
    n_moons = 200 if quick else 300
    Xm, ym = make_moons(n_moons, noise=0.2, random_state=0)
    Xb, yb = load_breast_cancer(return_X_y=True)
    Xw, yw = load_wine(return_X_y=True)
    out = [("moons", Xm, ym), ("breast_cancer", Xb, yb), ("wine", Xw, yw)]
    return [(name, StandardScaler().fit_transform(X), y) for name, X, y in out]


def approximation_table(quick):
    rng = np.random.RandomState(0)
    rows = []
    for name, X, y in _datasets(quick):
        classes = np.unique(y)
        n, d = X.shape
        K = 1 if classes.size == 2 else classes.size
        # "ERM": l2 = 1e-3 on the mean loss (breast_cancer is separable).
        erm = LogisticRegression(C=1.0 / (1e-3 * n), tol=1e-10, max_iter=10_000)
        erm.fit(X, y)
        models = []
        for scale in (0.1, 1.0):
            W = scale * rng.randn(K, d)
            label = f"random {scale:g}*N(0,1)"
            models.append((label, _linear(W, np.zeros(K), classes)))
        models.append(
            ("0.3 x ERM", _linear(0.3 * erm.coef_, 0.3 * erm.intercept_, classes))
        )
        models.append(("ERM", erm))
        for label, est in models:
            errors = []
            for a, b in MIXUP_PARAMS:
                exact = mixup_loss(est, X, y, mixup_alpha=a, mixup_beta=b)
                approx = approximate_mixup_loss(est, X, y, mixup_alpha=a, mixup_beta=b)
                errors.append(100 * (approx.total - exact) / exact)
            rows.append((name, label, np.linalg.norm(est.coef_), errors))
    print("\n(b) Relative error (L~mix - Lmix) / Lmix of the second-order")
    print("    approximation, standardized data, exact loss with all pairs")
    print()
    header = " | ".join(f"alpha,beta={a:g},{b:g}" for a, b in MIXUP_PARAMS)
    print(f"| data | parameters | norm(W) | {header} |")
    print("|---|---|---|" + "---|" * len(MIXUP_PARAMS))
    for name, label, norm, errors in rows:
        cells = " | ".join(f"{e:+.3f}%" for e in errors)
        print(f"| {name} | {label} | {norm:.2f} | {cells} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, {platform.machine()}"
    )
    timing_table(args.quick, repeats)
    approximation_table(args.quick)


if __name__ == "__main__":
    main()
