"""Robust scoring on mixed-type DataFrames in ColumnTransformer pipelines.

Numeric columns with missing values, categorical columns (string, category, bool)
and a string target, in the canonical preprocessing pipeline, for every estimator
family; the tabular threat model (immutable categories, NaN stays NaN, eps in
standard deviations), gradients through every step, meta-estimators, the exact
multiclass linear attack and gradient underflow.
"""

import itertools
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    QuantileTransformer,
    SplineTransformer,
    StandardScaler,
)

from conftest import (
    MIXED_BOOLEAN,
    MIXED_CATEGORICAL,
    MIXED_NUMERIC,
    MIXED_TEXT,
    mixed_table,
    mixed_table_preprocessor,
)
from skmixup.linear_model import (
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
)
from skmixup.metrics import (
    RobustnessCurveDisplay,
    fgsm,
    gradient_methods,
    input_gradient,
    make_adversarial_scorer,
    pgd,
    robust_accuracy_score,
)
from skmixup.metrics._attacks import exact_attack

pd = pytest.importorskip("pandas")

# The suite's mixed table (tests/conftest.py): numeric columns (int64, float64 with
# NaN, float32, nullable Float64/Int64 with pd.NA), categorical ones (strings with
# NaN, category, bool, nullable boolean with pd.NA), a free-text review and a
# string target, with its standard preprocessing.
NUM = MIXED_NUMERIC
CAT = MIXED_CATEGORICAL + MIXED_BOOLEAN + [MIXED_TEXT]
_mixed = mixed_table
_pre = mixed_table_preprocessor


def _canonical(clf):
    return Pipeline([("pre", _pre()), ("clf", clf)])


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


@pytest.fixture(scope="module")
def mixed():
    return _mixed()


@pytest.fixture(scope="module")
def fitted(mixed):
    X, y = mixed
    return _fit(_canonical(LogisticRegression()), X, y)


# --------------------------------------------------------------------------------------
# Threat model: DataFrame out, categorical columns immutable, NaN stays NaN
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "exact"])
def test_dataframe_in_dataframe_out(mixed, fitted, attack):
    X, y = mixed
    func = {"fgsm": fgsm, "pgd": pgd, "exact": exact_attack}[attack]
    kw = {"random_state": 0} if attack == "pgd" else {}
    X_adv = func(fitted, X, y, eps=0.3, **kw)
    assert isinstance(X_adv, pd.DataFrame)
    assert X_adv.columns.equals(X.columns) and X_adv.index.equals(X.index)
    # Categorical columns are bit-identical, dtypes included.
    pd.testing.assert_frame_equal(X_adv[CAT], X[CAT])
    # Missing entries stay missing, observed ones stay observed.
    assert_array_equal(X_adv[NUM].isna().to_numpy(), X[NUM].isna().to_numpy())
    # Float columns keep their dtype; the integer column cannot hold the moves.
    assert X_adv["score"].dtype == np.float32
    assert X_adv["income"].dtype == np.float64
    assert X_adv["age"].dtype == np.float64
    # Every numeric column moves, by at most eps standard deviations.
    std = X[NUM].std(ddof=0).to_numpy()
    delta = (X_adv[NUM].to_numpy(float) - X[NUM].to_numpy(float)) / std
    delta = np.nan_to_num(delta)
    assert np.all(np.abs(delta) <= 0.3 + 1e-6)
    if attack == "fgsm":
        observed = ~X[NUM].isna().to_numpy()
        assert_allclose(np.abs(delta)[observed], 0.3, rtol=1e-6)


def test_integer_columns_keep_their_dtype_when_values_fit(mixed, fitted):
    X, y = mixed
    X_adv = fgsm(fitted, X, y, eps=0.0)
    pd.testing.assert_frame_equal(X_adv, X)


