"""Input gradients, robust scores, the adversarial scorer and the robustness display."""

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose
from scipy import sparse
from scipy.optimize import approx_fprime
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification, make_moons
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    PolynomialFeatures,
    RobustScaler,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier

from skmixup.metrics import (
    RobustnessCurveDisplay,
    gradient_methods,
    input_gradient,
    make_adversarial_scorer,
    robust_accuracy_score,
)

try:
    from skmixup.linear_model import MixupLogisticRegression
except ImportError:  # pragma: no cover - written in parallel
    MixupLogisticRegression = None
try:
    from skmixup.linear_model import MixupRegularizedLogisticRegression
except ImportError:  # pragma: no cover - written in parallel
    MixupRegularizedLogisticRegression = None


def _data(n_classes, n_samples=40, n_features=5, seed=0):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=3,
        n_redundant=1,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return X, y


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


def _mlp(activation, hidden=(6,)):
    return MLPClassifier(
        hidden, activation=activation, max_iter=200, alpha=1e-2, random_state=0
    )


_ESTIMATORS = {
    "logistic": lambda: LogisticRegression(C=0.5),
    "sgd_log_loss": lambda: SGDClassifier(
        loss="log_loss", alpha=0.1, max_iter=50, random_state=0
    ),
    "mlp_identity": lambda: _mlp("identity"),
    "mlp_logistic": lambda: _mlp("logistic"),
    "mlp_tanh": lambda: _mlp("tanh", (6, 4)),
    "mlp_relu": lambda: _mlp("relu", (6, 4)),
    "standard_scaler": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
    "minmax_scaler": lambda: make_pipeline(MinMaxScaler(), _mlp("tanh")),
    "minmax_scaler_clip": lambda: make_pipeline(
        MinMaxScaler(clip=True), LogisticRegression()
    ),
    "maxabs_robust": lambda: make_pipeline(
        MaxAbsScaler(), RobustScaler(), LogisticRegression()
    ),
    "pca_whiten": lambda: make_pipeline(
        StandardScaler(), PCA(n_components=4, whiten=True), LogisticRegression()
    ),
    "svd_normalizer": lambda: make_pipeline(
        TruncatedSVD(n_components=4, random_state=0), Normalizer(), _mlp("relu")
    ),
    "nested_passthrough": lambda: Pipeline(
        [
            ("pre", make_pipeline(StandardScaler(), "passthrough")),
            ("skip", "passthrough"),
            ("clf", LogisticRegression()),
        ]
    ),
}
if MixupLogisticRegression is not None:
    _ESTIMATORS["mixup_logistic"] = lambda: MixupLogisticRegression(random_state=0)
