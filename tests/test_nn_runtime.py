"""The torch estimators under real runtime conditions: fork pools, threads, Ctrl-C,
bad input, DataFrames and sample weights, persistence, devices.

Hangs and signals are tested in subprocesses. Tests that mean the CPU pin
``device="cpu"``; the ``cuda``-marked tests at the end need a GPU.
"""

import copy
import pickle
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

import joblib  # noqa: E402
from _torch_helpers import (  # noqa: E402
    NET_DEFAULTS,
    assert_same_weights,
    module_weights,
    small_net,
)
from conftest import FAST_MLP as FAST  # noqa: E402
from conftest import mixed_table, mixed_table_preprocessor  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from skorch.callbacks import LRScheduler  # noqa: E402

from skmixup.neural_network import (  # noqa: E402
    MixupMLPClassifier,
    MixupNeuralNetClassifier,
    MLPModule,
    TensorBatchIterator,
)
from skmixup.neural_network._runtime import (  # noqa: E402
    forward_draws_no_random_numbers,
    init_parameters,
)

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Stochastic optimizer. maximum iterations:"
        "sklearn.exceptions.ConvergenceWarning"
    ),
    pytest.mark.usefixtures("torch_single_thread"),
]


def _net(n_features=5, **kw):
    return small_net(n_features, **{"lr": 0.05, **kw})


