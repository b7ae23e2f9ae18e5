"""Training run of tests/test_multiprocess.py, started once per process by
``python -m torch.distributed.run --standalone --nproc_per_node 2`` (Accelerate
then uses its multi-CPU mode with the gloo backend).

The documented recipes of docs/user_guide.rst ("Scaling out"): skorch's
``AccelerateMixin`` before :class:`MixupNeuralNetClassifier`, and a
:class:`MixupMLPClassifier` subclass whose net is that class. Each process
writes ``rank<r>.pt`` into the folder given as the first argument: the trained
weights, the loss curve and, per training batch, its size, the sum of its
inputs and whether it was mixed. ``benchmarks/bench_processes.py`` times
:class:`AcceleratedMixupNet` from here.
"""

import sys

import numpy as np
import torch
from accelerate import Accelerator
from sklearn.datasets import make_classification
from skorch.hf import AccelerateMixin
from torch.utils.data import DataLoader

from skmixup.neural_network import (
    MixupMLPClassifier,
    MixupNeuralNetClassifier,
    MLPModule,
)

class AcceleratedMixupNet(AccelerateMixin, MixupNeuralNetClassifier):
    """MixupNeuralNetClassifier trained through Accelerate."""

    def _initialize_accelerator(self):
        # Accelerate's multi-CPU mode wraps every prepared module in DDP, also the
        # parameter-free loss, which DDP refuses: prepare the rest only.
        criteria, self._criteria = self._criteria, []
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria


class _RecordingNet(AcceleratedMixupNet):
    """Records, per training batch, what this process mixed."""

    batches_ = []

    def _draw_mixing(self, batch, *args, **kwargs):
        mixing = super()._draw_mixing(batch, *args, **kwargs)
        X = batch[0]
        self.batches_.append((len(X), float(X.sum()), mixing is not None))
        return mixing


class AcceleratedMixupMLPClassifier(MixupMLPClassifier):
    """MixupMLPClassifier trained through Accelerate."""

    _net_class = _RecordingNet

    def _net_params(self):
        return {
            **super()._net_params(),
            "accelerator": Accelerator(cpu=True),
            "device": None,
            "iterator_train": DataLoader,
            "iterator_valid": DataLoader,
        }


def main(out):
    torch.set_num_threads(1)
    X, y = make_classification(
        n_samples=256, n_features=8, n_informative=6, random_state=0
    )
    X = X.astype(np.float32)
    accelerator = Accelerator(cpu=True)
    _RecordingNet.batches_ = []
    net = _RecordingNet(
        MLPModule,
        module__n_features=8,
        module__n_outputs=2,
        module__hidden_layer_sizes=(16,),
        accelerator=accelerator,
        device=None,
        iterator_train=DataLoader,
        iterator_valid=DataLoader,
        iterator_train__shuffle=True,
        optimizer=torch.optim.Adam,
        lr=0.01,
        max_epochs=6,
        batch_size=32,
        train_split=None,
        verbose=0,
        random_state=0,
    ).fit(X, y)
    net_batches, _RecordingNet.batches_ = _RecordingNet.batches_, []
    clf = AcceleratedMixupMLPClassifier(
        hidden_layer_sizes=(16,),
        max_iter=6,
        batch_size=32,
        learning_rate_init=0.01,
        n_iter_no_change=100,
        random_state=0,
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=6: not converged, on purpose
        clf.fit(X, y)
    torch.save(
        {
            "net": {k: v.detach().cpu() for k, v in net.module_.state_dict().items()},
            "net_loss": list(net.history[:, "train_loss"]),
            "net_batches": net_batches,
            "mlp": {
                k: v.detach().cpu() for k, v in clf.net_.module_.state_dict().items()
            },
            "mlp_loss": clf.loss_curve_,
            "mlp_batches": _RecordingNet.batches_,
            "mlp_accuracy": clf.score(X, y),
            "world_size": accelerator.num_processes,
        },
        f"{out}/rank{accelerator.process_index}.pt",
    )


if __name__ == "__main__":
    main(sys.argv[1])