if MixupRegularizedLogisticRegression is not None:
    _ESTIMATORS["mixup_regularized"] = MixupRegularizedLogisticRegression


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("name", sorted(_ESTIMATORS))
def test_input_gradient_matches_finite_differences(name, n_classes):
    X, y = _data(n_classes)
    est = _fit(_ESTIMATORS[name](), X, y)
    # Off the training points: MinMaxScaler(clip=True) has kinks exactly there.
    X = X + 0.01 * np.random.RandomState(0).standard_normal(X.shape)
    analytic = input_gradient(est, X, y)
    numerical = input_gradient(est, X, y, gradient="numerical")
    assert analytic.shape == X.shape and analytic.dtype == np.float64
    assert_allclose(analytic, numerical, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_numerical_gradient_matches_scipy(n_classes):
    # An independent check of the batched central differences themselves.
    X, y = _data(n_classes, n_samples=20)
    est = _fit(_mlp("tanh"), X, y)
    grad = input_gradient(est, X, y, gradient="numerical")
    for i in range(0, 20, 7):

        def loss(x, i=i):
            return -np.log(est.predict_proba(x[None, :])[0, y[i]])

        assert_allclose(grad[i], approx_fprime(X[i], loss, 1e-6), atol=1e-4)


@settings(max_examples=25, deadline=None)
@given(
    X=arrays(np.float64, (6, 4), elements=st.floats(-3, 3, allow_nan=False, width=64)),
    labels=arrays(np.int64, (6,), elements=st.integers(0, 2)),
)
def test_mlp_gradient_property(X, labels, fitted_mlp_multiclass):
    # At arbitrary points (not the training data) backprop agrees with finite
    # differences for any labels.
    est = fitted_mlp_multiclass
    assert_allclose(
        input_gradient(est, X, labels),
        input_gradient(est, X, labels, gradient="numerical"),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.fixture(scope="module")
def fitted_mlp_multiclass():
    X, y = _data(3, n_features=4)
    return _fit(_mlp("tanh", (5,)), X, y)


def test_linear_gradient_closed_form():
    X, y = _data(2)
    clf = LogisticRegression().fit(X, y)
    p = clf.predict_proba(X)[:, 1]
    assert_allclose(input_gradient(clf, X, y), (p - y)[:, None] * clf.coef_)


def test_gradient_keeps_sign_when_probabilities_saturate():
    X = np.array([[-1.0], [1.0]])
    clf = LogisticRegression().fit(X, [0, 1])
    clf.coef_ = np.array([[200.0]])
    grad = input_gradient(clf, X, [0, 1])
    # p - y underflows to 0 in the naive form; the stable form keeps the sign.
    assert grad[0, 0] > 0 and grad[1, 0] < 0


def test_labels_are_mapped_through_classes():
    X, y = _data(3)
    labels = np.array(["cat", "dog", "eel"])[y]
    clf_str = LogisticRegression().fit(X, labels)
    clf_int = LogisticRegression().fit(X, y)
    assert_allclose(input_gradient(clf_str, X, labels), input_gradient(clf_int, X, y))
    with pytest.raises(ValueError, match="not in the estimator's classes_"):
        input_gradient(clf_str, X, np.where(y == 0, "fox", labels))
    with pytest.raises(ValueError, match="not in the estimator's classes_"):
        input_gradient(clf_int, X, y + 5)


def test_input_validation():
    X, y = _data(2)
    clf = LogisticRegression().fit(X, y)
    with pytest.raises(NotFittedError):
        input_gradient(LogisticRegression(), X, y)
    with pytest.raises(ValueError, match="features"):
        input_gradient(clf, X[:, :3], y)
    with pytest.raises(ValueError, match="inconsistent"):
        input_gradient(clf, X, y[:-1])
    with pytest.raises(ValueError, match="gradient must be"):
        input_gradient(clf, X, y, gradient="exact")


def test_sparse_and_float32_input():
    X, y = _data(3)
    clf = LogisticRegression().fit(X, y)
    dense = input_gradient(clf, X, y)
    assert_allclose(input_gradient(clf, sparse.csr_matrix(X), y), dense)
    grad32 = input_gradient(clf, X.astype(np.float32), y)
    assert grad32.dtype == np.float64
    assert_allclose(grad32, dense, rtol=1e-5, atol=1e-6)


def test_non_differentiable_estimator_needs_numerical():
    X, y = _data(2)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    with pytest.raises(TypeError, match="gradient='numerical'"):
        input_gradient(tree, X, y)
    grad = input_gradient(tree, X, y, gradient="numerical")
    assert grad.shape == X.shape and np.all(np.isfinite(grad))


def test_unknown_pipeline_step_is_differentiated_numerically_alone():
    # One step without a known Jacobian gets a numerical vector-Jacobian product;
    # the rest of the pipeline stays analytic.
    X, y = _data(2)
    pipe = make_pipeline(
        StandardScaler(), PolynomialFeatures(2), LogisticRegression(max_iter=2000)
    )
    pipe.fit(X, y)
    assert_allclose(
        input_gradient(pipe, X, y),
        input_gradient(pipe, X, y, gradient="numerical"),
        rtol=1e-4,
        atol=1e-6,
    )
    methods = gradient_methods(pipe, X, y)
    assert methods == [
        "Pipeline/standardscaler: analytic",
        "Pipeline/polynomialfeatures: numerical",
        "Pipeline/logisticregression: analytic",
    ]


def test_other_probabilistic_models_are_differentiated_numerically():
    X, y = _data(2)
    clf = SGDClassifier(loss="modified_huber", random_state=0).fit(X, y)
    assert gradient_methods(clf, X, y) == ["SGDClassifier: numerical"]
    assert_allclose(
        input_gradient(clf, X, y), input_gradient(clf, X, y, gradient="numerical")
    )


def test_skmixup_torch_estimator_gradient():
    pytest.importorskip("torch")
    pytest.importorskip("skorch")
    try:
        from skmixup.neural_network import MixupMLPClassifier
    except ImportError:
        pytest.skip("skmixup.neural_network.MixupMLPClassifier not available")
    X, y = _data(3)
    est = MixupMLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    est = _fit(est, X, y)
    grad = input_gradient(est, X, y)
    numerical = input_gradient(est, X, y, gradient="numerical")
    # float32 network: finite differences are only good to about 1e-2 here.
    assert_allclose(grad, numerical, atol=2e-2)
    cosine = np.sum(grad * numerical) / np.linalg.norm(grad) / np.linalg.norm(numerical)
    assert cosine > 0.99


@pytest.mark.parametrize("output", ["probabilities", "logits", "binary_logit"])
def test_skorch_net_gradient(output):
    torch = pytest.importorskip("torch")
    skorch = pytest.importorskip("skorch")

    class Module(torch.nn.Module):
        def __init__(self, n_out=3, softmax=True):
            super().__init__()
            self.hidden = torch.nn.Linear(5, 7)
            self.out = torch.nn.Linear(7, n_out)
            self.softmax = softmax

        def forward(self, X):
            Z = self.out(torch.tanh(self.hidden(X)))
            return torch.softmax(Z, dim=-1) if self.softmax else Z

    torch.manual_seed(0)
    if output == "binary_logit":
        X, y = _data(2)
        net = skorch.NeuralNetBinaryClassifier(
            Module,
            module__n_out=1,
            module__softmax=False,
            max_epochs=3,
            train_split=None,
            verbose=0,
        )
        net.fit(X.astype(np.float32), y.astype(np.float32))
    else:
        X, y = _data(3)
        kwargs = {}
        if output == "logits":
            kwargs = {"criterion": torch.nn.CrossEntropyLoss, "module__softmax": False}
        net = skorch.NeuralNetClassifier(
            Module, max_epochs=3, train_split=None, verbose=0, **kwargs
        )
        net.fit(X.astype(np.float32), y)
    net.module_.double()  # float64 so that finite differences are accurate
    assert_allclose(
        input_gradient(net, X, y),
        input_gradient(net, X, y, gradient="numerical"),
        rtol=1e-5,
        atol=1e-6,
    )


# --------------------------------------------------------------------------------------
# robust_accuracy_score and the scorer
# --------------------------------------------------------------------------------------


def test_robust_accuracy_is_plain_accuracy_over_all_samples():
    X, y = _data(2, n_samples=100)
    clf = LogisticRegression().fit(X, y)
    from skmixup.metrics import fgsm

    X_adv = fgsm(clf, X, y, eps=0.2)
    expected = np.mean(clf.predict(X_adv) == y)
    assert robust_accuracy_score(clf, X, y, eps=0.2) == pytest.approx(expected)
    weights = np.linspace(0.1, 2.0, len(y))
    expected = np.average(clf.predict(X_adv) == y, weights=weights)
    score = robust_accuracy_score(clf, X, y, eps=0.2, sample_weight=weights)
    assert score == pytest.approx(expected)


def test_robust_accuracy_with_callable_attack():
    # The callable gets eps and the attack parameters, and its output is scored.
    X, y = _data(2, n_samples=100)
    clf = LogisticRegression().fit(X, y)
    seen = {}

    def push_across(estimator, X, y, *, eps, offset):
        seen.update(eps=eps, offset=offset)
        w = estimator.coef_[0]
        return X + eps * offset * np.where(y == 1, -1.0, 1.0)[:, None] * w

    score = robust_accuracy_score(clf, X, y, attack=push_across, eps=0.5, offset=2.0)
    assert seen == {"eps": 0.5, "offset": 2.0}
    X_adv = X + np.where(y == 1, -1.0, 1.0)[:, None] * clf.coef_[0]
    assert score == np.mean(clf.predict(X_adv) == y)
    assert score < clf.score(X, y)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"eps": -0.1}, "eps must be"),
        ({"eps": float("nan")}, "eps must be"),
        ({"attack": "cw"}, "attack must be one of"),
        ({"attack": "fgsm", "n_iter": 3}, "Unknown parameters"),
        ({"attack": "pgd", "norm": 1}, "norm must be"),
    ],
)
def test_scores_raise_clear_errors(kwargs, match):
    X, y = _data(2)
    clf = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match=match):
        robust_accuracy_score(clf, X, y, **kwargs)
    if "norm" not in kwargs:
        with pytest.raises(ValueError, match=match):
            make_adversarial_scorer(**kwargs)
    with pytest.raises(ValueError, match="metric"):
        make_adversarial_scorer(metric="no_such_metric")


