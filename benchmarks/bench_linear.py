"""MixupLogisticRegression against scikit-learn's LogisticRegression: fit time,
peak memory and distance to the exact (all-pairs) minimiser, measured in one run.

    python benchmarks/bench_linear.py               # both tables (minutes on 2 cores)
    python benchmarks/bench_linear.py --quick       # 10,000 rows instead of 50,000
    python benchmarks/bench_linear.py --only speed  # or: --only distance

**Speed table.** Each time is the best of ``--repeat`` fits. "sklearn" uses the
default BLAS threading, "sklearn 1 thread" pins every BLAS pool to one thread
(threadpoolctl); ratios are against both, measured in the same run. Memory is the
peak of numpy's allocations during one more ``fit`` (tracemalloc, not timed: it
slows every allocation) divided by the size of ``X``. ``dist`` is the relative l2
distance of the fitted coefficients (intercepts included) to a reference fit: all
pairs with 24 interior quadrature nodes and ``tol=1e-8`` where all pairs are in
reach (digits), else the same estimator with 64 partners per sample (another seed).
``plan`` is the number of partners of the default plan ("all": exact).

**Distance table.** The rows of the issue that motivated the defaults: relative l2
distance of the default fit to the all-pairs minimiser (24 interior nodes,
``tol=1e-8``), mean over 3 seeds of a 50/50 stratified split (standardized on the
training half, training half fitted); for make_classification 10k x 50 the
reference is 512 partners (all pairs is out of reach). Two columns per law: at
``tol=1e-4`` (the default, which alone moves the solution by up to ~2% on digits)
and at ``tol=1e-6`` (the error of the objective itself).
"""

import argparse
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_wine,
    make_classification,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

from skmixup.linear_model import (
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
)
from skmixup.linear_model._plan import resolve_settings

LAWS = {"a=0.2": (0.2, 0.2), "a=1": (1.0, 1.0), "Beta(5,0.5)": (5.0, 0.5)}


def flat(model):
    return np.concatenate([np.ravel(model.coef_), np.ravel(model.intercept_)])


def distance(model, ref):
    return np.linalg.norm(flat(model) - flat(ref)) / np.linalg.norm(flat(ref))


def fit(make, X, y, threads=None):
    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if threads is None:
            return est.fit(X, y)
        with threadpool_limits(limits=threads, user_api="blas"):
            return est.fit(X, y)


def measure(make, X, y, repeat, threads=None):
    """Best time of ``repeat`` untraced fits, and the peak memory of one more fit
    under tracemalloc (which slows every allocation, so it is not timed)."""
    best, model = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        est = fit(make, X, y, threads)
        elapsed = time.perf_counter() - t0
        if elapsed < best:
            best, model = elapsed, est
    tracemalloc.start()
    fit(make, X, y, threads)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, peak, model


def plan_label(n, alpha=1.0, beta=None):
    P, _ = resolve_settings(n, alpha, beta, "auto", "auto")
    return "all" if P is None else str(P)


def speed_datasets(quick):
    n = 10_000 if quick else 50_000
    X, y = make_classification(
        n_samples=n, n_features=100, n_informative=30, n_classes=10, random_state=0
    )
    yield f"make_classification {n}x100, 10 cl., float64", X, y, False
    yield (
        f"make_classification {n}x100, 10 cl., float32",
        X.astype(np.float32),
        y,
        False,
    )
    Xd, yd = load_digits(return_X_y=True)
    yield (
        "load_digits 1797x64, 10 cl. (std.)",
        StandardScaler().fit_transform(Xd),
        yd,
        True,
    )


