"""Helpers shared by the torch test modules (imported, not collected)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread for the module's tests, restored afterwards.

    The test machine is a shared 2-core box: one thread avoids OpenMP
    spin-waits under oversubscription.
    """
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def module_weights(module):
    """The parameters of a torch module as numpy arrays (copies, on the CPU)."""
    return [p.detach().cpu().numpy().copy() for p in module.parameters()]


def assert_same_weights(a, b):
    """Two modules have exactly the same parameters."""
    for wa, wb in zip(module_weights(a), module_weights(b), strict=True):
        np.testing.assert_array_equal(wa, wb)
