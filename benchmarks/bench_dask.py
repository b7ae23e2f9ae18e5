"""One linear Mixup fit on a Dask array larger than a worker's memory.

A LocalCluster with 2 worker processes, each with a memory limit below the size
of the data (the workers spill persisted chunks to disk instead of pausing);
``MixupLogisticRegression`` fits the binary problem on the persisted Dask array:
every L-BFGS-B evaluation is one pass over the chunks. Printed: the fit's time,
passes (= L-BFGS-B's objective evaluations), time per pass, the peak resident
memory of each worker, and for comparison, in the same run:

* the in-memory evaluation of the same objective on a subset that fits (time
  per row, as a ratio);
* ``partial_fit`` streamed once over the same chunks (the stochastic option);
* dask-ml's ``LogisticRegression`` (lbfgs, binary only) on the same Dask array.

Accuracy is measured on a held-out in-memory test set from the same model. A
worker process with NumPy, SciPy, scikit-learn and skmixup loaded holds about
340 MiB by itself, so the limit must exceed that; the workers' pausing and
terminating are turned off, so that above the limit they spill to disk.

Run: ``PYTHONPATH=. python benchmarks/bench_dask.py [--n-samples 5000000
--memory-limit 360MiB]`` (the issue's 20 million x 20 float32 = 1.6 GB with 1 GB
per worker is ``--n-samples 20000000 --memory-limit 1GiB``).
"""

import argparse
import os
import threading
import time

import numpy as np

import dask
import dask.array as da
import distributed
from skmixup.linear_model import MixupLogisticRegression, _dask
from skmixup.linear_model._loss import MixupLoss


def _data(n, d, chunk, seed):
    rs = da.random.RandomState(seed)
    X = rs.standard_normal((n, d), chunks=(chunk, d)).astype(np.float32)
    w = np.linspace(-1.0, 1.0, d).astype(np.float32)
    noise = rs.logistic(size=n, chunks=chunk).astype(np.float32)
    y = (X @ w + 0.3 + noise > 0).astype(np.int64)
    return X, y


def _rss():
    import psutil

    return psutil.Process().memory_info().rss