def speed_table(quick, repeat):
    C, tol = 1.0, 1e-4
    candidates = [
        ("sklearn LogisticRegression", lambda: LogisticRegression(C=C, tol=tol), None),
        (
            "sklearn LogisticRegression, 1 thread",
            lambda: LogisticRegression(C=C, tol=tol),
            1,
        ),
        (
            "MixupLogisticRegression (defaults)",
            lambda: MixupLogisticRegression(C=C, tol=tol, random_state=0),
            None,
        ),
        (
            "MixupRegularizedLogisticRegression",
            lambda: MixupRegularizedLogisticRegression(C=C, tol=tol),
            None,
        ),
    ]
    header = (
        f"| {'data':44s} | {'estimator':38s} | {'fit s':>6s} | {'iter':>4s} "
        f"| {'vs sk':>5s} | {'vs sk 1t':>8s} | {'peak/X':>6s} | {'acc':>5s} "
        f"| {'plan':>4s} | {'dist':>6s} |"
    )
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
    for name, X, y, exact in speed_datasets(quick):
        if exact:
            reference = fit(
                lambda: MixupLogisticRegression(
                    C=C, n_partners="all", n_quadrature=24, tol=1e-8
                ),
                X,
                y,
            )
        else:
            reference = fit(
                lambda: MixupLogisticRegression(
                    C=C, tol=tol, n_partners=64, random_state=1
                ),
                X,
                y,
            )
        times = {}
        for label, make, threads in candidates:
            t, peak, model = measure(make, X, y, repeat, threads)
            times[label] = t
            base = times["sklearn LogisticRegression"]
            base1 = times.get("sklearn LogisticRegression, 1 thread", np.nan)
            mixup = label.startswith("MixupLogistic")
            n_iter = int(np.max(model.n_iter_))
            print(
                f"| {name:44s} | {label:38s} | {t:6.2f} | {n_iter:4d} "
                f"| {t / base:5.2f} | {t / base1:8.2f} | {peak / X.nbytes:6.2f} "
                f"| {model.score(X, y):5.3f} "
                f"| {plan_label(len(y)) if mixup else '':>4s} "
                f"| {distance(model, reference) if mixup else np.nan:6.2%} |",
                flush=True,
            )
        ref = "all pairs, 24 nodes, tol 1e-8" if exact else "64 partners"
        print(f"|   reference: {ref}")


def distance_datasets():
    for name, loader in (
        ("digits", load_digits),
        ("breast_cancer", load_breast_cancer),
        ("wine", load_wine),
    ):
        X, y = loader(return_X_y=True)
        yield name, X, y, False
    X, y = make_classification(
        n_samples=20_000,
        n_features=50,
        n_informative=20,
        n_classes=5,
        random_state=0,
    )
    yield "make_classification 10k x 50, 5 cl.", X, y, True


def distance_table():
    print(
        "\n| data (train n) | law | plan | dist tol 1e-4 | dist tol 1e-6 "
        "| default fit s | reference fit s |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, X, y, large in distance_datasets():
        for law, (a, b) in LAWS.items():
            rows = []
            for seed in range(3):
                Xtr, _, ytr, _ = train_test_split(
                    X, y, test_size=0.5, stratify=y, random_state=seed
                )
                Xtr = StandardScaler().fit_transform(Xtr)
                kw = {"mixup_alpha": a, "mixup_beta": b}
                t0 = time.perf_counter()
                if large:
                    ref = fit(
                        lambda kw=kw: MixupLogisticRegression(
                            n_partners=512, tol=1e-6, random_state=100, **kw
                        ),
                        Xtr,
                        ytr,
                    )
                else:
                    ref = fit(
                        lambda kw=kw: MixupLogisticRegression(
                            n_partners="all", n_quadrature=24, tol=1e-8, **kw
                        ),
                        Xtr,
                        ytr,
                    )
                t_ref = time.perf_counter() - t0
                t0 = time.perf_counter()
                default = fit(
                    lambda kw=kw, seed=seed: MixupLogisticRegression(
                        random_state=seed, **kw
                    ),
                    Xtr,
                    ytr,
                )
                t_default = time.perf_counter() - t0
                tight = fit(
                    lambda kw=kw, seed=seed: MixupLogisticRegression(
                        random_state=seed, tol=1e-6, **kw
                    ),
                    Xtr,
                    ytr,
                )
                rows.append(
                    (distance(default, ref), distance(tight, ref), t_default, t_ref)
                )
            d4, d6, td, tr = np.mean(rows, axis=0)
            print(
                f"| {name} ({len(ytr)}) | {law} | {plan_label(len(ytr), a, b)} "
                f"| {d4:.2%} | {d6:.2%} | {td:.2f} | {tr:.2f} |",
                flush=True,
            )
    print("reference: all pairs, 24 interior nodes, tol 1e-8 (10k: 512 partners)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", choices=["speed", "distance"], default=None)
    args = parser.parse_args()
    pools = sorted({(p["internal_api"], p["num_threads"]) for p in threadpool_info()})
    print(f"BLAS pools (api, threads): {pools}")
    if args.only in (None, "speed"):
        speed_table(args.quick, args.repeat)
    if args.only in (None, "distance"):
        distance_table()


if __name__ == "__main__":
    main()
