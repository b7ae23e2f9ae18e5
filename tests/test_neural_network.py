"""Behaviour of skmixup.neural_network (needs the torch extra)."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _torch_helpers import (  # noqa: E402
    TORCH_MODULE_MARKS,
    module_weights,
    small_net,
)
from scipy import stats  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from skorch.callbacks import Callback, Checkpoint  # noqa: E402

from conftest import FAST_MLP as FAST  # noqa: E402
from skmixup.metrics import input_gradient  # noqa: E402
from skmixup.neural_network import (  # noqa: E402
    MixupMLPClassifier,
    MixupNeuralNetClassifier,
    MLPModule,
    TensorBatchIterator,
)
from skmixup.neural_network._base import _net_on_cpu  # noqa: E402

# FAST runs a fixed, short epoch budget: reaching it is expected here (the warning
# itself is tested in test_convergence_warning_at_max_iter).
pytestmark = TORCH_MODULE_MARKS


def _weights(clf):
    return module_weights(clf.net_.module_)


def _net(**kw):
    return small_net(6, **{"optimizer": torch.optim.Adam, "lr": 0.01, **kw})


# ------------------------------------------------------------------- imports
def _run(code):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )


def test_import_skmixup_does_not_import_neural_network():
    res = _run(
        "import sys, skmixup; "
        "assert 'skmixup.neural_network' not in sys.modules, 'imported'"
    )
    assert res.returncode == 0, res.stderr


def test_clear_import_error_without_the_extra():
    res = _run(
        "import sys; sys.modules['skorch'] = None\n"
        "try:\n    import skmixup.neural_network\n"
        "except ImportError as e:\n    print(e)\n"
    )
    assert 'pip install "skmixup[torch]"' in res.stdout, res.stdout + res.stderr
    # a CUDA build from PyPI, or the CPU-only build from PyTorch's CPU index
    assert "CUDA build" in res.stdout
    assert "--index-url https://download.pytorch.org/whl/cpu" in res.stdout


# ----------------------------------------------------------------- estimator
def test_fit_predict_string_labels(data):
    X, y = data
    clf = MixupMLPClassifier(**FAST).fit(X, y)
    assert set(clf.predict(X)) <= set(y)
    proba = clf.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert clf.n_iter_ == len(clf.loss_curve_) <= 15
    assert clf.device_ == "cpu" and clf.n_features_in_ == 6
    assert clf.net_.module_.layers[0].weight.dtype == torch.float32


def test_same_seed_same_weights_and_global_rng_untouched(data):
    X, y = data
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = MixupMLPClassifier(**FAST).fit(X, y)
    assert torch.equal(before, torch.get_rng_state())
    b = MixupMLPClassifier(**FAST).fit(X, y)
    for wa, wb in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_array_equal(wa, wb)
    c = MixupMLPClassifier(**{**FAST, "random_state": 1}).fit(X, y)
    assert not np.array_equal(_weights(a)[0], _weights(c)[0])


def test_tiny_alpha_matches_plain_training(data):
    # lam ~ Beta(1e-4, 1e-4) is 0 or 1; with the larger weight kept by each row
    # every batch is the clean batch, so training equals mixup_prob=0 exactly.
    X, y = data
    mix = MixupMLPClassifier(mixup_alpha=1e-4, **FAST).fit(X, y)
    plain = MixupMLPClassifier(mixup_prob=0.0, **FAST).fit(X, y)
    for wa, wb in zip(_weights(mix), _weights(plain), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
    mixed = MixupMLPClassifier(mixup_alpha=1.0, **FAST).fit(X, y)
    assert not np.allclose(_weights(mixed)[0], _weights(plain)[0], atol=1e-3)


def test_early_stopping_stops_early(data):
    X, y = data
    clf = MixupMLPClassifier(
        hidden_layer_sizes=(16,),
        max_iter=500,
        early_stopping=True,
        n_iter_no_change=3,
        random_state=0,
        device="cpu",
    ).fit(X, y)
    assert clf.n_iter_ < 500
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
def test_convergence_warning_at_max_iter(data):
    from sklearn.exceptions import ConvergenceWarning

    X, y = data
    with pytest.warns(
        ConvergenceWarning, match=r"maximum iterations \(3\) reached"
    ) as record:
        clf = MixupMLPClassifier(**{**FAST, "max_iter": 3}).fit(X, y)
    assert record[0].filename == __file__  # points at the caller's line
    assert clf.n_iter_ == 3
    # The stopping rule fires first (tol larger than any possible improvement):
    # no warning, and fewer epochs than max_iter.
    clf = MixupMLPClassifier(
        **{**FAST, "max_iter": 50, "tol": 1e3, "n_iter_no_change": 2}
    ).fit(X, y)
    assert clf.n_iter_ < 50
    # Early stopping on validation accuracy counts as converged too.
    clf = MixupMLPClassifier(
        **{
            **FAST,
            "max_iter": 50,
            "early_stopping": True,
            "tol": 1e3,
            "n_iter_no_change": 2,
        }
    ).fit(X, y)
    assert clf.n_iter_ < 50
    # partial_fit runs one epoch and never warns.
    MixupMLPClassifier(**FAST).partial_fit(X, y, classes=np.unique(y))


def test_partial_fit(data):
    X, y = data
    clf = MixupMLPClassifier(hidden_layer_sizes=(16,), random_state=0, device="cpu")
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:100], y[:100], classes=np.unique(y))
    clf.partial_fit(X[100:], y[100:])
    assert clf.n_iter_ == 2
    with pytest.raises(ValueError, match="not in the estimator's classes_"):
        clf.partial_fit(X[:5], np.array(["dog"] * 5))
    # partial_fit after an early-stopping fit trains one epoch on all the data
    es = MixupMLPClassifier(early_stopping=True, **FAST).fit(X, y)
    n_iter = es.n_iter_
    es.partial_fit(X, y)
    assert es.n_iter_ == n_iter + 1


def test_pickle_round_trip(data):
    X, y = data
    clf = MixupMLPClassifier(**FAST).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.device_ == "cpu"
    # the CPU copy made for GPU nets keeps the weights and optimizer state
    copy = _net_on_cpu(clf.net_)
    for p, q in zip(
        copy.module_.parameters(), clf.net_.module_.parameters(), strict=True
    ):
        assert p.device.type == "cpu" and torch.equal(p, q)
    loaded.partial_fit(X, y)  # training can go on after loading


def test_pipeline_grid_search_cross_val(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), MixupMLPClassifier(**FAST))
    alphas = [0.2, 2.0]
    grid = GridSearchCV(pipe, {"mixupmlpclassifier__mixup_alpha": alphas}, cv=2)
    grid.fit(X, y)
    # The search scores each candidate as a hand-run cross-validation does (an
    # int random_state makes the fits exact), and picks the best of them.
    manual = [
        cross_val_score(
            clone(pipe).set_params(mixupmlpclassifier__mixup_alpha=a), X, y, cv=2
        ).mean()
        for a in alphas
    ]
    np.testing.assert_array_equal(grid.cv_results_["mean_test_score"], manual)
    assert grid.best_params_ == {
        "mixupmlpclassifier__mixup_alpha": alphas[int(np.argmax(manual))]
    }
    scores = cross_val_score(MixupMLPClassifier(**FAST), X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores > 0.6)


def test_callbacks_and_history(data):
    X, y = data

    class Count(Callback):
        def initialize(self):
            self.epochs_ = 0
            return self

        def on_epoch_end(self, net, **kwargs):
            self.epochs_ += 1

    counter = Count()
    clf = MixupMLPClassifier(callbacks=[("count", counter)], **FAST).fit(X, y)
    fitted = dict(clf.net_.callbacks_)["count"]
    assert fitted is not counter and fitted.epochs_ == clf.n_iter_
    assert clf.net_.history[-1, "train_batch_count"] == 8  # 240 rows, batch 32
    assert clf.loss_curve_ == list(clf.net_.history[:, "train_loss"])


def test_input_gradient_matches_finite_differences(data):
    X, y = data
    clf = MixupMLPClassifier(**{**FAST, "activation": "tanh"}).fit(X, y)
    X32 = X[:4].astype(np.float32).astype(np.float64)
    grad = input_gradient(clf, X32, y[:4])
    assert grad.shape == (4, 6) and grad.dtype == np.float64

    def loss(x, i):
        logp = clf.predict_log_proba(x[None])[0]
        return -logp[np.searchsorted(clf.classes_, y[i])]

    h = 1e-2
    for i in range(4):
        for k in range(6):
            e = np.zeros(6)
            e[k] = h
            fd = (loss(X32[i] + e, i) - loss(X32[i] - e, i)) / (2 * h)
            assert abs(fd - grad[i, k]) < 2e-3 + 1e-2 * abs(fd)


def test_invalid_device():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    X, y = make_classification(n_samples=20, random_state=0)
    with pytest.raises(ValueError, match="CUDA is not available"):
        MixupMLPClassifier(device="cuda", max_iter=1).fit(X, y)


# ---------------------------------------------------------------- skorch net
class _RecordingNet(MixupNeuralNetClassifier):
    def _sample_lambda(self, n_samples):
        lam = super()._sample_lambda(n_samples)
        self.recorded_.append(lam)
        return lam


@pytest.mark.parametrize("a, b", [(0.4, None), (2.0, 0.5)])
def test_lambda_law_in_train_step(a, b, global_random_seed):
    # X = identity: the mixed input of row i is lam_i e_i + (1 - lam_i) e_j, so the
    # weights actually applied can be read off the module's input.
    n = 60
    X = np.eye(n, dtype=np.float32)
    y = np.arange(n) % 3
    seen = []
    net = _RecordingNet(
        module=torch.nn.Linear,
        module__in_features=n,
        module__out_features=3,
        mixup_alpha=a,
        mixup_beta=b,
        max_epochs=20,
        batch_size=n,
        train_split=None,
        verbose=0,
        random_state=global_random_seed,
    )
    net.recorded_ = []
    net.initialize()
    net.module_.register_forward_pre_hook(
        lambda mod, inp: (
            seen.append(inp[0].detach().numpy().copy()) if mod.training else None
        )
    )
    net.partial_fit(X, y)
    raw = np.concatenate(net.recorded_)
    beta = a if b is None else b
    assert raw.size == 20 * n
    assert stats.kstest(raw, stats.beta(a, beta).cdf).pvalue > 1e-3
    mixed = np.concatenate(seen)
    applied = mixed.max(axis=1)  # = max(lam, 1 - lam) unless i == pi(i)
    off_diag = np.sort(mixed, axis=1)[:, -2] > 0
    law = stats.beta(a, beta)

    def folded_cdf(t):
        return np.clip(law.cdf(t) - law.cdf(1 - t), 0, 1)

    assert stats.kstest(applied[off_diag], folded_cdf).pvalue > 1e-3
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-5)


def test_net_mixup_prob_and_odd_batches():
    X, y = make_classification(n_samples=101, n_features=6, random_state=0)
    X = X.astype(np.float32)
    net = _RecordingNet(
        module=MLPModule,
        module__n_features=6,
        module__n_outputs=2,
        module__hidden_layer_sizes=(8,),
        mixup_prob=0.5,
        max_epochs=40,
        batch_size=10,
        train_split=None,
        verbose=0,
        random_state=0,
    )
    net.recorded_ = []
    net.fit(X, y)
    sizes = [len(r) for r in net.recorded_]
    assert set(sizes) <= {10, 1}  # 101 rows: ten batches of 10 and one of 1
    frac = len(sizes) / (40 * 11)
    assert 0.4 < frac < 0.6
    assert net.history[-1, "train_batch_count"] == 11


def test_net_with_validation_checkpoint_and_pickle(tmp_path):
    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    X = X.astype(np.float32)
    cp = Checkpoint(dirname=str(tmp_path), monitor="valid_loss_best")
    net = _net(module__n_outputs=2, train_split=None, callbacks=[cp], max_epochs=4)
    net.set_params(train_split=__import__("skorch").dataset.ValidSplit(4))
    net.fit(X, y)
    assert {"valid_loss", "valid_acc", "train_loss"} <= set(net.history[-1])
    assert (tmp_path / "params.pt").exists()
    proba = net.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    loaded = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(loaded.predict_proba(X), proba)
    g = input_gradient(net, X[:3], y[:3])
    assert g.shape == (3, 6) and g.dtype == np.float64


def test_net_rejects_bad_mixup_params():
    X = np.zeros((10, 6), dtype=np.float32)
    y = np.arange(10) % 3
    with pytest.raises(ValueError, match="mixup_alpha"):
        _net(mixup_alpha=0.0).fit(X, y)
    with pytest.raises(ValueError, match="mixup_prob"):
        _net(mixup_prob=1.5).fit(X, y)


def test_iterator_matches_dataloader_and_falls_back():
    from skorch.dataset import Dataset

    X = np.arange(14, dtype=np.float32).reshape(7, 2)
    y = np.arange(7)
    ds = Dataset(X, y)
    fast = list(TensorBatchIterator(ds, batch_size=3))
    assert [len(b[0]) for b in fast] == [3, 3, 1]
    np.testing.assert_array_equal(torch.cat([b[0] for b in fast]).numpy(), X)
    gen = torch.Generator().manual_seed(0)
    shuffled = list(TensorBatchIterator(ds, batch_size=3, shuffle=True, generator=gen))
    assert sorted(torch.cat([b[1] for b in shuffled]).tolist()) == list(range(7))
    assert len(TensorBatchIterator(ds, batch_size=3, drop_last=True)) == 2
    # a dict of arrays is sliced like an array; other datasets go to a DataLoader
    it = TensorBatchIterator(Dataset({"a": X}, y), batch_size=3)
    batches = list(it)
    assert it.loader_ is None and [len(b[0]["a"]) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(torch.cat([b[0]["a"] for b in batches]), X)
    it = TensorBatchIterator(
        torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
        batch_size=3,
    )
    assert it.loader_ is not None and len(list(it)) == 3


def test_net_skorch_dataloader_still_works():
    X, y = make_classification(n_samples=64, n_features=6, random_state=0)
    net = _net(module__n_outputs=2, iterator_train=torch.utils.data.DataLoader)
    net.fit(X.astype(np.float32), y)
    assert len(net.history) == 3


# The CUDA tests are in tests/test_nn_devices.py (marked cuda).


def test_fitted_net_params_hold_no_fit_state():
    # skorch lists every attribute not ending in "_" as a parameter: the state of a
    # fit (mixing draws, the fit-loop flag, a recorded Ctrl-C) must not be one, or
    # clone would pass it to __init__.
    from sklearn.base import clone

    from skmixup.neural_network._net import _FIT_STATE

    X, y = make_classification(n_samples=40, n_features=6, random_state=0)
    net = _net(max_epochs=1).fit(X.astype(np.float32), y)
    for name in _FIT_STATE:
        assert hasattr(net, name)
    params = net.get_params(deep=False)
    assert not set(_FIT_STATE) & set(params)
    assert not set(_FIT_STATE) & set(clone(net).get_params(deep=False))


def test_one_validation_one_task_weights_unpacked_once_per_batch(data, monkeypatch):
    # The estimator validates X once (not again in the net), reports to one fit
    # task (not one of its own and one of the net's), and the net takes the
    # sample weights out of each batch once.
    from skmixup.neural_network import _base, _data, _net

    X, y = data
    calls = {"validate": 0, "net_input": 0, "tasks": 0, "detach": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        _base, "validate_data", counting("validate", _base.validate_data)
    )
    monkeypatch.setattr(
        _net, "check_net_input", counting("net_input", _net.check_net_input)
    )
    monkeypatch.setattr(_base, "begin_fit", counting("tasks", _base.begin_fit))
    monkeypatch.setattr(_net, "begin_fit", counting("tasks", _net.begin_fit))
    monkeypatch.setattr(
        _net, "detach_sample_weight", counting("detach", _data.detach_sample_weight)
    )
    params = {**FAST, "max_iter": 2, "batch_size": 60, "shuffle": False}
    clf = MixupMLPClassifier(**params).fit(X, y, sample_weight=np.arange(len(y)) % 3)
    assert calls == {"validate": 1, "net_input": 0, "tasks": 1, "detach": 2 * 4}
    clf.predict_proba(X)
    assert calls["validate"] == 2 and calls["net_input"] == 0
