"""skmixup.metrics.expected_calibration_error and ReliabilityDisplay."""

import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.calibration import calibration_curve
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine, make_classification
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skmixup.linear_model import MixupLogisticRegression
from skmixup.metrics import ReliabilityDisplay, expected_calibration_error


def test_hand_computation_multiclass_string_labels():
    # columns: ant, bee, cat (sorted labels); 4 bins of width 0.25
    y_prob = np.array(
        [
            [0.9, 0.05, 0.05],  # conf 0.9 -> bin (0.75, 1], predicts ant: right
            [0.1, 0.8, 0.1],  # 0.8 -> (0.75, 1], bee, true cat: wrong
            [0.3, 0.6, 0.1],  # 0.6 -> (0.5, 0.75], bee: right
            [0.2, 0.2, 0.6],  # 0.6 -> (0.5, 0.75], cat, true ant: wrong
            [0.4, 0.35, 0.25],  # 0.4 -> (0.25, 0.5], ant: right
        ]
    )
    y_true = np.array(["ant", "cat", "bee", "ant", "ant"])
    # bin (0.75, 1]: 1 right of 2, confidence sum 1.7; (0.5, 0.75]: 1 of 2, 1.2;
    # (0.25, 0.5]: 1 of 1, 0.4
    expected = (abs(1 - 1.7) + abs(1 - 1.2) + abs(1 - 0.4)) / 5
    assert expected_calibration_error(y_true, y_prob, n_bins=4) == pytest.approx(
        expected
    )
    # one bin: |accuracy - mean confidence|
    assert expected_calibration_error(y_true, y_prob, n_bins=1) == pytest.approx(
        abs(3 / 5 - (0.9 + 0.8 + 0.6 + 0.6 + 0.4) / 5)
    )


def _binary_predictions(n=1000, seed=0):
    X, y = make_classification(n_samples=2 * n, n_features=6, random_state=seed)
    clf = LogisticRegression().fit(X[:n], y[:n])
    return y[n:], clf.predict_proba(X[n:])


def _ece_from_curve(y, p, n_bins, strategy):
    """ECE from calibration_curve's per-bin means and the bins' counts."""
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    if strategy == "uniform":
        edges = np.linspace(0, 1, n_bins + 1)
    else:
        edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
    counts, _ = np.histogram(p, bins=edges)  # no value lies on an inner edge
    counts = counts[counts > 0]
    return float(np.sum(counts / len(p) * np.abs(prob_true - prob_pred)))


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_binary_top_label_matches_calibration_curve(strategy):
    # When every prediction is the positive class, the top-label confidence is
    # the positive-class probability: scikit-learn's binary calibration curve.
    y, proba = _binary_predictions()
    keep = proba[:, 1] >= 0.5
    y, p = y[keep], proba[keep, 1]
    ece = expected_calibration_error(y, p, n_bins=5, strategy=strategy)
    assert ece == pytest.approx(_ece_from_curve(y, p, 5, strategy), abs=1e-12)
    assert ece > 0


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_top_label_is_the_calibration_curve_of_correctness(strategy):
    # Any number of classes: the binary curve of (prediction correct, confidence).
    X, y = load_wine(return_X_y=True)
    proba = (
        make_pipeline(StandardScaler(), LogisticRegression(C=0.05))
        .fit(X[::2], y[::2])
        .predict_proba(X[1::2])
    )
    y_test = y[1::2]  # 89 samples: with 3 bins no percentile is a data point
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_test).astype(int)
    expected = _ece_from_curve(correct, confidence, 3, strategy)
    ece = expected_calibration_error(y_test, proba, n_bins=3, strategy=strategy)
    assert ece == pytest.approx(expected, abs=1e-12)
    display = ReliabilityDisplay.from_predictions(
        y_test, proba, n_bins=3, strategy=strategy
    )
    prob_true, prob_pred = calibration_curve(
        correct, confidence, n_bins=3, strategy=strategy
    )
    np.testing.assert_allclose(display.prob_true, prob_true)
    np.testing.assert_allclose(display.prob_pred, prob_pred)
    assert display.bin_count.sum() == len(y_test)
    assert display.ece == pytest.approx(ece)
    import matplotlib.pyplot as plt

    plt.close(display.figure_)


def test_one_d_binary_probabilities_are_the_second_label():
    y, proba = _binary_predictions(n=200)
    labels = np.array(["no", "yes"])[y]
    assert expected_calibration_error(labels, proba[:, 1]) == pytest.approx(
        expected_calibration_error(labels, proba)
    )


def test_sample_weight_is_repetition():
    y, proba = _binary_predictions(n=100)
    w = np.random.RandomState(0).randint(0, 4, len(y))
    repeated = expected_calibration_error(np.repeat(y, w), np.repeat(proba, w, axis=0))
    assert expected_calibration_error(y, proba, sample_weight=w) == pytest.approx(
        repeated
    )


def test_labels_when_a_test_set_lacks_a_class():
    y_prob = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    y_true = ["a", "c"]  # no "b": the sorted labels of y_true are two
    with pytest.raises(ValueError, match="3 columns but there are 2 labels"):
        expected_calibration_error(y_true, y_prob)
    ece = expected_calibration_error(y_true, y_prob, labels=["a", "b", "c"])
    assert ece == pytest.approx((0.3 + 0.4) / 2)


