"""Threads, once: the counted BLAS limiter, the worker policy, the thread runner
and the torch thread contexts.

Every numpy/scipy hot loop of skmixup (the linear models' L-BFGS-B objective, the
Mixup plan's tiles, the second-order penalty, the attacks' row blocks) makes many
small BLAS calls. A multi-threaded BLAS gains nothing on small products and, on a
busy machine, its threads wait for each other at every call (measured: 1.4 s
instead of 0.04 s for 50,000 x 100 rows of an attack on 2 shared cores), so these
loops run with BLAS limited to one thread (:func:`one_blas_thread`) and use the
cores, where the work is large enough, by running independent pieces on a few
threads of their own (numpy releases the GIL in its products and element-wise
loops).

The thread pool is used only where it cannot oversubscribe the machine
(:func:`worker_count`):

* from the main thread only: a call from another thread (a threading backend of
  joblib, a web server's worker) is already one of several concurrent tasks and
  runs its pieces serially;
* with at most as many workers as pieces, as usable cores (:func:`joblib.cpu_count`,
  which honours CPU affinity and container quotas), and as BLAS threads were
  allowed before: a ``threadpoolctl.threadpool_limits(1)`` around the call, or a
  joblib/loky worker process (which limits BLAS to its share of the cores), makes
  the loop serial.

Ctrl-C interrupts the main thread while it waits (a Ctrl-C that arrives while the
threads start is raised once they have started, so that every thread is joined);
the pieces not started are cancelled, and the running ones finish before
``KeyboardInterrupt`` propagates. No thread outlives the call, so a fork
afterwards is safe.

PyTorch's intra-op pool has two contexts here: :func:`torch_single_thread` (tiny
networks on a shared machine) and :func:`torch_runtime` (one thread in a forked
child, whose inherited OpenMP pool is unusable). Neither imports torch before it
is needed, so this module serves the core package too.
"""

import contextlib
import contextvars
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

from joblib import cpu_count
from threadpoolctl import ThreadpoolController

__all__ = [
    "one_blas_thread",
    "run_blocks",
    "run_on_threads",
    "torch_runtime",
    "torch_single_thread",
    "worker_count",
]

_CONTROLLER = []
_LOCK = threading.Lock()
# Nested and concurrent users share one BLAS limit: the first to enter sets it,
# the last to leave restores the threads that were allowed before.
_STATE = {"depth": 0, "limiter": None, "blas_threads": 1}


@contextlib.contextmanager
def one_blas_thread():
    """BLAS limited to one thread; yields the BLAS threads allowed before.

    Counted: nested and concurrent blocks share one limit (entering a nested
    block costs a lock, not a new ``threadpoolctl`` limit), and the threads
    allowed before the outermost block are restored when the last one exits.
    """
    with _LOCK:
        if _STATE["depth"] == 0:
            if not _CONTROLLER:  # created on first use, after numpy loaded BLAS
                _CONTROLLER.append(ThreadpoolController())
            blas = _CONTROLLER[0].select(user_api="blas")
            threads = [lib.num_threads for lib in blas.lib_controllers]
            _STATE["blas_threads"] = max(threads, default=cpu_count())
            _STATE["limiter"] = _CONTROLLER[0].limit(limits=1, user_api="blas")
        _STATE["depth"] += 1
        blas_threads = _STATE["blas_threads"]
    try:
        yield blas_threads
    finally:
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                _STATE["limiter"].restore_original_limits()
                _STATE["limiter"] = None


def worker_count(n_tasks, blas_threads):
    """Threads for ``n_tasks`` independent pieces: 1 outside the main thread, else
    at most the pieces, the usable cores and the BLAS threads allowed before."""
    if threading.current_thread() is not threading.main_thread():
        return 1
    return max(1, min(n_tasks, cpu_count(), blas_threads))


def run_blocks(tasks, work):
    """Call ``work(*task)`` for every task; on a few threads where that is safe.

    Each call must write only its own part of the output (a block's result must
    not depend on the thread that computes it: the result is then bit-identical
    to the serial loop). BLAS runs on one thread meanwhile. The first task's
    exception (in task order) is raised.
    """
    if len(tasks) < 2:
        for task in tasks:
            work(*task)
        return
    with one_blas_thread() as blas_threads:
        workers = worker_count(len(tasks), blas_threads)
        if workers < 2:
            for task in tasks:
                work(*task)
        else:
            run_on_threads(tasks, work, workers)


def run_on_threads(tasks, work, workers):
    """Call ``work(*task)`` for every task on ``workers`` threads (each in a copy
    of the caller's context, e.g. numpy's ``errstate``); Ctrl-C safe, no thread
    outlives the call, the first task's exception (in task order) is raised."""
    stop = threading.Event()

    def run(context, task):
        if not stop.is_set():
            context.run(work, *task)

    futures = []
    with ThreadPoolExecutor(workers, thread_name_prefix="skmixup-worker") as pool:
        try:
            # Threads start inside submit; a Ctrl-C there would leave one unjoined.
            with ctrl_c_deferred():
                for task in tasks:
                    futures.append(pool.submit(run, contextvars.copy_context(), task))
            for future in futures:
                future.result()
        except BaseException:  # KeyboardInterrupt too: cancel what has not started
            stop.set()
            for future in futures:
                future.cancel()
            raise


@contextlib.contextmanager
def ctrl_c_deferred():
    """Hold a Ctrl-C (with Python's default handler) until the block exits."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt


# ------------------------------------------------------------------ PyTorch
@contextlib.contextmanager
def torch_single_thread():
    """Run torch on one intra-op thread, then restore the previous setting.

    Tiny networks and batches gain nothing from torch's default of one thread
    per core: on a 2-core machine shared with other work, it made a fit 5-10
    times slower. A no-op without torch.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - the torch extra is not installed
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_FORK = {"child": False}
_TORCH_LOCK = threading.Lock()
_TORCH = {"depth": 0, "saved": None}


def _note_fork():
    _FORK["child"] = True
    _TORCH["depth"] = 0
    _TORCH["saved"] = None


os.register_at_fork(after_in_child=_note_fork)


@contextlib.contextmanager
def torch_runtime():
    """Run a block of torch work safely in this process.

    In a process forked from another (``multiprocessing`` with the ``fork``
    start method, joblib's multiprocessing backend, ...), PyTorch's OpenMP pool
    inherited from the parent is unusable; the block then runs with one intra-op
    thread, and the previous setting is restored when the last concurrent block
    ends. Elsewhere this is a no-op.
    """
    if not _FORK["child"]:
        yield
        return
    import torch

    with _TORCH_LOCK:
        if _TORCH["depth"] == 0:
            _TORCH["saved"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _TORCH["depth"] += 1
    try:
        yield
    finally:
        with _TORCH_LOCK:
            _TORCH["depth"] -= 1
            if _TORCH["depth"] == 0:
                torch.set_num_threads(_TORCH["saved"])
