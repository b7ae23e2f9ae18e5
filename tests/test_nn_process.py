"""The torch estimators in a real process: fork pools, Ctrl-C, threads, the
global and explicit random generators.

Hangs and signals are tested in subprocesses.
"""

import copy
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

import joblib  # noqa: E402
from _torch_helpers import (  # noqa: E402
    NET_DEFAULTS,
    TORCH_MODULE_MARKS,
    assert_same_weights,
)
from _torch_helpers import (  # noqa: E402
    python_subprocess as _python,
)
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from conftest import FAST_MLP as FAST  # noqa: E402
from skmixup.neural_network import (  # noqa: E402
    MixupMLPClassifier,
    MixupNeuralNetClassifier,
    MLPModule,
)
from skmixup.neural_network._runtime import (  # noqa: E402
    forward_draws_no_random_numbers,
    init_parameters,
)

pytestmark = TORCH_MODULE_MARKS


# -------------------------------------------------------------------- fork
def test_fit_in_fork_pool_after_fit_in_parent():
    # torch's OpenMP pool does not survive fork: before the fix the child hung in
    # its first parallel region (the timeout below turns a hang into a failure).
    res = _python(
        """
        import multiprocessing as mp, warnings
        import numpy as np, torch
        from sklearn.datasets import make_classification
        from skmixup.neural_network import MixupMLPClassifier
        warnings.simplefilter("ignore")
        torch.set_num_threads(2)
        X, y = make_classification(n_samples=500, n_features=20, random_state=0)
        params = dict(
            hidden_layer_sizes=(64,), max_iter=10, learning_rate_init=0.01,
            device="cpu",
        )
        MixupMLPClassifier(random_state=0, **params).fit(X, y)
        def job(seed):
            clf = MixupMLPClassifier(random_state=seed, **params).fit(X, y)
            return clf.score(X, y), torch.get_num_threads()
        with mp.get_context("fork").Pool(2) as pool:
            out = pool.map(job, [0, 1])
        assert all(score > 0.6 for score, _ in out), out
        assert all(n == 2 for _, n in out), out  # the setting is restored
        print("ok")
        """,
        timeout=90,
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


# ------------------------------------------------------------------ Ctrl-C
# The child restores Python's Ctrl-C handler: a runner started with `&` from a
# non-interactive shell ignores SIGINT, and its children inherit SIG_IGN.
_INTERRUPT = """
import os, signal, warnings
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np, torch
from sklearn.datasets import make_classification
from skmixup.neural_network import (
    MixupMLPClassifier, MixupNeuralNetClassifier, MLPModule,
)
warnings.simplefilter("ignore")
X, y = make_classification(n_samples=64, n_features=4, random_state=0)
X = X.astype(np.float32)
calls = {"n": 0}

def ctrl_c(module, inputs):  # SIGINT from inside a training step, batch AT
    calls["n"] += 1
    if module.training and calls["n"] == AT:  # AT: set below
        os.kill(os.getpid(), signal.SIGINT)
"""


def test_ctrl_c():
    # One interpreter, four interrupts (SIGINT raised from inside a training
    # step, in the first epoch and in a later one). MixupMLPClassifier re-raises
    # it and stays as it was before fit (an interrupted fit is never scored as
    # a finished one); MixupNeuralNetClassifier stops and returns, as skorch
    # documents, with no KeyError in the first epoch.
    res = _python(
        _INTERRUPT
        + """
orig = MixupMLPClassifier._build_net
def build(self, *args, **kwargs):
    net = orig(self, *args, **kwargs)
    net.module.register_forward_pre_hook(ctrl_c)
    return net
MixupMLPClassifier._build_net = build
for at in (2, 9):  # 4 batches per epoch
    calls["n"] = 0
    AT = at
    clf = MixupMLPClassifier(hidden_layer_sizes=(4,), max_iter=5000, batch_size=16,
                             random_state=0, device="cpu")
    try:
        clf.fit(X, y)
        print("mlp returned normally")
    except KeyboardInterrupt:
        print("mlp interrupted", at, hasattr(clf, "net_"), hasattr(clf, "n_iter_"))
for at in (2, 9):
    calls["n"] = 0
    AT = at
    net = MixupNeuralNetClassifier(MLPModule, module__n_features=4,
        module__n_outputs=2, module__hidden_layer_sizes=(4,), max_epochs=5000,
        batch_size=16, train_split=None, verbose=0, random_state=0, device="cpu")
    net.initialize()
    net.module_.register_forward_pre_hook(ctrl_c)
    net.partial_fit(X, y)
    print("net returned", at, len(net.history), net.predict(X).shape)
"""
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "returned normally" not in res.stdout
    for at in (2, 9):
        assert f"mlp interrupted {at} False False" in res.stdout, res.stdout
    assert "net returned 2 1 (64,)" in res.stdout, res.stdout
    assert "net returned 9 3 (64,)" in res.stdout, res.stdout


def test_early_stopping_is_not_an_interrupt(data):
    # skorch's EarlyStopping stops by raising KeyboardInterrupt from a callback.
    X, y = data
    clf = MixupMLPClassifier(
        **{**FAST, "max_iter": 300, "tol": 10.0, "n_iter_no_change": 2}
    ).fit(X, y)
    assert clf.n_iter_ < 300


# ----------------------------------------------------------------- threads
def test_threaded_search_equals_sequential(data):
    # Seeds go through explicit torch.Generator objects: a concurrent thread that
    # draws from torch's global generator the whole time cannot change anything.
    X, y = data
    search = GridSearchCV(
        MixupMLPClassifier(**FAST), {"mixup_alpha": [0.2, 1.0, 4.0]}, cv=2
    )
    sequential = search.fit(X, y).cv_results_["mean_test_score"]
    stop = threading.Event()

    def draw():
        while not stop.is_set():
            torch.rand(64)

    noise = threading.Thread(target=draw)
    noise.start()
    try:
        with joblib.parallel_backend("threading", n_jobs=3):
            threaded = search.set_params(n_jobs=3).fit(X, y)
    finally:
        stop.set()
        noise.join()
    np.testing.assert_array_equal(threaded.cv_results_["mean_test_score"], sequential)


def test_threaded_nets_with_dropout_are_serialised_and_reproducible():
    # Dropout can only draw from the global generator: such fits seed it under a
    # process-wide lock, so that concurrent fits reproduce the sequential ones.
    # (A thread outside skmixup drawing from it at the same time would still
    # perturb them; the modules are therefore built before the threads start.)
    X, y = make_classification(n_samples=64, n_features=5, random_state=0)
    X = X.astype(np.float32)
    module = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.Dropout(0.5), torch.nn.Linear(8, 2)
    )

    def fit(seed):
        net = MixupNeuralNetClassifier(
            module,
            max_epochs=3,
            batch_size=16,
            train_split=None,
            verbose=0,
            random_state=seed,
            device="cpu",
        )
        return net.fit(X, y).module_

    sequential = [fit(seed) for seed in range(3)]
    threaded = joblib.Parallel(n_jobs=3, backend="threading")(
        joblib.delayed(fit)(seed) for seed in range(3)
    )
    for a, b in zip(sequential, threaded, strict=True):
        assert_same_weights(a, b)


def test_global_and_cuda_generators_untouched(data, monkeypatch):
    X, y = data

    def forbidden(*args, **kwargs):
        raise AssertionError("a fit reseeded a global generator")

    for name in ("manual_seed", "seed"):
        monkeypatch.setattr(torch, name, forbidden)
    for name in ("manual_seed", "manual_seed_all", "seed", "seed_all"):
        monkeypatch.setattr(torch.cuda, name, forbidden)
    Xf = X.astype(np.float32)
    yi = np.searchsorted(np.unique(y), y)
    module = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 3), torch.nn.Dropout())
    before = torch.get_rng_state()
    MixupMLPClassifier(**FAST).fit(X, y)
    MixupNeuralNetClassifier(
        module,
        max_epochs=2,
        train_split=None,
        random_state=0,
        device="cpu",
    ).fit(Xf, yi)
    assert torch.equal(before, torch.get_rng_state())


