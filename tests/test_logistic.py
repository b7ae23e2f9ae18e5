"""Behaviour of MixupLogisticRegression (its plan and backends: test_plan.py)."""

import pickle
import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from conftest import linear_data as _data
from conftest import mixed_table, mixed_table_preprocessor
from skmixup.linear_model import (
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
)
from skmixup.linear_model._loss import MixupLoss
from skmixup.linear_model._plan import MixupPlan
from skmixup.theory import mixup_loss


# -------------------------------------------------------------- the estimator
def test_tiny_alpha_reproduces_sklearn_logistic_regression():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    ours = MixupLogisticRegression(mixup_alpha=1e-5, C=0.5, tol=1e-8, random_state=0)
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000)
    ours.fit(X, y)
    ref.fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-4)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=2e-4)


def test_alpha_beta_symmetry():
    X, y = _data(K=3)
    c1 = MixupLogisticRegression(
        mixup_alpha=5.0, mixup_beta=0.5, random_state=4, tol=1e-8
    )
    c2 = MixupLogisticRegression(
        mixup_alpha=0.5, mixup_beta=5.0, random_state=4, tol=1e-8
    )
    np.testing.assert_allclose(c1.fit(X, y).coef_, c2.fit(X, y).coef_, atol=1e-6)


def test_mixup_shrinks_and_softens_compared_with_erm():
    X, y = _data(n=200, K=3, seed=2)
    erm = MixupLogisticRegression(mixup_alpha=1e-6, C=np.inf, random_state=0).fit(X, y)
    mix = MixupLogisticRegression(mixup_alpha=1.0, C=np.inf, random_state=0).fit(X, y)
    assert np.linalg.norm(mix.coef_) < 0.8 * np.linalg.norm(erm.coef_)
    # soft labels: Mixup predictions are less confident on the training set
    assert (
        mix.predict_proba(X).max(axis=1).mean()
        < erm.predict_proba(X).max(axis=1).mean()
    )


def test_separable_breast_cancer_mixup_is_finite_with_smaller_norm():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    mix = MixupLogisticRegression(C=np.inf, random_state=0).fit(X, y)
    assert np.all(np.isfinite(mix.coef_))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        erm = LogisticRegression(C=1e4, max_iter=5000).fit(X, y)
    assert np.linalg.norm(mix.coef_) < 0.5 * np.linalg.norm(erm.coef_)
    assert mix.score(X, y) > 0.95


def test_fitted_coef_minimises_the_objective():
    X, y = _data(n=50, K=3)
    clf = MixupLogisticRegression(n_partners="all", C=np.inf, tol=1e-9).fit(X, y)
    best = clf.mixup_loss(X, y)
    rng = np.random.RandomState(0)
    for _ in range(5):
        other = clone(clf).set_params(warm_start=True)
        other.coef_ = clf.coef_ + 1e-2 * rng.randn(*clf.coef_.shape)
        other.intercept_ = clf.intercept_.copy()
        other.classes_ = clf.classes_
        other.n_features_in_ = clf.n_features_in_
        assert other.mixup_loss(X, y) > best


def test_same_seed_same_coef_and_different_seed_differs():
    X, y = _data(n=80, K=3)
    c1 = MixupLogisticRegression(n_partners=4, random_state=7).fit(X, y).coef_
    c2 = MixupLogisticRegression(n_partners=4, random_state=7).fit(X, y).coef_
    c3 = MixupLogisticRegression(n_partners=4, random_state=8).fit(X, y).coef_
    np.testing.assert_array_equal(c1, c2)
    assert not np.allclose(c1, c3)


def test_default_is_exact_on_small_data_whatever_the_seed():
    # n_partners="auto" sums over all pairs within its work budget: the fit is
    # the minimiser of Eq. (1) itself, so the seed does not matter.
    X, y = _data(n=80, K=3)
    c1 = MixupLogisticRegression(random_state=7).fit(X, y).coef_
    c2 = MixupLogisticRegression(random_state=8).fit(X, y).coef_
    c3 = MixupLogisticRegression(n_partners="all", random_state=9).fit(X, y).coef_
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(c1, c3)