def test_mutable_columns_and_errors(mixed, fitted):
    X, y = mixed
    X_adv = fgsm(fitted, X, y, eps=0.5, mutable=["income"])
    others = X.columns.drop("income")
    pd.testing.assert_frame_equal(X_adv[others], X[others])
    assert not X_adv["income"].equals(X["income"])
    mask = np.asarray(X.columns == "income")
    pd.testing.assert_frame_equal(fgsm(fitted, X, y, eps=0.5, mutable=mask), X_adv)
    with pytest.raises(ValueError, match="non-numeric columns \\['city'\\]"):
        fgsm(fitted, X, y, eps=0.5, mutable=["city", "age"])
    with pytest.raises(ValueError, match="unknown column 'height'"):
        fgsm(fitted, X, y, eps=0.5, mutable=["height"])


def _income_and_ordinal_age():
    """Income scaled, the integer column age ordinal-encoded (categorical)."""
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["income"]),
            (
                "ord",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                ["age"],
            ),
        ]
    )


def test_numeric_column_routed_to_an_encoder_is_immutable(mixed):
    X, y = mixed
    pipe = _fit(make_pipeline(_income_and_ordinal_age(), LogisticRegression()), X, y)
    X_adv = fgsm(pipe, X, y, eps=0.5)
    assert_array_equal(X_adv["age"], X["age"])
    assert X_adv["age"].dtype == X["age"].dtype
    with pytest.raises(ValueError, match="routes to an encoder"):
        fgsm(pipe, X, y, eps=0.5, mutable=["age"])


def test_encoded_columns_stay_immutable_inside_meta_estimators(mixed):
    X, y = mixed
    pre = _income_and_ordinal_age()
    X = X[["income", "age"]]
    model = _fit(
        CalibratedClassifierCV(make_pipeline(pre, LogisticRegression()), cv=2), X, y
    )
    X_adv = pgd(model, X, y, eps=0.5, random_state=0)
    assert_array_equal(X_adv["age"], X["age"])
    assert not X_adv["income"].equals(X["income"])


def test_clip_by_column_name(mixed, fitted):
    X, y = mixed
    X_adv = fgsm(fitted, X, y, eps=3.0, clip=({"income": 0.0, "age": 18}, {"age": 90}))
    assert X_adv["income"].min() >= 0.0
    assert X_adv["age"].min() >= 18 and X_adv["age"].max() <= 90


# --------------------------------------------------------------------------------------
# Gradients through ColumnTransformer, SimpleImputer and the numerical fallback
# --------------------------------------------------------------------------------------


def _check_gradient(pipe, X, y, rtol=1e-4):
    analytic = input_gradient(pipe, X, y)
    numerical = input_gradient(pipe, X, y, gradient="numerical")
    categorical = [X.columns.get_loc(c) for c in CAT if c in X and X[c].dtype != float]
    assert np.all(analytic[:, categorical] == 0.0)
    income_missing = X["income"].isna().to_numpy()
    assert np.all(analytic[income_missing, X.columns.get_loc("income")] == 0.0)
    assert_allclose(analytic, numerical, rtol=rtol, atol=1e-7)


@pytest.mark.parametrize(
    "pre",
    [
        _pre(),
        _pre(remainder="drop"),
        ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "kind"])],
            remainder=make_pipeline(SimpleImputer(), StandardScaler()),
        ).set_output(transform="default"),
        _pre(sparse_output=False, text=False).set_output(transform="pandas"),
    ],
    ids=["canonical", "drop", "remainder_pipeline", "pandas_output"],
)
def test_gradient_through_column_transformer(mixed, pre):
    X, y = mixed
    X = X.assign(city=X["city"].fillna("north"))
    if not isinstance(pre.remainder, str):  # numbers only in the remainder
        X = X.drop(columns=["review", "verified"]).assign(flag=X["flag"].astype(float))
    pipe = _fit(make_pipeline(pre, LogisticRegression()), X, y)
    _check_gradient(pipe, X, y)