def test_module_init_uses_the_explicit_generator():
    module = torch.nn.Sequential(
        torch.nn.Linear(4, 3), torch.nn.Conv1d(2, 2, 3), torch.nn.Embedding(5, 2)
    )
    other = copy.deepcopy(module)
    torch.manual_seed(0)
    init_parameters(module, torch.Generator().manual_seed(7))
    torch.manual_seed(1)
    init_parameters(other, torch.Generator().manual_seed(7))
    assert_same_weights(module, other)
    bound = 1 / np.sqrt(4)
    assert module[0].weight.abs().max() <= bound and module[0].bias.abs().max() <= bound
    assert forward_draws_no_random_numbers(MLPModule(3, 2))
    assert not forward_draws_no_random_numbers(torch.nn.Dropout())
    assert not forward_draws_no_random_numbers(torch.nn.LazyLinear(2))


def test_module_instance_reinitialised_from_the_seed():
    # A module instance built from any global RNG state (another process) gives
    # the same fit; a refit starts afresh; the user's instance is not trained.
    rng = np.random.RandomState(0)
    X = rng.randn(60, 4).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    probas = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        module = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
        )
        w0 = module[0].weight.detach().clone()
        net = MixupNeuralNetClassifier(
            module, mixup_alpha=0.4, max_epochs=5, lr=0.1, batch_size=16, **NET_DEFAULTS
        )
        first = net.fit(X, y).predict_proba(X)
        np.testing.assert_array_equal(net.fit(X, y).predict_proba(X), first)
        assert torch.equal(module[0].weight, w0)
        probas.append(first)
    np.testing.assert_array_equal(probas[0], probas[1])
