"""Tests of the framework-free Mixup maths in skmixup._mixing."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse, stats

from skmixup._mixing import (
    beta_quadrature,
    draw_partners,
    dtilde_quadrature,
    mix_rows,
    mixing_moments,
    resolve_beta,
    sample_beta,
    sample_dtilde,
)

params = st.floats(min_value=0.05, max_value=20.0)


def _beta_moment(a, b, k):
    """E[lam^k] for lam ~ Beta(a, b), by the product formula."""
    return float(np.prod([(a + r) / (a + b + r) for r in range(k)]))


def _dtilde_moment_of_one_minus(a, b, k):
    """E[(1 - lam)^k] under D~, from its definition as a mixture of two Betas."""
    # 1 - lam ~ Beta(b, a + 1) on the first component, Beta(a, b + 1) on the second.
    return a / (a + b) * _beta_moment(b, a + 1, k) + b / (a + b) * _beta_moment(
        a, b + 1, k
    )


@pytest.mark.parametrize(
    "a, b, m1",
    [
        (0.2, 0.2, 0.1429),
        (1, 1, 0.3333),
        (5, 0.5, 0.1399),
        (8, 8, 0.4706),
        (50, 1, 0.0377),
    ],
)
def test_moments_match_the_closed_form_table(a, b, m1):
    got1, got2 = mixing_moments(a, b)
    assert got1 == pytest.approx(m1, abs=5e-5)
    assert got2 == pytest.approx(got1 / 2)


@settings(deadline=None, max_examples=30)
@given(a=params, b=params)
def test_moments_equal_the_mixture_definition_of_dtilde(a, b):
    m1, m2 = mixing_moments(a, b)
    assert m1 == pytest.approx(_dtilde_moment_of_one_minus(a, b, 1), rel=1e-12)
    assert m2 == pytest.approx(_dtilde_moment_of_one_minus(a, b, 2), rel=1e-12)
    # and the sampler route: D~ = Beta(a, b) kept w.p. lam, else reflected
    m3 = _beta_moment(a, b, 1) - _beta_moment(a, b, 2)  # E[lam (1 - lam)]
    assert m1 == pytest.approx(2 * m3, rel=1e-12)


@settings(deadline=None, max_examples=30)
@given(a=params, b=params, k=st.integers(min_value=0, max_value=15))
def test_beta_quadrature_is_exact_for_polynomials(a, b, k):
    nodes, weights = beta_quadrature(a, b, n_nodes=8)
    assert np.all(weights > 0)
    assert weights.sum() == pytest.approx(1.0)
    assert weights @ nodes**k == pytest.approx(_beta_moment(a, b, k), rel=1e-9)


@settings(deadline=None, max_examples=30)
@given(a=params, b=params, k=st.integers(min_value=0, max_value=15))
def test_dtilde_quadrature_is_exact_for_polynomials(a, b, k):
    nodes, weights = dtilde_quadrature(a, b, n_nodes=8)
    got = weights @ (1 - nodes) ** k
    assert got == pytest.approx(_dtilde_moment_of_one_minus(a, b, k), rel=1e-9)


def test_dtilde_is_symmetric_in_alpha_beta():
    n1, w1 = dtilde_quadrature(5.0, 0.5)
    n2, w2 = dtilde_quadrature(0.5, 5.0)
    for k in range(6):
        assert w1 @ n1**k == pytest.approx(w2 @ n2**k, rel=1e-12)


def test_dtilde_with_equal_parameters_is_beta_a_plus_one_a():
    nodes, weights = dtilde_quadrature(0.7, 0.7, n_nodes=12)
    ref_nodes, ref_weights = beta_quadrature(1.7, 0.7, n_nodes=12)
    np.testing.assert_allclose(nodes, ref_nodes)
    np.testing.assert_allclose(weights, ref_weights)


@pytest.mark.parametrize("a, b", [(1.0, 1.0), (0.2, 0.2), (5.0, 0.5)])
def test_beta_sampler_follows_the_law(a, b, global_random_seed):
    lam = sample_beta(a, b, 4000, np.random.RandomState(global_random_seed))
    assert stats.kstest(lam, stats.beta(a, b).cdf).pvalue > 1e-3


@pytest.mark.parametrize("a, b", [(1.0, 1.0), (0.2, 0.2), (5.0, 0.5)])
def test_dtilde_sampler_follows_the_law(a, b, global_random_seed):
    rng = np.random.RandomState(global_random_seed)
    lam = sample_dtilde(a, b, 4000, rng)

    def cdf(t):
        return a / (a + b) * stats.beta(a + 1, b).cdf(t) + b / (a + b) * stats.beta(
            b + 1, a
        ).cdf(t)

    assert stats.kstest(lam, cdf).pvalue > 1e-3
    m1, m2 = mixing_moments(a, b)
    se = np.std(1 - lam) / np.sqrt(lam.size)
    assert abs(np.mean(1 - lam) - m1) < 4 * se


def test_sample_beta_tiny_parameters_has_no_nan():
    lam = sample_beta(1e-4, 1e-4, 10_000, np.random.RandomState(0))
    assert np.all(np.isfinite(lam))
    assert np.all((lam >= 0) & (lam <= 1))


def test_draw_partners_is_seeded_and_weighted():
    p1, w1 = draw_partners(50, 4, np.random.RandomState(3))
    p2, _ = draw_partners(50, 4, np.random.RandomState(3))
    np.testing.assert_array_equal(p1, p2)
    assert p1.shape == (50, 4) and np.allclose(w1.sum(axis=1), 1)
    sw = np.zeros(50)
    sw[[7, 9]] = 1.0
    p3, _ = draw_partners(50, 6, np.random.RandomState(0), sw)
    assert set(np.unique(p3)) <= {7, 9}
    none, w_all = draw_partners(5, "all", None, np.arange(1.0, 6.0))
    assert none is None and w_all == pytest.approx(np.arange(1, 6) / 15)


def test_mix_rows_dense_and_sparse_agree():
    rng = np.random.RandomState(0)
    X = rng.randn(6, 4)
    X[X < 0.3] = 0
    i, j, lam = [0, 1, 5], [2, 2, 0], np.array([0.1, 0.5, 1.0])
    dense = mix_rows(X, i, j, lam)
    expected = lam[:, None] * X[i] + (1 - lam[:, None]) * X[j]
    np.testing.assert_allclose(dense, expected)
    sp = mix_rows(sparse.csr_matrix(X), i, j, lam)
    assert sparse.issparse(sp) and sp.format == "csr"  # as documented
    np.testing.assert_allclose(sp.toarray(), expected)
    assert mix_rows(X.astype(np.float32), i, j, lam).dtype == np.float32


@pytest.mark.parametrize(
    "alpha, beta, err",
    [
        (0, None, ValueError),
        (-1, 1, ValueError),
        (1, np.nan, ValueError),
        ("a", 1, TypeError),
    ],
)
def test_invalid_parameters_raise(alpha, beta, err):
    with pytest.raises(err, match="mixup_"):
        resolve_beta(alpha, beta)


def test_invalid_quadrature_and_partners():
    with pytest.raises(ValueError, match="n_quadrature"):
        beta_quadrature(1.0, 1.0, n_nodes=0)
    with pytest.raises(ValueError, match="n_partners"):
        draw_partners(5, "some", np.random.RandomState(0))
    for bad, err in ((2.5, TypeError), (0, ValueError), (True, TypeError)):
        with pytest.raises(err, match="n_partners"):
            draw_partners(5, bad, np.random.RandomState(0))
