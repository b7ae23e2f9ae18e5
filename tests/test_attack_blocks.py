"""Attacks run their row blocks on threads: same result, Ctrl-C, fork, BLAS limits."""

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from threadpoolctl import ThreadpoolController, threadpool_limits

from skmixup.metrics import _attacks, _gradients, fgsm, pgd
from skmixup.metrics._validation import attack_input
from skmixup.utils import _threads

# About 200 rows per block of 20 features: 2,000 rows make 10 blocks.
SMALL_BLOCKS = 2**12


def _blas_threads():
    blas = ThreadpoolController().select(user_api="blas")
    return [lib.num_threads for lib in blas.lib_controllers]


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(_gradients, "BLOCK_ELEMENTS", SMALL_BLOCKS)


def _data(dtype, n_classes=3, seed=0):
    X, y = make_classification(
        n_samples=2000,
        n_features=20,
        n_informative=8,
        n_classes=n_classes,
        random_state=seed,
    )
    return X.astype(dtype), y


def _models(dtype):
    X, y = _data(dtype)
    Xb, yb = _data(dtype, n_classes=2, seed=1)
    return [
        (LogisticRegression(max_iter=50).fit(X, y), X, y),
        (LogisticRegression(max_iter=50).fit(Xb, yb), Xb, yb),
        (
            MLPClassifier((16,), activation="tanh", max_iter=5, random_state=0).fit(
                X, y
            ),
            X,
            y,
        ),
    ]


def _with_workers(monkeypatch, workers, attack):
    """Run ``attack()`` with the block loop forced to ``workers`` threads."""
    calls = []
    run_on_threads = _threads.run_on_threads

    def spy(tasks, work, n):
        calls.append(n)
        return run_on_threads(tasks, work, n)

    with monkeypatch.context() as m:
        m.setattr(_threads, "worker_count", lambda n_blocks, blas: workers)
        m.setattr(_threads, "run_on_threads", spy)
        result = attack()
    return result, calls


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threaded_blocks_equal_the_serial_loop(small_blocks, monkeypatch, dtype):
    for model, X, y in _models(dtype):
        clip = (X.min(axis=0), X.max(axis=0))  # X lies in the box; its edges bind
        attacks = [
            lambda m, X, y: fgsm(m, X, y, eps=0.3),
            lambda m, X, y, clip=clip: fgsm(m, X, y, eps=0.3, norm=2, clip=clip),
            lambda m, X, y, clip=clip: pgd(
                m, X, y, eps=0.3, n_iter=3, clip=clip, random_state=0
            ),
            lambda m, X, y: list(
                _attacks.fgsm_path(m, attack_input(m, X, y), [0.1, 0.4], "inf", "auto")
            ),
        ]
        for run in attacks:
            attack = functools.partial(run, model, X, y)
            serial, serial_calls = _with_workers(monkeypatch, 1, attack)
            threaded, threaded_calls = _with_workers(monkeypatch, 3, attack)
            assert serial_calls == [] and threaded_calls and set(threaded_calls) == {3}
            assert_array_equal(np.asarray(threaded), np.asarray(serial))
            assert np.asarray(threaded).dtype == dtype


def test_a_failing_block_raises_and_leaves_no_thread(small_blocks, monkeypatch):
    X, y = _data(np.float64)
    model = LogisticRegression().fit(X, y)
    X = X.copy()
    X[1500, 3] = 123.0  # marks a late block
    direction = _attacks.loss_direction

    def fail_on_marked_block(estimator, data, V, gradient):
        if np.any(V == 123.0):
            raise ValueError("a block failed")
        return direction(estimator, data, V, gradient)

    monkeypatch.setattr(_attacks, "loss_direction", fail_on_marked_block)
    before = threading.active_count()
    with pytest.raises(ValueError, match="a block failed"):
        _with_workers(monkeypatch, 2, lambda: fgsm(model, X, y, eps=0.1))
    assert threading.active_count() == before


