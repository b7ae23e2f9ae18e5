"""MixupMLPRegressor: mixed targets, C-Mixup partners, weights, early stopping on
R^2, callbacks, persistence, runtime conditions (fork, threads, Ctrl-C), devices."""

import pickle

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _torch_helpers import module_weights, python_subprocess  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.datasets import make_friedman1  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402

from skmixup._mixing import label_kernel_bandwidth  # noqa: E402
from skmixup.neural_network import MixupMLPRegressor  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Stochastic optimizer. maximum iterations:"
        "sklearn.exceptions.ConvergenceWarning"
    ),
    pytest.mark.usefixtures("torch_single_thread"),
]

FAST = {
    "hidden_layer_sizes": (16,),
    "max_iter": 5,
    "batch_size": 32,
    "learning_rate_init": 0.01,
    "random_state": 0,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def data():
    return make_friedman1(120, n_features=5, random_state=0)


def _batch_net(y, partners="uniform", h=1.0):
    reg = MixupMLPRegressor(**FAST, partners=partners, kernel_bandwidth=h)
    reg.fit(np.zeros((len(y), 2), dtype=np.float32), y)
    batch = (torch.zeros(len(y), 2), torch.as_tensor(y, dtype=torch.float32)[:, None])
    return reg.net_, batch


def test_loss_is_squared_error_on_mixed_targets():
    y = np.arange(8, dtype=np.float32)
    net, batch = _batch_net(y)
    lam, partner = net._draw_mixing(batch)
    y_pred = torch.linspace(0, 1, 8).reshape(-1, 1)
    net._batch_mixing = (lam, partner)
    try:
        loss = net.get_loss(y_pred, batch[1], X=batch[0], training=True)
    finally:
        net._batch_mixing = None
    lam64 = lam.numpy()
    target = lam64 * y + (1 - lam64) * y[partner.numpy()]
    expected = np.mean((y_pred.numpy().ravel() - target) ** 2)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    # not the mixed losses of the classifier: squared error is not linear in y
    mixed_losses = (
        lam64 * (y_pred.numpy().ravel() - y) ** 2
        + (1 - lam64) * (y_pred.numpy().ravel() - y[partner.numpy()]) ** 2
    )
    assert float(loss) < mixed_losses.mean()
    # validation (training=False) sees the clean targets
    clean = net.get_loss(y_pred, batch[1], X=batch[0], training=False)
    assert float(clean) == pytest.approx(np.mean((y_pred.numpy().ravel() - y) ** 2))


def test_label_kernel_partners_in_the_batch():
    # Two label clusters far apart (in bandwidths): partners stay in the cluster;
    # within it, the draw follows the kernel times the weights.
    y = np.array([0.0, 0.1, 0.2, 10.0, 10.1, 10.2], dtype=np.float32)
    w = np.array([1.0, 1.0, 2.0, 1.0, 0.0, 1.0])
    net, batch = _batch_net(y, "label_kernel", h=0.1)
    counts = np.zeros((6, 6))
    for _ in range(400):
        _, partner = net._draw_mixing(batch, torch.as_tensor(w))
        counts[np.arange(6), partner.numpy()] += 1
    assert counts[:3, 3:].sum() == 0 and counts[3:, :3].sum() == 0
    assert counts[:, 4].sum() == 0  # zero weight: never a partner
    yy = y.astype(float)
    p = w * np.exp(-((yy[0] - yy) ** 2) / (2 * 0.1**2))
    np.testing.assert_allclose(counts[0] / 400, p / p.sum(), atol=0.07)
    # uniform partners cross clusters
    net_u, batch_u = _batch_net(y, "uniform")
    crossed = sum(
        int(np.sum(net_u._draw_mixing(batch_u)[1].numpy()[:3] >= 3)) for _ in range(50)
    )
    assert crossed > 0


def test_default_bandwidth_is_silverman_and_fit_learns(data):
    X, y = data
    reg = MixupMLPRegressor(
        **{**FAST, "max_iter": 60, "batch_size": 1000, "learning_rate_init": 0.05},
        partners="label_kernel",
    ).fit(X, y)
    assert reg.kernel_bandwidth_ == pytest.approx(label_kernel_bandwidth(y))
    assert reg.score(X, y) > 0.5
    assert reg.predict(X).shape == (120,)
    assert MixupMLPRegressor(**FAST).fit(X, y).kernel_bandwidth_ is None
    assert not hasattr(reg, "predict_proba")
    with pytest.raises(ValueError):  # one target
        MixupMLPRegressor(**FAST).fit(X, np.c_[y, -y])


def test_seeded_and_reproducible_and_global_generators_untouched(data):
    X, y = data
    state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (global state)
    a = MixupMLPRegressor(**FAST, partners="label_kernel").fit(X, y)
    b = MixupMLPRegressor(**FAST, partners="label_kernel").fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    c = MixupMLPRegressor(**{**FAST, "random_state": 1}).fit(X, y)
    assert not np.allclose(a.predict(X), c.predict(X))
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])  # noqa: NPY002