@pytest.mark.parametrize("K", [2, 3])
def test_float32_stays_float32_and_matches_float64(K):
    X, y = _data(n=100, K=K)
    c64 = MixupLogisticRegression(random_state=0, tol=1e-6).fit(X, y)
    c32 = MixupLogisticRegression(random_state=0, tol=1e-6).fit(X.astype(np.float32), y)
    assert c32.coef_.dtype == np.float32 and c32.intercept_.dtype == np.float32
    assert c64.coef_.dtype == np.float64
    np.testing.assert_allclose(c32.coef_, c64.coef_, atol=1e-3)


@pytest.mark.parametrize("K", [2, 3])
def test_sparse_equals_dense(K):
    X, y = _data(n=80, K=K)
    X[np.abs(X) < 0.5] = 0
    dense = MixupLogisticRegression(random_state=1, tol=1e-8).fit(X, y)
    sp = MixupLogisticRegression(random_state=1, tol=1e-8).fit(sparse.csr_matrix(X), y)
    np.testing.assert_allclose(sp.coef_, dense.coef_, atol=1e-6)
    np.testing.assert_allclose(
        sp.predict_proba(sparse.csr_matrix(X)), dense.predict_proba(X), atol=1e-6
    )


def test_integer_weights_equal_repetition_with_all_pairs():
    # With n_partners="all" the objective is the expectation over partner draws, and
    # a weight of k is exactly k copies of the row.
    X, y = _data(n=30, K=3)
    w = np.random.RandomState(0).randint(0, 3, size=30)
    params = dict(n_partners="all", tol=1e-9, C=2.0)
    weighted = MixupLogisticRegression(**params).fit(X, y, sample_weight=w)
    repeated = MixupLogisticRegression(**params).fit(
        np.repeat(X, w, 0), np.repeat(y, w)
    )
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-6)


def test_weights_equal_repetition_in_expectation_over_seeds():
    X, y = _data(n=40, K=2)
    w = np.r_[np.full(20, 2), np.ones(20)].astype(int)
    mean_w = np.mean(
        [
            MixupLogisticRegression(n_partners=2, random_state=s)
            .fit(X, y, sample_weight=w)
            .coef_
            for s in range(20)
        ],
        axis=0,
    )
    mean_r = np.mean(
        [
            MixupLogisticRegression(n_partners=2, random_state=s)
            .fit(np.repeat(X, w, 0), np.repeat(y, w))
            .coef_
            for s in range(20)
        ],
        axis=0,
    )
    exact = MixupLogisticRegression(n_partners="all").fit(X, y, sample_weight=w).coef_
    scale = np.linalg.norm(exact)
    assert np.linalg.norm(mean_w - exact) < 0.05 * scale
    assert np.linalg.norm(mean_r - exact) < 0.05 * scale


def test_class_weight_balanced_moves_the_boundary():
    X, y = _data(n=120, K=2)
    keep = (y == 1) | (np.arange(len(y)) % 4 == 0)
    X, y = X[keep], y[keep]
    plain = MixupLogisticRegression(random_state=0).fit(X, y)
    bal = MixupLogisticRegression(class_weight="balanced", random_state=0).fit(X, y)
    assert (bal.predict(X) == 0).sum() > (plain.predict(X) == 0).sum()


def test_predict_proba_is_consistent():
    X, y = _data(n=90, K=3)
    clf = MixupLogisticRegression(random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_allclose(np.log(proba), clf.predict_log_proba(X), atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], clf.predict(X))


def test_string_labels_and_pickle():
    X, y = _data(n=60, K=2)
    labels = np.array(["no", "yes"])[y]
    clf = MixupLogisticRegression(random_state=0).fit(X, labels)
    assert set(clf.predict(X)) <= {"no", "yes"}
    clone_ = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone_.predict_proba(X), clf.predict_proba(X))


