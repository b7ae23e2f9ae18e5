"""Exact claims of Zhang et al. (ICLR 2021) for skmixup.theory: Lemma 3.1, Thm 3.1."""

import itertools
import types
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse, special
from sklearn.datasets import load_breast_cancer, make_classification, make_moons
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixup._mixing import mixing_moments, sample_beta
from skmixup.metrics import fgsm
from skmixup.theory import (
    MixupApproximation,
    TheoryAssumptionWarning,
    approximate_mixup_loss,
    mixup_loss,
    mixup_radius,
)


def _linear(W, b, classes=None):
    """A duck-typed fitted linear classifier."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    K = W.shape[0]
    if classes is None:
        classes = np.arange(2 if K == 1 else K)
    return types.SimpleNamespace(
        coef_=W,
        intercept_=np.broadcast_to(np.asarray(b, dtype=float), (K,)).copy(),
        classes_=np.asarray(classes),
    )


def _moons(n=300, seed=0):
    X, y = make_moons(n, noise=0.2, random_state=seed)
    return StandardScaler().fit_transform(X), y


def _data(rng, n, d, n_classes, shift=0.0):
    X = rng.randn(n, d) + shift
    y = rng.randint(n_classes, size=n)
    y[:n_classes] = np.arange(n_classes)
    return X, y


def _model(rng, d, n_classes, fit_intercept, scale=0.7):
    K = 1 if n_classes == 2 else n_classes
    b = scale * rng.randn(K) if fit_intercept else np.zeros(K)
    return _linear(scale * rng.randn(K, d), b)


def _ce(Z, Y):
    """Per-row cross-entropy for the binary (K = 1) or softmax model."""
    if Z.shape[1] == 1:
        return np.logaddexp(0, Z[:, 0]) - Y[:, 0] * Z[:, 0]
    return special.logsumexp(Z, axis=1) - np.einsum("ik,ik->i", Y, Z)


def _targets(y, K):
    return y[:, None].astype(float) if K == 1 else np.eye(K)[y]


# --------------------------------------------------------------- claim 1, 3, 4
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("ab", [(1.0, 1.0), (0.2, 0.2), (5.0, 0.5), (0.5, 2.0)])
def test_lemma_3_1_identity_linear(n_classes, fit_intercept, ab):
    # Eq. (1) (labels mixed, Beta) == Lemma 3.1 form (label kept, D~), all pairs,
    # on uncentered data with intercepts and alpha != beta.
    rng = np.random.RandomState(0)
    X, y = _data(rng, 40, 4, n_classes, shift=2.0)
    est = _model(rng, 4, n_classes, fit_intercept)
    kw = dict(mixup_alpha=ab[0], mixup_beta=ab[1])
    dtilde = mixup_loss(est, X, y, **kw)
    pairs = mixup_loss(est, X, y, method="pairs", **kw)
    assert abs(dtilde - pairs) < 1e-10
    sw = rng.uniform(0.1, 2.0, size=40)
    a = mixup_loss(est, X, y, sample_weight=sw, **kw)
    b = mixup_loss(est, X, y, sample_weight=sw, method="pairs", **kw)
    assert abs(a - b) < 1e-10


def test_lemma_3_1_identity_nonlinear_model():
    # The identity needs only a loss affine in the label: a tanh MLP, explicit mixing.
    X, y = _moons(60)
    mlp = MLPClassifier((6,), activation="tanh", max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(X, y)
    a = mixup_loss(mlp, X, y, mixup_alpha=0.5, mixup_beta=2.0)
    b = mixup_loss(mlp, X, y, mixup_alpha=0.5, mixup_beta=2.0, method="pairs")
    assert abs(a - b) < 1e-10
    # A pipeline goes through the explicit path too and agrees with the fast path.
    clf = LogisticRegression().fit(X, y)
    assert mixup_loss(make_pipeline(clf), X, y, mixup_alpha=1.0) == pytest.approx(
        mixup_loss(clf, X, y, mixup_alpha=1.0), abs=1e-12
    )


def test_alpha_beta_symmetry():
    rng = np.random.RandomState(1)
    X, y = _data(rng, 30, 3, 3, shift=1.0)
    est = _model(rng, 3, 3, True)
    for method in ("dtilde", "pairs"):
        a = mixup_loss(est, X, y, mixup_alpha=5.0, mixup_beta=0.5, method=method)
        b = mixup_loss(est, X, y, mixup_alpha=0.5, mixup_beta=5.0, method=method)
        assert abs(a - b) < 1e-10


def test_matches_monte_carlo_over_pairs():
    # Claim 4: the deterministic double sum equals plain Mixup sampling in expectation.
    rng = np.random.RandomState(0)
    X, y = _data(rng, 50, 3, 3, shift=1.0)
    est = _model(rng, 3, 3, True)
    exact = mixup_loss(est, X, y, mixup_alpha=0.4, mixup_beta=1.5)
    m = 200_000
    i, j = rng.randint(50, size=m), rng.randint(50, size=m)
    lam = sample_beta(0.4, 1.5, m, rng)
    Xm = lam[:, None] * X[i] + (1 - lam[:, None]) * X[j]
    Ym = lam[:, None] * np.eye(3)[y[i]] + (1 - lam[:, None]) * np.eye(3)[y[j]]
    ce = _ce(Xm @ est.coef_.T + est.intercept_, Ym)
    assert abs(ce.mean() - exact) < 4 * ce.std() / np.sqrt(m)


def test_drawn_partners_and_sparse():
    rng = np.random.RandomState(0)
    X, y = _data(rng, 40, 5, 2, shift=1.0)
    X[X < 0.5] = 0.0
    est = _model(rng, 5, 2, True)
    dense = mixup_loss(est, X, y, mixup_alpha=1.0, n_partners=5, random_state=3)
    sp = mixup_loss(
        est, sparse.csr_matrix(X), y, mixup_alpha=1.0, n_partners=5, random_state=3
    )
    assert dense == pytest.approx(sp, rel=1e-12)
    full = mixup_loss(est, X, y, mixup_alpha=1.0)
    assert dense == pytest.approx(full, rel=0.2)


# ------------------------------------------------------------------- claim 5, 6
def _reference_terms(theta, b0, X, y, a, b):
    """R1, R2 of Lemma 3.1 (Zhang et al., ICLR 2021), binary logistic, by hand."""
    m1, m2 = mixing_moments(a, b)
    s = special.expit(X @ theta + b0)
    Xc = X - X.mean(0)
    C = Xc.T @ Xc / len(y)
    R1 = -m1 * np.mean((s - y) * (Xc @ theta))
    R2 = m2 / 2 * np.mean(s * (1 - s) * (theta @ C @ theta + (Xc @ theta) ** 2))
    return R1, R2


def test_r_terms_match_reference_and_r3_is_zero():
    rng = np.random.RandomState(0)
    X, y = _data(rng, 80, 4, 2, shift=3.0)
    est = _model(rng, 4, 2, True)
    res = approximate_mixup_loss(est, X, y, mixup_alpha=2.0, mixup_beta=0.5)
    assert isinstance(res, MixupApproximation)
    R1, R2 = _reference_terms(est.coef_[0], est.intercept_[0], X, y, 2.0, 0.5)
    assert res.R1 == pytest.approx(R1, rel=1e-12)
    assert res.R2 == pytest.approx(R2, rel=1e-12)
    assert res.R3 == 0.0
    assert res.total == pytest.approx(res.standard + R1 + R2, rel=1e-14)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_r1_vanishes_at_erm(n_classes):
    # R1 = -m1 [theta^T grad_theta L - (theta^T x_bar) dL/db]: zero at ERM.
    X, y = make_classification(
        300, 5, n_informative=3, n_classes=n_classes, flip_y=0.2, random_state=0
    )
    X = X + 2.0  # uncentered on purpose
    clf = LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000).fit(X, y)
    res = approximate_mixup_loss(clf, X, y, mixup_alpha=1.0)
    assert abs(res.R1) < 1e-7
    assert res.R2 > 1e-3


def _taylor_coefficients(est, X, y, h=1e-2):
    """(1/n) sum_i g_i'(0) and g_i''(0) by 5-point central differences (O(h^4))."""
    n = X.shape[0]
    K = est.coef_.shape[0]
    Y = _targets(y, K)

    def g(u):
        Xm = X[:, None, :] + u * (X[None, :, :] - X[:, None, :])  # (i, r, d)
        Z = Xm.reshape(n * n, -1) @ est.coef_.T + est.intercept_
        return _ce(Z, np.repeat(Y, n, axis=0)).mean()

    g0, g1, g2, m1, m2 = g(0.0), g(h), g(2 * h), g(-h), g(-2 * h)
    d1 = (8 * (g1 - m1) - (g2 - m2)) / (12 * h)
    d2 = (16 * (g1 + m1) - (g2 + m2) - 30 * g0) / (12 * h**2)
    return d1, d2


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(3, 12),
    d=st.integers(1, 4),
    n_classes=st.sampled_from([2, 3, 4]),
    fit_intercept=st.booleans(),
    alpha=st.floats(0.1, 8.0),
    beta=st.floats(0.1, 8.0),
)
def test_r_terms_are_taylor_coefficients(
    seed, n, d, n_classes, fit_intercept, alpha, beta
):
    # Claim 5: (1/n) sum g_i'(0) = R1 / m1 and (1/n) sum g_i''(0) = 2 (R2 + R3) / m2.
    rng = np.random.RandomState(seed)
    X, y = _data(rng, max(n, n_classes), d, n_classes, shift=rng.randn())
    est = _model(rng, d, n_classes, fit_intercept)
    m1, m2 = mixing_moments(alpha, beta)
    res = approximate_mixup_loss(est, X, y, mixup_alpha=alpha, mixup_beta=beta)
    d1, d2 = _taylor_coefficients(est, X, y)
    # 5-point stencils at h = 1e-2: truncation error ~h^4 |g^(5,6)|, rounding ~1e-12.
    assert res.R1 / m1 == pytest.approx(d1, rel=1e-6, abs=1e-7)
    assert 2 * (res.R2 + res.R3) / m2 == pytest.approx(d2, rel=1e-6, abs=1e-7)


