"""Behaviour of skmixup.compose: MixupClassifier and MixupRegressor."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from conftest import mixed_table, mixed_table_preprocessor
from skmixup._mixing import (
    draw_kernel_partners,
    draw_mixed_samples,
    label_kernel_bandwidth,
)
from skmixup.compose import MixupClassifier, MixupRegressor
from skmixup.linear_model import MixupLogisticRegression


class _Recorder(ClassifierMixin, BaseEstimator):
    """Records what it is fitted on (the mixed table, targets and weights)."""

    def __init__(self, categorical_features=None):
        self.categorical_features = categorical_features

    def fit(self, X, y, sample_weight=None):
        self.X_, self.y_, self.sample_weight_ = X, np.asarray(y), sample_weight
        self.classes_ = np.unique(self.y_)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


class _RegRecorder(RegressorMixin, _Recorder):
    def predict(self, X):
        return np.zeros(len(X))


def _mixed_frame(n=60, seed=0):
    rng = np.random.RandomState(seed)
    num = rng.normal(size=n)
    num[::7] = np.nan
    frame = pd.DataFrame(
        {
            "num": num,
            "count": rng.randint(0, 5, n),
            "f64": pd.array(np.where(rng.rand(n) < 0.2, None, rng.rand(n)), "Float64"),
            "i64": pd.array(
                np.where(rng.rand(n) < 0.2, None, rng.randint(0, 9, n)), "Int64"
            ),
            "flag": pd.array(
                np.where(rng.rand(n) < 0.2, None, rng.rand(n) < 0.5), "boolean"
            ),
            "cat": pd.Categorical(rng.choice(["a", "b", "c"], n)),
            "text": pd.array(rng.choice(["x y", "z"], n), dtype="string"),
        }
    )
    y = np.where(num > 0, "pos", "neg")
    y[np.isnan(num)] = "neg"
    return frame, y


def test_soft_labels_are_two_weighted_copies():
    X, y = make_classification(50, 3, n_informative=2, n_redundant=0, random_state=0)
    sw = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    clf = MixupClassifier(_Recorder(), n_mixed=3, random_state=0).fit(X, y, sw)
    rec = clf.estimator_
    # the copies' weights sum to the training weight
    assert rec.sample_weight_.sum() == pytest.approx(sw.sum())
    # the same draws, redone: each mixed row of different labels gives two copies
    anchor, partner, lam, weight = draw_mixed_samples(
        50, 3, 1.0, None, np.random.RandomState(0), sw
    )
    other = y[anchor] != y[partner]
    assert clf.n_mixed_rows_ == len(anchor) + other.sum()
    mixed = lam[:, None] * X[anchor] + (1 - lam[:, None]) * X[partner]
    np.testing.assert_allclose(rec.X_[: len(anchor)], mixed)
    np.testing.assert_allclose(rec.X_[len(anchor) :], mixed[other])
    np.testing.assert_array_equal(rec.y_[len(anchor) :], y[partner[other]])
    w = rec.sample_weight_
    np.testing.assert_allclose(
        w[: len(anchor)][other] + w[len(anchor) :], weight[other]
    )
    np.testing.assert_allclose(w[: len(anchor)][other], lam[other] * weight[other])
    # the soft label of each mixed row, as the learner sees it
    np.testing.assert_allclose(weight, sw[anchor] / 3)


def test_partners_follow_sample_weight_and_zero_weight_rows_never_anchor():
    sw = np.array([0.0, 1.0, 3.0])
    anchor, partner, lam, weight = draw_mixed_samples(
        3, 4000, 1.0, None, np.random.RandomState(0), sw
    )
    assert set(anchor) == {1, 2}
    freq = np.bincount(partner, minlength=3) / len(partner)
    np.testing.assert_allclose(freq, [0, 0.25, 0.75], atol=0.02)
    assert weight.sum() == pytest.approx(sw.sum())


def test_label_kernel_partner_probabilities():
    # Exact C-Mixup probabilities on 4 labels, against the empirical frequencies.
    y = np.array([0.0, 0.1, 1.0, 3.0])
    sw = np.array([1.0, 2.0, 1.0, 1.0])
    h = 0.5
    draws = draw_kernel_partners(
        y, np.array([0, 2]), 20000, h, np.random.RandomState(0), sw, max_block=5
    )
    for row, i in enumerate([0, 2]):
        p = sw * np.exp(-((y[i] - y) ** 2) / (2 * h**2))
        p /= p.sum()
        freq = np.bincount(draws[row], minlength=4) / draws.shape[1]
        np.testing.assert_allclose(freq, p, atol=0.015)


def test_label_kernel_bandwidth_rule():
    y = np.random.RandomState(0).normal(scale=3.0, size=2000)
    iqr = np.subtract(*np.percentile(y, [75, 25]))
    expected = 0.9 * min(y.std(), iqr / 1.34) * 2000 ** (-0.2)
    assert label_kernel_bandwidth(y) == pytest.approx(expected)
    assert label_kernel_bandwidth(np.ones(5)) == 0.0
    # frequency weights: a weight of 2 is a repeated row for the spread
    y3 = np.array([0.0, 1.0, 5.0, 2.0, 7.0])
    assert label_kernel_bandwidth(y3, [1, 2, 1, 1, 1]) == pytest.approx(
        0.9 * np.std(np.r_[y3, 1.0]) * (36 / 8) ** (-0.2)
    )


def test_label_kernel_partners_are_closer_in_label():
    X, y = make_regression(300, 4, noise=1.0, random_state=0)
    kw = dict(n_mixed=3, random_state=0)
    uniform = MixupRegressor(_RegRecorder(), **kw).fit(X, y)
    kernel = MixupRegressor(_RegRecorder(), partners="label_kernel", **kw).fit(X, y)
    assert uniform.kernel_bandwidth_ is None
    assert kernel.kernel_bandwidth_ == pytest.approx(label_kernel_bandwidth(y))
    # a mixed target lies between y_i and y_j: far from y_i when j is far in label
    anchor = np.repeat(np.arange(300), 3)
    gap_u = np.abs(uniform.estimator_.y_ - y[anchor]).mean()
    gap_k = np.abs(kernel.estimator_.y_ - y[anchor]).mean()
    assert gap_k < 0.2 * gap_u


def test_approaches_exact_mixup_logistic_regression():
    # The exact minimiser of Eq. (1) (all pairs, quadrature) against
    # LogisticRegression on n_mixed weighted mixed rows per row, same C.
    X, y = make_classification(
        200, 4, n_informative=3, n_redundant=0, class_sep=2.0, random_state=1
    )
    X = StandardScaler().fit_transform(X)
    exact = MixupLogisticRegression(C=100.0, n_partners="all", tol=1e-10).fit(X, y)
    theta = np.r_[exact.coef_.ravel(), exact.intercept_]

    def distance(est):
        t = np.r_[est.coef_.ravel(), est.intercept_]
        return np.linalg.norm(t - theta) / np.linalg.norm(theta)

    inner = LogisticRegression(C=100.0, tol=1e-10, max_iter=1000)
    erm = distance(clone(inner).fit(X, y))
    dist = {
        k: np.mean(
            [
                distance(
                    MixupClassifier(inner, n_mixed=k, random_state=s)
                    .fit(X, y)
                    .estimator_
                )
                for s in range(3)
            ]
        )
        for k in (2, 32, 256)
    }
    # measured: ERM 2.9, n_mixed 2 / 32 / 256: about 0.05 / 0.014 / 0.007
    assert erm > 2.0
    assert dist[2] > dist[32] > dist[256]
    assert dist[256] < 0.02
    assert dist[256] < dist[2] / 3


def test_classifier_without_sample_weight_is_a_type_error():
    X, y = make_classification(30, 3, n_informative=2, n_redundant=0, random_state=0)
    with pytest.raises(TypeError, match="KNeighborsClassifier.fit does not"):
        MixupClassifier(KNeighborsClassifier()).fit(X, y)
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    with pytest.raises(TypeError, match="last step"):
        MixupClassifier(pipe).fit(X, y)


def test_delegation_and_string_labels():
    X, y = make_classification(
        80, 4, n_classes=3, n_informative=3, n_redundant=0, random_state=0
    )
    labels = np.array(["ant", "bee", "cat"])[y]
    frame = pd.DataFrame(X, columns=list("abcd"))
    clf = MixupClassifier(LogisticRegression(), random_state=0).fit(frame, labels)
    np.testing.assert_array_equal(clf.classes_, ["ant", "bee", "cat"])
    assert clf.n_features_in_ == 4
    np.testing.assert_array_equal(clf.feature_names_in_, list("abcd"))
    inner = clf.estimator_
    np.testing.assert_array_equal(clf.predict(frame), inner.predict(frame))
    np.testing.assert_allclose(clf.predict_proba(frame), inner.predict_proba(frame))
    np.testing.assert_allclose(
        clf.decision_function(frame), inner.decision_function(frame)
    )
    assert set(clf.predict(frame)) <= set(labels)
    assert not hasattr(MixupClassifier(DecisionTreeClassifier()), "decision_function")
    # the same seed gives the same fit; another seed another one
    again = MixupClassifier(LogisticRegression(), random_state=0).fit(frame, labels)
    np.testing.assert_array_equal(again.estimator_.coef_, inner.coef_)
    other = MixupClassifier(LogisticRegression(), random_state=1).fit(frame, labels)
    assert not np.allclose(other.estimator_.coef_, inner.coef_)


def test_mixed_frame_columns_follow_the_documented_rule():
    frame, y = _mixed_frame()
    clf = MixupClassifier(_Recorder(), n_mixed=2, random_state=0).fit(frame, y)
    mixed = clf.estimator_.X_
    anchor, partner, lam, _ = draw_mixed_samples(
        len(frame), 2, 1.0, None, np.random.RandomState(0)
    )
    n = len(anchor)
    mixed = mixed.iloc[:n]
    dominant = np.where(lam >= 0.5, anchor, partner)
    assert list(mixed.columns) == list(frame.columns)
    # categorical, boolean and string columns: the value of the larger-weight row
    for col in ["cat", "flag", "text"]:
        assert mixed[col].dtype == frame[col].dtype
        expected = frame[col].iloc[dominant].reset_index(drop=True)
        pd.testing.assert_series_equal(mixed[col], expected, check_names=False)
    # numeric columns: the convex combination, or the dominant value if one is missing
    for col, dtype in [
        ("num", np.float64),
        ("count", np.float64),
        ("f64", "Float64"),
        ("i64", "Float64"),
    ]:
        assert mixed[col].dtype == dtype
        v = frame[col].to_numpy(dtype=float, na_value=np.nan)
        want = lam * v[anchor] + (1 - lam) * v[partner]
        gap = np.isnan(v[anchor]) | np.isnan(v[partner])
        want[gap] = v[dominant][gap]
        got = mixed[col].to_numpy(dtype=float, na_value=np.nan)
        np.testing.assert_allclose(got, want)
    # missingness is kept, not spread: the missing fraction stays close
    assert mixed["num"].isna().mean() < 2 * frame["num"].isna().mean()


def test_categorical_features_of_the_inner_estimator_are_not_averaged():
    X = np.c_[np.random.RandomState(0).normal(size=40), np.arange(40) % 3]
    y = np.arange(40) % 2
    clf = MixupClassifier(_Recorder(categorical_features=[1]), random_state=0)
    mixed = clf.fit(X, y).estimator_.X_
    assert set(np.unique(mixed[:, 1])) <= {0.0, 1.0, 2.0}
    assert len(np.unique(mixed[:, 0])) > 40
    with pytest.raises(ValueError, match="column index"):
        MixupClassifier(_Recorder(categorical_features=[5])).fit(X, y)


def test_hist_gradient_boosting_on_a_mixed_frame_directly():
    frame, y = _mixed_frame(120)
    frame = frame.drop(columns=["text", "flag"])  # HGB takes category + numeric
    hgb = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype")
    clf = MixupClassifier(hgb, n_mixed=2, random_state=0).fit(frame, y)
    assert clf.score(frame, y) > 0.8
    assert clf.predict_proba(frame).shape == (120, 2)


def test_column_transformer_pipeline_with_string_target():
    # the suite's mixed table (NaN and pd.NA, nullable, category, string and text
    # columns, string target)
    frame, y = mixed_table(n=240, n_classes=3)
    pipe = make_pipeline(
        mixed_table_preprocessor(),
        MixupClassifier(LogisticRegression(), random_state=0),
    )
    assert pipe.fit(frame, y).score(frame, y) > 0.6
    assert set(pipe.predict(frame)) <= set(y)
    reg = make_pipeline(
        mixed_table_preprocessor(),
        MixupRegressor(
            DecisionTreeRegressor(max_depth=3), partners="label_kernel", random_state=0
        ),
    )
    target = frame["age"].to_numpy() / 10 + (frame["city"] == "north")
    assert reg.fit(frame, target).score(frame, target) > 0.5
    # the nullable columns of this module's frame, through a ColumnTransformer
    nullable, labels = _mixed_frame(100)
    nullable["flag"] = nullable["flag"].astype(object).astype(str)  # "True", "<NA>"
    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(), StandardScaler()),
                ["num", "count", "f64", "i64"],
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["cat", "flag"]),
        ]
    )
    clf = make_pipeline(pre, MixupClassifier(LogisticRegression(), random_state=0))
    assert clf.fit(nullable, labels).score(nullable, labels) > 0.8


def test_grid_search_over_inner_and_mixup_parameters():
    X, y = make_classification(90, 4, n_informative=3, n_redundant=0, random_state=0)
    grid = GridSearchCV(
        MixupClassifier(
            DecisionTreeClassifier(random_state=0), n_mixed=2, random_state=0
        ),
        {"estimator__max_depth": [1, 3], "mixup_alpha": [0.2, 1.0]},
        cv=3,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    best = grid.best_estimator_
    assert best.estimator_.max_depth == grid.best_params_["estimator__max_depth"]
    assert best.mixup_alpha == grid.best_params_["mixup_alpha"]


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_pickle_and_skops_round_trip(kind, tmp_path):
    sio = pytest.importorskip("skops.io")
    X, y = make_regression(60, 3, random_state=0)
    if kind == "classifier":
        est = MixupClassifier(LogisticRegression(), random_state=0).fit(X, y > 0)
        methods = ["predict", "predict_proba"]
    else:
        est = MixupRegressor(
            DecisionTreeRegressor(max_depth=3), partners="label_kernel", random_state=0
        ).fit(X, y)
        methods = ["predict"]
    loaded = pickle.loads(pickle.dumps(est))
    path = tmp_path / "est.skops"
    sio.dump(est, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert all(t.startswith(("skmixup.", "sklearn.", "numpy.")) for t in untrusted)
    from_skops = sio.load(path, trusted=untrusted)
    for method in methods:
        expected = getattr(est, method)(X)
        np.testing.assert_array_equal(getattr(loaded, method)(X), expected)
        np.testing.assert_array_equal(getattr(from_skops, method)(X), expected)


def test_uniform_mixup_of_least_squares_is_ols():
    # Derivation (User Guide, "Mixup and least squares"): with an intercept and
    # uniform partners the expected Mixup loss is s Var(r) + mean(r)^2, whose
    # minimiser is the OLS solution. The sampled wrapper approaches it.
    X, y = make_regression(200, 3, noise=5.0, random_state=0)
    ols = LinearRegression().fit(X, y)
    mix = MixupRegressor(LinearRegression(), n_mixed=64, random_state=0).fit(X, y)
    np.testing.assert_allclose(mix.estimator_.coef_, ols.coef_, rtol=0.02)


def _beta_moments(a, b):
    s = (a + b) * (a + b + 1)
    return a * (a + 1) / s, b * (b + 1) / s, a * b / s  # E l^2, E (1-l)^2, E l(1-l)


def _mixup_least_squares(X, y, P, a, b, fit_intercept=True):
    """Minimiser of the exact expected Mixup squared error with partner law P.

    E_{i, j ~ P_i., l} (l r_i + (1 - l) r_j)^2 = r^T Q r / n with
    Q = E[l^2] I + E[(1-l)^2] diag(P^T 1) + E[l(1-l)] (P + P^T), r = y - X~ theta.
    """
    e2, f2, ef = _beta_moments(a, b)
    Q = e2 * np.eye(len(y)) + f2 * np.diag(P.sum(0)) + ef * (P + P.T)
    Xt = np.c_[X, np.ones(len(y))] if fit_intercept else X
    return np.linalg.solve(Xt.T @ Q @ Xt, Xt.T @ Q @ y), Q


def test_least_squares_derivation_closed_forms():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 2))
    y = X @ [1.0, -2.0] + 3.0 + rng.normal(size=30)
    a, b = 0.7, 1.9
    e2, f2, ef = _beta_moments(a, b)
    # the quadratic form equals the pairwise expectation (Gauss-Jacobi in lambda)
    from skmixup._mixing import beta_quadrature

    nodes, weights = beta_quadrature(a, b, n_nodes=8)
    K = np.exp(-((y[:, None] - y[None]) ** 2) / 2.0)
    P = K / K.sum(1, keepdims=True)
    theta, Q = _mixup_least_squares(X, y, P, a, b)
    r = y - np.c_[X, np.ones(30)] @ (theta + 0.3)
    pair = nodes[:, None, None] * r[:, None] + (1 - nodes[:, None, None]) * r[None]
    direct = np.einsum("q,ij,qij->", weights, P, pair**2) / 30
    assert r @ Q @ r / 30 == pytest.approx(direct, rel=1e-12)
    # uniform partners: s Var(r) + mean(r)^2 with s = E l^2 + E (1-l)^2 ...
    U = np.full((30, 30), 1 / 30)
    assert r @ _mixup_least_squares(X, y, U, a, b)[1] @ r / 30 == pytest.approx(
        (e2 + f2) * r.var() + r.mean() ** 2
    )
    # ... so with an intercept the minimiser is OLS; without, it is not
    ols = LinearRegression().fit(X, y)
    np.testing.assert_allclose(
        _mixup_least_squares(X, y, U, a, b)[0], np.r_[ols.coef_, ols.intercept_]
    )
    no_icpt = _mixup_least_squares(X, y, U, a, b, fit_intercept=False)[0]
    ols0 = LinearRegression(fit_intercept=False).fit(X, y).coef_
    assert np.linalg.norm(no_icpt - ols0) > 0.05
    # label-kernel partners: a generalised least-squares problem, another fit
    assert np.linalg.norm(theta - np.r_[ols.coef_, ols.intercept_]) > 0.05


def test_sampled_mixup_least_squares_approaches_the_closed_forms():
    X, y = make_regression(150, 2, noise=20.0, random_state=0)
    X, y = X + 1.0, y + 40.0
    h = 10.0
    kw = dict(n_mixed=128, mixup_alpha=0.7, mixup_beta=1.9, random_state=0)
    K = np.exp(-((y[:, None] - y[None]) ** 2) / (2 * h**2))
    theta_k = _mixup_least_squares(X, y, K / K.sum(1, keepdims=True), 0.7, 1.9)[0]
    kernel = (
        MixupRegressor(
            LinearRegression(), partners="label_kernel", kernel_bandwidth=h, **kw
        )
        .fit(X, y)
        .estimator_
    )
    ols = LinearRegression().fit(X, y)
    got = np.r_[kernel.coef_, kernel.intercept_]
    assert np.linalg.norm(got - theta_k) < 0.2 * np.linalg.norm(
        theta_k - np.r_[ols.coef_, ols.intercept_]
    )
    U = np.full((150, 150), 1 / 150)
    theta_0 = _mixup_least_squares(X, y, U, 0.7, 1.9, fit_intercept=False)[0]
    kw["n_mixed"] = 512
    plain = MixupRegressor(LinearRegression(fit_intercept=False), **kw).fit(X, y)
    ols0 = LinearRegression(fit_intercept=False).fit(X, y).coef_
    assert np.linalg.norm(plain.estimator_.coef_ - theta_0) < 0.2 * np.linalg.norm(
        theta_0 - ols0
    )


def test_integer_weights_equal_repeated_rows_in_expectation():
    # The stochastic counterpart of check_sample_weight_equivalence (xfailed in
    # test_common.py): with many mixed rows, weights 0/1/2 fit what repeating the
    # rows fits (measured 0.016 relative distance), far from the unweighted fit (0.37).
    X, y = make_classification(60, 3, n_informative=2, n_redundant=0, random_state=0)
    w = np.arange(60) % 3

    def theta(Xf, yf, sample_weight=None, seed=0):
        clf = MixupClassifier(LogisticRegression(), n_mixed=400, random_state=seed)
        est = clf.fit(Xf, yf, sample_weight=sample_weight).estimator_
        return np.r_[est.coef_.ravel(), est.intercept_]

    repeated = theta(np.repeat(X, w, axis=0), np.repeat(y, w), seed=1)
    gap = np.linalg.norm(theta(X, y, w) - repeated) / np.linalg.norm(repeated)
    unweighted = np.linalg.norm(theta(X, y) - repeated) / np.linalg.norm(repeated)
    assert gap < 0.05 < 0.2 < unweighted
