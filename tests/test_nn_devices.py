"""The torch estimators on devices and in files: pickling and copies, batches
and host-to-device copies, compiled modules, skops, CUDA.

Tests that mean the CPU pin ``device="cpu"``; the ``cuda``-marked tests need a
GPU.
"""

import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

import joblib  # noqa: E402
from _torch_helpers import (  # noqa: E402
    TORCH_MODULE_MARKS,
    assert_same_weights,
)
from _torch_helpers import (  # noqa: E402
    runtime_net as _net,
)
from sklearn.datasets import make_classification  # noqa: E402
from skorch.callbacks import LRScheduler  # noqa: E402

from conftest import FAST_MLP as FAST  # noqa: E402
from skmixup.neural_network import (  # noqa: E402
    MixupMLPClassifier,
    MixupNeuralNetClassifier,
    TensorBatchIterator,
)

pytestmark = TORCH_MODULE_MARKS


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
