"""Certified robustness: soundness against brute force, exactness, orderings, API.

Soundness is checked on tiny networks (2 and 3 inputs) by brute force: every
point of a dense grid of the l_inf box and every vertex of it is predicted; no
certified sample may have a misclassified point, and the MILP's verdict must
agree with the grid wherever the grid finds an attack.
"""

import functools
import itertools
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_iris, load_wine, make_blobs
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    StandardScaler,
)

from skmixup.metrics import (
    UnsolvedSamplesWarning,
    certified_accuracy_score,
    certify,
    make_certified_scorer,
    robust_accuracy_score,
)
from skmixup.metrics._certify import register_certifier


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def _tiny_mlp(n_features, hidden, activation, seed, n_classes=3):
    """A random small MLPClassifier (fitted for its attributes, then re-drawn)."""
    rng = np.random.RandomState(seed)
    X = rng.randn(60, n_features)
    y = np.arange(60) % n_classes
    clf = _fit(
        MLPClassifier(hidden, activation=activation, max_iter=5, random_state=seed),
        X,
        y,
    )
    clf.coefs_ = [rng.randn(*W.shape) * 1.5 for W in clf.coefs_]
    clf.intercepts_ = [rng.randn(*b.shape) * 0.5 for b in clf.intercepts_]
    return clf, X, y


def _brute_force_wrong(clf, x, y, eps, points=41):
    """Whether some point of a grid of the box (vertices included) is misclassified."""
    d = len(x)
    if d == 3:
        points = 17
    axes = [np.linspace(-eps, eps, points)] * d
    grid = np.array(list(itertools.product(*axes)))
    return bool(np.any(clf.predict(x + grid) != y))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    n_features=st.sampled_from([2, 3]),
    hidden=st.sampled_from([(4,), (6,), (3, 3)]),
    activation=st.sampled_from(["relu", "tanh", "logistic", "identity"]),
    eps=st.sampled_from([0.05, 0.2, 0.5]),
)
def test_no_certified_sample_is_attackable_and_milp_matches_brute_force(
    seed, n_features, hidden, activation, eps
):
    _check_against_brute_force(seed, n_features, hidden, activation, eps)


def _check_against_brute_force(seed, n_features, hidden, activation, eps):
    clf, X, y = _tiny_mlp(n_features, hidden, activation, seed)
    X, y = X[:8], clf.predict(X[:8])  # correct clean predictions: bounds matter
    wrong = np.array([_brute_force_wrong(clf, X[i], y[i], eps) for i in range(len(y))])
    methods = ["ibp", "crown"] + (
        ["milp"] if activation in ("relu", "identity") else []
    )
    results = {}
    for method in methods:
        result = certify(
            clf, X, y, eps=eps, method=method, feature_scale=1, random_state=0
        )
        results[method] = result
        assert not np.any(result.certified & wrong), method
        attacked = result.attacked
        X_adv = result.X_adv
        assert np.all(np.abs(X_adv - X) <= eps * (1 + 1e-9) + 1e-12)
        if attacked.any():
            assert np.all(clf.predict(X_adv[attacked]) != y[attacked])
    assert results["crown"].certified.sum() >= results["ibp"].certified.sum()
    assert np.all(results["crown"].margin >= results["ibp"].margin - 1e-9)
    if "milp" in results:
        milp = results["milp"]
        assert set(milp.status) <= {"certified", "attacked"}
        # Exact: the grid's verdict, sample by sample (an attack region thinner
        # than the grid's step would be the only way to differ).
        assert set(milp.status) <= {"certified", "attacked"}
        assert_array_equal(milp.attacked, wrong)
    return wrong, results


def test_brute_force_check_sees_both_verdicts():
    # The property above is not vacuous: on this network the grid breaks some
    # samples and the bounds certify others.
    wrong, results = _check_against_brute_force(2, 2, (6,), "relu", 0.5)
    assert wrong.any() and not wrong.all()
    certified = {method: r.certified.sum() for method, r in results.items()}
    assert 0 < certified["ibp"] < certified["crown"] < certified["milp"]


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))
    train, test = order[:300], order[300:360]
    return X[train], y[train], X[test], y[test]


