"""certify on random forests and extra trees (Kantchelian et al.'s MILP)."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine, make_blobs, make_moons
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixup.metrics import certify, robust_accuracy_score


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_one_tree_forest_equals_the_single_tree(cancer, kind, eps):
    X, y = cancer
    forest = kind(n_estimators=1, bootstrap=False, max_depth=6, random_state=0)
    forest.fit(X, y)
    tree = forest.estimators_[0]
    a = certify(forest, X[:80], y[:80], eps=eps)
    b = certify(tree, X[:80], y[:80], eps=eps)
    # leaves at depth 6 may hold ties, which the forest leaves unknown
    tie = a.unknown
    assert tie.sum() <= 2
    np.testing.assert_array_equal(a.status[~tie], b.status[~tie])
    assert b.status[tie].tolist() == ["certified"] * int(tie.sum())


def _box_grid(x, r, clip, n=61):
    axes = [
        np.linspace(max(x[j] - r[j], clip[0][j]), min(x[j] + r[j], clip[1][j]), n)
        for j in range(2)
    ]
    g = np.meshgrid(*axes)
    return np.column_stack([g[0].ravel(), g[1].ravel()])


@pytest.mark.parametrize(
    "kind, n_classes",
    [
        (RandomForestClassifier, 2),
        (ExtraTreesClassifier, 2),
        (RandomForestClassifier, 3),
        (ExtraTreesClassifier, 3),
    ],
)
def test_verdicts_match_brute_force_on_two_features(kind, n_classes):
    if n_classes == 2:
        X, y = make_moons(n_samples=80, noise=0.3, random_state=0)
    else:
        X, y = make_blobs(n_samples=90, centers=3, cluster_std=1.5, random_state=0)
    forest = kind(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    X, y = X[:30], y[:30]
    scale = X.std(axis=0)
    eps = 0.3
    clip = (X.min(axis=0), X.max(axis=0))
    result = certify(forest, X, y, eps=eps, clip=clip)
    r = eps * scale
    assert result.certified.any() and result.attacked.any()
    for i in range(len(X)):
        grid = _box_grid(X[i], r, clip)
        wrong = forest.predict(grid) != y[i]
        if result.certified[i]:
            assert not wrong.any()
        if wrong.any():
            assert not result.certified[i]
        if result.attacked[i]:
            x_adv = result.X_adv[i]
            assert np.all(np.abs(x_adv - X[i]) <= r * (1 + 1e-9))
            assert np.all(x_adv >= clip[0]) and np.all(x_adv <= clip[1])
            assert forest.predict(x_adv[None])[0] != y[i]
    # unknown only on ties (predict breaks them by the first class)
    assert result.unknown.sum() <= 2


def test_certified_at_most_square_on_breast_cancer(cancer):
    X, y = cancer
    forest = RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0)
    forest.fit(X, y)
    Xs, ys = X[:40], y[:40]
    result = certify(forest, Xs, ys, eps=0.3)
    assert not result.unknown.any()
    square = robust_accuracy_score(
        forest, Xs, ys, attack="square", eps=0.3, random_state=0
    )
    assert result.certified_accuracy() <= square
    assert result.certified_accuracy() < forest.score(Xs, ys)
    adv = result.X_adv[result.attacked]
    assert np.all(forest.predict(adv) != ys[result.attacked])
    assert np.all(np.abs(result.X_adv - Xs) <= 0.3 * Xs.std(axis=0) * (1 + 1e-9))


def test_multiclass_wine_counterexamples_and_pipeline_with_scaler():
    X, y = load_wine(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(),
        RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0),
    ).fit(X, y)
    forest = pipe[-1]
    Xs, ys = X[::5], y[::5]
    result = certify(pipe, Xs, ys, eps=0.3, feature_scale=1.0)
    assert result.certified.any() and result.attacked.any()
    assert not result.unknown.any()
    assert np.all(pipe.predict(result.X_adv[result.attacked]) != ys[result.attacked])
    # the same forest on the scaled data, with the ball mapped through the scaler
    scaler = pipe[0]
    bare = certify(
        forest, scaler.transform(Xs), ys, eps=0.3, feature_scale=1.0 / scaler.scale_
    )
    np.testing.assert_array_equal(result.status, bare.status)


def test_mixed_frame_immutable_encoded_columns_and_fixed_missing():
    from conftest import mixed_table, mixed_table_preprocessor

    X, y = mixed_table(n=120, n_classes=3)
    pipe = make_pipeline(
        mixed_table_preprocessor(text=False),
        RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0),
    ).fit(X, y)
    result = certify(pipe, X, y, eps=0.5)
    assert result.certified.any() and result.attacked.any()
    assert not result.unknown.any()
    adv = result.X_adv
    assert adv["city"].equals(X["city"])
    assert adv["kind"].equals(X["kind"])
    assert adv["income"].isna().equals(X["income"].isna())
    attacked = result.attacked
    assert np.all(pipe.predict(adv[attacked]) != y[attacked])
    square = robust_accuracy_score(
        pipe, X, y, attack="square", eps=0.5, n_queries=50, random_state=0
    )
    assert result.certified_accuracy() <= square


def test_time_limit_leaves_unknown_and_l2_is_refused(cancer):
    X, y = cancer
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    forest.fit(X, y)
    result = certify(forest, X[:20], y[:20], eps=0.3, time_limit=1e-9)
    clean_wrong = forest.predict(X[:20]) != y[:20]
    assert np.all(result.unknown == ~clean_wrong)
    with pytest.raises(ValueError, match="norm='inf' only"):
        certify(forest, X[:5], y[:5], eps=0.3, norm=2)


def test_exact_attack_on_a_forest_uses_the_milp(cancer):
    X, y = cancer
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    forest.fit(X, y)
    Xs, ys = X[:30], y[:30]
    result = certify(forest, Xs, ys, eps=0.3)
    exact = robust_accuracy_score(forest, Xs, ys, attack="exact", eps=0.3)
    assert exact == result.attacked_accuracy() == result.certified_accuracy()
    assert exact < forest.score(Xs, ys)
    with pytest.raises(ValueError, match="norm='inf' only"):
        robust_accuracy_score(forest, Xs, ys, attack="exact", eps=0.3, norm=2)


@pytest.mark.parametrize("kind", [RandomForestClassifier, ExtraTreesClassifier])
def test_missing_values_stay_fixed_and_take_the_trees_nan_branch(kind):
    X, y = make_moons(n_samples=120, noise=0.3, random_state=1)
    rng = np.random.RandomState(0)
    X[rng.rand(len(X)) < 0.25, 0] = np.nan
    forest = kind(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    X, y = X[:40], y[:40]
    eps = 0.3
    r = eps * np.nanstd(X, axis=0)
    result = certify(forest, X, y, eps=eps)
    assert np.isnan(X[:, 0]).sum() >= 5
    assert result.certified.any() and result.attacked.any()
    np.testing.assert_array_equal(np.isnan(result.X_adv), np.isnan(X))
    for i in range(len(X)):
        axes = [
            [x] if np.isnan(x) else np.linspace(x - r[j], x + r[j], 81)
            for j, x in enumerate(X[i])
        ]
        g = np.meshgrid(*axes)
        grid = np.column_stack([g[0].ravel(), g[1].ravel()])
        wrong = forest.predict(grid) != y[i]
        if result.certified[i]:
            assert not wrong.any()
        if wrong.any():
            assert not result.certified[i]
    adv = result.X_adv[result.attacked]
    assert np.all(forest.predict(adv) != y[result.attacked])
    assert result.unknown.sum() <= 2
