"""The torch nets with the skorch ecosystem: Accelerate, skorch's conventions
and subclasses.

(Processes: test_nn_process.py; input and weights: test_nn_input.py; devices
and persistence: test_nn_devices.py.)
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _torch_helpers import (  # noqa: E402
    TORCH_MODULE_MARKS,
    small_net,
)
from _torch_helpers import runtime_net as _net  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402

from skmixup.neural_network import (  # noqa: E402
    MixupNeuralNetClassifier,
    MLPModule,
)

pytestmark = TORCH_MODULE_MARKS


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