def test_gradient_with_passthrough_remainder_and_nested_pipeline(mixed):
    X, y = mixed
    X = X[["age", "income", "score", "flag"]].assign(
        flag=lambda d: d.flag.astype(float)
    )
    X = X.assign(income=X["income"].fillna(20.0))
    pre = ColumnTransformer(
        [("scaled", make_pipeline(make_pipeline(StandardScaler())), ["age", "income"])],
        remainder="passthrough",
    )
    pipe = _fit(make_pipeline(pre, MLPClassifier((5,), random_state=0)), X, y)
    analytic = input_gradient(pipe, X, y)
    numerical = input_gradient(pipe, X, y, gradient="numerical")
    assert_allclose(analytic, numerical, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    "step",
    [
        FunctionTransformer(np.arcsinh),
        PolynomialFeatures(2),
        SplineTransformer(n_knots=4),
        QuantileTransformer(n_quantiles=20),
    ],
    ids=lambda s: type(s).__name__,
)
def test_numerical_jacobian_of_one_unknown_step(mixed, step):
    X, y = mixed
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler(), step), NUM),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["kind", "flag"]),
        ]
    )
    pipe = _fit(make_pipeline(pre, LogisticRegression(max_iter=1000)), X, y)
    analytic = input_gradient(pipe, X, y)
    numerical = input_gradient(pipe, X, y, gradient="numerical")
    # Off the kinks both are accurate; QuantileTransformer is piecewise linear,
    # with kinks at the tied values of the discrete rating (0.1 steps) and visits.
    close = np.isclose(analytic, numerical, rtol=1e-3, atol=1e-6)
    close = close[:, [X.columns.get_loc(c) for c in ("age", "income", "score")]]
    assert close.mean() > 0.97
    methods = gradient_methods(pipe, X, y)
    assert methods[0] == (
        "Pipeline/columntransformer: analytic, num: mixed, cat: immutable"
    )
    assert methods[-1] == "Pipeline/logisticregression: analytic"


def test_piecewise_constant_step_is_a_clear_error(mixed):
    X, y = mixed
    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(), KBinsDiscretizer(n_bins=3)),
                NUM,
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["kind"]),
        ]
    )
    pipe = _fit(make_pipeline(pre, LogisticRegression()), X, y)
    with pytest.raises(TypeError, match="columntransformer/num/kbinsdiscretizer"):
        fgsm(pipe, X, y, eps=0.1)


def test_nan_gradient_is_an_error_not_a_silent_score():
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: F401

    X, y = _mixed()
    X = X[NUM]
    pipe = _fit(make_pipeline(StandardScaler(), LogisticRegression()), X.fillna(0), y)
    with pytest.raises(ValueError, match="NaN"):
        robust_accuracy_score(pipe, X, y, eps=0.1)


def test_nan_input_to_a_multiclass_model_is_the_clear_error_not_a_warning():
    # filterwarnings=error: numpy's "invalid value" warning must not come first
    rng = np.random.RandomState(0)
    X = rng.randn(30, 3)
    y = np.arange(30) % 3
    clf = LogisticRegression().fit(X, y)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN on observed values of movable"):
        fgsm(clf, X, y, eps=0.1)


# --------------------------------------------------------------------------------------
# Units of eps
# --------------------------------------------------------------------------------------