def test_integer_weights_equal_repeated_rows_without_mixing(data):
    X, y = data
    X, y = X[:30], y[:30]
    w = np.arange(30) % 3
    params = {**FAST, "batch_size": 100, "shuffle": False, "alpha": 0.0}

    def fit(*args, **kwargs):
        reg = MixupMLPRegressor(**params, mixup_prob=0.0)
        return reg.fit(*args, **kwargs).net_.module_

    for a, b in zip(
        module_weights(fit(X, y, sample_weight=w)),
        module_weights(fit(np.repeat(X, w, axis=0), np.repeat(y, w))),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # and with mixing, weights change the fit
    one = MixupMLPRegressor(**FAST).fit(X, y)
    weighted = MixupMLPRegressor(**FAST).fit(X, y, sample_weight=w + 1)
    assert not np.allclose(one.predict(X), weighted.predict(X))


def test_early_stopping_on_r2_and_callbacks(data):
    X, y = data

    class Count(Callback):
        def initialize(self):
            self.epochs_ = 0
            return self

        def on_epoch_end(self, net, **kwargs):
            self.epochs_ += 1

    reg = MixupMLPRegressor(
        **{**FAST, "max_iter": 200, "learning_rate_init": 0.02},
        early_stopping=True,
        n_iter_no_change=3,
        callbacks=[("count", Count())],
    ).fit(X, y)
    assert reg.n_iter_ < 200
    assert len(reg.validation_scores_) == reg.n_iter_
    assert reg.best_validation_score_ == max(reg.validation_scores_)
    assert "valid_r2" in reg.net_.history[-1]
    assert dict(reg.net_.callbacks_)["count"].epochs_ == reg.n_iter_


def test_partial_fit_and_mixed_frame_pipeline(data):
    X, y = data
    reg = MixupMLPRegressor(**FAST)
    reg.partial_fit(X, y)
    reg.partial_fit(X, y)
    assert reg.n_iter_ == 2
    with pytest.raises(ValueError, match="features"):
        reg.partial_fit(X[:, :3], y)
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(
        {
            "a": np.where(rng.rand(120) < 0.1, np.nan, X[:, 0]),
            "b": pd.array(np.where(rng.rand(120) < 0.1, None, X[:, 1]), "Float64"),
            "c": pd.Categorical(rng.choice(["u", "v"], 120)),
            "d": pd.array(rng.choice(["p", "q"], 120), dtype="string"),
        }
    )
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b"]),
            ("cat", OneHotEncoder(), ["c", "d"]),
        ]
    )
    pipe = make_pipeline(pre, MixupMLPRegressor(**FAST, partners="label_kernel"))
    assert pipe.fit(frame, y).predict(frame).shape == (120,)
    grid = GridSearchCV(
        pipe,
        {"mixupmlpregressor__partners": ["uniform", "label_kernel"]},
        cv=2,
    ).fit(frame, y)
    assert len(grid.cv_results_["params"]) == 2


def test_pickle_and_skops_round_trip(data):
    sio = pytest.importorskip("skops.io")
    X, y = data
    reg = MixupMLPRegressor(**FAST, partners="label_kernel", early_stopping=True).fit(
        X, y
    )
    expected = reg.predict(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), expected)
    dumped = sio.dumps(reg)
    trusted = ["skmixup.neural_network._regressor.MixupMLPRegressor"]
    assert set(sio.get_untrusted_types(data=dumped)) <= set(trusted)
    loaded = sio.loads(dumped, trusted=trusted)
    np.testing.assert_array_equal(loaded.predict(X), expected)
    assert loaded.kernel_bandwidth_ == reg.kernel_bandwidth_
    assert loaded.net_.kernel_bandwidth_ == reg.net_.kernel_bandwidth_
    loaded.partial_fit(X, y)
    reg.partial_fit(X, y)
    np.testing.assert_allclose(loaded.predict(X), reg.predict(X), rtol=1e-5)