def test_max_iter_warns():
    X, y = _data(n=60, K=3)
    with pytest.warns(ConvergenceWarning, match="max_iter=2") as record:
        MixupLogisticRegression(max_iter=2, tol=1e-12, random_state=0).fit(X, y)
    # The warning points at the caller's line, not into scikit-learn or skmixup.
    assert record[0].filename == __file__


def test_abnormal_solver_stop_warns_like_sklearn():
    # Features scaled by 1e50: L-BFGS-B's line search fails at once (status 2)
    # and returns the starting point; scikit-learn's LogisticRegression warns
    # there, and so must we, instead of returning zeros silently.
    X, y = _data(n=60, K=3)
    with pytest.warns(ConvergenceWarning) as sk_record:
        LogisticRegression().fit(X * 1e50, y)
    assert any("status=2" in str(w.message) for w in sk_record)
    for est in (MixupLogisticRegression(), MixupRegularizedLogisticRegression()):
        with pytest.warns(ConvergenceWarning, match="status=2") as record:
            est.fit(X * 1e50, y)
        assert record[0].filename == __file__
        assert est.n_iter_.shape == (1,)


def test_n_iter_has_sklearn_shape():
    X, y = _data(n=60, K=3)
    for K_y in (y, y % 2):
        ours = MixupLogisticRegression().fit(X, K_y)
        ref = LogisticRegression().fit(X, K_y)
        assert ours.n_iter_.shape == ref.n_iter_.shape == (1,)
        assert ours.n_iter_.dtype == ref.n_iter_.dtype
    streamed = MixupLogisticRegression().partial_fit(X, y, classes=[0, 1, 2])
    assert streamed.n_iter_.shape == (1,)


@pytest.mark.parametrize("K", [2, 3])
def test_sparsify_and_densify(K):
    X, y = _data(n=60, K=K)
    clf = MixupLogisticRegression(C=0.05).fit(X, y)
    dense_proba = clf.predict_proba(X)
    dense_loss = clf.mixup_loss(X, y)
    clf.sparsify()
    assert sparse.issparse(clf.coef_)
    np.testing.assert_allclose(clf.predict_proba(X), dense_proba)
    assert clf.mixup_loss(X, y) == pytest.approx(dense_loss, rel=1e-12)
    clf.set_params(warm_start=True).fit(X, y)  # warm start from a sparse coef_
    assert isinstance(clf.coef_, np.ndarray)
    clf.sparsify().densify()
    assert isinstance(clf.coef_, np.ndarray)


def test_mixup_loss_is_the_training_objective_with_sampled_partners():
    # Above the all-pairs budget the plan samples partner blocks; the
    # estimator's mixup_loss must rebuild the very plan of fit (same seed), so
    # that it reports the objective that fit minimised (ridge excluded).

    X, y = _data(n=2100, d=5, K=3)
    clf = MixupLogisticRegression(n_partners=6, random_state=3, C=np.inf).fit(X, y)
    plan = MixupPlan.build(
        np.ones(len(y)),
        mixup_alpha=1.0,
        n_partners=6,
        random_state=np.random.RandomState(3),
    )
    loss = MixupLoss(3, 5, True, plan)
    coef = np.concatenate([clf.coef_.ravel(), clf.intercept_])
    expected = loss.loss(coef, X, np.eye(3)[y], None)
    assert clf.mixup_loss(X, y) == pytest.approx(expected, rel=1e-12)
    # theory.mixup_loss with the estimator's settings is the same number.
    theory = mixup_loss(
        clf,
        X,
        y,
        mixup_alpha=1.0,
        n_partners=6,
        n_quadrature="auto",
        method="pairs",
        random_state=3,
    )
    assert theory == pytest.approx(expected, rel=1e-12)


