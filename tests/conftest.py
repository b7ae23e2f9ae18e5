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


# --------------------------------------------------------------------------------------
# The mixed table: every pandas dtype a user's table holds, and its preprocessing.
# Import the builders (``from conftest import mixed_table``) or take the fixture.
# --------------------------------------------------------------------------------------

MIXED_NUMERIC = ["age", "income", "score", "rating", "visits"]
MIXED_CATEGORICAL = ["city", "kind", "flag"]
# A nullable boolean with pd.NA has its own imputer: scikit-learn's SimpleImputer
# cannot mix it with object columns (pd.NA in an object array is ambiguous).
MIXED_BOOLEAN = ["verified"]
MIXED_TEXT = "review"
_WORDS = np.array(
    ["great", "poor", "fast", "slow", "broken", "fine", "cheap", "solid", "late"]
)


def mixed_table(n=150, seed=0, n_classes=2):
    """The mixed table of the test suite and its string target.

    Columns: ``age`` (int64), ``income`` (float64 with NaN), ``score`` (float32),
    ``rating`` (nullable Float64 with pd.NA), ``visits`` (nullable Int64 with
    pd.NA), ``city`` (object strings with NaN), ``kind`` (category), ``flag``
    (bool), ``verified`` (nullable boolean with pd.NA) and ``review`` (a short
    free text, pandas' string dtype). The target is ``"yes"``/``"no"`` (or
    ``"low"``/``"mid"``/``"high"``) and depends on numbers, categories and words.
    """
    import pandas as pd

    rng = np.random.RandomState(seed)
    words = rng.randint(len(_WORDS), size=(n, 3))
    review = [" ".join(_WORDS[w]) for w in words]
    positive = np.isin(_WORDS[words], ["great", "fast", "solid"]).sum(axis=1)
    rating = pd.array(rng.uniform(1, 5, n).round(1), dtype="Float64")
    rating[rng.rand(n) < 0.1] = pd.NA
    visits = pd.array(rng.poisson(3, n), dtype="Int64")
    visits[rng.rand(n) < 0.1] = pd.NA
    verified = pd.array(rng.rand(n) > 0.4, dtype="boolean")
    verified[rng.rand(n) < 0.1] = pd.NA
    X = pd.DataFrame(
        {
            "age": rng.randint(18, 80, n),
            "income": rng.lognormal(3, 0.5, n),
            "score": rng.randn(n).astype(np.float32),
            "rating": rating,
            "visits": visits,
            "city": rng.choice(["north", "south", "east"], n).astype(object),
            "kind": pd.Categorical(rng.choice(["x", "y"], n)),
            "flag": rng.rand(n) > 0.5,
            "verified": verified,
            "review": pd.array(review, dtype="string"),
        },
        index=pd.RangeIndex(100, 100 + n),
    )
    X.loc[rng.rand(n) < 0.15, "income"] = np.nan
    X.loc[rng.rand(n) < 0.1, "city"] = np.nan
    signal = (X.age - 50) / 15 + np.nan_to_num((X.income - 20) / 10) + X.score
    signal += np.where(X.city == "north", 1.0, 0.0)
    signal += 0.5 * (positive - 1.0) + 0.3 * X.rating.fillna(3).to_numpy(float) - 0.9
    signal += 0.5 * rng.randn(n)
    signal = np.asarray(signal, dtype=np.float64)
    if n_classes == 2:
        y = np.where(signal > 0, "yes", "no").astype(object)
    else:
        y = np.array(["low", "mid", "high"], dtype=object)[
            np.digitize(signal, [-0.7, 0.7])
        ]
    return X, y


def mixed_table_preprocessor(
    sparse_output=True, numeric=None, categorical=None, text=True, **kwargs
):
    """The standard preprocessing of the mixed table (a ColumnTransformer).

    Numeric columns: mean imputation and scaling; categorical columns (and, on
    its own, the nullable boolean): the most frequent value and one-hot encoding;
    the text column: TF-IDF (unless ``text=False``). ``kwargs`` go to the
    ColumnTransformer.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = MIXED_NUMERIC if numeric is None else numeric
    categorical = MIXED_CATEGORICAL if categorical is None else categorical
    transformers = [
        ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
        (
            "cat",
            make_pipeline(
                SimpleImputer(strategy="most_frequent"),
                OneHotEncoder(handle_unknown="ignore", sparse_output=sparse_output),
            ),
            categorical,
        ),
        (
            "bool",
            make_pipeline(
                SimpleImputer(strategy="most_frequent"),
                OneHotEncoder(handle_unknown="ignore", sparse_output=sparse_output),
            ),
            MIXED_BOOLEAN,
        ),
    ]
    if text:
        transformers.append(("text", TfidfVectorizer(), MIXED_TEXT))
    return ColumnTransformer(transformers, **kwargs)


@pytest.fixture(scope="module")
def mixed_table_data():
    """:func:`mixed_table` with its defaults."""
    pytest.importorskip("pandas")
    return mixed_table()
