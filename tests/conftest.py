import os

import numpy as np
import pytest

# Run by tests/test_multiprocess.py under torchrun, not a test module (it imports
# accelerate, an optional test dependency).
collect_ignore = ["_accelerate_train.py"]

# Like scikit-learn's `global_random_seed`: SKMIXUP_TESTS_GLOBAL_RANDOM_SEED=7 or
# "all" (0-99) or a range "0-9"; default 42. Statistical tests take this fixture so
# that they are not tuned to one seed.
_seed_env = os.environ.get("SKMIXUP_TESTS_GLOBAL_RANDOM_SEED", "42")
if _seed_env == "all":
    _SEEDS = list(range(100))
elif "-" in _seed_env:
    lo, hi = (int(s) for s in _seed_env.split("-"))
    _SEEDS = list(range(lo, hi + 1))
else:
    _SEEDS = [int(_seed_env)]


@pytest.fixture(params=_SEEDS)
def global_random_seed(request):
    return request.param


@pytest.fixture
def rng(global_random_seed):
    return np.random.RandomState(global_random_seed)


@pytest.fixture(scope="module")
def torch_single_thread():
    """One PyTorch intra-op thread for a test module, restored afterwards.

    The suite runs on small shared machines, where torch's default threads spin
    against each other and make tiny networks many times slower.
    """
    torch = pytest.importorskip("torch")
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)
