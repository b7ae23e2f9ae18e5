"""Helpers shared by the torch test modules (imported, not collected)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def module_weights(module):
    """The parameters of a torch module as numpy arrays (copies, on the CPU)."""
    return [p.detach().cpu().numpy().copy() for p in module.parameters()]


def assert_same_weights(a, b):
    """Two modules have exactly the same parameters."""
    for wa, wb in zip(module_weights(a), module_weights(b), strict=True):
        np.testing.assert_array_equal(wa, wb)


# The marks of the torch test modules: one torch thread, and a fixed short epoch
# budget (FAST_MLP) whose ConvergenceWarning at max_iter is expected (the warning
# itself is tested in test_neural_network.py).
TORCH_MODULE_MARKS = [
    pytest.mark.filterwarnings(
        "ignore:Stochastic optimizer. maximum iterations:"
        "sklearn.exceptions.ConvergenceWarning"
    ),
    pytest.mark.usefixtures("torch_single_thread"),
]

# The quiet, seeded, CPU settings of the small test nets.
NET_DEFAULTS = {"train_split": None, "verbose": 0, "random_state": 0, "device": "cpu"}


def small_net(n_features, net_class=None, **params):
    """A small seeded MLPModule net on the CPU; ``params`` override the defaults."""
    from skmixup.neural_network import MixupNeuralNetClassifier, MLPModule

    defaults = dict(
        module=MLPModule,
        module__n_features=n_features,
        module__n_outputs=3,
        module__hidden_layer_sizes=(8,),
        max_epochs=3,
        batch_size=32,
        **NET_DEFAULTS,
    )
    return (net_class or MixupNeuralNetClassifier)(**{**defaults, **params})


def runtime_net(n_features=5, **params):
    """:func:`small_net` with a learning rate of 0.05 (the runtime tests' net)."""
    return small_net(n_features, **{"lr": 0.05, **params})


def python_subprocess(code, timeout=120, **kwargs):
    """Run ``code`` in a fresh interpreter (torch with its default threads)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