def test_scorer_pickle_and_repr():
    scale = np.ones(5)
    scorer = make_adversarial_scorer(
        attack="pgd", eps=0.2, n_iter=5, random_state=0, feature_scale=scale
    )
    text = repr(scorer)
    assert text.startswith("make_adversarial_scorer(attack='pgd', eps=0.2")
    assert scorer.unit == "custom units (feature_scale)"
    default = make_adversarial_scorer(eps=0.1)
    assert repr(default) == (
        "make_adversarial_scorer(attack='fgsm', eps=0.1, feature_scale='std', "
        "metric='accuracy')"
    )
    assert default.unit == "standard deviations"
    assert make_adversarial_scorer(feature_scale=1).unit == "raw units"
    assert "n_iter=5" in text and "feature_scale=<array of shape (5,)>" in text
    X, y = _data(2)
    clf = LogisticRegression().fit(X, y)
    clone = pickle.loads(pickle.dumps(scorer))
    assert clone(clf, X, y) == scorer(clf, X, y)
    assert scorer(clf, X, y) == robust_accuracy_score(
        clf, X, y, attack="pgd", eps=0.2, n_iter=5, random_state=0, feature_scale=scale
    )


def test_scorer_other_metrics_and_sample_weight():
    X, y = _data(3, n_samples=90)
    clf = LogisticRegression().fit(X, y)
    weights = np.linspace(0.5, 1.5, len(y))
    for metric in ("balanced_accuracy", "neg_log_loss"):
        robust = make_adversarial_scorer(eps=0.3, metric=metric)(clf, X, y)
        clean = make_adversarial_scorer(eps=0.0, metric=metric)(clf, X, y)
        assert robust < clean
    scorer = make_adversarial_scorer(eps=0.3)
    assert scorer(clf, X, y, sample_weight=weights) == pytest.approx(
        robust_accuracy_score(clf, X, y, eps=0.3, sample_weight=weights)
    )


