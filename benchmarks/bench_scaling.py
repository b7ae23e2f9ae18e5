"""L-BFGS on unscaled features: MixupLogisticRegression on breast_cancer with and
without a StandardScaler in front, measured in one run.

    python benchmarks/bench_scaling.py                     # prints the table
    python benchmarks/bench_scaling.py --out scaling.json  # and writes the numbers

breast_cancer's 30 features span five orders of magnitude (areas in the
thousands, fractal dimensions below 0.1), which makes the loss badly conditioned:
L-BFGS needs many more iterations and stops at ``max_iter`` with a
``ConvergenceWarning``. Each time is the best of ``--repeat`` fits of the default
estimator (``random_state=0``) on all 569 rows; the ratio is unscaled / scaled.
The README's scaling note quotes the stored ``docs/_data/scaling.json``
(``docs/numbers.py`` writes the note from it).
"""

import argparse
import json
import os
import time
import warnings

from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixup.linear_model import MixupLogisticRegression


def _fit(model, X, y, repeat):
    best, caught = float("inf"), []
    for _ in range(repeat):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(X, y)
            best = min(best, time.perf_counter() - start)
        caught = [w for w in seen if issubclass(w.category, ConvergenceWarning)]
    est = model[-1] if hasattr(model, "steps") else model
    return {
        "seconds": best,
        "n_iter": int(est.n_iter_[0]),
        "convergence_warning": bool(caught),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="fits per row (best)")
    parser.add_argument("--out", help="write the numbers as JSON to this file")
    args = parser.parse_args(argv)
    X, y = load_breast_cancer(return_X_y=True)
    unscaled = _fit(MixupLogisticRegression(random_state=0), X, y, args.repeat)
    scaled = _fit(
        make_pipeline(StandardScaler(), MixupLogisticRegression(random_state=0)),
        X,
        y,
        args.repeat,
    )
    result = {
        "data": "breast_cancer (569 x 30)",
        "unscaled": unscaled,
        "scaled": scaled,
        "ratio": unscaled["seconds"] / scaled["seconds"],
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "command": "python benchmarks/bench_scaling.py",
    }
    print(f"{'':10} {'seconds':>8} {'n_iter':>7} {'ConvergenceWarning':>19}")
    for name in ("unscaled", "scaled"):
        r = result[name]
        print(
            f"{name:10} {r['seconds']:8.2f} {r['n_iter']:7d} "
            f"{str(r['convergence_warning']):>19}"
        )
    print(
        f"ratio unscaled / scaled: {result['ratio']:.1f}; load {result['load_average']}"
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