def test_fork_pool_threads_and_ctrl_c():
    # One interpreter: a fit in a fork pool after a fit in the parent (torch's
    # OpenMP pool does not survive fork), a threaded search equal to the
    # sequential one, and Ctrl-C inside a training step re-raised with the
    # estimator left unfitted.
    res = python_subprocess(
        """
        import multiprocessing as mp, os, signal, warnings
        import numpy as np, torch
        from joblib import parallel_backend
        from sklearn.datasets import make_friedman1
        from sklearn.model_selection import GridSearchCV
        from skmixup.neural_network import MixupMLPRegressor
        warnings.simplefilter("ignore")
        torch.set_num_threads(2)
        X, y = make_friedman1(200, random_state=0)
        params = dict(hidden_layer_sizes=(16,), max_iter=5, device="cpu",
                      partners="label_kernel")
        MixupMLPRegressor(random_state=0, **params).fit(X, y)
        def job(seed):
            return MixupMLPRegressor(random_state=seed, **params).fit(X, y).n_iter_
        with mp.get_context("fork").Pool(2) as pool:
            assert pool.map(job, [0, 1]) == [5, 5]
        grid = {"mixup_alpha": [0.2, 1.0, 2.0]}
        seq = GridSearchCV(MixupMLPRegressor(random_state=0, **params), grid, cv=2)
        seq.fit(X, y)
        with parallel_backend("threading", n_jobs=3):
            thr = GridSearchCV(MixupMLPRegressor(random_state=0, **params), grid,
                               cv=2, n_jobs=3).fit(X, y)
        np.testing.assert_array_equal(seq.cv_results_["mean_test_score"],
                                      thr.cv_results_["mean_test_score"])
        calls = {"n": 0}
        def ctrl_c(module, inputs):
            calls["n"] += 1
            if module.training and calls["n"] == 3:
                os.kill(os.getpid(), signal.SIGINT)
        orig = MixupMLPRegressor._build_net
        def build(self, *args, **kwargs):
            net = orig(self, *args, **kwargs)
            net.module.register_forward_pre_hook(ctrl_c)
            return net
        MixupMLPRegressor._build_net = build
        reg = MixupMLPRegressor(random_state=0, batch_size=16,
                                **{**params, "max_iter": 5000})
        try:
            reg.fit(X, y)
            print("returned normally")
        except KeyboardInterrupt:
            print("interrupted", hasattr(reg, "net_"), hasattr(reg, "n_iter_"))
        """,
        timeout=240,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "interrupted False False" in res.stdout, res.stdout + res.stderr[-2000:]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("partners", ["uniform", "label_kernel"])
def test_cuda_regressor(data, partners):
    X, y = data
    params = {**FAST, "device": "cuda", "partners": partners, "early_stopping": True}
    cuda_rng = torch.cuda.get_rng_state()
    reg = MixupMLPRegressor(**params).fit(X, y, sample_weight=np.arange(120) % 3 + 1)
    assert reg.device_ == "cuda" and next(reg.net_.module_.parameters()).is_cuda
    assert torch.equal(cuda_rng, torch.cuda.get_rng_state())
    again = MixupMLPRegressor(**params).fit(X, y, sample_weight=np.arange(120) % 3 + 1)
    np.testing.assert_allclose(again.predict(X), reg.predict(X), atol=1e-5)
    cpu = MixupMLPRegressor(**{**params, "device": "cpu"}).fit(
        X, y, sample_weight=np.arange(120) % 3 + 1
    )
    np.testing.assert_allclose(cpu.predict(X), reg.predict(X), atol=1e-3)
    loaded = pickle.loads(pickle.dumps(reg))
    assert loaded.device_ == "cpu"
    np.testing.assert_allclose(loaded.predict(X), reg.predict(X), atol=1e-5)
    reg.partial_fit(X, y)
    assert next(reg.net_.module_.parameters()).is_cuda
