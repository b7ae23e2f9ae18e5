"""Shared fixtures and test data of the suite (seeds, torch threads, data sets,
fast estimator parameters)."""

import os

import numpy as np
import pytest

from skmixup.utils._threads import torch_single_thread as _torch_single_thread

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
    """One PyTorch intra-op thread for a test module, restored afterwards (a
    no-op without torch).

    The suite runs on small shared machines, where torch's default threads spin
    against each other and make tiny networks many times slower.
    """
    with _torch_single_thread():
        yield


# ---------------------------------------------------------------------------
# Shared test data: import the builders and constants (``from conftest import
# ...``) or take the fixtures.
# ---------------------------------------------------------------------------

# The fast network parameters: a short, fixed epoch budget on a small layer, on
# the CPU (these tests mean the CPU, also on a machine with CUDA). Reaching
# max_iter is expected with them; the modules that use them filter that warning.
FAST_MLP = {
    "hidden_layer_sizes": (16,),
    "max_iter": 15,
    "batch_size": 32,
    "learning_rate_init": 0.01,
    "random_state": 0,
    "device": "cpu",
}


def classification_set():
    """A small 3-class set with string labels: 240 x 6, 4 informative."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=240, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    return X, np.array(["ant", "bee", "cat"])[y]


@pytest.fixture(scope="module")
def data():
    """:func:`classification_set`."""
    return classification_set()


def linear_data(n=60, d=4, K=3, seed=0):
    """A small standardized ``K``-class set for the linear models: ``n x d``,
    one cluster per class."""
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(
        n_samples=n,
        n_features=d,
        n_informative=min(d, 3),
        n_redundant=0,
        n_classes=K,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return StandardScaler().fit_transform(X), y


def mixed_frame(n=240, seed=0):
    """The canonical real-data frame: numeric columns with NaN and different
    units, object and category columns, a string target (3 classes)."""
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(seed)
    income = rng.lognormal(10, 1, n)
    age = rng.uniform(18, 90, n)
    city = rng.choice(["paris", "lyon", "nice"], n)
    plan = pd.Categorical(rng.choice(["basic", "pro"], n))
    score = np.log(income) - 10 + (age - 50) / 20 + (city == "nice") + rng.randn(n)
    y = np.where(score > 0.5, "churn", np.where(score > -0.5, "stay", "upgrade"))
    income[rng.rand(n) < 0.1] = np.nan
    age[rng.rand(n) < 0.1] = np.nan
    frame = pd.DataFrame({"income": income, "age": age, "city": city, "plan": plan})
    return frame, y


@pytest.fixture
def mixed_data():
    """:func:`mixed_frame` with its defaults."""
    return mixed_frame()


def income_frame(n=80):
    """The columns of :func:`mixed_frame` (other values, an object ``city``),
    with a binary target: income above the median ("high") or not ("low")."""
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(
        {
            "age": np.where(rng.rand(n) < 0.1, np.nan, rng.normal(40, 10, n)),
            "income": rng.lognormal(10, 1, n),
            "city": rng.choice(["paris", "rome", "oslo"], n).astype(object),
            "plan": pd.Categorical(rng.choice(["a", "b"], n)),
        }
    )
    y = np.where(X["income"] > np.median(X["income"]), "high", "low")
    return X, y


def churn_frame(n=160):
    """The columns of :func:`mixed_frame` (income of a very different unit),
    with a binary target driven by age and city ("churn" or "stay")."""
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    age = rng.normal(40, 12, n)
    income = rng.lognormal(10, 0.5, n)  # a very different unit
    city = rng.choice(["paris", "lyon", "nice"], n)
    plan = pd.Categorical(rng.choice(["basic", "pro"], n))
    score = (age - 40) / 12 + (city == "paris") + rng.normal(0, 0.5, n)
    target = np.where(score > 0.3, "churn", "stay")
    age[rng.rand(n) < 0.1] = np.nan
    income[rng.rand(n) < 0.1] = np.nan
    frame = pd.DataFrame({"age": age, "income": income, "city": city, "plan": plan})
    return frame, target


def mixed_preprocessor(sparse_output=True):
    """The preprocessor of the mixed frames: impute and scale ``age`` and
    ``income``, impute and one-hot encode ``city`` and ``plan``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(), StandardScaler()),
                ["age", "income"],
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=sparse_output),
                ),
                ["city", "plan"],
            ),
        ]
    )