def test_softmax_with_two_classes_equals_logistic():
    # Claim 6: logits (0, theta^T x + b) under softmax == the sigmoid model.
    rng = np.random.RandomState(0)
    X, y = _data(rng, 50, 3, 2, shift=1.0)
    theta, b = rng.randn(3), 0.3
    logistic = _linear(theta, b)
    softmax = _linear(np.vstack([np.zeros(3), theta]), [0.0, b])
    r_log = approximate_mixup_loss(logistic, X, y, mixup_alpha=0.7, mixup_beta=2.0)
    r_soft = approximate_mixup_loss(softmax, X, y, mixup_alpha=0.7, mixup_beta=2.0)
    np.testing.assert_allclose(r_soft, r_log, rtol=1e-12, atol=1e-15)
    assert mixup_loss(softmax, X, y, mixup_alpha=0.7) == pytest.approx(
        mixup_loss(logistic, X, y, mixup_alpha=0.7), rel=1e-12
    )


# ------------------------------------------------------------------ claim 7, 8
def _separable_centered(rng, n=60, d=5):
    theta_star = rng.randn(d)
    X = rng.randn(n, d)
    X = X[np.abs(X @ theta_star) > 0.2]
    X = np.vstack([X, -X])  # exactly centered, separable through the origin
    y = (X @ theta_star > 0).astype(int)
    return X, y, theta_star