def test_estimator_mixup_loss_does_not_call_up_into_theory(monkeypatch):
    import skmixup.theory

    def forbidden(*args, **kwargs):
        raise AssertionError("the estimator called skmixup.theory.mixup_loss")

    monkeypatch.setattr(skmixup.theory, "mixup_loss", forbidden)
    X, y = _data(n=30, K=2)
    for est in (MixupLogisticRegression(), MixupRegularizedLogisticRegression()):
        assert np.isfinite(est.fit(X, y).mixup_loss(X, y))


def test_max_iter_zero_returns_the_starting_point():
    X, y = _data(n=60, K=3)
    clf = MixupLogisticRegression(random_state=0).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="max_iter=0"):
        clf.set_params(max_iter=0, warm_start=True).fit(X, y)
    assert clf.n_iter_ == 0
    with pytest.warns(ConvergenceWarning):
        cold = MixupLogisticRegression(max_iter=0).fit(X, y)
    assert not np.any(cold.coef_)


def test_warm_start_starts_from_the_previous_solution():
    X, y = _data(n=60, K=3)
    clf = MixupLogisticRegression(random_state=0, tol=1e-6).fit(X, y)
    clf.set_params(warm_start=True)
    assert clf.fit(X, y).n_iter_ <= 2


def test_partial_fit_streams_towards_the_fit():
    X, y = _data(n=600, K=3, seed=3)
    # C=inf: both minimise the same objective, whatever the samples seen.
    full = MixupLogisticRegression(C=np.inf, random_state=0).fit(X, y)
    stream = MixupLogisticRegression(C=np.inf, random_state=0)
    ref = np.concatenate([full.coef_.ravel(), full.intercept_])
    losses, distances = [], []
    for _epoch in range(20):
        for chunk in np.array_split(np.arange(600), 6):
            stream.partial_fit(X[chunk], y[chunk], classes=np.unique(y))
        losses.append(stream.mixup_loss(X[:300], y[:300]))
        coef = np.concatenate([stream.coef_.ravel(), stream.intercept_])
        distances.append(np.linalg.norm(coef - ref) / np.linalg.norm(ref))
    assert losses[-1] < losses[0]
    # The averaged iterates approach the fit's coefficients pass after pass.
    assert distances[-1] < distances[9] < distances[1] < distances[0]
    assert distances[-1] < 0.6 * distances[0]
    assert stream.score(X, y) > full.score(X, y) - 0.05
    assert (
        stream.mixup_loss(X[:300], y[:300]) < full.mixup_loss(X[:300], y[:300]) + 0.05
    )
    assert stream.n_samples_seen_ == 20 * 600


