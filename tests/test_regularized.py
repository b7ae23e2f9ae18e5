"""MixupRegularizedLogisticRegression and its loss object MixupPenaltyLoss."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse
from sklearn.datasets import (
    load_breast_cancer,
    load_wine,
    make_classification,
    make_moons,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skmixup._mixing import mixing_moments
from skmixup.linear_model import (
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
    UnboundedPenaltyWarning,
)
from skmixup.linear_model._penalty import MixupPenaltyLoss
from skmixup.theory import approximate_mixup_loss, mixup_loss


def _central_gradient(f, x, h=1e-6):
    g = np.empty_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _moons(n=200):
    X, y = make_moons(n, noise=0.25, random_state=0)
    return StandardScaler().fit_transform(X), y


def _nonseparable(n_classes=2, n=300, random_state=0):
    X, y = make_classification(
        n,
        6,
        n_informative=4,
        n_classes=n_classes,
        flip_y=0.15,
        random_state=random_state,
    )
    return X + 1.0, y


# ------------------------------------------------------------------ loss object
@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(2, 25),
    d=st.integers(1, 5),
    K=st.sampled_from([1, 2, 3, 5]),
    fit_intercept=st.booleans(),
    weighted=st.booleans(),
    terms=st.sampled_from(["R1+R2", "R2"]),
    l2=st.sampled_from([0.0, 0.3]),
    sparse_X=st.booleans(),
)
def test_gradient_matches_finite_differences(
    seed, n, d, K, fit_intercept, weighted, terms, l2, sparse_X
):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) + rng.randn(d)
    if sparse_X:
        X[rng.rand(n, d) < 0.4] = 0.0
        X = sparse.csr_matrix(X)
    Y = (rng.rand(n, 1) < 0.5) * 1.0 if K == 1 else np.eye(K)[rng.randint(K, size=n)]
    sw = rng.uniform(0.1, 3.0, n) if weighted else np.ones(n)
    sw /= sw.sum()
    m1, m2 = mixing_moments(rng.uniform(0.1, 5.0), rng.uniform(0.1, 5.0))
    loss = MixupPenaltyLoss(K, d, fit_intercept, m1, m2, terms)
    coef = rng.randn(loss.n_dof)
    value, grad = loss.loss_gradient(coef, X, Y, sw, l2)
    numeric = _central_gradient(lambda c: loss.loss(c, X, Y, sw, l2), coef)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)
    assert loss.loss(coef, X, Y, sw, l2) == value
    np.testing.assert_array_equal(loss.gradient(coef, X, Y, sw, l2), grad)
    standard, r1, r2 = loss.terms_at(coef, X, Y, sw)
    expected = standard + r2 + (r1 if terms == "R1+R2" else 0) + loss.ridge(coef, l2)
    assert value == pytest.approx(expected, rel=1e-12)


def test_invalid_terms():
    with pytest.raises(ValueError, match="terms"):
        MixupPenaltyLoss(1, 2, True, 0.3, 0.15, terms="R1")


# -------------------------------------------------------------------- estimator
def test_penalty_terms_match_theory_at_solution():
    X, y = _nonseparable(3)
    sw = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    clf = MixupRegularizedLogisticRegression(mixup_alpha=0.5, mixup_beta=2.0)
    clf.fit(X, y, sample_weight=sw)
    res = approximate_mixup_loss(
        clf, X, y, mixup_alpha=0.5, mixup_beta=2.0, sample_weight=sw
    )
    assert clf.penalty_terms_["R1"] == pytest.approx(res.R1, rel=1e-10)
    assert clf.penalty_terms_["R2"] == pytest.approx(res.R2, rel=1e-10)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_tiny_alpha_matches_logistic_regression(n_classes):
    # m1, m2 -> 0 with mixup_alpha -> 0: plain ridge logistic regression.
    X, y = _nonseparable(n_classes)
    ours = MixupRegularizedLogisticRegression(mixup_alpha=1e-10, C=0.5, tol=1e-10)
    ours.fit(X, y)
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-6)
    # Softmax intercepts are flat along a common shift: compare them centered.
    b, b_ref = ours.intercept_, ref.intercept_
    np.testing.assert_allclose(b - b.mean(), b_ref - b_ref.mean(), atol=1e-5)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)


def test_terms_select_the_objective():
    # The "R2" fit is stationary for L_std + R2, not for L_std + R1 + R2.
    X, y = _nonseparable()
    Y = y[:, None].astype(float)
    sw = np.full(len(y), 1.0 / len(y))
    m1, m2 = mixing_moments(1.0)
    l2 = 1.0 / len(y)
    fits = {}
    for terms in ("R2", "R1+R2"):
        clf = MixupRegularizedLogisticRegression(terms=terms, tol=1e-8).fit(X, y)
        fits[terms] = np.concatenate([clf.coef_.ravel(), clf.intercept_])
    for terms, coef in fits.items():
        own = MixupPenaltyLoss(1, X.shape[1], True, m1, m2, terms)
        other = MixupPenaltyLoss(
            1, X.shape[1], True, m1, m2, "R1+R2" if terms == "R2" else "R2"
        )
        assert np.abs(own.gradient(coef, X, Y, sw, l2)).max() < 1e-7
        assert np.abs(other.gradient(coef, X, Y, sw, l2)).max() > 1e-4
    assert not np.allclose(fits["R2"], fits["R1+R2"], atol=1e-3)


def test_penalty_shrinks_towards_exact_mixup_direction():
    # On moons the minimiser of the approximation points the same way as the
    # exact-Mixup minimiser (measured: cos 0.999) and is smaller than ERM.
    X, y = _moons()
    approx = MixupRegularizedLogisticRegression(C=np.inf, tol=1e-8).fit(X, y)
    exact = MixupLogisticRegression(C=np.inf, n_partners="all", tol=1e-8).fit(X, y)
    erm = LogisticRegression(C=1e8, tol=1e-10, max_iter=1000).fit(X, y)
    a, e = approx.coef_.ravel(), exact.coef_.ravel()
    assert a @ e / np.linalg.norm(a) / np.linalg.norm(e) > 0.99
    assert np.linalg.norm(e) < np.linalg.norm(erm.coef_)
    ours = approximate_mixup_loss(approx, X, y, mixup_alpha=1.0).total
    assert ours <= approximate_mixup_loss(erm, X, y, mixup_alpha=1.0).total
    # The estimator reports the default plan (all pairs, 4 interior Lobatto
    # nodes): the same number as theory with those settings, and within the
    # quadrature error of a 32-node D~ evaluation.
    kw = {"mixup_alpha": 1.0, "n_partners": "all"}
    assert approx.mixup_loss(X, y) == pytest.approx(
        mixup_loss(approx, X, y, method="pairs", n_quadrature=4, **kw), rel=1e-12
    )
    assert approx.mixup_loss(X, y) == pytest.approx(
        mixup_loss(approx, X, y, n_quadrature=32, **kw), rel=1e-4
    )


@pytest.mark.parametrize("terms", ["R1+R2", "R2"])
def test_unbounded_warning_on_separable_data(terms):
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = MixupRegularizedLogisticRegression(C=np.inf, terms=terms)
    with pytest.warns(UnboundedPenaltyWarning, match="separable") as record:
        clf.fit(X, y)
    assert record[0].filename == __file__  # points at the caller's line
    # The separating direction is found on a multiclass problem too.
    Xw, yw = load_wine(return_X_y=True)
    Xw = StandardScaler().fit_transform(Xw)
    with pytest.warns(UnboundedPenaltyWarning, match="separable"):
        MixupRegularizedLogisticRegression(C=np.inf, terms=terms).fit(Xw, yw)


def test_no_warning_when_bounded():
    X, y = _nonseparable()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MixupRegularizedLogisticRegression(C=np.inf).fit(X, y)
        # A finite C is always bounded, even on separable data.
        Xb, yb = load_breast_cancer(return_X_y=True)
        MixupRegularizedLogisticRegression().fit(StandardScaler().fit_transform(Xb), yb)


def test_float32_and_sparse():
    X, y = _nonseparable(3)
    kw = dict(tol=1e-8)
    ref = MixupRegularizedLogisticRegression(**kw).fit(X, y)
    f32 = MixupRegularizedLogisticRegression().fit(X.astype(np.float32), y)
    assert f32.coef_.dtype == np.float32 and f32.intercept_.dtype == np.float32
    # float32 logits limit the attainable accuracy (sklearn's LogisticRegression
    # is off by 1.6e-3 on the same problem).
    np.testing.assert_allclose(f32.coef_, ref.coef_, atol=5e-3)
    Xs = X.copy()
    Xs[np.abs(Xs) < 0.8] = 0.0
    dense = MixupRegularizedLogisticRegression(**kw).fit(Xs, y)
    sp = MixupRegularizedLogisticRegression(**kw).fit(sparse.csr_matrix(Xs), y)
    np.testing.assert_allclose(sp.coef_, dense.coef_, atol=1e-7)
    np.testing.assert_allclose(sp.intercept_, dense.intercept_, atol=1e-7)
    assert sp.penalty_terms_["R2"] == pytest.approx(dense.penalty_terms_["R2"])


def test_integer_weights_equal_repeated_rows_and_inputs_untouched():
    X, y = _nonseparable(3, n=120)
    sw = np.random.RandomState(0).randint(0, 3, len(y)).astype(float)
    X0, sw0 = X.copy(), sw.copy()
    weighted = MixupRegularizedLogisticRegression(tol=1e-9)
    weighted.fit(X, y, sample_weight=sw)
    rep = np.repeat(np.arange(len(y)), sw.astype(int))
    repeated = MixupRegularizedLogisticRegression(tol=1e-9).fit(X[rep], y[rep])
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-6)
    assert weighted.penalty_terms_["R2"] == pytest.approx(
        repeated.penalty_terms_["R2"], rel=1e-6
    )
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(sw, sw0)


def test_class_weight_and_warm_start():
    X, y = _nonseparable()
    cw = {0: 2.0, 1: 1.0}
    a = MixupRegularizedLogisticRegression(class_weight=cw, tol=1e-8).fit(X, y)
    b = MixupRegularizedLogisticRegression(tol=1e-8)
    b.fit(X, y, sample_weight=np.where(y == 0, 2.0, 1.0))
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-7)
    warm = MixupRegularizedLogisticRegression(warm_start=True, tol=1e-8).fit(X, y)
    first = warm.n_iter_
    warm.fit(X, y)
    assert warm.n_iter_ < first
    with pytest.warns(ConvergenceWarning):
        MixupRegularizedLogisticRegression(max_iter=2).fit(X, y)