def _adv_quadratic(theta, X, y, eps, norm):
    s = special.expit(X @ theta)
    t = np.linalg.norm(theta, ord=1 if norm == "inf" else 2)
    base = np.logaddexp(0, X @ theta) - y * (X @ theta)
    return np.mean(base + eps * np.abs(s - y) * t + eps**2 / 2 * s * (1 - s) * t**2)


@pytest.mark.parametrize("ab", [(1.0, 1.0), (0.2, 0.2), (5.0, 0.5), (8.0, 8.0)])
def test_theorem_3_1_inequality(ab):
    rng = np.random.RandomState(0)
    X, y, theta_star = _separable_centered(rng)
    d = X.shape[1]
    thetas = [c * theta_star for c in (0.05, 0.3, 1.0, 3.0, 10.0)]
    for _ in range(200):  # random parameters with zero training error
        theta = theta_star + 0.5 * rng.randn(d)
        if np.all((2 * y - 1) * (X @ theta) >= 0):
            thetas.append(theta * np.exp(rng.uniform(-2, 2)))
    assert len(thetas) > 10
    for theta in thetas:
        est = _linear(theta, 0.0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            radius = mixup_radius(est, X, mixup_alpha=ab[0], mixup_beta=ab[1], y=y)
        approx = approximate_mixup_loss(est, X, y, mixup_alpha=ab[0], mixup_beta=ab[1])
        l2 = _adv_quadratic(theta, X, y, radius.eps_mix_l2, "l2")
        linf = _adv_quadratic(theta, X, y, radius.eps_mix, "inf")
        assert radius.eps_mix > 0
        assert approx.total >= l2 - 1e-14
        assert l2 >= linf - 1e-14


def test_per_sample_radius_extension_gives_r1():
    # Extension: with centered data, no intercept and theta in Theta,
    # R1 = (1/n) sum_i eps_i |sigma_i - y_i| ||theta||.
    rng = np.random.RandomState(1)
    X, y, theta = _separable_centered(rng)
    est = _linear(theta, 0.0)
    radius = mixup_radius(est, X, mixup_alpha=1.0, per_sample=True, y=y)
    s = special.expit(X @ theta)
    r1 = np.mean(radius.per_sample * np.abs(s - y) * np.linalg.norm(theta))
    assert approximate_mixup_loss(est, X, y, mixup_alpha=1.0).R1 == pytest.approx(r1)
    # m1 |theta^T x_i| / ||theta|| = m1 ||x_i|| |cos_i| >= m1 c_x sqrt(d) R.
    assert radius.per_sample.min() >= radius.eps_mix_l2 * (1 - 1e-12)


def test_linf_maximizer_of_quadratic_model_is_fgsm():
    # Claim 8: over ||delta||_inf <= eps the quadratic adversarial model peaks at
    # delta = eps sign((sigma - y) theta), the FGSM step; over the l2 ball at
    # eps sign(sigma - y) theta / ||theta||.
    rng = np.random.RandomState(0)
    d, eps = 6, 0.3
    X, y = _data(rng, 8, d, 2)
    clf = LogisticRegression(fit_intercept=False).fit(X, y)
    theta = clf.coef_[0]
    x_adv = fgsm(clf, X, y, eps=eps, feature_scale=1)  # raw units
    for x, label, xa in zip(X, y, x_adv, strict=True):
        s = special.expit(theta @ x)

        def q(delta, x=x, s=s, label=label):
            base = np.logaddexp(0, theta @ x) - label * (theta @ x)
            t = theta @ delta
            return base + (s - label) * t + 0.5 * s * (1 - s) * t**2

        delta = eps * np.sign((s - label) * theta)
        np.testing.assert_allclose(xa - x, delta, atol=1e-12)
        vertices = eps * np.array(list(itertools.product([-1, 1], repeat=d)))
        best = max(q(v) for v in vertices)  # a convex q peaks at a vertex
        assert q(delta) == pytest.approx(best, rel=1e-12)
        l1 = np.abs(theta).sum()
        closed = q(np.zeros(d)) + eps * abs(s - label) * l1
        closed += eps**2 / 2 * s * (1 - s) * l1**2
        assert q(delta) == pytest.approx(closed, rel=1e-12)
        delta2 = eps * np.sign(s - label) * theta / np.linalg.norm(theta)
        sphere = rng.randn(500, d)
        sphere *= eps / np.linalg.norm(sphere, axis=1, keepdims=True)
        assert q(delta2) >= max(q(v) for v in sphere)


# --------------------------------------------------------------------- claim 13
def test_radius_properties():
    rng = np.random.RandomState(2)
    X, y, theta = _separable_centered(rng)
    est = _linear(theta, 0.0)
    base = mixup_radius(est, X, mixup_alpha=1.0, y=y)
    assert base.eps_mix > 0
    assert base.eps_mix_l2 == pytest.approx(base.eps_mix * np.sqrt(X.shape[1]))
    for ab in [(0.2, 0.2), (5.0, 0.5), (8.0, 8.0)]:
        m1, _ = mixing_moments(*ab)
        r = mixup_radius(est, X, mixup_alpha=ab[0], mixup_beta=ab[1])
        assert r.eps_mix / m1 == pytest.approx(base.eps_mix / (1 / 3), rel=1e-12)
    # A point on the decision boundary (and its mirror, to stay centered).
    on = np.cross(theta[:3], rng.randn(3))
    on = np.concatenate([on, np.zeros(X.shape[1] - 3)])
    on -= theta * (theta @ on) / (theta @ theta)
    X_on = np.vstack([X, on, -on])
    assert mixup_radius(est, X_on, mixup_alpha=1.0).eps_mix == pytest.approx(
        0.0, abs=1e-15
    )
    # A point at the origin: c_x = 0.
    X_0 = np.vstack([X, np.zeros(X.shape[1])])
    assert mixup_radius(est, X_0, mixup_alpha=1.0).eps_mix == 0.0
    # Never negative, even for a bad theta (with a warning).
    with pytest.warns(TheoryAssumptionWarning, match="misclassifies"):
        r = mixup_radius(_linear(-theta, 0.0), X, mixup_alpha=1.0, y=y)
    assert r.eps_mix >= 0


def test_radius_warns_when_assumptions_fail():
    rng = np.random.RandomState(0)
    X, y, theta = _separable_centered(rng)
    with pytest.warns(TheoryAssumptionWarning, match="not centered"):
        mixup_radius(_linear(theta, 0.0), X + 1.0, mixup_alpha=1.0)
    with pytest.warns(TheoryAssumptionWarning, match="intercept"):
        mixup_radius(_linear(theta, 0.5), X, mixup_alpha=1.0)
    with pytest.raises(TypeError, match="binary"):
        mixup_radius(_linear(rng.randn(3, 5), 0.0), X, mixup_alpha=1.0)


# ---------------------------------------------------------------------- claim 9
@pytest.mark.parametrize("ab", [(0.2, 0.2), (1.0, 1.0), (5.0, 0.5), (8.0, 8.0)])
def test_approximation_tracks_exact_loss_for_small_logits(ab):
    X, y = _moons()
    rng = np.random.RandomState(0)
    erm = LogisticRegression(C=1e6, max_iter=1000).fit(X, y)
    # ||theta|| <= 1: a random direction of norm 0.5 and 0.3 x ERM (norm 0.81).
    # (A theta ~ N(0, I), norm ~1.8 here, is already off by 1-3%.)
    direction = rng.randn(2)
    models = [
        _linear(0.5 * direction / np.linalg.norm(direction), 0.2),
        _linear(0.3 * erm.coef_, 0.3 * erm.intercept_),
    ]
    for est in models:
        kw = dict(mixup_alpha=ab[0], mixup_beta=ab[1])
        exact = mixup_loss(est, X, y, **kw)
        approx = approximate_mixup_loss(est, X, y, **kw).total
        assert abs(approx - exact) / exact < 0.01


def test_approximation_fails_for_confident_models():
    # Documented limitation: at the ERM solution of well-separated data the
    # approximation underestimates by far more than 10%.
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    erm = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
    exact = mixup_loss(erm, X, y, mixup_alpha=1.0, n_quadrature=16)
    approx = approximate_mixup_loss(erm, X, y, mixup_alpha=1.0).total
    assert (approx - exact) / exact < -0.10


# ------------------------------------------------------------------ API errors
def test_errors():
    X, y = _moons(30)
    clf = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="method"):
        mixup_loss(clf, X, y, mixup_alpha=1.0, method="taylor")
    with pytest.raises(TypeError, match="linear"):
        approximate_mixup_loss(make_pipeline(clf), X, y, mixup_alpha=1.0)
    with pytest.raises(ValueError, match="labels"):
        mixup_loss(clf, X, y + 5, mixup_alpha=1.0)
    with pytest.raises(ValueError, match="features"):
        mixup_loss(clf, np.hstack([X, X]), y, mixup_alpha=1.0)
    with pytest.raises(TypeError, match="predict_proba"):
        mixup_loss(object(), X, y, mixup_alpha=1.0)


@pytest.mark.parametrize(
    "bad, err",
    [(2.5, TypeError), (0, ValueError), (-3, ValueError), ("some", ValueError)],
)
@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_n_partners_is_validated(bad, err, model):
    # 2.5 used to scale the loss by 0.8 silently, 0 to divide by zero.
    X, y = _moons(30)
    if model == "linear":
        clf = LogisticRegression().fit(X, y)
    else:
        clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(X, y)
    with pytest.raises(err, match="n_partners"):
        mixup_loss(clf, X, y, mixup_alpha=1.0, n_partners=bad)