@pytest.fixture(scope="module")
def cancer_relu(cancer):
    X, y, _, _ = cancer
    return _fit(
        make_pipeline(
            StandardScaler(), MLPClassifier((16,), max_iter=300, random_state=0)
        ),
        X,
        y,
    )


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_certified_below_exact_below_pgd_on_real_data(cancer, cancer_relu, eps):
    _, _, X, y = cancer
    scores = {
        "ibp": certified_accuracy_score(cancer_relu, X, y, eps=eps, method="ibp"),
        "crown": certified_accuracy_score(cancer_relu, X, y, eps=eps),
        "milp": certified_accuracy_score(
            cancer_relu, X, y, eps=eps, method="milp", time_limit=None
        ),
        "exact": robust_accuracy_score(cancer_relu, X, y, eps=eps, attack="exact"),
        "pgd": robust_accuracy_score(
            cancer_relu, X, y, eps=eps, attack="pgd", random_state=0
        ),
        "fgsm": robust_accuracy_score(cancer_relu, X, y, eps=eps),
        "clean": cancer_relu.score(X, y),
    }
    assert scores["ibp"] <= scores["crown"] <= scores["milp"]
    # Without a time limit the MILP settles every sample: certified == exact.
    assert scores["milp"] == scores["exact"]
    assert scores["exact"] <= scores["pgd"] <= scores["clean"]
    assert scores["exact"] <= scores["fgsm"]
    assert scores["milp"] > scores["ibp"] or eps == 0.1


@pytest.mark.parametrize("activation", ["tanh", "logistic", "relu"])
def test_crown_never_certifies_fewer_than_ibp(cancer, activation):
    X, y, X_test, y_test = cancer
    pipe = _fit(
        make_pipeline(
            StandardScaler(),
            MLPClassifier(
                (12, 12), activation=activation, max_iter=200, random_state=0
            ),
        ),
        X,
        y,
    )
    for eps in (0.05, 0.2):
        ibp = certify(pipe, X_test, y_test, eps=eps, method="ibp", random_state=0)
        crown = certify(pipe, X_test, y_test, eps=eps, random_state=0)
        assert np.all(crown.margin >= ibp.margin - 1e-12 * (1 + np.abs(ibp.margin)))
        assert np.all(crown.certified >= ibp.certified)


@pytest.mark.parametrize("norm, clip", [("inf", None), ("inf", (0.0, 8.0)), (2, None)])
def test_linear_models_equal_the_exact_attack(norm, clip):
    X, y = load_iris(return_X_y=True)
    for model in (
        make_pipeline(StandardScaler(), PCA(3), LogisticRegression()),
        LogisticRegression(max_iter=1000),
    ):
        model.fit(X, y)
        for eps in (0.1, 0.3, 0.6):
            params = {"eps": eps, "norm": norm, "clip": clip}
            exact = robust_accuracy_score(model, X, y, attack="exact", **params)
            for method in ("ibp", "crown", "milp"):
                if method == "milp" and norm == 2:
                    continue
                result = certify(model, X, y, method=method, random_state=0, **params)
                assert result.certified_accuracy() == exact
                assert not result.unknown.any()


def test_binary_linear_and_mlp_with_weights(cancer, cancer_relu):
    X, y, X_test, y_test = cancer
    clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    w = np.linspace(0.5, 2.0, len(y_test))
    result = certify(clf, X_test, y_test, eps=0.3)
    expected = np.average(result.certified, weights=w)
    score = certified_accuracy_score(clf, X_test, y_test, eps=0.3, sample_weight=w)
    assert score == pytest.approx(expected)
    assert score == robust_accuracy_score(
        clf, X_test, y_test, eps=0.3, attack="exact", sample_weight=w
    )