def test_grid_search_clean_and_robust_refit_robust():
    X, y = make_moons(n_samples=120, noise=0.25, random_state=0)
    robust = make_adversarial_scorer(eps=0.15)
    base = MixupLogisticRegression if MixupLogisticRegression else LogisticRegression
    search = GridSearchCV(
        base(),
        {"C": [0.01, 1.0, 100.0]},
        scoring={"clean": "accuracy", "robust": robust},
        refit="robust",
        cv=3,
        n_jobs=2,
    )
    search.fit(X, y)
    results = search.cv_results_
    assert np.all(results["mean_test_robust"] <= results["mean_test_clean"])
    assert search.best_index_ == np.argmax(results["mean_test_robust"])
    assert search.best_score_ == results["mean_test_robust"][search.best_index_]


def test_cross_validate_with_pipeline_and_scorer():
    X, y = _data(2, n_samples=90)
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    scoring = {
        "clean": "accuracy",
        "robust": make_adversarial_scorer(attack="exact", eps=0.1),
        "fgsm": make_adversarial_scorer(eps=0.1),
    }
    scores = cross_validate(pipe, X, y, cv=3, scoring=scoring)
    assert_allclose(scores["test_robust"], scores["test_fgsm"])
    assert np.all(scores["test_robust"] <= scores["test_clean"])


def test_scorer_metadata_routing_of_sample_weight():
    import sklearn
    from sklearn.exceptions import UnsetMetadataPassedError
    from sklearn.model_selection import KFold

    X, y = _data(2, n_samples=90)
    weights = np.random.default_rng(0).uniform(0.1, 2.0, len(y))
    cv = KFold(3)
    with sklearn.config_context(enable_metadata_routing=True):
        est = LogisticRegression().set_fit_request(sample_weight=False)
        scorer = make_adversarial_scorer(eps=0.3)
        # Routed but not requested: an error, as for scikit-learn's scorers (its
        # message names the scorer from scikit-learn 1.7 on).
        with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
            cross_validate(
                est, X, y, cv=cv, scoring=scorer, params={"sample_weight": weights}
            )
        scorer.set_score_request(sample_weight=True)
        routed = cross_validate(
            est, X, y, cv=cv, scoring=scorer, params={"sample_weight": weights}
        )["test_score"]
        # The request survives pickling (n_jobs > 1 ships scorers to workers).
        assert pickle.loads(pickle.dumps(scorer)).get_metadata_routing().score.requests
    expected = []
    for train, test in cv.split(X):
        clf = LogisticRegression().fit(X[train], y[train])
        expected.append(
            robust_accuracy_score(
                clf, X[test], y[test], eps=0.3, sample_weight=weights[test]
            )
        )
    assert_allclose(routed, expected)
    unweighted = cross_validate(LogisticRegression(), X, y, cv=cv, scoring=scorer)
    assert not np.allclose(unweighted["test_score"], expected)
    with pytest.raises(RuntimeError, match="metadata routing is enabled"):
        make_adversarial_scorer().set_score_request(sample_weight=True)


