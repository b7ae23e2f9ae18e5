"""Scaling out (DESIGN section 5): searches on a Dask cluster, streamed partial_fit."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, cross_validate

from skmixup.linear_model import (
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
)
from skmixup.metrics import make_adversarial_scorer

joblib = pytest.importorskip("joblib")
distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def dask_client():
    # Two worker processes: estimators, scorers and data are pickled to them.
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=0
    )
    return X, np.array(["ant", "bee", "cat"])[y]


def _search(estimator, grid, n_jobs):
    return GridSearchCV(
        estimator,
        grid,
        scoring={"clean": "accuracy", "robust": make_adversarial_scorer(eps=0.2)},
        refit="robust",
        cv=3,
        n_jobs=n_jobs,
    )


@pytest.mark.parametrize(
    "estimator, grid",
    [
        (MixupLogisticRegression(random_state=0), {"mixup_alpha": [0.2, 1.0]}),
        (MixupRegularizedLogisticRegression(), {"C": [0.1, 1.0]}),
    ],
    ids=["exact", "penalty"],
)
def test_grid_search_on_a_dask_cluster_matches_the_local_run(
    dask_client, data, estimator, grid
):
    X, y = data
    local = _search(estimator, grid, n_jobs=None).fit(X, y)
    with distributed.get_task_stream(client=dask_client) as tasks:
        with joblib.parallel_backend("dask"):
            remote = _search(estimator, grid, n_jobs=-1).fit(X, y)
    # The fits ran on the cluster's workers.
    assert len({task["worker"] for task in tasks.data}) >= 1
    assert len(tasks.data) >= 3 * len(next(iter(grid.values())))
    for key in ("mean_test_clean", "mean_test_robust"):
        np.testing.assert_array_equal(remote.cv_results_[key], local.cv_results_[key])
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(remote.predict(X), local.predict(X))


def test_mlp_cross_validates_on_a_dask_cluster(dask_client, data):
    pytest.importorskip("torch")
    pytest.importorskip("skorch")
    from skmixup.neural_network import MixupMLPClassifier

    X, y = data
    clf = MixupMLPClassifier(
        hidden_layer_sizes=(16,),
        max_iter=200,
        learning_rate_init=0.01,
        random_state=0,
    )
    with joblib.parallel_backend("dask"):
        remote = cross_validate(clf, X, y, cv=3, n_jobs=-1)
    local = cross_validate(clf, X, y, cv=3)
    # Same seeds on CPU; torch in another process may round differently, so allow
    # a sample or two per fold to change its prediction.
    np.testing.assert_allclose(remote["test_score"], local["test_score"], atol=0.021)
    assert remote["test_score"].mean() > 0.7


def _stream(estimator, chunks, classes):
    for X_chunk, y_chunk in chunks:
        estimator.partial_fit(X_chunk, y_chunk, classes=classes)
    return estimator


def test_incremental_partial_fit_over_dask_chunks(data):
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = data
    Xd, yd = da.from_array(X, chunks=100), da.from_array(y, chunks=100)
    classes = np.unique(y)
    inc = wrappers.Incremental(
        MixupLogisticRegression(random_state=0), shuffle_blocks=False
    ).fit(Xd, yd, classes=classes)
    chunks = [(X[i : i + 100], y[i : i + 100]) for i in range(0, len(y), 100)]
    ref = _stream(MixupLogisticRegression(random_state=0), chunks, classes)
    np.testing.assert_array_equal(inc.estimator_.coef_, ref.coef_)
    assert inc.estimator_.t_ == ref.t_
    assert inc.score(Xd, yd) == ref.score(X, y)


def test_partial_fit_streams_from_csv_chunks(data, tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = data
    columns = [f"f{k}" for k in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns).assign(label=y)
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    classes = np.unique(y)
    streamed = MixupLogisticRegression(random_state=0)
    for chunk in pd.read_csv(path, chunksize=64):
        streamed.partial_fit(chunk[columns], chunk["label"], classes=classes)
    in_memory = [
        (frame[columns].iloc[i : i + 64], frame["label"].iloc[i : i + 64])
        for i in range(0, len(y), 64)
    ]
    ref = _stream(MixupLogisticRegression(random_state=0), in_memory, classes)
    # CSV round-trips float64 exactly (shortest repr), so the fits are identical.
    np.testing.assert_array_equal(streamed.coef_, ref.coef_)
    np.testing.assert_array_equal(streamed.feature_names_in_, columns)


def test_one_big_linear_fit_on_the_cluster_equals_the_local_scheduler(dask_client):
    # fit on Dask arrays (skmixup.linear_model._dask): every L-BFGS-B evaluation is
    # a pass over the persisted chunks on the workers; the result does not depend
    # on the scheduler.
    import dask

    X, y = make_classification(
        n_samples=600, n_features=5, n_classes=3, n_informative=4, n_redundant=0,
        random_state=0,
    )
    Xd = da.from_array(X, chunks=(200, -1))
    yd = da.from_array(y, chunks=200)
    ests = [
        MixupLogisticRegression(n_partners=9, random_state=0, tol=1e-3),
        MixupRegularizedLogisticRegression(tol=1e-3),
    ]
    with dask.config.set(scheduler="synchronous"):
        local = [clone(e).fit(Xd, yd) for e in ests]
    Xp, yp = dask_client.persist([Xd, yd])
    with distributed.get_task_stream(client=dask_client) as tasks:
        remote = [clone(e).fit(Xp, yp) for e in ests]
    assert len({t["worker"] for t in tasks.data}) == 2  # both workers took part
    for a, b in zip(remote, local, strict=True):
        np.testing.assert_allclose(a.coef_, b.coef_, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=0, atol=1e-12)
