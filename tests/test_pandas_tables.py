"""Everyday pandas tables in the attacks, robust scores and theory tools.

Nullable Float64/Int64/boolean columns with pd.NA, text and category columns,
columns in another order than at fit, X outside the clip box, NaN reaching a model,
delegating wrappers (FrozenEstimator, CalibratedClassifierCV over it, searches),
the errors of bad input, and the theory tools on pipelines of DataFrames.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, StandardScaler

from conftest import mixed_table_preprocessor
from skmixup.linear_model import MixupLogisticRegression
from skmixup.metrics import (
    fgsm,
    gradient_methods,
    input_gradient,
    pgd,
    robust_accuracy_score,
)
from skmixup.metrics._attacks import exact_attack
from skmixup.theory import approximate_mixup_loss, mixup_loss, mixup_radius

pd = pytest.importorskip("pandas")

ATTACKS = {
    "fgsm": lambda m, X, y, **kw: fgsm(m, X, y, eps=0.3, **kw),
    "pgd": lambda m, X, y, **kw: pgd(m, X, y, eps=0.3, n_iter=3, random_state=0, **kw),
    "exact": lambda m, X, y, **kw: exact_attack(m, X, y, eps=0.3, **kw),
}


@pytest.fixture(scope="module")
def table(mixed_table_data):
    return mixed_table_data


@pytest.fixture(scope="module")
def model(table):
    X, y = table
    pre = mixed_table_preprocessor()
    return make_pipeline(pre, MixupLogisticRegression()).fit(X, y)


# --------------------------------------------------------------------------------------
# Nullable dtypes, text columns: the mixed table end to end
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_mixed_table_attacks_keep_dtypes(table, model, attack):
    X, y = table
    X_adv = ATTACKS[attack](model, X, y)
    assert list(X_adv.columns) == list(X.columns)
    assert_array_equal(X_adv.index, X.index)
    # Nullable floats stay nullable floats; pd.NA stays pd.NA.
    assert X_adv.dtypes["rating"] == X.dtypes["rating"]
    assert_array_equal(X_adv["rating"].isna(), X["rating"].isna())
    # A nullable integer whose attacked values are not integers: nullable Float64.
    assert str(X_adv.dtypes["visits"]) in ("Int64", "Float64")
    assert_array_equal(X_adv["visits"].isna(), X["visits"].isna())
    assert X_adv.dtypes["score"] == np.float32
    for column in ["city", "kind", "flag", "verified", "review"]:
        assert X_adv.dtypes[column] == X.dtypes[column]
        pd.testing.assert_series_equal(X_adv[column], X[column])
    moved = (X_adv[["age", "income", "rating"]] != X[["age", "income", "rating"]]).any()
    assert moved.all()
    assert model.score(X_adv, y) <= model.score(X, y)


def test_mixed_table_robust_score_and_gradient(table, model):
    X, y = table
    grad = input_gradient(model, X, y)
    assert grad.shape == X.shape and np.all(np.isfinite(grad))
    # Non-numeric columns and missing entries get 0.
    names = list(X.columns)
    for column in ["city", "kind", "flag", "verified", "review"]:
        assert not grad[:, names.index(column)].any()
    assert not grad[X["rating"].isna().to_numpy(), names.index("rating")].any()
    assert grad[:, names.index("rating")].any()
    clean = model.score(X, y)
    robust = robust_accuracy_score(model, X, y, eps=0.3)
    assert 0.0 <= robust < clean
    methods = gradient_methods(model, X, y)
    assert "text: immutable" in methods[0] and "bool: immutable" in methods[0]


def test_nullable_float64_without_missing_values():
    # The case 1: Float64 with no NA behind a SimpleImputer.
    rng = np.random.RandomState(0)
    x0, x1 = rng.randn(120), rng.randn(120)
    y = (x0 + x1 > 0).astype(int)
    X = pd.DataFrame({"a": pd.array(x0, dtype="Float64"), "b": x1})
    pipe = make_pipeline(SimpleImputer(), MixupLogisticRegression()).fit(X, y)
    X_adv = fgsm(pipe, X, y, eps=0.1)
    assert X_adv.dtypes["a"] == "Float64"
    robust = robust_accuracy_score(pipe, X, y, eps=0.1)
    assert 0 <= robust < pipe.score(X, y)
    # Same values as the float64 frame.
    X64 = X.astype({"a": np.float64})
    assert_allclose(X_adv["a"].to_numpy(float), fgsm(pipe, X64, y, eps=0.1)["a"])


def test_nullable_boolean_with_na_in_imputer_and_encoder():
    rng = np.random.RandomState(0)
    n = 120
    flag = pd.array(rng.rand(n) > 0.5, dtype="boolean")
    flag[:10] = pd.NA
    X = pd.DataFrame({"x": rng.randn(n), "f": flag})
    y = (X.x > 0).astype(int)
    pre = ColumnTransformer(
        [
            ("n", StandardScaler(), ["x"]),
            (
                "c",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()),
                ["f"],
            ),
        ]
    )
    pipe = make_pipeline(pre, LogisticRegression()).fit(X, y)
    grad = input_gradient(pipe, X, y)
    assert np.all(grad[:, 1] == 0) and np.all(grad[:, 0] != 0)
    X_adv = fgsm(pipe, X, y, eps=0.2)
    pd.testing.assert_series_equal(X_adv["f"], X["f"])


def _text_model(step=None):
    rng = np.random.RandomState(0)
    n = 120
    X = pd.DataFrame(
        {"text": rng.choice(["good item", "bad thing", "ok"], n), "x": rng.randn(n)}
    )
    y = np.where(X.x + (X.text == "good item") > 0.3, "a", "b")
    second = ("n", StandardScaler() if step is None else step, ["x"])
    pre = ColumnTransformer([("t", TfidfVectorizer(), "text"), second])
    return make_pipeline(pre, LogisticRegression()).fit(X, y), X, y


@pytest.mark.parametrize("mutable", [None, ["x"]])
def test_text_column_is_a_constant_of_the_attack(mutable):
    pipe, X, y = _text_model()
    X_adv = fgsm(pipe, X, y, eps=0.2, mutable=mutable)
    assert_array_equal(X_adv["text"], X["text"])
    numerical = fgsm(pipe, X, y, eps=0.2, mutable=mutable, gradient="numerical")
    assert_allclose(X_adv["x"], numerical["x"])
    assert "t: immutable" in gradient_methods(pipe, X, y)[0]


def test_transformer_fed_only_immutable_columns_needs_no_jacobian():
    # A piecewise-constant step on a column the attack may not move is a constant.
    rng = np.random.RandomState(0)
    n = 120
    X = pd.DataFrame({"x": rng.randn(n), "z": rng.randn(n)})
    y = (X.x + X.z > 0).astype(int)
    pre = ColumnTransformer(
        [
            ("n", StandardScaler(), ["x"]),
            (
                "b",
                KBinsDiscretizer(n_bins=3, quantile_method="averaged_inverted_cdf"),
                ["z"],
            ),
        ]
    )
    pipe = make_pipeline(pre, LogisticRegression()).fit(X, y)
    with pytest.raises(TypeError, match="piecewise constant"):
        fgsm(pipe, X, y, eps=0.2)
    X_adv = fgsm(pipe, X, y, eps=0.2, mutable=["x"])
    assert_array_equal(X_adv["z"], X["z"])
    assert np.all(X_adv["x"] != X["x"])


# --------------------------------------------------------------------------------------
# Columns by name
# --------------------------------------------------------------------------------------


def _two_columns():
    rng = np.random.RandomState(0)
    X = pd.DataFrame({"a": rng.randn(80), "b": 10 * rng.randn(80)})
    y = (X.a + X.b / 10 > 0).astype(int)
    return X, y


@pytest.mark.parametrize("kind", ["bare", "column_transformer"])
def test_reordered_columns_are_matched_by_name(kind):
    X, y = _two_columns()
    if kind == "bare":
        model = LogisticRegression().fit(X, y)
    else:
        pre = ColumnTransformer([("n", StandardScaler(), ["a", "b"])])
        model = make_pipeline(pre, LogisticRegression()).fit(X, y)
    swapped = X[["b", "a"]]
    assert_allclose(
        input_gradient(model, swapped, y), input_gradient(model, X, y)[:, ::-1]
    )
    for attack in ATTACKS.values():
        adv, adv_swapped = attack(model, X, y), attack(model, swapped, y)
        assert list(adv_swapped.columns) == ["b", "a"]
        pd.testing.assert_frame_equal(adv_swapped[["a", "b"]], adv)
    # mutable, feature_scale and clip given by position refer to X's own order.
    adv = fgsm(model, swapped, y, eps=0.3, mutable=[0], feature_scale=[2.0, 1.0])
    assert_array_equal(adv["a"], swapped["a"])
    assert_allclose(np.abs(adv["b"] - swapped["b"]), 0.6)


def test_renamed_columns_get_predicts_error():
    X, y = _two_columns()
    model = LogisticRegression().fit(X, y)
    renamed = X.rename(columns={"a": "c"})
    with pytest.raises(ValueError, match="should match those that were passed") as err:
        model.predict(renamed)
    for func in [input_gradient, *ATTACKS.values()]:
        with pytest.raises(ValueError, match="unseen at fit time:\n- c"):
            func(model, renamed, y)
    assert "seen at fit time, yet now missing" in str(err.value)


# --------------------------------------------------------------------------------------
# Clip box, NaN reaching the model
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_x_outside_the_clip_box_is_an_error(attack):
    X, y = _two_columns()
    model = LogisticRegression().fit(X, y)
    low, high = X.min(), X.max()
    ATTACKS[attack](model, X, y, clip=(low.to_dict(), high.to_dict()))
    row = int(np.argmax(X["b"].to_numpy() > 5))
    with pytest.raises(ValueError, match=rf"row {row} \(index {row}\), column 'b'"):
        ATTACKS[attack](model, X, y, clip=({"a": -10, "b": -1e9}, {"b": 5}))
    with pytest.raises(ValueError, match="outside the clip box: row 0, column 0"):
        ATTACKS[attack](model, X.to_numpy(), y, clip=(-0.1, 0.1))
    # Immutable columns and missing entries are not checked.
    ATTACKS[attack](model, X, y, clip=({"a": -10}, {"a": 10, "b": 1}), mutable=["a"])


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize(
    "func",
    [input_gradient, fgsm, pgd],
    ids=["input_gradient", "fgsm", "pgd"],
)
def test_nan_reaching_a_linear_model_is_one_clear_error(func, n_classes):
    rng = np.random.RandomState(0)
    X = rng.randn(60, 2)
    y = np.arange(60) % n_classes
    model = LogisticRegression().fit(X, y)
    X[0, 0] = np.nan
    kwargs = {} if func is input_gradient else {"eps": 0.1}
    with pytest.raises(ValueError, match="Put a SimpleImputer in front"):
        func(model, X, y, **kwargs)


# --------------------------------------------------------------------------------------
# Wrappers that only delegate
# --------------------------------------------------------------------------------------


def _categorical_model():
    rng = np.random.RandomState(0)
    n = 120
    X = pd.DataFrame({"x": rng.randn(n), "c": rng.choice(["u", "v"], n)})
    y = np.where(X.x + (X.c == "u") > 0.5, "p", "q")
    pre = ColumnTransformer(
        [("n", StandardScaler(), ["x"]), ("c", OneHotEncoder(), ["c"])]
    )
    return make_pipeline(pre, LogisticRegression()).fit(X, y), X, y


@pytest.mark.parametrize(
    "wrap",
    [
        lambda m, X, y: FrozenEstimator(m),
        lambda m, X, y: CalibratedClassifierCV(FrozenEstimator(m)).fit(X, y),
        lambda m, X, y: GridSearchCV(m, {"logisticregression__C": [1.0]}, cv=2).fit(
            X, y
        ),
    ],
    ids=["frozen", "calibrated_frozen", "search"],
)
def test_delegating_wrappers_are_seen_through(wrap):
    pipe, X, y = _categorical_model()
    model = wrap(pipe, X, y)
    methods = gradient_methods(model, X, y)
    assert not any("numerical" in m for m in methods), methods
    X_adv = fgsm(model, X, y, eps=0.3)
    assert_array_equal(X_adv["c"], X["c"])
    if not isinstance(model, CalibratedClassifierCV):
        assert_allclose(input_gradient(model, X, y), input_gradient(pipe, X, y))
        pd.testing.assert_frame_equal(X_adv, fgsm(pipe, X, y, eps=0.3))
        pd.testing.assert_frame_equal(
            exact_attack(model, X, y, eps=0.3), exact_attack(pipe, X, y, eps=0.3)
        )
    assert robust_accuracy_score(model, X, y, eps=0.3) < model.score(X, y)


# --------------------------------------------------------------------------------------
# Errors that name the real cause
# --------------------------------------------------------------------------------------


def test_bare_estimator_given_strings_is_not_called_a_pipeline_step():
    X, y = _two_columns()
    model = LogisticRegression().fit(X.to_numpy(), y)
    strings = np.array([["a", "b"]] * len(y), dtype=object)
    with pytest.raises(TypeError, match="X holds non-numeric values") as err:
        input_gradient(model, strings, y)
    assert "Pipeline step" not in str(err.value)


@pytest.mark.parametrize("func", [input_gradient, *ATTACKS.values()])
def test_empty_x_is_named(func):
    X, y = _two_columns()
    model = LogisticRegression().fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match=r"0 sample\(s\) \(shape=\(0, 2\)\)"):
        func(model, np.zeros((0, 2)), y[:0])


@pytest.mark.parametrize("func", [input_gradient, *ATTACKS.values()])
def test_duplicate_column_names_are_rejected(func):
    X, y = _two_columns()
    model = LogisticRegression().fit(X.to_numpy(), y)
    duplicated = pd.DataFrame(X.to_numpy(), columns=["a", "a"])
    with pytest.raises(ValueError, match="duplicate column names: 'a' \\(2 times\\)"):
        func(model, duplicated, y)


# --------------------------------------------------------------------------------------
# Theory tools on pipelines
# --------------------------------------------------------------------------------------


def test_mixup_loss_gives_the_pipeline_dataframes():
    X, y = _two_columns()
    pre = ColumnTransformer([("n", StandardScaler(), ["a", "b"])])
    by_name = make_pipeline(pre, LogisticRegression()).fit(X, y)
    plain = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        a = mixup_loss(by_name, X, y, mixup_alpha=1.0)
        b = mixup_loss(plain, X, y, mixup_alpha=1.0)
    # The same model: the pipeline's loss is the final step's on scaled mixed rows,
    # since scaling is affine (mixing commutes with it).
    Z = plain[:-1].transform(X)
    assert_allclose(a, b)
    assert_allclose(a, mixup_loss(plain[-1], Z, y, mixup_alpha=1.0))
    # Nullable Float64 (pd.NA as NaN, imputed by the pipeline).
    Xn = X.astype({"a": "Float64"})
    Xn.loc[0, "a"] = pd.NA
    imputed = make_pipeline(SimpleImputer(), LogisticRegression()).fit(Xn, y)
    assert np.isfinite(mixup_loss(imputed, Xn, y, mixup_alpha=1.0))


def test_mixup_loss_on_a_text_column_names_it():
    pipe, X, y = _text_model()
    with pytest.raises(TypeError, match=r"columns \['text'\] are not numeric"):
        mixup_loss(pipe, X, y, mixup_alpha=1.0)


@pytest.mark.parametrize(
    "func",
    [
        lambda m, X, y: mixup_loss(m, X, y, mixup_alpha=1.0),
        lambda m, X, y: approximate_mixup_loss(m, X, y, mixup_alpha=1.0),
        lambda m, X, y: mixup_radius(m, X, mixup_alpha=1.0),
    ],
    ids=["mixup_loss", "approximate", "radius"],
)
@pytest.mark.parametrize("pipeline", [False, True])
def test_theory_on_unfitted_estimators_is_not_fitted_error(func, pipeline):
    X, y = _two_columns()
    model = LogisticRegression()
    if pipeline:
        model = Pipeline([("s", StandardScaler()), ("clf", model)])
    with pytest.raises(NotFittedError):
        func(model, X.to_numpy(), y)
