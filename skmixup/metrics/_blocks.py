"""Run an attack's independent row blocks on the machine's cores, safely.

Attacks on numpy models (linear models, MLPClassifier) process the rows in
cache-sized blocks (:func:`~skmixup.metrics._gradients.block_rows`). Each block's
matrix products are small, so BLAS runs with one thread while the blocks run:
a multi-threaded BLAS gains nothing on small products and, on a busy machine, its
threads wait for each other at every call (measured: 1.4 s instead of 0.04 s for
50,000 x 100 rows on 2 shared cores). The cores are used instead by running the
blocks themselves on a few threads; numpy releases the GIL in its products and
element-wise loops. Each block writes its own rows of a preallocated output, and
a block's result does not depend on the thread that computes it, so the result is
bit-identical to the serial loop.

The thread pool is used only where it cannot oversubscribe the machine:

* from the main thread only: a call from another thread (a threading backend of
  joblib, a web server's worker) is already one of several concurrent tasks and
  runs its blocks serially;
* with at most as many workers as blocks, as usable cores (:func:`joblib.cpu_count`,
  which honours CPU affinity and container quotas), and as BLAS threads were
  allowed before the attack: a ``threadpoolctl.threadpool_limits(1)`` around the
  call, or a joblib/loky worker process (which limits BLAS to its share of the
  cores), makes the loop serial.

Ctrl-C interrupts the main thread while it waits (a Ctrl-C that arrives while the
threads start is raised once they have started, so that every thread is joined);
the blocks not started are cancelled, and the running ones (milliseconds each)
finish before ``KeyboardInterrupt`` propagates. No thread outlives the call, so a
fork after an attack is safe.
"""

import contextlib
import contextvars
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

from joblib import cpu_count
from threadpoolctl import ThreadpoolController

_CONTROLLER = []
_LOCK = threading.Lock()
# Nested and concurrent attacks share one BLAS limit: the first to enter sets it,
# the last to leave restores the threads that were allowed before.
_STATE = {"depth": 0, "limiter": None, "blas_threads": 1}


def run_blocks(tasks, work):
    """Call ``work(*task)`` for every task; on a few threads where that is safe.

    ``tasks`` are ``(rows, data)`` pairs of :func:`_attacks._block_tasks`; each call
    must write only its own rows of the output. The first block's exception (in
    block order) is raised.
    """
    if len(tasks) < 2:
        for task in tasks:
            work(*task)
        return
    with _one_blas_thread() as blas_threads:
        workers = block_workers(len(tasks), blas_threads)
        if workers < 2:
            for task in tasks:
                work(*task)
        else:
            _run_on_threads(tasks, work, workers)


def block_workers(n_blocks, blas_threads):
    """Threads for ``n_blocks`` blocks: 1 outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return 1
    return max(1, min(n_blocks, cpu_count(), blas_threads))


def _run_on_threads(tasks, work, workers):
    stop = threading.Event()

    def run(context, task):
        if not stop.is_set():
            context.run(work, *task)

    futures = []
    with ThreadPoolExecutor(workers, thread_name_prefix="skmixup-block") as pool:
        try:
            # Threads start inside submit; a Ctrl-C there would leave one unjoined.
            with _ctrl_c_deferred():
                for task in tasks:
                    # Each block runs in a copy of the caller's context (errstate).
                    futures.append(pool.submit(run, contextvars.copy_context(), task))
            for future in futures:
                future.result()
        except BaseException:  # KeyboardInterrupt too: cancel what has not started
            stop.set()
            for future in futures:
                future.cancel()
            raise


@contextlib.contextmanager
def _ctrl_c_deferred():
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


@contextlib.contextmanager
def _one_blas_thread():
    """BLAS limited to one thread; yields the BLAS threads allowed before."""
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