def _python(code, timeout=120, **kwargs):
    """Run ``code`` in a fresh interpreter (torch with its default threads)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


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


# ------------------------------------------------------------------- input
@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.full((6, 5), np.nan), np.arange(6) % 2, "NaN"),
        (np.full((6, 5), np.inf), np.arange(6) % 2, "infinity"),
        (np.zeros((0, 5)), np.zeros(0), "0 sample"),
        (np.zeros(6), np.arange(6) % 2, "2D array"),
        (np.zeros((6, 5)), np.arange(3), "inconsistent numbers of samples"),
        (np.zeros((6, 5)), np.array(["a", "b"] * 3), "class indices"),
        (np.zeros((6, 5)), np.arange(6) - 0.5, "class indices"),
    ],
    ids=["nan", "inf", "empty", "1d", "lengths", "string-y", "fractional-y"],
)
def test_net_rejects_bad_input(X, y, match):
    with pytest.raises(ValueError, match=match):
        _net().fit(X, y)


def test_net_accepts_what_skorch_accepts_and_checks_predict():
    X, y = make_classification(n_samples=40, n_features=5, random_state=0)
    net = _net(max_epochs=1).fit(X, y.astype(np.float64))  # float64 X, float y
    net.fit(X.astype(np.float32), y.astype(object))  # object labels 0/1
    net.fit(torch.from_numpy(X).float(), torch.from_numpy(y))  # tensors
    assert net.predict(X).shape == (40,)
    with pytest.raises(ValueError, match="NaN"):
        net.predict(np.full((2, 5), np.nan))
    with pytest.raises(ValueError, match="expecting 5 features"):
        net.predict(X[:, :3])


def test_mlp_rejects_values_beyond_float32(data):
    X, y = data
    with pytest.raises(ValueError, match="too large for float32"):
        MixupMLPClassifier(**FAST).fit(X * 1e40, y)


# ------------------------------------------------------ DataFrames, weights
def test_canonical_pipeline_with_weights_both_estimators():
    from sklearn.pipeline import Pipeline

    X, y = mixed_table(n=80)
    w = np.linspace(0.5, 2.0, len(y))
    mlp = Pipeline(
        [
            ("pre", mixed_table_preprocessor(sparse_output=False)),
            ("clf", MixupMLPClassifier(**FAST)),
        ]
    )
    mlp.fit(X, y, clf__sample_weight=w)
    assert set(mlp.predict(X)) <= {"yes", "no"}
    # The net takes class indices; the DataFrame the preprocessor hands it (with
    # set_output pandas) is a matrix, not a dict of columns.
    net = Pipeline(
        [
            # TF-IDF has no pandas output: the text column is left out here.
            ("pre", mixed_table_preprocessor(sparse_output=False, text=False)),
            (
                "clf",
                MixupNeuralNetClassifier(
                    torch.nn.LazyLinear,
                    module__out_features=2,
                    max_epochs=2,
                    train_split=None,
                    verbose=0,
                    random_state=0,
                    device="cpu",
                ),
            ),
        ]
    ).set_output(transform="pandas")
    y_idx = (y == "yes").astype(np.int64)
    net.fit(X, y_idx, clf__sample_weight=w)
    assert net.predict_proba(X).shape == (80, 2)


def test_equal_weights_change_nothing(data):
    X, y = data
    a = MixupMLPClassifier(**FAST).fit(X, y)
    b = MixupMLPClassifier(**FAST).fit(X, y, sample_weight=np.full(len(y), 3.0))
    assert_same_weights(a.net_.module_, b.net_.module_)


@pytest.mark.parametrize("estimator", ["mlp", "net"])
def test_integer_weights_equal_repeated_rows_without_mixing(estimator):
    # Full batches, no shuffling, no mixing: the weighted mean loss equals the
    # mean over repeated rows, so the fits agree up to float rounding.
    X, y = make_classification(n_samples=30, n_features=5, random_state=0)
    w = np.arange(30) % 3  # 0, 1 and 2 repetitions
    X_rep, y_rep = np.repeat(X, w, axis=0), np.repeat(y, w)
    if estimator == "mlp":

        def fit(*args, **kwargs):
            return (
                MixupMLPClassifier(
                    **{**FAST, "batch_size": 100, "shuffle": False, "alpha": 0.0},
                    mixup_prob=0.0,
                )
                .fit(*args, **kwargs)
                .net_.module_
            )
    else:

        def fit(*args, **kwargs):
            return (
                _net(
                    batch_size=-1,
                    iterator_train__shuffle=False,
                    mixup_prob=0.0,
                    module__n_outputs=2,
                )
                .fit(*args, **kwargs)
                .module_
            )

    for a, b in zip(
        module_weights(fit(X, y, sample_weight=w)),
        module_weights(fit(X_rep, y_rep)),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_partners_drawn_in_proportion_to_weight():
    net = _net().initialize()
    net._ensure_generators()
    w = np.array([0.0, 0.0, 1.0, 3.0])
    batch = (torch.zeros(4, 5), None)  # the weights travel beside the batch
    counts = np.zeros(4)
    for _ in range(500):
        _, partner = net._draw_mixing(batch, torch.tensor(w))
        counts += np.bincount(partner.numpy(), minlength=4)
    assert counts[0] == counts[1] == 0
    assert 2.5 < counts[3] / counts[2] < 3.5


def test_metadata_routing_and_adaboost(data):
    import sklearn
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.model_selection import cross_validate

    X, y = data
    w = np.linspace(0.5, 2.0, len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        for est in (
            MixupMLPClassifier(**FAST),
            _net(X.shape[1], module__n_outputs=3),
        ):
            target = (
                y
                if isinstance(est, MixupMLPClassifier)
                else np.unique(y, return_inverse=True)[1]
            )
            est.set_fit_request(sample_weight=True)
            est.set_score_request(sample_weight=True)
            res = cross_validate(
                est, X.astype(np.float32), target, params={"sample_weight": w}, cv=2
            )
            assert np.all(np.isfinite(res["test_score"]))
    boost = AdaBoostClassifier(MixupMLPClassifier(**FAST), n_estimators=2).fit(X, y)
    assert boost.score(X, y) > 0.5


# ------------------------------------------------------- devices (on the CPU)
def test_pickle_and_copies_leave_the_live_estimator_alone(data, tmp_path):
    # A "GPU" net is simulated by a device name other than "cpu": persisting it
    # builds a CPU copy, and must not edit the live estimator's __dict__.
    X, y = data
    clf = MixupMLPClassifier(**FAST).fit(X, y)
    net = clf.net_
    net.device, clf.device_ = "meta", "meta"
    for persist in (
        pickle.dumps,
        copy.deepcopy,
        lambda est: joblib.dump(est, tmp_path / "clf.joblib"),
    ):
        persist(clf)
        assert clf.net_ is net and net.device == "meta" and clf.device_ == "meta"
    loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.device_ == "cpu" and loaded.net_.device == "cpu"
    net.device, clf.device_ = "cpu", "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_lr_scheduler_state_travels_with_the_net():
    # callbacks_ are pickled in the torch stream (mapped to the CPU with the
    # optimizer) and the scheduler still drives the net's optimizer.
    X, y = make_classification(n_samples=40, n_features=5, random_state=0)
    net = _net(
        module__n_outputs=2,
        optimizer=torch.optim.SGD,
        callbacks=[
            ("sched", LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1))
        ],
    ).fit(X, y)
    assert "callbacks_" not in {
        k for k in net.__getstate__() if k != "__cuda_dependent_attributes__"
    }
    loaded = pickle.loads(pickle.dumps(net))
    sched = dict(loaded.callbacks_)["sched"].lr_scheduler_
    assert sched.optimizer is loaded.optimizer_
    loaded.partial_fit(X, y)
    assert (
        loaded.optimizer_.param_groups[0]["lr"] < net.optimizer_.param_groups[0]["lr"]
    )


def test_one_host_to_device_copy_per_mixed_batch(monkeypatch):
    X, y = make_classification(n_samples=50, n_features=5, random_state=0)
    net = _net(module__n_outputs=2, batch_size=16)
    copies = []
    original = MixupNeuralNetClassifier._transfer

    def spy(self, host, device):
        copies.append(host.shape)
        return original(self, host, device)

    monkeypatch.setattr(MixupNeuralNetClassifier, "_transfer", spy)
    net.fit(X, y)
    assert len(copies) == 3 * 4  # epochs x batches, lam and partners together
    assert copies[0] == (2 * 16,)


def test_iterator_keeps_tensors_on_their_device_meta():
    # y as a tensor on another device (meta here, CUDA for users) is never
    # converted through numpy.
    from skorch.dataset import Dataset

    X = torch.empty(10, 3, device="meta")
    y = torch.empty(10, dtype=torch.int64, device="meta")
    gen = torch.Generator().manual_seed(0)
    batches = list(
        TensorBatchIterator(
            Dataset(X, y), batch_size=4, shuffle=True, generator=gen, device="meta"
        )
    )
    assert [b[1].shape[0] for b in batches] == [4, 4, 2]
    assert all(b[0].device.type == "meta" for b in batches)


def test_prediction_streams_batches_and_gradient_is_chunked(monkeypatch):
    X, y = make_classification(n_samples=50, n_features=5, random_state=0)
    net = _net(module__n_outputs=2).fit(X, y)
    seen = []
    original = MixupNeuralNetClassifier.get_iterator

    def spy(self, dataset, training=False):
        iterator = original(self, dataset, training=training)
        seen.append(iterator.preload)
        return iterator

    monkeypatch.setattr(MixupNeuralNetClassifier, "get_iterator", spy)
    net.predict_proba(X)
    assert seen == [False]  # predict copies one batch at a time
    # the input gradient (skmixup.metrics) runs the module in chunks of rows
    from skmixup.metrics import _models as metric_models
    from skmixup.metrics import input_gradient

    full = input_gradient(net, X, y)
    monkeypatch.setattr(metric_models, "_TORCH_ROWS", 7)
    np.testing.assert_allclose(input_gradient(net, X, y), full, atol=1e-6)


# torch.compile's tracer reads .grad of non-leaf tensors (its own warning)
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor:UserWarning")
def test_compiled_net_keeps_the_nll_branch():
    # compile=True wraps the criterion: NLLLoss must still take the log, and the
    # input gradient must see through _orig_mod (skmixup.metrics too).
    from skmixup.metrics import input_gradient

    X, y = make_classification(n_samples=40, n_features=5, random_state=0)
    X = X.astype(np.float32)
    module = torch.nn.Sequential(torch.nn.Linear(5, 2), torch.nn.Softmax(dim=-1))
    kw = dict(criterion=torch.nn.NLLLoss, max_epochs=2, train_split=None, verbose=0)
    plain = MixupNeuralNetClassifier(module, random_state=0, device="cpu", **kw)
    compiled = MixupNeuralNetClassifier(
        module,
        random_state=0,
        device="cpu",
        compile=True,
        compile__backend="eager",
        **kw,
    )
    plain.fit(X, y)
    compiled.fit(X, y)
    assert hasattr(compiled.criterion_, "_orig_mod")
    np.testing.assert_allclose(
        compiled.history[:, "train_loss"], plain.history[:, "train_loss"], rtol=1e-5
    )
    np.testing.assert_allclose(
        input_gradient(compiled, X, y),
        input_gradient(plain, X, y),
        rtol=1e-5,
        atol=1e-7,
    )
    from skorch import NeuralNetClassifier

    skorch_net = NeuralNetClassifier(
        module, compile=True, compile__backend="eager", device="cpu", **kw
    ).fit(X, y)
    assert input_gradient(skorch_net, X, y).shape == X.shape


# -------------------------------------------------------------------- skops
# The types a user trusts to load each estimator with skops; all are classes
# that skops imports and never calls while loading (no functions, no reducers).
SKOPS_TRUSTED = {
    "MixupMLPClassifier": ["skmixup.neural_network._mlp.MixupMLPClassifier"],
    "MixupNeuralNetClassifier": [
        "skmixup.neural_network._iterator.TensorBatchIterator",
        "skmixup.neural_network._module.MLPModule",
        "skmixup.neural_network._net.MixupNeuralNetClassifier",
        "skorch.dataset.Dataset",
        "skorch.dataset.ValidSplit",
        "torch.nn.modules.loss.CrossEntropyLoss",
        "torch.optim.sgd.SGD",
    ],
}


def test_skops_round_trip_both_estimators(data):
    sio = pytest.importorskip("skops.io")
    X, y = data
    clf = MixupMLPClassifier(**{**FAST, "early_stopping": True}).fit(X, y)
    y_idx = np.unique(y, return_inverse=True)[1]
    net = _net(X.shape[1], train_split=None).fit(X.astype(np.float32), y_idx)
    for est in (clf, net):
        dumped = sio.dumps(est)
        untrusted = sio.get_untrusted_types(data=dumped)
        assert set(untrusted) <= set(SKOPS_TRUSTED[type(est).__name__])
        loaded = sio.loads(dumped, trusted=SKOPS_TRUSTED[type(est).__name__])
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    # training goes on from the saved optimizer and generator states, exactly as
    # it does in the live estimator
    loaded = sio.loads(sio.dumps(clf), trusted=SKOPS_TRUSTED["MixupMLPClassifier"])
    assert loaded.n_iter_ == clf.n_iter_ and loaded.loss_curve_ == clf.loss_curve_
    loaded.partial_fit(X, y)
    clf.partial_fit(X, y)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(TypeError, match="module is a class"):
        sio.dumps(MixupNeuralNetClassifier(torch.nn.Linear(5, 3)))


# --------------------------------------------------------------------- CUDA
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("early_stopping", [False, True])
def test_cuda_mlp(data, early_stopping):
    from skmixup.metrics import input_gradient, robust_accuracy_score

    X, y = data
    params = {**FAST, "device": "cuda", "early_stopping": early_stopping}
    cuda_rng = torch.cuda.get_rng_state()
    clf = MixupMLPClassifier(**params).fit(X, y)
    assert clf.device_ == "cuda" and next(clf.net_.module_.parameters()).is_cuda
    assert torch.equal(cuda_rng, torch.cuda.get_rng_state())  # not reseeded
    MixupMLPClassifier(**FAST).fit(X, y)  # a CPU fit leaves CUDA alone too
    assert torch.equal(cuda_rng, torch.cuda.get_rng_state())
    again = MixupMLPClassifier(**params).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(again.predict_proba(X), proba, atol=1e-5)
    # persisting leaves the live estimator on the GPU
    loaded = pickle.loads(pickle.dumps(clf))
    copy.deepcopy(clf)
    assert clf.device_ == "cuda" and next(clf.net_.module_.parameters()).is_cuda
    assert loaded.device_ == "cpu"
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-5)
    grad = input_gradient(clf, X[:10], y[:10])
    np.testing.assert_allclose(grad, input_gradient(loaded, X[:10], y[:10]), atol=1e-5)
    assert 0 <= robust_accuracy_score(clf, X, y, eps=0.1) <= clf.score(X, y)
    clf.partial_fit(X, y)
    assert next(clf.net_.module_.parameters()).is_cuda


@pytest.mark.cuda
@needs_cuda
def test_cuda_net_dropout_partial_fit_tensor_targets():
    from skmixup.metrics import input_gradient

    X, y = make_classification(n_samples=80, n_features=5, random_state=0)
    X = X.astype(np.float32)
    module = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 2)
    )

    def fit(**kw):
        return MixupNeuralNetClassifier(
            module,
            max_epochs=3,
            batch_size=16,
            device="cuda",
            random_state=0,
            callbacks=[
                ("sched", LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1))
            ],
            **kw,
        ).fit(torch.from_numpy(X).cuda(), torch.from_numpy(y).cuda())

    a, b = fit(), fit()
    assert_same_weights(a.module_, b.module_)
    a.partial_fit(X, y)
    assert len(a.history) == 6  # partial_fit runs max_epochs more epochs
    loaded = pickle.loads(pickle.dumps(a))
    sched = dict(loaded.callbacks_)["sched"].lr_scheduler_
    assert sched.optimizer is loaded.optimizer_
    assert input_gradient(a, X, y).shape == X.shape


# --------------------------------------------------------------- Accelerate
def test_accelerate_recipe_keeps_mixup(monkeypatch):
    # The documented multi-GPU recipe, on accelerate's CPU backend: skorch's
    # AccelerateMixin first; its training step calls our infer and get_loss, so
    # batches are mixed, and the loss goes through accelerator.backward.
    accelerate = pytest.importorskip("accelerate")
    from skorch.hf import AccelerateMixin

    class AcceleratedMixupNet(AccelerateMixin, MixupNeuralNetClassifier):
        """MixupNeuralNetClassifier trained through accelerate."""

    X, y = make_classification(n_samples=64, n_features=5, random_state=0)
    X = X.astype(np.float32)
    accelerator = accelerate.Accelerator(cpu=True)
    backward_calls, mixed = [], []
    original_backward = accelerator.backward
    monkeypatch.setattr(
        accelerator,
        "backward",
        lambda loss, **kw: backward_calls.append(1) or original_backward(loss, **kw),
    )
    original_draw = MixupNeuralNetClassifier._draw_mixing

    def draw(self, batch, weights=None):
        mixing = original_draw(self, batch, weights)
        mixed.append(mixing is not None)
        return mixing

    monkeypatch.setattr(MixupNeuralNetClassifier, "_draw_mixing", draw)
    net = AcceleratedMixupNet(
        MLPModule,
        module__n_features=5,
        module__n_outputs=2,
        module__hidden_layer_sizes=(8,),
        accelerator=accelerator,
        device=None,
        iterator_train=torch.utils.data.DataLoader,  # sharded by accelerate
        iterator_valid=torch.utils.data.DataLoader,
        max_epochs=2,
        batch_size=16,
        train_split=None,
        verbose=0,
        random_state=0,
    ).fit(X, y)
    assert len(mixed) == len(backward_calls) == 2 * 4 and all(mixed)
    assert net.predict_proba(X).shape == (64, 2)
    # the same draws as the plain net: Mixup is not lost in the mixin
    plain = _net(
        module__n_outputs=2,
        iterator_train=torch.utils.data.DataLoader,
        iterator_valid=torch.utils.data.DataLoader,
        max_epochs=2,
        batch_size=16,
        lr=0.01,
        device="cpu",
    ).fit(X, y)
    np.testing.assert_allclose(
        net.history[:, "train_loss"], plain.history[:, "train_loss"], rtol=1e-5
    )


# ------------------------------------------------------ skorch compatibility
def test_skorch_conventions_kept():
    from skorch.scoring import loss_scoring

    X, y = make_classification(n_samples=40, n_features=5, random_state=0)
    X = X.astype(np.float32)
    # device=None (skorch: leave devices alone) and an object-dtype y
    net = _net(module__n_outputs=2, device=None).fit(X, y.astype(object))
    # loss_scoring switches the criterion to per-sample losses and reduces them
    per_sample = net.get_loss(
        net.forward(X), torch.from_numpy(y), X=X, training=False
    ).item()
    assert abs(loss_scoring(net, X, y) - per_sample) < 1e-6
    # a user's reduction="sum" is honoured on mixed batches
    summed = _net(module__n_outputs=2, criterion__reduction="sum", max_epochs=1)
    summed.fit(X, y)
    mean = _net(module__n_outputs=2, max_epochs=1).fit(X, y)
    ratio = (
        summed.history[0, "batches"][0]["train_loss"]
        / (mean.history[0, "batches"][0]["train_loss"])
    )
    assert abs(ratio - 32) < 1e-3  # first batch: 32 rows, same draws and weights


def test_subclass_get_loss_runs_on_mixed_batches_and_extra_criteria():
    X, y = make_classification(n_samples=40, n_features=5, random_state=0)
    calls = []

    class Penalised(MixupNeuralNetClassifier):
        def initialize_criterion(self):
            super().initialize_criterion()
            self.criterion2_ = lambda *args: None  # no reduction attribute
            return self

        def get_loss(self, y_pred, y_true, X=None, training=False):
            calls.append(training)
            return super().get_loss(y_pred, y_true, X=X, training=training) + 0.0

    small_net(
        5, net_class=Penalised, module__n_outputs=2, max_epochs=1, batch_size=20
    ).fit(X, y)
    assert calls == [True, True]
