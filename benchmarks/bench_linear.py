"""Fit time and peak memory of MixupLogisticRegression vs scikit-learn's
LogisticRegression, measured in the same run.

    python benchmarks/bench_linear.py            # full table (a few minutes on 2 cores)
    python benchmarks/bench_linear.py --quick    # 10,000 rows instead of 50,000

Each row is the best of ``--repeat`` fits. With numba installed
(``pip install "skmixup[fast]"``) MixupLogisticRegression uses its compiled kernel;
a row forced onto the numpy evaluation is then added, and the one-time import and
JIT cost is printed (and excluded from the timings) first. Memory is the peak of
numpy's allocations during ``fit`` (tracemalloc; the numba kernel's tables are
numpy arrays too), divided by the size of ``X``. "sklearn" uses the
default BLAS threading; "sklearn 1 thread" pins every BLAS pool to one thread with
threadpoolctl. All use the same ``C`` and ``tol``. The approximation-error table
of the penalty estimator is printed by ``benchmarks/bench_theory.py``.
"""

import argparse
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

from skmixup.linear_model import (
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
    _loss,
)


class _NumpyOnly(MixupLogisticRegression):
    """MixupLogisticRegression forced onto the numpy evaluation (no numba)."""

    def fit(self, X, y, sample_weight=None):
        use, _loss.USE_NUMBA = _loss.USE_NUMBA, False
        try:
            return super().fit(X, y, sample_weight)
        finally:
            _loss.USE_NUMBA = use


def warm_up():
    """Import numba and load (or compile) its kernels before timing anything."""
    kernel = _loss._numba_kernel()
    if kernel is None:
        print("numba kernel: not installed (numpy evaluation only)")
        return False
    t0 = time.perf_counter()
    X, y = make_classification(n_samples=200, n_classes=3, n_informative=4)
    for dtype in (np.float64, np.float32):
        for labels in (y, y % 2):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                MixupLogisticRegression(max_iter=2).fit(X.astype(dtype), labels)
    print(
        f"numba kernel: one-time import and JIT load {time.perf_counter() - t0:.1f} s"
    )
    return True


def measure(make, X, y, repeat, threads=None):
    best, peak, model = np.inf, 0, None
    for _ in range(repeat):
        est = make()
        tracemalloc.start()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if threads is None:
                est.fit(X, y)
            else:
                with threadpool_limits(limits=threads, user_api="blas"):
                    est.fit(X, y)
        elapsed = time.perf_counter() - t0
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        if elapsed < best:
            best, model = elapsed, est
    return best, peak, model


def datasets(quick):
    n = 10_000 if quick else 50_000
    X, y = make_classification(
        n_samples=n, n_features=100, n_informative=30, n_classes=10, random_state=0
    )
    yield f"make_classification {n}x100, 10 cl., float64", X, y
    yield f"make_classification {n}x100, 10 cl., float32", X.astype(np.float32), y
    Xd, yd = load_digits(return_X_y=True)
    yield (
        "load_digits 1797x64, 10 cl. (standardized)",
        StandardScaler().fit_transform(Xd),
        yd,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    repeat = args.repeat or (1 if not args.quick else 2)
    C, tol = 1.0, 1e-4
    pools = sorted({(p["internal_api"], p["num_threads"]) for p in threadpool_info()})
    print(f"BLAS pools (api, threads): {pools}")
    have_numba = warm_up()
    candidates = [
        ("sklearn LogisticRegression", lambda: LogisticRegression(C=C, tol=tol), None),
        (
            "sklearn LogisticRegression, 1 thread",
            lambda: LogisticRegression(C=C, tol=tol),
            1,
        ),
        (
            "MixupLogisticRegression (defaults: P=8, Q=16)",
            lambda: MixupLogisticRegression(C=C, tol=tol, random_state=0),
            None,
        ),
        *(
            [
                (
                    "MixupLogisticRegression (defaults, numpy only)",
                    lambda: _NumpyOnly(C=C, tol=tol, random_state=0),
                    None,
                )
            ]
            if have_numba
            else []
        ),
        (
            "MixupLogisticRegression (P=2, Q=8)",
            lambda: MixupLogisticRegression(
                C=C, tol=tol, n_partners=2, n_quadrature=8, random_state=0
            ),
            None,
        ),
        (
            "MixupRegularizedLogisticRegression (R1+R2)",
            lambda: MixupRegularizedLogisticRegression(C=C, tol=tol),
            None,
        ),
    ]
    header = (
        f"| {'data':44s} | {'estimator':46s} | {'fit s':>7s} | {'iter':>5s} "
        f"| {'vs sk':>6s} | {'vs sk 1t':>8s} | {'peak/X':>6s} | {'train acc':>9s} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, X, y in datasets(args.quick):
        times = {}
        for label, make, threads in candidates:
            t, peak, model = measure(make, X, y, repeat, threads)
            times[label] = t
            base = times["sklearn LogisticRegression"]
            base1 = times.get("sklearn LogisticRegression, 1 thread", np.nan)
            n_iter = np.max(model.n_iter_)
            print(
                f"| {name:44s} | {label:46s} | {t:7.2f} | {n_iter:5d} "
                f"| {t / base:6.2f} | {t / base1:8.2f} | {peak / X.nbytes:6.2f} "
                f"| {model.score(X, y):9.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