def test_partial_fit_ridge_is_relative_to_the_samples_seen():
    # One pass over a stream of fresh samples: the same objective as fit on all
    # of them, C included. A ridge relative to the chunk (200 samples) would shrink
    # the coefficients to about a quarter of fit's.
    n = 24000
    X, y = _data(n=n, K=2, seed=4)
    C = 0.001  # 1 / (C n) = 1/24: a strong ridge that sets the coefficients' size
    full = MixupLogisticRegression(C=C, random_state=0).fit(X, y)
    per_chunk = MixupLogisticRegression(C=C * 200 / n, random_state=0).fit(X, y)
    stream = MixupLogisticRegression(C=C, random_state=0)
    for chunk in np.array_split(np.arange(n), n // 200):
        stream.partial_fit(X[chunk], y[chunk], classes=[0, 1])
    norm = np.linalg.norm
    assert norm(per_chunk.coef_) < 0.5 * norm(full.coef_)
    # The averaged iterates still lag behind (they start at 0, under the strong
    # ridge of the first few samples), but far closer to fit's than to the
    # chunk-relative ridge's.
    assert norm(stream.coef_ - full.coef_) < 0.7 * norm(stream.coef_ - per_chunk.coef_)
    assert norm(stream.coef_) > 10 * norm(per_chunk.coef_)
    weighted = MixupLogisticRegression(C=C, random_state=0)
    weighted.partial_fit(
        X[:200], y[:200], classes=[0, 1], sample_weight=np.full(200, 2.0)
    )
    assert weighted.n_samples_seen_ == 400.0


def test_fit_after_partial_fit_starts_a_new_stream():
    X, y = _data(n=200, K=2, seed=5)
    clf = MixupLogisticRegression(random_state=0).partial_fit(X, y, classes=[0, 1])
    clf.fit(X, y)
    assert not hasattr(clf, "t_") and not hasattr(clf, "n_samples_seen_")
    coef = clf.coef_.copy()
    clf.partial_fit(X[:64], y[:64])
    assert clf.t_ == 1
    # One small step from the fit's coefficients, not from the earlier stream.
    assert np.linalg.norm(clf.coef_ - coef) < 0.2 * np.linalg.norm(coef)


def test_partial_fit_needs_classes_first_and_checks_labels():
    X, y = _data(n=30, K=3)
    with pytest.raises(ValueError, match="classes must be passed"):
        MixupLogisticRegression().partial_fit(X, y)
    clf = MixupLogisticRegression().partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not in the estimator's classes_"):
        clf.partial_fit(X, np.full(30, 5))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_raises(bad):
    X, y = _data(n=20)
    X[3, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        MixupLogisticRegression().fit(X, y)


def test_single_class_raises():
    X, _ = _data(n=20)
    with pytest.raises(ValueError, match="only one class"):
        MixupLogisticRegression().fit(X, np.zeros(20))


def test_wrong_shapes_raise():
    X, y = _data(n=20)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MixupLogisticRegression().fit(X, y[:-1])
    clf = MixupLogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :2])


def test_negative_weights_raise():
    X, y = _data(n=20)
    w = np.ones(20)
    w[0] = -1
    with pytest.raises(ValueError, match="[Nn]egative"):
        MixupLogisticRegression().fit(X, y, sample_weight=w)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"mixup_alpha": 0}, "mixup_alpha"),
        ({"mixup_beta": -1.0}, "mixup_beta"),
        ({"n_partners": 0}, "n_partners"),
        ({"n_partners": "some"}, "n_partners"),
        ({"n_quadrature": 0}, "n_quadrature"),
        ({"C": -1}, "C"),
    ],
)
def test_invalid_parameters_raise(params, match):
    X, y = _data(n=20)
    with pytest.raises(ValueError, match=match):
        MixupLogisticRegression(**params).fit(X, y)


def _canonical_pipeline(clf):
    from sklearn.pipeline import Pipeline

    return Pipeline([("pre", mixed_table_preprocessor()), ("clf", clf)])


@pytest.mark.parametrize(
    "clf",
    [
        MixupLogisticRegression(random_state=0),
        MixupLogisticRegression(n_partners=3, random_state=0),
        MixupRegularizedLogisticRegression(),
    ],
    ids=["exact", "sampled", "regularized"],
)
@pytest.mark.parametrize("binary", [False, True])
def test_canonical_mixed_pipeline(clf, binary):
    from sklearn.model_selection import GridSearchCV, cross_val_score

    frame, y = mixed_table(n=240, n_classes=3)
    if binary:
        y = np.where(y == "mid", "mid", "other")
    pipe = _canonical_pipeline(clf).fit(frame, y)
    assert set(pipe.predict(frame)) <= set(y)
    assert pipe.score(frame, y) > 0.5
    proba = pipe.predict_proba(frame)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    Xt = pipe[:-1].transform(frame)
    assert np.isfinite(pipe[-1].mixup_loss(Xt, y))
    clone_back = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(clone_back.predict(frame), pipe.predict(frame))
    assert cross_val_score(clone(pipe), frame, y, cv=3).mean() > 0.4
    search = GridSearchCV(clone(pipe), {"clf__mixup_alpha": [0.2, 1.0]}, cv=2).fit(
        frame, y
    )
    assert search.best_params_["clf__mixup_alpha"] in (0.2, 1.0)