def test_blas_limit_during_and_after_attacks(small_blocks, monkeypatch):
    X, y = _data(np.float64)
    model = LogisticRegression().fit(X, y)
    original = _blas_threads()
    seen = []
    direction = _attacks.loss_direction

    def spy(*args):
        seen.append(max(_blas_threads(), default=1))
        return direction(*args)

    monkeypatch.setattr(_attacks, "loss_direction", spy)
    fgsm(model, X, y, eps=0.1)
    assert seen and set(seen) == {1}
    assert _blas_threads() == original
    # Concurrent attacks from several threads share the limit and restore it.
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(fgsm(model, X, y, eps=0.1)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert _blas_threads() == original
    for result in results:
        assert_array_equal(result, results[0])


def test_workers_are_capped():
    assert _threads.worker_count(1, 8) == 1
    assert _threads.worker_count(100, 1) == 1  # threadpool_limits(1), loky worker
    assert 1 <= _threads.worker_count(100, 100) <= os.cpu_count()
    out = []
    thread = threading.Thread(target=lambda: out.append(_threads.worker_count(9, 9)))
    thread.start()
    thread.join()
    assert out == [1]  # not from a thread of the caller's own pool
    with threadpool_limits(1, user_api="blas"):
        with _threads.one_blas_thread() as allowed:
            assert allowed == 1


# The child restores Python's Ctrl-C handler: a runner started with `&` from a
# non-interactive shell ignores SIGINT, and its children inherit SIG_IGN.
SCRIPT_HEAD = """
import signal, sys, threading, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from skmixup.metrics import fgsm
from skmixup.metrics import _attacks, _gradients
from skmixup.utils import _threads

_gradients.BLOCK_ELEMENTS = 2**12
_threads.worker_count = lambda n_blocks, blas: 2
X, y = make_classification(n_samples=4000, n_features=20, random_state=0)
model = LogisticRegression().fit(X, y)
"""


def _run_script(body, **kwargs):
    code = SCRIPT_HEAD + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_ctrl_c_interrupts_a_threaded_attack():
    process = _run_script(
        """
        direction = _attacks.loss_direction
        def slow(*args):
            print("started", flush=True)
            time.sleep(0.2)
            return direction(*args)
        _attacks.loss_direction = slow
        start = time.perf_counter()
        try:
            fgsm(model, X, y, eps=0.1)  # 20 blocks of 0.2 s on 2 threads: 2 s
        except KeyboardInterrupt:
            print("interrupted after", time.perf_counter() - start, flush=True)
            print("threads", threading.active_count(), flush=True)
            sys.exit(0)
        print("not interrupted", flush=True)
        sys.exit(1)
        """
    )
    try:
        assert process.stdout.readline().strip() == "started"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    lines = dict(line.rsplit(" ", 1) for line in out.splitlines() if " " in line)
    assert float(lines["interrupted after"]) < 1.5  # not the 2 s of the whole attack
    assert lines["threads"] == "1"


def test_fork_pool_after_a_threaded_attack():
    process = _run_script(
        """
        import multiprocessing

        def child(seed):
            return float(np.abs(fgsm(model, X, y, eps=0.1) - X).sum())

        parent = child(0)
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(child, range(2))
        print(results == [parent, parent], flush=True)
        """
    )
    try:
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out.strip() == "True"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_threaded_blocks_keep_a_dataframe(small_blocks, monkeypatch):
    """A DataFrame into a bare linear model also goes through the blocks.

    (Pipelines take all rows at once; tests/test_tabular_robustness.py covers them.)
    """
    pd = pytest.importorskip("pandas")
    X, y = _data(np.float64)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    labels = np.array(["no", "yes", "maybe"])[y]
    model = LogisticRegression(max_iter=50).fit(frame, labels)
    serial, _ = _with_workers(monkeypatch, 1, lambda: fgsm(model, frame, labels, eps=1))
    threaded, calls = _with_workers(
        monkeypatch, 2, lambda: fgsm(model, frame, labels, eps=1)
    )
    assert calls == [2]
    pd.testing.assert_frame_equal(threaded, serial)


@pytest.fixture
def default_sigint():
    """Python's Ctrl-C handler for the test, then the runner's own again (a runner
    started with `&` from a non-interactive shell ignores SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_threads_start_is_raised_after_they_started(default_sigint):
    reached_the_end = []
    with pytest.raises(KeyboardInterrupt):
        with _threads.ctrl_c_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
            reached_the_end.append(True)
    assert reached_the_end == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_deferral_leaves_an_ignored_sigint_alone():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _threads.ctrl_c_deferred():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_scorer_in_a_threading_joblib_backend(small_blocks):
    """Folds scored on joblib threads attack serially; the scores are the same."""
    from joblib import parallel_backend
    from sklearn.model_selection import cross_val_score

    from skmixup.metrics import make_adversarial_scorer

    X, y = _data(np.float64)
    X = np.vstack([X, X])  # 2,000 scored rows per fold: several blocks
    y = np.concatenate([y, y])
    scorer = make_adversarial_scorer(attack="fgsm", eps=0.2)
    model = LogisticRegression(max_iter=50)
    original = _blas_threads()
    serial = cross_val_score(model, X, y, cv=2, scoring=scorer)
    with parallel_backend("threading", n_jobs=2):
        threaded = cross_val_score(model, X, y, cv=2, scoring=scorer, n_jobs=2)
    assert_array_equal(threaded, serial)
    assert serial.min() < 1.0
    assert _blas_threads() == original
