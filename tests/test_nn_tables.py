"""The networks on everyday tables: sparse input (a TF-IDF pipeline), class
weights, feature names, trimming for prediction, batch sizes."""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from scipy import sparse  # noqa: E402

from skmixup.neural_network import (  # noqa: E402
    MixupMLPClassifier,
    MixupNeuralNetClassifier,
    MixupRegularizedMLPClassifier,
)
from skmixup.neural_network._iterator import TensorBatchIterator  # noqa: E402

pytestmark = [
    pytest.mark.usefixtures("torch_single_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]


def _sparse_data(n=120, d=30, seed=0):
    rng = np.random.RandomState(seed)
    X = sparse.random(n, d, density=0.15, random_state=rng, format="csr")
    X = X.astype(np.float32)
    y = (np.asarray(X[:, :5].sum(axis=1)).ravel() > 0.25).astype(np.int64)
    return X, y


def _net(d, **params):
    params = {"batch_size": 32, "max_epochs": 3, **params}
    return MixupNeuralNetClassifier(
        torch.nn.Linear,
        module__in_features=d,
        module__out_features=2,
        criterion=torch.nn.CrossEntropyLoss,
        train_split=None,
        verbose=0,
        random_state=0,
        **params,
    )


def _mlp(cls, **params):
    return cls(hidden_layer_sizes=(8,), max_iter=3, random_state=0, **params)


@pytest.mark.parametrize(
    "make",
    [
        lambda d: _mlp(MixupMLPClassifier),
        lambda d: _mlp(MixupRegularizedMLPClassifier),
        lambda d: _mlp(MixupRegularizedMLPClassifier, n_partners=3),
        lambda d: _mlp(MixupMLPClassifier, early_stopping=True),
        _net,
    ],
    ids=["mlp", "regularized", "regularized_sampled", "mlp_early_stopping", "net"],
)
def test_sparse_input_fits_as_its_dense_twin(make):
    X, y = _sparse_data()
    d = X.shape[1]
    on_sparse = make(d).fit(X, y)
    on_dense = make(d).fit(X.toarray(), y)
    np.testing.assert_allclose(
        on_sparse.predict_proba(X), on_dense.predict_proba(X.toarray()), atol=1e-6
    )
    np.testing.assert_allclose(
        on_sparse.predict_proba(X.toarray()), on_sparse.predict_proba(X), atol=1e-6
    )
    assert on_sparse.__sklearn_tags__().input_tags.sparse


def test_sparse_rows_stay_sparse_until_the_batch():
    from skorch.dataset import Dataset

    X, y = _sparse_data()
    iterator = TensorBatchIterator(Dataset(X, y), batch_size=50, shuffle=True)
    assert sparse.issparse(iterator.X_)  # not densified as a whole
    batches = list(iterator)
    assert [len(xb) for xb, _ in batches] == [50, 50, 20]
    xb, _ = batches[0]
    assert isinstance(xb, torch.Tensor) and xb.dtype == torch.float32
    stacked = torch.cat([xb for xb, _ in batches]).numpy()
    assert sorted(map(tuple, stacked)) == sorted(map(tuple, X.toarray()))


def test_tfidf_pipeline_reaches_the_networks(mixed_table_data):
    from sklearn.pipeline import make_pipeline

    from conftest import mixed_table_preprocessor

    X, y = mixed_table_data
    pre = mixed_table_preprocessor(sparse_threshold=1.0)  # TF-IDF and one-hot: CSR
    pipe = make_pipeline(pre, _mlp(MixupMLPClassifier))
    Xt = pipe[0].fit_transform(X)
    assert sparse.issparse(Xt)
    pipe.fit(X, y)
    assert set(pipe.predict(X)) <= {"yes", "no"}


@pytest.mark.parametrize("batch_size", [0, -2, 1.5])
def test_net_batch_size_must_be_a_size(batch_size):
    X, y = _sparse_data()
    with pytest.raises(ValueError, match="'batch_size' parameter of"):
        _net(X.shape[1], batch_size=batch_size).fit(X.toarray(), y)


def _imbalanced(n=400, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, 4).astype(np.float32)
    y = np.where(X[:, 0] + 0.3 * rng.randn(n) > 1.6, "rare", "common")  # ~5 %
    return X, y


@pytest.mark.parametrize(
    "cls", [MixupMLPClassifier, MixupRegularizedMLPClassifier], ids=["mlp", "reg"]
)
def test_class_weight_has_the_linear_meaning(cls):
    X, y = _imbalanced()
    params = {"hidden_layer_sizes": (8,), "max_iter": 30, "random_state": 0}
    plain = cls(**params).fit(X, y)
    balanced = cls(**params, class_weight="balanced").fit(X, y)
    rare = y == "rare"
    recall = [np.mean(m.predict(X)[rare] == "rare") for m in (plain, balanced)]
    assert recall[1] > recall[0] + 0.3  # the rare class is found
    # A dict of weights is the same as sample weights (MixupMLPClassifier).
    if cls is MixupMLPClassifier:
        w = {"rare": 5.0, "common": 1.0}
        by_class = cls(**params, class_weight=w).fit(X, y)
        by_sample = cls(**params).fit(X, y, sample_weight=np.where(rare, 5.0, 1.0))
        np.testing.assert_allclose(
            by_class.predict_proba(X), by_sample.predict_proba(X), atol=1e-6
        )
    with pytest.raises(ValueError, match="class_weight"):
        cls(**params, class_weight="even").fit(X, y)


def test_net_class_weight_has_the_linear_meaning():
    X, y = _imbalanced()
    y = (y == "rare").astype(np.int64)
    params = {"max_epochs": 30, "lr": 0.1}
    plain = _net(4, **params).fit(X, y)
    balanced = _net(4, **params, class_weight="balanced").fit(X, y)
    recall = [np.mean(m.predict(X)[y == 1] == 1) for m in (plain, balanced)]
    assert recall[1] > recall[0] + 0.3
    w = {1: 5.0, 0: 1.0}
    by_class = _net(4, **params, class_weight=w).fit(X, y)
    by_sample = _net(4, **params).fit(X, y, sample_weight=np.where(y == 1, 5.0, 1.0))
    np.testing.assert_allclose(
        by_class.predict_proba(X), by_sample.predict_proba(X), atol=1e-6
    )


def test_net_fitted_on_a_dataframe_checks_its_columns_as_predict_does():
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.randn(60, 3).astype(np.float32), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(np.int64).to_numpy()
    net = _net(3).fit(X, y)
    np.testing.assert_array_equal(net.feature_names_in_, ["a", "b", "c"])
    proba = net.predict_proba(X)
    with pytest.raises(ValueError, match="same order as they were in fit"):
        net.predict_proba(X[["b", "a", "c"]])
    with pytest.raises(ValueError, match="unseen at fit time"):
        net.predict(X.rename(columns={"a": "z"}))
    # an array fit forgets the names
    assert not hasattr(_net(3).fit(X.to_numpy(), y), "feature_names_in_")
    refit = net.fit(X.to_numpy(), y)
    assert not hasattr(refit, "feature_names_in_")
    np.testing.assert_allclose(_net(3).fit(X, y).predict_proba(X), proba)


def test_net_trim_for_prediction_drops_the_fit_only_state():
    X, y = _sparse_data()
    X = X.toarray()
    net = _net(X.shape[1]).fit(X, y)
    proba = net.predict_proba(X)
    size = len(pickle.dumps(net))
    net.trim_for_prediction()
    for name in ("_mixup_rng_", "_mixup_generator_", "_shuffle_generator_"):
        assert not hasattr(net, name)
    for name in ("_init_generator_", "_seed_rng_"):
        assert not hasattr(net, name)
    trimmed = len(pickle.dumps(net))
    assert trimmed < 0.2 * size  # measured 10 % (skorch's own net: 63 %)
    np.testing.assert_allclose(net.predict_proba(X), proba)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(net)).predict_proba(X), proba)