def _nullable_frame(n=160, seed=0):
    pd = pytest.importorskip("pandas")
    rng = np.random.RandomState(seed)
    df = pd.DataFrame(
        {
            "age": pd.array(rng.randint(18, 80, n), dtype="Int64"),
            "income": rng.lognormal(3, 0.5, n),
            "score": pd.array(rng.randn(n), dtype="Float64"),
            "city": rng.choice(["north", "south", "east"], n).astype(object),
            "kind": pd.Categorical(rng.choice(["x", "y"], n)),
            "flag": pd.array(rng.rand(n) > 0.5, dtype="boolean"),
            "note": pd.array(rng.choice(["a", "b"], n), dtype="string"),
        }
    )
    df.loc[rng.rand(n) < 0.15, "income"] = np.nan
    df.loc[rng.rand(n) < 0.1, "score"] = pd.NA
    df.loc[rng.rand(n) < 0.1, "age"] = pd.NA
    df.loc[rng.rand(n) < 0.1, "flag"] = pd.NA
    signal = (df.age.astype(float).fillna(50) - 50) / 15
    signal += np.nan_to_num((df.income - 20) / 10) + df.score.astype(float).fillna(0)
    signal += np.where(df.city == "north", 1.0, 0.0)
    y = np.where(signal + 0.3 * rng.randn(n) > 0, "yes", "no")
    return df, y


def _mixed_pipeline(clf):
    pd = pytest.importorskip("pandas")
    num = ["age", "income", "score"]
    flag = make_pipeline(
        SimpleImputer(missing_values=pd.NA, strategy="most_frequent"),
        OneHotEncoder(handle_unknown="ignore"),
    )
    return Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("num", make_pipeline(SimpleImputer(), StandardScaler()), num),
                        (
                            "cat",
                            OneHotEncoder(handle_unknown="ignore"),
                            ["city", "kind", "note"],
                        ),
                        ("flag", flag, ["flag"]),
                    ]
                ),
            ),
            ("clf", clf),
        ]
    )


@pytest.mark.parametrize("method", ["crown", "milp"])
def test_mixed_dataframe_pipeline(method):
    X, y = _nullable_frame()
    pipe = _fit(
        _mixed_pipeline(MLPClassifier((10,), max_iter=300, random_state=0)), X, y
    )
    result = certify(pipe, X, y, eps=0.3, method=method, random_state=0)
    X_adv = result.X_adv
    assert list(X_adv.columns) == list(X.columns)
    for column in ["city", "kind", "flag", "note"]:
        assert X_adv[column].equals(X[column])
    for column in ["age", "income", "score"]:
        missing = X[column].isna().to_numpy()
        assert_array_equal(X_adv[column].isna().to_numpy(), missing)
        moved = np.abs(
            X_adv[column].to_numpy(float, na_value=np.nan)
            - X[column].to_numpy(float, na_value=np.nan)
        )[~missing]
        scale = np.nanstd(X[column].to_numpy(float, na_value=np.nan))
        assert np.all(moved <= 0.3 * scale * (1 + 1e-9))
    attacked = result.attacked
    assert attacked.any() and result.certified.any()
    assert np.all(pipe.predict(X_adv[attacked]) != y[attacked])
    # No certified sample falls to PGD from several starts.
    for seed in range(3):
        X_pgd = __import__("skmixup").metrics.pgd(
            pipe, X, y, eps=0.3, n_iter=20, random_state=seed
        )
        assert not np.any((pipe.predict(X_pgd) != y) & result.certified)
    if method == "milp":
        assert not result.unknown.any()


