"""Invariances and limits that must hold for any data (hypothesis where it fits)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler

from skmixup.linear_model import (
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
)
from skmixup.metrics import robust_accuracy_score
from skmixup.theory import mixup_loss


def _data(n=40, d=3, K=3, seed=0):
    X, y = make_classification(
        n_samples=n,
        n_features=d,
        n_informative=d,
        n_redundant=0,
        n_classes=K,
        n_clusters_per_class=1,
        class_sep=0.7,
        random_state=seed,
    )
    return StandardScaler().fit_transform(X), y


def _pair_midpoint_loss(clf, X, y):
    """Eq. (1) with lambda = 1/2 for every pair: the limit alpha = beta -> inf."""
    codes = np.searchsorted(clf.classes_, y)
    n = len(y)
    i, j = np.divmod(np.arange(n * n), n)
    log_p = clf.predict_log_proba(0.5 * (X[i] + X[j]))
    return -0.5 * np.mean(
        log_p[np.arange(n * n), codes[i]] + log_p[np.arange(n * n), codes[j]]
    )


@settings(deadline=None, max_examples=10, derandomize=True)
@given(seed=st.integers(0, 10_000))
def test_fits_are_invariant_to_the_order_of_the_rows(seed):
    # With all pairs the exact Mixup objective is a symmetric function of the rows,
    # and the penalty objective always is: a permutation changes only rounding.
    X, y = _data(seed=seed % 7)
    perm = np.random.default_rng(seed).permutation(len(y))
    for est in (
        MixupRegularizedLogisticRegression(tol=1e-10),
        MixupLogisticRegression(n_partners="all", n_quadrature=8, tol=1e-10),
    ):
        a = est.fit(X, y).coef_.copy()
        b = est.fit(X[perm], y[perm]).coef_
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@settings(deadline=None, max_examples=10, derandomize=True)
@given(perm=st.permutations(["ant", "bee", "cat"]))
def test_relabelling_the_classes_permutes_the_probabilities(perm):
    X, y = _data()
    names = np.array(["ant", "bee", "cat"])
    renamed = np.array(perm)
    base = MixupRegularizedLogisticRegression().fit(X, names[y])
    moved = MixupRegularizedLogisticRegression().fit(X, renamed[y])
    # Column of class name c in `moved` is the column of the class it replaced.
    old_of_new = {new: old for old, new in zip(names, renamed, strict=True)}
    order = [list(base.classes_).index(old_of_new[c]) for c in moved.classes_]
    np.testing.assert_allclose(
        moved.predict_proba(X), base.predict_proba(X)[:, order], atol=1e-6
    )


def test_mixup_loss_limits_in_alpha():
    X, y = _data(n=30)
    clf = LogisticRegression(C=10.0).fit(X, y)
    # alpha -> 0: lam ~ Bernoulli(1/2), so every mixed pair is an original sample.
    erm = log_loss(y, clf.predict_proba(X))
    assert mixup_loss(clf, X, y, mixup_alpha=1e-4) == pytest.approx(erm, rel=1e-3)
    # alpha = beta -> inf: lam -> 1/2 with variance 1 / (4 (2 alpha + 1)), so the
    # loss approaches the midpoint loss at rate 1 / alpha.
    midpoint = _pair_midpoint_loss(clf, X, y)
    err = [abs(mixup_loss(clf, X, y, mixup_alpha=a) - midpoint) for a in (20.0, 200.0)]
    assert 0.05 < err[1] / err[0] < 0.2
    # The gap is Var(lam) (6e-4 at alpha = 200) times the mean curvature along pairs.
    assert err[1] < 5e-3 * midpoint


@settings(deadline=None, max_examples=20, derandomize=True)
@given(
    eps=st.lists(st.floats(0.0, 2.0), min_size=2, max_size=2, unique=True),
    norm=st.sampled_from(["inf", "2"]),
)
def test_exact_robust_accuracy_never_increases_with_eps(eps, norm):
    X, y = _data(n=80, d=4, K=2)
    clf = MixupLogisticRegression(random_state=0).fit(X, y)
    small, large = sorted(eps)
    scores = [
        robust_accuracy_score(clf, X, y, attack="exact", eps=e, norm=norm)
        for e in (small, large)
    ]
    assert scores[1] <= scores[0]
    # FGSM is the exact worst case of a binary linear model.
    assert scores[1] == robust_accuracy_score(
        clf, X, y, attack="fgsm", eps=large, norm=norm
    )
