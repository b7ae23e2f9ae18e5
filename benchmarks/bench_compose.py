"""Cost and effect of the Mixup wrappers and of the MLP regressor.

1. ``MixupClassifier(HistGradientBoostingClassifier())`` against the plain
   estimator, per ``n_mixed``: fit time and peak memory (traced by
   ``tracemalloc``, numpy's allocations included) as ratios to the plain fit, and
   held-out accuracy and log-loss (mean over seeded splits).
   The trees run on ``--threads`` OpenMP threads (default 1: on a shared machine
   their spin-waits made timings vary tenfold).
2. ``MixupMLPRegressor`` against a raw PyTorch loop with the same Mixup (same
   network, Adam, batch, tensors on the device): seconds per epoch and the ratio
   (target <= 1.1).

Run in one process, so that the numbers are comparable::

    python benchmarks/bench_compose.py            # breast_cancer, wine; 3 splits
    python benchmarks/bench_compose.py --quick    # one data set, one split
"""

import argparse
import time
import tracemalloc
import warnings

import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_wine, make_friedman1
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from skmixup.compose import MixupClassifier
from skmixup.experiments._demo import format_table
from skmixup.neural_network import MixupMLPRegressor, MLPModule

DATASETS = {"breast_cancer": load_breast_cancer, "wine": load_wine}


def _fit_measured(est, X, y):
    """Wall and CPU seconds of one fit, and the peak traced memory of a second
    fit of a clone (tracemalloc slows the fit, so it is not timed)."""
    tic, cpu = time.perf_counter(), time.process_time()
    est.fit(X, y)
    seconds, cpu = time.perf_counter() - tic, time.process_time() - cpu
    tracemalloc.start()
    clone(est).fit(X, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, cpu, peak


def bench_wrapper(datasets, n_mixed_values, n_splits, max_iter):
    rows = []
    for name in datasets:
        X, y = DATASETS[name](return_X_y=True)
        per = {}
        for seed in range(n_splits):
            Xtr, Xte, ytr, yte = train_test_split(
                X, y, test_size=0.3, stratify=y, random_state=seed
            )
            for k in [0, *n_mixed_values]:
                est = HistGradientBoostingClassifier(max_iter=max_iter, random_state=0)
                if k:
                    est = MixupClassifier(est, n_mixed=k, random_state=seed)
                seconds, cpu, peak = _fit_measured(est, Xtr, ytr)
                proba = est.predict_proba(Xte)
                per.setdefault(k, []).append(
                    (
                        seconds,
                        cpu,
                        peak,
                        accuracy_score(yte, est.classes_[proba.argmax(1)]),
                        log_loss(yte, proba, labels=est.classes_),
                    )
                )
        base = np.mean(per[0], axis=0)
        for k, values in per.items():
            m = np.mean(values, axis=0)
            rows.append(
                {
                    "data": name,
                    "n_mixed": "plain" if k == 0 else str(k),
                    "fit s": m[0],
                    "time ratio": m[0] / base[0],
                    "CPU s": m[1],
                    "CPU ratio": m[1] / base[1],
                    "peak MiB": m[2] / 2**20,
                    "memory ratio": m[2] / base[2],
                    "accuracy": m[3],
                    "log-loss": m[4],
                }
            )
    return rows


HIDDEN, BATCH, LR, ALPHA = (256, 256), 256, 1e-3, 1.0


def bench_raw_regressor(X, y, epochs, seed):
    """The reference loop: tensors in memory, index slicing, Mixup of x and y."""
    torch.manual_seed(seed)
    model = MLPModule(X.shape[1], 1, HIDDEN)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    Xd, yd = torch.as_tensor(X), torch.as_tensor(y).reshape(-1, 1)
    beta = torch.distributions.Beta(torch.tensor(ALPHA), torch.tensor(ALPHA))
    times = []
    for _ in range(epochs):
        tic = time.perf_counter()
        model.train()
        order = torch.randperm(len(Xd))
        for start in range(0, len(Xd), BATCH):
            idx = order[start : start + BATCH]
            xb, yb = Xd[idx], yd[idx]
            lam = beta.sample((len(idx), 1))
            perm = torch.randperm(len(idx))
            out = model(lam * xb + (1 - lam) * xb[perm])
            loss = torch.nn.functional.mse_loss(out, lam * yb + (1 - lam) * yb[perm])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
        times.append(time.perf_counter() - tic)
    return times


def bench_ours_regressor(X, y, epochs, seed, partners):
    reg = MixupMLPRegressor(
        hidden_layer_sizes=HIDDEN,
        mixup_alpha=ALPHA,
        alpha=0.0,
        batch_size=BATCH,
        learning_rate_init=LR,
        max_iter=epochs,
        n_iter_no_change=epochs + 1,
        partners=partners,
        device="cpu",
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    return list(reg.net_.history[:, "dur"])


def bench_regressor(n_samples, epochs, repeats):
    X, y = make_friedman1(n_samples, n_features=20, noise=1.0, random_state=0)
    X, y = X.astype(np.float32), ((y - y.mean()) / y.std()).astype(np.float32)
    methods = {
        "raw PyTorch loop + Mixup": lambda s: bench_raw_regressor(X, y, epochs, s),
        "MixupMLPRegressor, uniform": lambda s: bench_ours_regressor(
            X, y, epochs, s, "uniform"
        ),
        "MixupMLPRegressor, label_kernel": lambda s: bench_ours_regressor(
            X, y, epochs, s, "label_kernel"
        ),
    }
    best = {}
    names = list(methods)
    for r in range(repeats):  # rotated order each round
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times = methods[name](r)
            epoch = float(np.median(times[1:] if len(times) >= 3 else times))
            best[name] = min(best.get(name, np.inf), epoch)
    raw = best["raw PyTorch loop + Mixup"]
    return [
        {"method": name, "s / epoch": t, "ratio to raw": t / raw}
        for name, t in best.items()
    ]


def _table(rows):
    return format_table(rows, list(rows[0]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=None)
    parser.add_argument("--splits", type=int, default=None)
    parser.add_argument("--n-mixed", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--n-samples", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OpenMP/BLAS threads of the trees (1: steady timings on a busy box)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    datasets = args.datasets or (["breast_cancer"] if args.quick else list(DATASETS))
    n_splits = args.splits or (1 if args.quick else 3)
    max_iter = 50 if args.quick else 100
    print(
        f"# MixupClassifier(HistGradientBoostingClassifier(max_iter={max_iter})) "
        f"vs the plain estimator, {n_splits} split(s), test fraction 0.3\n"
    )
    with threadpool_limits(args.threads):  # OpenMP of the trees, BLAS
        rows = bench_wrapper(datasets, args.n_mixed, n_splits, max_iter)
    print(_table(rows))
    n = 5000 if args.quick else args.n_samples
    epochs = 4 if args.quick else args.epochs
    repeats = 1 if args.quick else args.repeats
    print(
        f"\n# MixupMLPRegressor vs a raw PyTorch loop: {n} samples, 20 features, "
        f"MLP {HIDDEN}, batch {BATCH}, torch on 1 thread, best of {repeats} "
        f"median epoch times\n"
    )
    print(_table(bench_regressor(n, epochs, repeats)))


if __name__ == "__main__":
    main()