def test_torch_models(torch_single_thread):
    torch = pytest.importorskip("torch")
    from skorch import NeuralNetClassifier

    from skmixup.neural_network import (
        MixupMLPClassifier,
        MixupRegularizedMLPClassifier,
    )

    X, y = make_blobs(n_samples=120, centers=3, n_features=3, random_state=0)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    torch.manual_seed(0)  # the plain skorch net's initial weights
    models = [
        MixupMLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0),
        MixupRegularizedMLPClassifier(
            hidden_layer_sizes=(8,), max_iter=30, random_state=0
        ),
        NeuralNetClassifier(
            torch.nn.Sequential(
                torch.nn.Linear(3, 8),
                torch.nn.LeakyReLU(0.1),
                torch.nn.Linear(8, 8),
                torch.nn.ReLU(),
                torch.nn.Linear(8, 3),
            ),
            criterion=torch.nn.CrossEntropyLoss,
            max_epochs=30,
            lr=0.1,
            train_split=None,
            verbose=0,
        ),
    ]
    for model in models:
        _fit(model, X, y)
        for eps in (0.1, 0.4):
            milp = certify(model, X, y, eps=eps, method="milp", feature_scale=1)
            crown = certify(model, X, y, eps=eps, feature_scale=1)
            assert not milp.unknown.any()
            assert crown.certified.sum() <= milp.certified.sum()
            assert not np.any(crown.certified & milp.attacked)
            adv = milp.X_adv[milp.attacked]
            assert np.all(model.predict(adv) != y[milp.attacked])
            assert np.all(np.abs(milp.X_adv - X) <= eps + 1e-6)
    tanh_net = _fit(
        NeuralNetClassifier(
            torch.nn.Sequential(
                torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)
            ),
            max_epochs=5,
            train_split=None,
            criterion=torch.nn.CrossEntropyLoss,
            verbose=0,
        ),
        X,
        y,
    )
    assert certify(tanh_net, X, y, eps=0.1).certified.any()
    with pytest.raises(TypeError, match="piecewise-linear"):
        certify(tanh_net, X, y, eps=0.1, method="milp")
    conv = _fit(
        NeuralNetClassifier(
            torch.nn.Sequential(
                torch.nn.Linear(3, 3), torch.nn.Softplus(), torch.nn.Linear(3, 3)
            ),
            max_epochs=1,
            train_split=None,
            criterion=torch.nn.CrossEntropyLoss,
            verbose=0,
        ),
        X,
        y,
    )
    with pytest.raises(TypeError, match="Softplus"):
        certify(conv, X, y, eps=0.1)


@pytest.mark.parametrize(
    "step, path",
    [
        (Normalizer(), "Pipeline/normalizer"),
        (MinMaxScaler(clip=True), "Pipeline/minmaxscaler"),
        (FunctionTransformer(np.tanh), "Pipeline/functiontransformer"),
    ],
)
def test_non_affine_steps_raise_naming_the_path(step, path):
    X, y = load_wine(return_X_y=True)
    pipe = _fit(make_pipeline(step, MLPClassifier((5,), max_iter=50)), X, y)
    with pytest.raises(TypeError, match=path):
        certify(pipe, X, y, eps=0.1)


def test_errors():
    X, y = load_iris(return_X_y=True)
    boosted = HistGradientBoostingClassifier(max_iter=3).fit(X, y)
    with pytest.raises(TypeError, match="HistGradientBoostingClassifier"):
        certify(boosted, X, y, eps=0.1)
    clf = _fit(MLPClassifier((5,), max_iter=50, random_state=0), X, y)
    with pytest.raises(ValueError, match="norm='inf' only"):
        certify(clf, X, y, eps=0.1, method="milp", norm=2)
    with pytest.raises(ValueError, match="method must be"):
        certify(clf, X, y, eps=0.1, method="lp")
    with pytest.raises(ValueError, match="time_limit"):
        certify(clf, X, y, eps=0.1, time_limit=0)
    with pytest.raises(ValueError, match="Unknown parameters"):
        make_certified_scorer(eps=0.1, n_iter=3)
    with pytest.raises(ValueError, match="norm='inf' only"):
        robust_accuracy_score(clf, X, y, attack="exact", eps=0.1, norm=2)