# --------------------------------------------------------------------------------------
# RobustnessCurveDisplay
# --------------------------------------------------------------------------------------


@pytest.fixture
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


@pytest.mark.parametrize("attack", ["fgsm", "pgd", "exact"])
def test_robustness_curve_display(pyplot, attack):
    X, y = _data(2, n_samples=80)
    clf = LogisticRegression().fit(X, y)
    eps = [0.0, 0.1, 0.3]
    params = {"random_state": 0} if attack == "pgd" else {}
    display = RobustnessCurveDisplay.from_estimator(
        clf, X, y, eps=eps, attack=attack, attack_params=params
    )
    expected = [
        robust_accuracy_score(clf, X, y, attack=attack, eps=e, **params) for e in eps
    ]
    assert_allclose(display.eps, eps)
    assert_allclose(display.accuracy, expected)
    assert display.accuracy[0] == clf.score(X, y)
    assert display.line_.get_label() == "LogisticRegression"
    assert display.ax_.get_ylabel() == "Robust accuracy"
    assert display.figure_ is display.ax_.figure


def test_robustness_curve_display_on_given_axes(pyplot):
    X, y = _data(2, n_samples=80)
    clf = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    fig, ax = pyplot.subplots()
    display = RobustnessCurveDisplay.from_estimator(
        clf,
        X,
        y,
        eps=[0.0, 0.5],
        ax=ax,
        name="scaled",
        attack_params={"feature_scale": X.std(axis=0), "norm": 2},
        color="red",
    )
    assert display.ax_ is ax and display.figure_ is fig
    assert display.ax_.get_xlabel() == "eps (fgsm), in custom units (feature_scale)"
    assert display.line_.get_label() == "scaled"
    assert display.line_.get_color() == "red"
    display.plot(name="again")  # new axes
    assert display.ax_ is not ax
    with pytest.raises(ValueError, match="eps must be"):
        RobustnessCurveDisplay.from_estimator(clf, X, y, eps=[0.1, -1.0])


def test_robustness_curve_display_without_matplotlib_attacks_nothing(monkeypatch):
    import sys

    from skmixup.metrics import _display

    X, y = _data(2, n_samples=40)
    clf = LogisticRegression().fit(X, y)

    def no_attack(*args, **kwargs):
        raise AssertionError("attacked before checking for matplotlib")

    monkeypatch.setattr(_display, "fgsm_path", no_attack)
    monkeypatch.setattr(_display, "attacked", no_attack)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    for attack in ("fgsm", "pgd"):
        with pytest.raises(ImportError, match=r'pip install "skmixup\[plot\]"'):
            RobustnessCurveDisplay.from_estimator(clf, X, y, attack=attack)


def test_linear_models_are_known_by_their_declaration_not_their_module():
    # skmixup's linear models declare that predict_proba is the sigmoid/softmax of
    # their logits (``_proba_from_decision``); a module name proves nothing.
    from skmixup.linear_model import (
        MixupLogisticRegression,
        MixupRegularizedLogisticRegression,
    )
    from skmixup.metrics._models import is_linear_proba_model

    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    for cls in (MixupLogisticRegression, MixupRegularizedLogisticRegression):
        assert is_linear_proba_model(cls(max_iter=20).fit(X, y))

    class Declared(ClassifierMixin, BaseEstimator):
        _proba_from_decision = True
        coef_ = np.zeros((1, 4))

    class Impostor(ClassifierMixin, BaseEstimator):
        coef_ = np.zeros((1, 4))

    Impostor.__module__ = "skmixup.linear_model._impostor"
    assert is_linear_proba_model(Declared())
    assert not is_linear_proba_model(Impostor())
