"""The linear estimators on Dask arrays and DataFrames (skmixup.linear_model._dask):
the distributed fit equals the in-memory fit with the same block layout."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import mixed_table, mixed_table_preprocessor
from sklearn.base import clone
from sklearn.datasets import make_classification

from skmixup.linear_model import (
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
)

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from skmixup.linear_model._dask import layout_plan  # noqa: E402


def _data(n=900, K=3, d=5, seed=0):
    X, y = make_classification(
        n_samples=n,
        n_features=d,
        n_informative=4,
        n_redundant=0,
        n_classes=K,
        random_state=seed,
    )
    return X, y


def _in_memory_twin(est, chunks):
    """The in-memory estimator whose Mixup plan has the Dask fit's blocks."""
    twin = est.__class__(**est.get_params())
    twin._mixup_plan = lambda sw, *rng: layout_plan(twin, sw, chunks)
    return twin


def _assert_same_fit(a, b, atol):
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=0, atol=atol)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=0, atol=atol)
    np.testing.assert_array_equal(a.classes_, b.classes_)


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize(
    "params",
    [
        {"n_partners": 7},
        {"n_partners": "all", "fit_intercept": False},
        {"class_weight": "balanced", "mixup_alpha": 0.4, "mixup_beta": 2.0},
    ],
    ids=["sampled", "all-no-intercept", "balanced-asymmetric"],
)
def test_mixup_dask_fit_equals_in_memory_fit_with_same_blocks(K, params):
    X, y = _data(K=K)
    rng = np.random.RandomState(1)
    sw = rng.uniform(0.2, 2.0, size=y.size)
    chunks = (250, 250, 250, 150)
    Xd, yd = da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks=chunks)
    swd = da.from_array(sw, chunks=chunks)
    est = MixupLogisticRegression(random_state=3, tol=1e-10, **params)
    est.fit(Xd, yd, sample_weight=swd)
    twin = _in_memory_twin(est, chunks).fit(X, y, sample_weight=sw)
    _assert_same_fit(est, twin, atol=1e-8)
    assert est.coef_.dtype == np.float64
    assert est._n_passes >= est.n_iter_[0]
    # Mixing within chunks is not mixing within random global blocks, but both
    # estimate the same Eq. (1): the fits are close, not equal.
    default = MixupLogisticRegression(random_state=3, tol=1e-10, **params)
    default.fit(X, y, sample_weight=sw)
    assert np.abs(default.coef_ - est.coef_).max() < 0.2 * np.abs(est.coef_).max()


def test_one_chunk_all_pairs_is_the_exact_in_memory_fit():
    X, y = _data(n=300)
    est = MixupLogisticRegression(n_partners="all", tol=1e-10)
    est.fit(da.from_array(X, chunks=(300, 5)), y)  # numpy y is aligned
    ref = MixupLogisticRegression(n_partners="all", tol=1e-10).fit(X, y)
    _assert_same_fit(est, ref, atol=1e-8)


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("terms", ["R1+R2", "R2"])
def test_penalty_dask_fit_equals_in_memory_fit(K, terms):
    X, y = _data(K=K)
    sw = np.random.RandomState(2).uniform(0.2, 2.0, size=y.size)
    Xd = da.from_array(X, chunks=(200, -1))
    est = MixupRegularizedLogisticRegression(terms=terms, tol=1e-10)
    est.fit(Xd, da.from_array(y, chunks=200), sample_weight=da.from_array(sw, 200))
    ref = MixupRegularizedLogisticRegression(terms=terms, tol=1e-10)
    ref.fit(X, y, sample_weight=sw)
    _assert_same_fit(est, ref, atol=1e-7)
    for key in ("R1", "R2"):
        assert est.penalty_terms_[key] == pytest.approx(ref.penalty_terms_[key])


@pytest.mark.parametrize(
    "est",
    [
        MixupLogisticRegression(n_partners=4, random_state=0, tol=1e-9),
        MixupRegularizedLogisticRegression(class_weight={0: 2.0, 1: 1.0, 2: 0.5}),
    ],
    ids=["mixup", "penalty"],
)
def test_chunks_with_one_class_or_very_few_rows(est):
    # Sorted labels: most chunks hold one class; chunks of 1, 2 and 0 rows.
    X, y = _data(n=400)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    chunks = (1, 2, 0, 130, 3, 130, 134)
    Xd, yd = da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks=chunks)
    est.fit(Xd, yd)
    if isinstance(est, MixupLogisticRegression):
        ref = _in_memory_twin(est, chunks).fit(X, y)
        _assert_same_fit(est, ref, atol=1e-7)
    else:
        ref = est.__class__(**est.get_params()).fit(X, y)
        _assert_same_fit(est, ref, atol=1e-6)
    assert est.score(X, y) > 0.6


def test_float32_and_dask_dataframe_with_feature_names():
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = _data(n=600, K=2)
    frame = pd.DataFrame(X.astype(np.float32), columns=[f"f{i}" for i in range(5)])
    ddf = dd.from_pandas(frame, npartitions=3)
    ys = dd.from_pandas(pd.Series(np.where(y == 1, "yes", "no")), npartitions=3)
    est = MixupLogisticRegression(random_state=0).fit(ddf, ys)
    assert est.coef_.dtype == np.float32
    np.testing.assert_array_equal(est.feature_names_in_, frame.columns)
    assert list(est.classes_) == ["no", "yes"]
    labels = np.where(y == 1, "yes", "no")
    ref = MixupLogisticRegression(random_state=0).fit(frame, labels)
    assert np.abs(est.coef_ - ref.coef_).max() < 0.1 * np.abs(ref.coef_).max()
    assert abs(est.score(frame, labels) - ref.score(frame, labels)) < 0.02