class _PeakMemory:
    """Samples the workers' resident memory every ``interval`` seconds."""

    def __init__(self, client, interval=0.5):
        self.client, self.interval = client, interval
        self.peak = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for worker, rss in self.client.run(_rss).items():
                self.peak[worker] = max(self.peak.get(worker, 0), rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-samples", type=int, default=5_000_000)
    parser.add_argument("--n-features", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--memory-limit", default="360MiB")
    parser.add_argument("--in-memory-rows", type=int, default=250_000)
    args = parser.parse_args()
    n, d, chunk = args.n_samples, args.n_features, args.chunk_rows
    size_mb = n * d * 4 / 2**20
    print(f"load average: {os.getloadavg()}")
    print(f"data: {n:,} x {d} float32 = {size_mb:.0f} MiB in chunks of {chunk:,} rows")
    dask.config.set(
        {
            "distributed.worker.memory.target": 0.5,
            "distributed.worker.memory.spill": 0.6,
            "distributed.worker.memory.pause": False,
            "distributed.worker.memory.terminate": False,
        }
    )
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=args.memory_limit,
        dashboard_address=":0",
    )
    client = distributed.Client(cluster)
    limit = next(iter(client.scheduler_info()["workers"].values()))["memory_limit"]
    print(f"LocalCluster: 2 workers x 1 thread, memory limit {limit / 2**20:.0f} MiB "
          f"per worker (data / limit = {size_mb * 2**20 / limit:.2f})")
    X, y = _data(n, d, chunk, seed=0)
    X, y = client.persist([X, y])
    distributed.wait([X, y])
    X_test, y_test = dask.compute(*_data(200_000, d, 200_000, seed=1))
    rows = []

    est = MixupLogisticRegression(random_state=0)
    pass_time = []  # the solver's passes, without the set-up passes
    evaluate = _dask._DaskObjective.loss_gradient

    def timed(self, *a, **k):
        t0 = time.perf_counter()
        try:
            return evaluate(self, *a, **k)
        finally:
            pass_time.append(time.perf_counter() - t0)

    _dask._DaskObjective.loss_gradient = timed
    with _PeakMemory(client) as memory:
        t0 = time.perf_counter()
        est.fit(X, y)
        fit_time = time.perf_counter() - t0
    _dask._DaskObjective.loss_gradient = evaluate
    passes = est._n_passes
    peak = max(memory.peak.values()) / 2**20
    rows.append(("MixupLogisticRegression on dask", fit_time, passes,
                 est.score(X_test, y_test), est.coef_))
    per_pass = float(np.median(pass_time))

    # In memory: the same objective's evaluation on rows that fit.
    m = args.in_memory_rows
    Xm, ym = dask.compute(X[:m], y[:m])
    ref = MixupLogisticRegression(random_state=0)
    Xv, Y, sw = ref._prepare_fit(Xm, ym, None)
    plan = ref._mixup_plan(sw, np.random.RandomState(0))
    loss = MixupLoss(Y.shape[1], d, True, plan)
    coef = np.r_[est.coef_.ravel(), est.intercept_].astype(np.float64)
    Y = Y.astype(np.float32)
    loss.loss_gradient(coef, Xv, Y, None)
    t0 = time.perf_counter()
    for _ in range(3):
        loss.loss_gradient(coef, Xv, Y, None)
    in_memory_eval = (time.perf_counter() - t0) / 3

    # partial_fit streamed once over the same chunks.
    stream = MixupLogisticRegression(random_state=0)
    t0 = time.perf_counter()
    for Xc, yc in zip(X.to_delayed().ravel(), y.to_delayed().ravel(), strict=True):
        Xc, yc = dask.compute(Xc, yc)
        stream.partial_fit(Xc, yc, classes=[0, 1])
    rows.append(("partial_fit, one pass over the chunks",
                 time.perf_counter() - t0, 1, stream.score(X_test, y_test),
                 stream.coef_))

    try:
        from dask_ml.linear_model import LogisticRegression

        dml = LogisticRegression(solver="lbfgs", max_iter=100)
        t0 = time.perf_counter()
        dml.fit(X, y)
        rows.append(("dask-ml LogisticRegression (lbfgs)",
                     time.perf_counter() - t0, None,
                     float(np.mean(dml.predict(X_test) == y_test)),
                     np.atleast_2d(dml.coef_)))
    except Exception as exc:  # noqa: BLE001 - report, do not hide
        rows.append((f"dask-ml LogisticRegression failed: {exc!r:.60}", np.nan,
                     None, np.nan, None))

    print()
    # distance of the coefficients to the exact Mixup fit, relative to its norm
    print(f"{'method':<42} {'time s':>8} {'passes':>7} {'test acc':>9} "
          f"{'coef dist':>10}")
    W = est.coef_.astype(np.float64)
    for name, t, p, acc, coef in rows:
        dist = np.nan if coef is None else np.linalg.norm(coef - W) / np.linalg.norm(W)
        print(f"{name:<42} {t:>8.1f} {p if p is not None else '-':>7} {acc:>9.4f} "
              f"{dist:>10.4f}")
    print()
    print(f"peak resident memory per worker: {peak:.0f} MiB "
          f"(limit {limit / 2**20:.0f} MiB; data {size_mb:.0f} MiB)")
    setup = fit_time - sum(pass_time)
    print(f"set-up (labels, plan sums, chunk states): {setup:.1f} s")
    print(f"time per pass (median): {per_pass:.2f} s = "
          f"{per_pass / n * 1e6:.2f} us/row; "
          f"in-memory evaluation on {m:,} rows: {in_memory_eval:.3f} s = "
          f"{in_memory_eval / m * 1e6:.2f} us/row; ratio (dask / in-memory, per "
          f"row) {per_pass / n / (in_memory_eval / m):.2f}")
    print(f"load average: {os.getloadavg()}")
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