def test_l2_bounds_are_sound(cancer, cancer_relu):
    _, _, X, y = cancer
    scale = cancer_relu[0].scale_
    crown = certify(cancer_relu, X, y, eps=0.5, norm=2, feature_scale=scale)
    for seed in range(3):
        adv = __import__("skmixup").metrics.pgd(
            cancer_relu,
            X,
            y,
            eps=0.5,
            norm=2,
            feature_scale=scale,
            n_iter=30,
            random_state=seed,
        )
        assert not np.any((cancer_relu.predict(adv) != y) & crown.certified)
    assert crown.certified.any()
    linf = certify(cancer_relu, X, y, eps=0.5, feature_scale=scale)
    # the l2 ball lies inside the l_inf ball of the same radius
    assert crown.certified.sum() >= linf.certified.sum()


def test_exact_attack_time_limit_warns_with_the_count(cancer, cancer_relu):
    _, _, X, y = cancer
    with pytest.warns(UnsolvedSamplesWarning, match=r"\d+ of 60 samples"):
        score = robust_accuracy_score(
            cancer_relu, X, y, eps=0.3, attack="exact", time_limit=1e-9
        )
    # unsolved samples count as robust: an upper bound of the exact score
    assert score >= robust_accuracy_score(cancer_relu, X, y, eps=0.3, attack="exact")
    result = certify(cancer_relu, X, y, eps=0.3, method="milp", time_limit=1e-9)
    assert result.unknown.any()


def test_scorer_in_model_selection(cancer):
    X, y, _, _ = cancer
    scorer = make_certified_scorer(eps=0.1, method="ibp", random_state=0)
    assert repr(scorer) == (
        "make_certified_scorer(eps=0.1, method='ibp', feature_scale='std', "
        "random_state=0)"
    )
    clone = pickle.loads(pickle.dumps(scorer))
    assert repr(clone) == repr(scorer)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    scores = cross_validate(
        model, X, y, cv=3, scoring={"clean": "accuracy", "cert": scorer}
    )
    assert np.all(scores["test_cert"] <= scores["test_clean"])
    search = GridSearchCV(
        model,
        {"logisticregression__C": [0.01, 1.0]},
        cv=3,
        scoring={"clean": "accuracy", "cert": make_certified_scorer(eps=0.2)},
        refit="cert",
    ).fit(X, y)
    assert 0.0 < search.best_score_ <= 1.0


def test_result_object(cancer, cancer_relu):
    _, _, X, y = cancer
    result = certify(cancer_relu, X, y, eps=0.2, random_state=0)
    assert result.status.shape == result.margin.shape == (60,)
    assert result.certified.sum() + result.attacked.sum() + result.unknown.sum() == 60
    assert np.all(result.margin[result.certified] > 0)
    assert result.certified_accuracy() <= result.attacked_accuracy()
    assert "method='crown'" in repr(result) and result.time > 0
    zero = certify(cancer_relu, X, y, eps=0.0)
    assert zero.certified_accuracy() == cancer_relu.score(X, y)