def test_eps_is_in_standard_deviations_of_the_attacked_data():
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3) * np.array([0.01, 1.0, 100.0])
    y = (X @ np.array([100.0, 1.0, 0.01]) > 0).astype(int)
    clf = LogisticRegression().fit(X, y)
    delta = np.abs(fgsm(clf, X, y, eps=0.2) - X)
    assert_allclose(delta, np.broadcast_to(0.2 * X.std(axis=0), X.shape))
    raw = np.abs(fgsm(clf, X, y, eps=0.2, feature_scale=1) - X)
    assert_allclose(raw, 0.2)
    # Rescaling a feature rescales its perturbation: the same model on rescaled
    # data has the same robust accuracy (in raw units it would not).
    factor = np.array([1e3, 1.0, 1e-3])
    clf2 = LogisticRegression().fit(X * factor, y)
    clf2.coef_, clf2.intercept_ = clf.coef_ / factor, clf.intercept_
    assert robust_accuracy_score(clf2, X * factor, y, eps=0.2) == (
        robust_accuracy_score(clf, X, y, eps=0.2)
    )
    assert robust_accuracy_score(
        clf2, X * factor, y, eps=0.2, feature_scale=1
    ) != robust_accuracy_score(clf, X, y, eps=0.2, feature_scale=1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        fgsm(clf, X[:1], y[:1], eps=0.2)


def test_scorer_in_cross_validation_uses_the_scored_fold(mixed, fitted):
    X, y = mixed
    scorer = make_adversarial_scorer(eps=0.2)
    fold = X.iloc[:50]
    expected = robust_accuracy_score(
        fitted, fold, y[:50], eps=0.2, feature_scale=fold[NUM].std(ddof=0)
    )
    assert scorer(fitted, fold, y[:50]) == expected


def test_feature_scale_by_column_name(mixed, fitted):
    X, y = mixed
    std = X[NUM].std()  # a Series: one unit for every fold of a search
    X_adv = fgsm(fitted, X, y, eps=0.2, feature_scale=std)
    step = (X_adv[NUM] - X[NUM]).abs().max()
    assert_allclose(step.to_numpy(), 0.2 * std.to_numpy(), rtol=1e-6)
    partial = std.drop("score")
    with pytest.raises(ValueError, match=r"movable columns \[.score.\]"):
        fgsm(fitted, X, y, eps=0.2, feature_scale=partial)
    X_adv = fgsm(fitted, X, y, eps=0.2, feature_scale=partial, mutable=NUM[:2])
    assert_array_equal(X_adv["score"], X["score"])


def test_display_axis_names_the_unit(mixed, fitted):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = mixed
    display = RobustnessCurveDisplay.from_estimator(fitted, X, y, eps=[0, 0.2, 0.5])
    assert display.ax_.get_xlabel() == "eps (fgsm), in standard deviations"
    expected = [robust_accuracy_score(fitted, X, y, eps=e) for e in (0, 0.2, 0.5)]
    assert_allclose(display.accuracy, expected)
    raw = RobustnessCurveDisplay.from_estimator(
        fitted, X, y, eps=[0, 1.0], attack="pgd", attack_params={"feature_scale": 1}
    )
    assert raw.ax_.get_xlabel() == "eps (pgd), in raw units"
    plt.close("all")


# --------------------------------------------------------------------------------------
# No silent NaN in model selection
# --------------------------------------------------------------------------------------


def test_grid_search_refit_robust_equals_a_manual_loop(mixed):
    X, y = mixed
    grid = {"clf__C": [0.01, 0.3, 10.0]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scorer = make_adversarial_scorer(eps=0.3)
    search = GridSearchCV(
        _canonical(LogisticRegression()),
        grid,
        scoring={"clean": "accuracy", "robust": scorer},
        refit="robust",
        cv=cv,
        error_score="raise",
    ).fit(X, y)
    manual = []
    for C in grid["clf__C"]:
        scores = []
        for train, test in cv.split(X, y):
            model = _canonical(LogisticRegression(C=C)).fit(X.iloc[train], y[train])
            scores.append(robust_accuracy_score(model, X.iloc[test], y[test], eps=0.3))
        manual.append(np.mean(scores))
    assert_allclose(search.cv_results_["mean_test_robust"], manual)
    assert np.all(np.isfinite(manual))
    assert search.best_index_ == int(np.argmax(manual))
    assert search.best_score_ == pytest.approx(max(manual))


def test_grid_search_over_calibrated_mixup(mixed):
    # The case: no analytic gradient for the meta-estimator used to mean
    # [nan nan nan] and the first candidate; now it is attacked through members.
    X, y = mixed
    search = GridSearchCV(
        _canonical(
            CalibratedClassifierCV(MixupLogisticRegression(random_state=0), cv=2)
        ),
        {"clf__estimator__mixup_alpha": [0.2, 5.0]},
        scoring=make_adversarial_scorer(eps=0.3),
        cv=2,
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    assert search.best_index_ == int(np.argmax(scores))


# --------------------------------------------------------------------------------------
# Meta-estimators: analytic through members, numerical otherwise, and which
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_calibrated_classifier_gradient_through_members(method, n_classes):
    X, y = _mixed(n_classes=n_classes)
    X = X[NUM].fillna(20.0)
    model = CalibratedClassifierCV(
        make_pipeline(StandardScaler(), LogisticRegression()), cv=3, method=method
    )
    model = _fit(model, X, y)
    # Off the calibration points, where isotonic calibration has its kinks.
    X = X + np.random.RandomState(1).uniform(-0.05, 0.05, X.shape)
    assert gradient_methods(model, X, y) == [
        "CalibratedClassifierCV: analytic through members"
    ]
    analytic = input_gradient(model, X, y)
    numerical = input_gradient(model, X, y, gradient="numerical")
    close = np.isclose(analytic, numerical, rtol=1e-3, atol=1e-6)
    assert close.mean() > (0.999 if method == "sigmoid" else 0.95)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("kind", ["voting", "stacking", "stacking_passthrough"])
def test_voting_and_stacking_through_members(kind, n_classes):
    X, y = _mixed(n_classes=n_classes)
    members = [
        ("lr", LogisticRegression()),
        ("mlp", MLPClassifier((4,), max_iter=300, random_state=0)),
    ]
    if kind == "voting":
        meta = VotingClassifier(members, voting="soft", weights=[2.0, 1.0])
    else:
        meta = StackingClassifier(
            members, cv=3, passthrough=kind == "stacking_passthrough"
        )
    model = _fit(_canonical(meta), X, y)
    assert gradient_methods(model, X, y)[-1] == (
        "Pipeline/clf: analytic through members"
    )
    X_clean = X.fillna({"income": 20.0})
    assert_allclose(
        input_gradient(model, X_clean, y),
        input_gradient(model, X_clean, y, gradient="numerical"),
        rtol=1e-4,
        atol=1e-7,
    )
    robust = robust_accuracy_score(model, X, y, eps=0.3)
    assert 0.0 <= robust < model.score(X, y)


def test_meta_estimator_without_analytic_members_is_numerical(mixed):
    from sklearn.svm import SVC

    X, y = mixed
    members = [("lr", LogisticRegression()), ("svc", SVC(random_state=0))]
    stacking = _fit(
        _canonical(StackingClassifier(members, cv=3, stack_method="predict")), X, y
    )
    assert gradient_methods(stacking, X, y)[-1] == "Pipeline/clf: numerical"
    robust = robust_accuracy_score(stacking, X, y, eps=0.3)
    assert 0.0 <= robust <= stacking.score(X, y)


# --------------------------------------------------------------------------------------
# Exact robust accuracy of multiclass linear models
# --------------------------------------------------------------------------------------


def _brute_force_linear(W, b, X, y, eps, scale, low=None, high=None):
    """Robust iff no vertex of the l_inf box changes the prediction (linear scores)."""
    d = X.shape[1]
    robust = []
    for x, label in zip(X, y, strict=True):
        ok = True
        for signs in itertools.product([-1.0, 1.0], repeat=d):
            point = x + eps * scale * np.array(signs)
            if low is not None:
                point = np.clip(point, low, high)
            if np.argmax(W @ point + b) != label:
                ok = False
                break
        robust.append(ok)
    return np.mean(robust)


@pytest.mark.parametrize("box", [False, True])
def test_exact_multiclass_matches_brute_force_and_bounds_pgd(box):
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3) * np.array([1.0, 2.0, 0.5])
    y = np.argmax(X @ rng.randn(3, 4) + rng.randn(60, 4), axis=1)
    clf = LogisticRegression().fit(X, y)
    scale = X.std(axis=0)
    low, high = (X.min(axis=0), X.max(axis=0)) if box else (None, None)
    clip = (low, high) if box else None
    for eps in (0.1, 0.3, 0.8):
        exact = robust_accuracy_score(clf, X, y, attack="exact", eps=eps, clip=clip)
        # On a linear model the vertices of the box are the only candidates.
        expected = _brute_force_linear(
            clf.coef_, clf.intercept_, X, y, eps, scale, low, high
        )
        assert exact == pytest.approx(expected)
        pgd_acc = robust_accuracy_score(
            clf, X, y, attack="pgd", eps=eps, clip=clip, n_iter=20, random_state=0
        )
        assert pgd_acc >= exact


def test_exact_multiclass_l2_bounds_pgd():
    rng = np.random.RandomState(1)
    X = rng.randn(80, 4)
    y = np.argmax(X @ rng.randn(4, 3), axis=1)
    clf = LogisticRegression().fit(X, y)
    for eps in (0.2, 0.6):
        exact = robust_accuracy_score(clf, X, y, attack="exact", eps=eps, norm=2)
        pgd_acc = robust_accuracy_score(
            clf, X, y, attack="pgd", eps=eps, norm=2, n_iter=30, random_state=0
        )
        assert exact <= pgd_acc <= clf.score(X, y)
        # The margin criterion: correct iff every margin beats eps * ||w_k - w_y||.
        Z = clf.decision_function(X)
        scale = X.std(axis=0)
        ok = []
        for i, label in enumerate(y):
            gaps = [
                Z[i, label]
                - Z[i, k]
                - eps * np.linalg.norm((clf.coef_[k] - clf.coef_[label]) * scale)
                for k in range(3)
                if k != label
            ]
            ok.append(min(gaps) > 0)
        assert exact == pytest.approx(np.mean(ok))


def test_exact_on_the_mixed_pipeline_bounds_pgd_and_fgsm():
    X, y = _mixed(n_classes=3)
    pipe = _fit(_canonical(LogisticRegression()), X, y)
    for eps in (0.1, 0.3):
        exact = robust_accuracy_score(pipe, X, y, attack="exact", eps=eps)
        for attack in ("fgsm", "pgd"):
            kw = {"random_state": 0, "n_iter": 20} if attack == "pgd" else {}
            assert robust_accuracy_score(pipe, X, y, attack=attack, eps=eps, **kw) >= (
                exact
            )
        assert exact < pipe.score(X, y)


# --------------------------------------------------------------------------------------
# Gradient underflow at huge logit gaps
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fgsm_moves_confident_samples(n_classes):
    rng = np.random.RandomState(0)
    X = rng.randn(100, 3)
    y = (
        np.argmax(X @ rng.randn(3, n_classes), axis=1)
        if n_classes > 2
        else ((X[:, 0] > 0).astype(int))
    )
    clf = LogisticRegression().fit(X, y)
    clf.coef_ = clf.coef_ * 1e4  # logit gaps far beyond 745
    clf.intercept_ = clf.intercept_ * 1e4
    X_adv = fgsm(clf, X, y, eps=1.0)
    assert np.all(np.abs(X_adv - X) > 0)
    exact = robust_accuracy_score(clf, X, y, attack="exact", eps=1.0)
    fgsm_acc = robust_accuracy_score(clf, X, y, eps=1.0)
    if n_classes == 2:
        assert fgsm_acc == exact
    else:
        assert exact <= fgsm_acc < clf.score(X, y)


def test_mlp_fgsm_moves_confident_samples():
    X, y = _mixed()
    X = X[NUM].fillna(20.0).to_numpy()
    mlp = make_pipeline(StandardScaler(), MLPClassifier((8,), random_state=0))
    mlp = _fit(mlp, X, y)
    final = mlp[-1]
    final.coefs_ = [W * 30 for W in final.coefs_]
    assert np.any(np.ptp(mlp.predict_proba(X), axis=1) == 1.0)
    X_adv = fgsm(mlp, X, y, eps=0.5)
    assert np.all(np.abs(X_adv - X).max(axis=1) > 0)


# --------------------------------------------------------------------------------------
# Every estimator family on the mixed DataFrame
# --------------------------------------------------------------------------------------


def _families():
    families = {
        "LogisticRegression": lambda: LogisticRegression(),
        "MLPClassifier": lambda: MLPClassifier((8,), max_iter=200, random_state=0),
        "MixupLogisticRegression": lambda: MixupLogisticRegression(random_state=0),
        "MixupRegularizedLogisticRegression": MixupRegularizedLogisticRegression,
    }
    try:
        import torch  # noqa: F401

        from skmixup.neural_network import MixupMLPClassifier, MixupNeuralNetClassifier
    except ImportError:
        return families

    families["MixupMLPClassifier"] = lambda: MixupMLPClassifier(
        hidden_layer_sizes=(8,), max_iter=5, random_state=0
    )

    def net():
        import torch

        torch.manual_seed(0)  # the module's initial weights
        width = _pre().fit_transform(_mixed(n=120)[0]).shape[1]
        module = torch.nn.Sequential(
            torch.nn.Linear(width, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
        )
        return make_pipeline(
            FunctionTransformer(lambda A: np.asarray(A, dtype=np.float32)),
            MixupNeuralNetClassifier(
                module,
                max_epochs=10,
                lr=0.1,
                train_split=None,
                verbose=0,
                random_state=0,
            ),
        )

    families["MixupNeuralNetClassifier"] = net
    return families


@pytest.mark.parametrize("family", sorted(_families()))
def test_every_family_on_the_mixed_dataframe(family):
    X, y = _mixed(n=120)
    clf = _families()[family]()
    if family == "MixupNeuralNetClassifier":
        y = (y == "yes").astype(np.int64)
    pipe = _fit(_canonical(clf), X, y)
    clean = pipe.score(X, y)
    for attack in ("fgsm", "pgd"):
        kw = {"random_state": 0, "n_iter": 3} if attack == "pgd" else {}
        X_adv = (fgsm if attack == "fgsm" else pgd)(pipe, X, y, eps=0.5, **kw)
        pd.testing.assert_frame_equal(X_adv[CAT], X[CAT])
        assert_array_equal(X_adv.isna().to_numpy(), X.isna().to_numpy())
        robust = robust_accuracy_score(pipe, X, y, attack=attack, eps=0.5, **kw)
        assert 0.0 <= robust <= clean
    assert robust_accuracy_score(pipe, X, y, eps=0.0) == clean
    assert robust_accuracy_score(pipe, X, y, eps=2.0) < clean


@pytest.mark.parametrize("criterion", ["CrossEntropyLoss", "BCEWithLogitsLoss"])
def test_torch_fgsm_moves_confident_samples(criterion):
    torch = pytest.importorskip("torch")
    skorch = pytest.importorskip("skorch")
    rng = np.random.RandomState(0)
    X = rng.randn(60, 3).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    torch.manual_seed(0)
    n_out = 1 if criterion == "BCEWithLogitsLoss" else 2
    cls = skorch.NeuralNetBinaryClassifier if n_out == 1 else skorch.NeuralNetClassifier
    net = cls(
        torch.nn.Linear,
        module__in_features=3,
        module__out_features=n_out,
        criterion=getattr(torch.nn, criterion),
        max_epochs=5,
        lr=0.5,
        train_split=None,
        verbose=0,
    )
    if n_out == 1:
        net.fit(X, y.astype(np.float32))
    else:
        net.fit(X, y)
    with torch.no_grad():
        net.module_.weight.mul_(1e5)  # logit gaps far beyond 745
        net.module_.bias.mul_(1e5)
    X_adv = fgsm(net, X, y, eps=0.5)
    assert np.all(np.abs(X_adv - X) > 0)
    assert robust_accuracy_score(net, X, y, eps=2.0) < net.score(X, y)