@pytest.mark.parametrize(
    "kwargs, y_prob, match",
    [
        ({"n_bins": 0}, [0.2, 0.7], "n_bins must be an integer >= 1"),
        ({"strategy": "equal"}, [0.2, 0.7], "strategy must be 'uniform' or"),
        ({}, [0.2, 1.7], r"probabilities: finite, in \[0, 1\]"),
        ({}, [0.2, np.nan], r"probabilities: finite, in \[0, 1\]"),
        ({"labels": [0, 1, 2]}, [0.2, 0.7], "second of two labels"),
        ({"labels": [1, 2]}, [0.2, 0.7], r"labels not in labels \[1, 2\]: \[0\]"),
    ],
)
def test_errors(kwargs, y_prob, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error([0, 1], y_prob, **kwargs)


@settings(max_examples=50, deadline=None)
@given(
    arrays(np.float64, (20, 3), elements=st.floats(0.01, 1.0)),
    st.integers(1, 15),
    st.sampled_from(["uniform", "quantile"]),
)
def test_ece_is_between_zero_and_one_and_one_bin_is_the_mean_gap(raw, n_bins, how):
    proba = raw / raw.sum(axis=1, keepdims=True)
    y = np.arange(20) % 3
    ece = expected_calibration_error(y, proba, n_bins=n_bins, strategy=how)
    assert 0 <= ece <= 1
    one = expected_calibration_error(y, proba, n_bins=1)
    correct = proba.argmax(axis=1) == y
    assert one == pytest.approx(abs(correct.mean() - proba.max(axis=1).mean()))
    assert ece >= one - 1e-12  # splitting bins never lowers the binned gap


def _mixed_frame(n=240, seed=0):
    rng = np.random.RandomState(seed)
    df = pd.DataFrame(
        {
            "age": rng.randint(18, 80, n).astype(float),
            "income": pd.array(rng.lognormal(3, 0.5, n), dtype="Float64"),
            "visits": pd.array(rng.randint(0, 9, n), dtype="Int64"),
            "member": pd.array(rng.rand(n) > 0.5, dtype="boolean"),
            "city": pd.Categorical(rng.choice(["north", "south", "east"], n)),
            "note": pd.array(rng.choice(["a b", "c", "d e f"], n), dtype="string"),
        }
    )
    df.loc[rng.rand(n) < 0.15, "age"] = np.nan
    df.loc[rng.rand(n) < 0.1, "income"] = pd.NA
    df.loc[rng.rand(n) < 0.1, "member"] = pd.NA
    signal = (df["age"].fillna(50) - 50) / 15 + (df["city"] == "north") * 1.0
    y = np.where(signal + 0.5 * rng.randn(n) > 0, "yes", "no")
    return df, y


def _mixed_pipeline(clf):
    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    encode = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    pre = ColumnTransformer(
        [
            # nullable Float64/Int64/boolean: pd.NA becomes NaN, then imputed
            ("num", numeric, ["age", "income", "visits", "member"]),
            ("cat", encode, ["city", "note"]),
        ]
    )
    return make_pipeline(pre, clf)


def test_scorer_in_a_grid_search_on_a_mixed_dataframe():
    X, y = _mixed_frame()
    ece_scorer = make_scorer(
        expected_calibration_error,
        greater_is_better=False,
        response_method="predict_proba",
    )
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(
        _mixed_pipeline(MixupLogisticRegression(random_state=0)),
        {"mixuplogisticregression__mixup_alpha": [0.2, 4.0]},
        scoring={"accuracy": "accuracy", "ece": ece_scorer},
        refit="accuracy",
        cv=cv,
    ).fit(X, y)
    # the scores are minus the ECE of predict_proba on each held-out fold
    train, test = next(cv.split(X, y))
    model = search.estimator.set_params(mixuplogisticregression__mixup_alpha=4.0)
    model.fit(X.iloc[train], y[train])
    ece = expected_calibration_error(y[test], model.predict_proba(X.iloc[test]))
    assert search.cv_results_["split0_test_ece"][1] == pytest.approx(-ece)
    assert ece > 0
    display = ReliabilityDisplay.from_estimator(search.best_estimator_, X, y)
    assert display.estimator_name == "Pipeline"
    assert display.bin_count.sum() == len(y)
    texts = [t.get_text() for t in display.ax_.texts]
    assert texts == [f"{n:g}" for n in display.bin_count]  # counts shown
    legend = [line.get_label() for line in display.ax_.get_lines()]
    assert legend == ["perfectly calibrated", f"Pipeline: ECE {display.ece:.3f}"]
    import matplotlib.pyplot as plt

    plt.close(display.figure_)


def test_display_without_matplotlib_fails_before_predicting(monkeypatch):
    class Model:
        classes_ = np.array([0, 1])

        def fit(self):  # check_is_fitted looks for fit and a fitted attribute
            return self

        def predict_proba(self, X):
            raise AssertionError("predicted before checking for matplotlib")

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "skmixup\[plot\]"'):
        ReliabilityDisplay.from_estimator(Model(), np.zeros((2, 1)), [0, 1])
    # the metric itself needs no matplotlib
    assert expected_calibration_error([0, 1], [0.2, 0.7]) == pytest.approx(0.25)