def test_a_new_model_family_can_register():
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Constant(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.array([0, 1])
            self.n_features_in_ = 2
            return self

        def predict(self, X):
            return np.zeros(len(X), dtype=int)

    from skmixup.metrics import _certify

    @register_certifier(lambda model: isinstance(model, Constant))
    class _ConstantCertifier:
        uses_attack = False

        def __init__(self, estimator, model, problem):
            self.problem = problem

        def run(self):
            open_ = self.problem.status == "unknown"
            self.problem.status[open_] = "certified"
            self.problem.margin[open_] = np.inf

    try:
        X = np.zeros((4, 2))
        y = np.array([0, 0, 1, 0])
        result = certify(Constant().fit(X, y), X, y, eps=1.0, feature_scale=1)
        assert_array_equal(
            result.status, ["certified", "certified", "attacked", "certified"]
        )
    finally:
        _certify._CERTIFIERS.pop()


def test_attacks_keep_nullable_float_columns():
    # Bug fix: rebuilding a DataFrame with a nullable Float64 column raised
    # "Cannot interpret 'Float64Dtype()' as a data type" in every attack.
    X, y = _nullable_frame()
    pipe = _fit(_mixed_pipeline(LogisticRegression()), X, y)
    X_adv = __import__("skmixup").metrics.fgsm(pipe, X, y, eps=0.2)
    assert X_adv["score"].dtype == X["score"].dtype
    assert_array_equal(X_adv["score"].isna(), X["score"].isna())
    assert not X_adv["score"].equals(X["score"])


def test_pgd_on_a_float32_skorch_net(torch_single_thread):
    # Bug fix: PGD's last predict_proba passed float64 rows to a float32 module.
    torch = pytest.importorskip("torch")
    from skorch import NeuralNetClassifier

    X, y = make_blobs(n_samples=40, centers=2, n_features=3, random_state=0)
    X = X.astype(np.float32)
    net = NeuralNetClassifier(
        torch.nn.Sequential(torch.nn.Linear(3, 2)),
        criterion=torch.nn.CrossEntropyLoss,
        max_epochs=2,
        train_split=None,
        verbose=0,
    ).fit(X, y)
    X_adv = __import__("skmixup").metrics.pgd(net, X, y, eps=0.1, random_state=0)
    assert X_adv.dtype == np.float32


def test_display_band_certified_below_the_attack(cancer, cancer_relu):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skmixup.metrics import RobustnessCurveDisplay

    _, _, X, y = cancer
    display = RobustnessCurveDisplay.from_estimator(
        cancer_relu,
        X,
        y,
        eps=[0.0, 0.1, 0.3],
        attack="pgd",
        attack_params={"random_state": 0},
        certified="crown",
    )
    assert display.certified.shape == (3,)
    assert np.all(display.certified <= display.accuracy)
    assert display.certified[0] == display.accuracy[0]
    assert display.certified[-1] < display.certified[0]
    assert display.band_ is not None
    assert display.certified_line_.get_linestyle() == "--"
    assert "certified" in display.certified_line_.get_label()
    plt.close(display.figure_)
    plain = RobustnessCurveDisplay.from_estimator(cancer_relu, X, y, eps=[0.0, 0.1])
    assert plain.certified is None and plain.band_ is None
    plt.close(plain.figure_)


def test_canonical_mixed_frame_linear_equals_exact_and_mlp_is_sound():
    from conftest import mixed_table, mixed_table_preprocessor

    X, y = mixed_table(n=240, n_classes=3)
    # The text column left out: with its TF-IDF columns the MILP leaves one of
    # the 240 samples unknown at eps=0.5 (measured), which this test excludes.
    pre = functools.partial(mixed_table_preprocessor, text=False)
    linear = make_pipeline(pre(), LogisticRegression()).fit(X, y)
    mlp = _fit(
        make_pipeline(pre(), MLPClassifier((8,), max_iter=200, random_state=0)),
        X,
        y,
    )
    for eps in (0.1, 0.5):
        exact = robust_accuracy_score(linear, X, y, attack="exact", eps=eps)
        assert certified_accuracy_score(linear, X, y, eps=eps) == exact
        result = certify(mlp, X, y, eps=eps, method="milp", random_state=0)
        assert not result.unknown.any()
        assert result.X_adv["city"].equals(X["city"])
        assert np.all(mlp.predict(result.X_adv[result.attacked]) != y[result.attacked])
        assert result.certified_accuracy() == robust_accuracy_score(
            mlp, X, y, attack="exact", eps=eps
        )


def test_l2_counterexamples_respect_clip():
    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=1000).fit(X, y)
    clip = (X.min(axis=0), X.max(axis=0))
    # Without the PGD run, the counterexamples are the linear worst cases.
    from skmixup.metrics._certify import _certify

    result = _certify(clf, X, y, eps=1.0, norm=2, clip=clip, attack=False)
    assert result.attacked.any()
    assert np.all(result.X_adv >= clip[0] - 1e-12)
    assert np.all(result.X_adv <= clip[1] + 1e-12)
    scale = X.std(axis=0)
    lengths = np.linalg.norm((result.X_adv - X) / scale, axis=1)
    assert np.all(lengths <= 1.0 + 1e-9)
    assert np.all(clf.predict(result.X_adv[result.attacked]) != y[result.attacked])