def test_mixed_frame_preprocessed_then_fitted_on_dask():
    # The shared mixed table (NaN, nullable Float64/Int64/boolean with pd.NA,
    # categorical, strings, a string target) through a fitted ColumnTransformer
    # per partition (its text column left out: TF-IDF has no pandas output), then
    # one Dask fit. The nullable boolean is given as float (1.0/0.0/NaN): with
    # pandas output, scikit-learn's SimpleImputer cannot mask pd.NA in a boolean
    # column ("boolean value of NA is ambiguous"), not a limit of the Dask fit.
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")

    frame, y = mixed_table(n=300)
    frame = frame.drop(columns="review")
    frame["verified"] = frame["verified"].astype("Float64").astype(float)
    pre = mixed_table_preprocessor(sparse_output=False, text=False)
    pre.set_output(transform="pandas")
    pre.fit(frame)
    meta = pre.transform(frame.head(2)).iloc[:0]
    # Dask would turn the string columns into pyarrow strings, whose missing values
    # the fitted imputer cannot mask: keep the partitions' dtypes as pandas has them.
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_pandas(frame, npartitions=3)
    ddf = ddf.map_partitions(pre.transform, meta=meta).persist()  # transformed once, not at every pass of the solver
    yd = dd.from_pandas(pd.Series(y), npartitions=3)
    Xt = pre.transform(frame)
    for est in (
        MixupLogisticRegression(random_state=0),
        MixupRegularizedLogisticRegression(),
    ):
        est.fit(ddf, yd)
        ref = clone(est).fit(Xt, y)
        assert list(est.classes_) == sorted(set(y))
        assert est.score(Xt, y) > ref.score(Xt, y) - 0.05
        assert list(est.feature_names_in_) == list(pre.get_feature_names_out())


def test_bad_dask_input_raises_clear_errors():
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = _data(n=100)
    Xd = da.from_array(X, chunks=(50, -1))
    with pytest.raises(ValueError, match="one entry per row"):
        MixupLogisticRegression().fit(Xd, y[:-1])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        MixupLogisticRegression().fit(da.from_array(bad, chunks=(50, -1)), y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        MixupLogisticRegression().fit(Xd, np.zeros(100))
    with pytest.raises(ValueError, match="Negative"):
        MixupLogisticRegression().fit(Xd, y, sample_weight=-np.ones(100))
    frame = dd.from_pandas(pd.DataFrame({"a": X[:, 0], "b": ["u"] * 100}), 2)
    with pytest.raises(TypeError, match=r"\['b'\] are not numeric"):
        MixupLogisticRegression().fit(frame, y)


def test_dask_is_not_imported_by_in_memory_fits():
    code = (
        "import sys, numpy as np\n"
        "from skmixup.linear_model import MixupLogisticRegression as M\n"
        "M().fit(np.random.randn(30, 2), np.arange(30) % 2)\n"
        "assert not any(m.split('.')[0] == 'dask' for m in sys.modules), 'dask'\n"
        "assert 'skmixup.linear_model._dask' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_warm_start_on_dask_starts_from_the_previous_solution():
    X, y = _data(n=400)
    Xd, yd = da.from_array(X, chunks=(100, -1)), da.from_array(y, chunks=100)
    est = MixupLogisticRegression(n_partners=5, random_state=0, tol=1e-6)
    est.fit(Xd, yd)
    cold = est._n_passes
    est.set_params(warm_start=True).fit(Xd, yd)
    assert est._n_passes < cold / 2


def test_each_evaluation_reads_each_chunk_once(monkeypatch):
    from skmixup.linear_model import _dask

    calls = []
    evaluate = _dask._mixup_chunk_value_gradient

    def counted(x, *args, **kwargs):
        calls.append(x.shape[0])
        return evaluate(x, *args, **kwargs)

    monkeypatch.setattr(_dask, "_mixup_chunk_value_gradient", counted)
    X, y = _data(n=500)
    chunks = (200, 200, 100)
    est = MixupLogisticRegression(n_partners=5, random_state=0)
    est.fit(da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks=chunks))
    assert est._n_passes >= est.n_iter_[0] >= 1
    assert sorted(calls) == sorted(list(chunks) * est._n_passes)


def test_float32_dask_fit_is_the_in_memory_float32_fit_with_same_blocks():
    X, y = _data(n=600, K=3)
    X = X.astype(np.float32)
    chunks = (300, 300)
    est = MixupLogisticRegression(n_partners=6, random_state=0, tol=1e-5)
    est.fit(da.from_array(X, chunks=(chunks, -1)), da.from_array(y, chunks=chunks))
    twin = _in_memory_twin(est, chunks).fit(X, y)
    assert est.coef_.dtype == twin.coef_.dtype == np.float32
    _assert_same_fit(est, twin, atol=1e-4)
