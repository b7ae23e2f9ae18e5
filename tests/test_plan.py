"""The Mixup plan of the linear models and its backends: Eq. (1) in logit space,
quadrature, sampled partners, tiles and threads (skmixup/linear_model/_plan.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse, special

from conftest import linear_data as _data
from skmixup._mixing import beta_quadrature
from skmixup.linear_model import MixupLogisticRegression
from skmixup.linear_model import _plan as _plan_module
from skmixup.linear_model._loss import MixupLoss
from skmixup.linear_model._plan import BACKENDS, MixupPlan, lobatto_beta_quadrature


def _pair_form_mixup_loss(Z, Y, a, b, n_nodes=32):
    """The paper's Eq. (1) written out: all n^2 pairs, Beta(a, b) quadrature,
    mixed inputs (here: mixed logits) and mixed labels. O(n^2 Q K)."""
    lam, w = beta_quadrature(a, b, n_nodes)
    total = 0.0
    for lq, wq in zip(lam, w, strict=True):
        U = lq * Z[:, None, :] + (1 - lq) * Z[None, :, :]
        T = lq * Y[:, None, :] + (1 - lq) * Y[None, :, :]
        if Z.shape[1] == 1:
            ce = np.logaddexp(0, U[..., 0]) - T[..., 0] * U[..., 0]
        else:
            ce = special.logsumexp(U, axis=-1) - (T * U).sum(-1)
        total += wq * ce.mean()
    return total


def _targets(y, K):
    return y[:, None].astype(float) if K == 2 else np.eye(K)[y]


# --------------------------------------------------------------- the objective
@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("a, b", [(1.0, 1.0), (0.2, 0.2), (5.0, 0.5)])
def test_exact_loss_equals_pair_form_of_eq1(K, a, b):
    # Lemma 3.1 identity: the D~ form with unmixed labels that the solver uses
    # equals the paper's double sum with mixed labels, to quadrature precision.
    X, y = _data(K=K)
    clf = MixupLogisticRegression(mixup_alpha=a, mixup_beta=b, n_quadrature=32)
    clf.fit(X + 0.5, y)  # uncentered data, with intercept
    Z = clf.decision_function(X + 0.5).reshape(len(y), -1)
    expected = _pair_form_mixup_loss(Z, _targets(y, K), a, b)
    assert clf.mixup_loss(X + 0.5, y) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("K", [2, 4])
def test_exact_loss_matches_monte_carlo_of_explicit_mixup(K, global_random_seed):
    # Independent route: mix raw inputs and labels with lam ~ Beta(a, b) and uniform
    # pairs, score with predict_log_proba, average. Must agree within 3 SE.
    X, y = _data(n=80, K=K, seed=1)
    clf = MixupLogisticRegression(mixup_alpha=0.4, random_state=0).fit(X, y)
    exact = clf.mixup_loss(X, y)
    rng = np.random.RandomState(global_random_seed)
    m = 40_000
    i, j = rng.randint(0, len(y), m), rng.randint(0, len(y), m)
    lam = rng.beta(0.4, 0.4, m)
    Xm = lam[:, None] * X[i] + (1 - lam[:, None]) * X[j]
    Y = np.eye(K)[y]
    Ym = lam[:, None] * Y[i] + (1 - lam[:, None]) * Y[j]
    losses = -(Ym * clf.predict_log_proba(Xm)).sum(axis=1)
    se = losses.std() / np.sqrt(m)
    assert abs(losses.mean() - exact) < 3 * se


def _plan(n, rng, partners="all", n_nodes=4, a=1.0, b=1.0, sw=None, form="pairs"):
    sw = np.ones(n) if sw is None else sw
    return MixupPlan.build(
        sw,
        mixup_alpha=a,
        mixup_beta=b,
        n_partners=partners,
        n_quadrature=n_nodes,
        random_state=rng,
        form=form,
    )


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("form", ["pairs", "dtilde"])
@pytest.mark.parametrize("a, b", [(1.0, 1.0), (0.2, 0.2), (5.0, 0.5)])
def test_all_pairs_backends_equal_eq1_written_out(backend, K, form, a, b):
    # Both backends, both forms (Lobatto/Beta with mixed labels, D~ with the
    # anchor's label) equal the paper's double sum, to quadrature precision.
    rng = np.random.RandomState(3)
    n = 23
    Z = rng.randn(n, K) * 2
    y = rng.randint(0, max(K, 2), n)
    Y = _targets(y, 2 if K == 1 else K)
    value = _plan(n, rng, n_nodes=24, a=a, b=b, form=form).loss(Z, Y, backend)
    assert value == pytest.approx(_pair_form_mixup_loss(Z, Y, a, b), abs=1e-11)


@settings(deadline=None, max_examples=25)
@given(
    K=st.sampled_from([1, 3]),
    fit_intercept=st.booleans(),
    partners=st.sampled_from([1, 3, "all"]),
    weighted=st.booleans(),
    use_sparse=st.booleans(),
    backend=st.sampled_from(sorted(BACKENDS)),
    form=st.sampled_from(["pairs", "dtilde"]),
    a=st.floats(0.1, 5.0),
    b=st.floats(0.1, 5.0),
    n_nodes=st.sampled_from([1, 3, 6]),
    seed=st.integers(0, 1000),
)
def test_gradient_matches_finite_differences(
    K, fit_intercept, partners, weighted, use_sparse, backend, form, a, b, n_nodes, seed
):
    rng = np.random.RandomState(seed)
    n, d = 15, 3
    X = rng.randn(n, d)
    X[rng.rand(n, d) < 0.3] = 0.0
    y = rng.randint(0, max(K, 2), n)
    Y = _targets(y, 2 if K == 1 else K)
    sw = rng.rand(n) + 0.1 if weighted else np.ones(n)
    plan = _plan(n, rng, partners, n_nodes, a, b, sw, form)
    loss = MixupLoss(K, d, fit_intercept, plan, backend=backend)
    coef = rng.randn(loss.n_dof)
    Xin = sparse.csr_matrix(X) if use_sparse else X
    value, grad = loss.loss_gradient(coef, Xin, Y, None, l2_reg_strength=0.3)
    h = 1e-6
    numeric = np.array(
        [
            (
                loss.loss(coef + h * e, Xin, Y, None, 0.3)
                - loss.loss(coef - h * e, Xin, Y, None, 0.3)
            )
            / (2 * h)
            for e in np.eye(loss.n_dof)
        ]
    )
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)
    assert value == pytest.approx(loss.loss(coef, X, Y, None, 0.3), rel=1e-12)


@pytest.mark.parametrize("K", [1, 4])
@pytest.mark.parametrize("partners", [1, 6, "all"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backends_agree(K, partners, dtype):
    # gemm (factorised exponentials, matrix products) against direct (mixed
    # logits written out), sampled blocks and all pairs, alpha != beta, weights.
    rng = np.random.RandomState(0)
    n = 70
    Z = (rng.randn(n, K) * 3).astype(dtype)
    Y = rng.dirichlet(np.ones(K), n) if K > 1 else rng.rand(n, 1)  # soft labels
    plan = _plan(n, rng, partners, 5, 2.0, 0.5, rng.rand(n) + 0.1)
    value, dZ = plan.loss_gradient(Z, Y.astype(dtype), "gemm")
    ref_value, ref_dZ = plan.loss_gradient(Z, Y, "direct")
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    assert dZ.dtype == dtype
    assert value == pytest.approx(ref_value, rel=rtol)
    np.testing.assert_allclose(dZ, ref_dZ, rtol=rtol * 100, atol=rtol * 1e-2)


@pytest.mark.parametrize(
    "partners, backend, dtype",
    [
        (3, "gemm", np.float64),  # tiles of whole small blocks
        (100, "gemm", np.float64),  # large blocks cut in rows
        ("all", "gemm", np.float64),  # one block: shared tables, BLAS accumulation
        ("all", "gemm", np.float32),
        (100, "direct", np.float64),
        ("all", "direct", np.float64),
    ],
)
def test_threaded_evaluation_equals_single_thread(
    monkeypatch, partners, backend, dtype
):
    # The threads add their tiles' gradients into one shared array (disjoint
    # entries) and sum the partner terms that cross tiles per thread.
    rng = np.random.RandomState(0)
    n, K = 300, 4
    Z, Y = rng.randn(n, K).astype(dtype), np.eye(K)[rng.randint(0, K, n)]
    plan = _plan(n, rng, partners, 6, 0.5, 0.5)
    monkeypatch.setattr(_plan_module, "_TILE_ELEMENTS", 1 << 10)  # many tiles
    monkeypatch.setattr(_plan_module, "worker_count", lambda n, blas: 1)
    single = plan.loss_gradient(Z, Y, backend)
    monkeypatch.setattr(_plan_module, "worker_count", lambda n, blas: 3)
    monkeypatch.setattr(_plan_module, "_PARALLEL_MIN", 1)
    threaded = plan.loss_gradient(Z, Y, backend)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    assert threaded[0] == pytest.approx(single[0], rel=rtol)
    np.testing.assert_allclose(threaded[1], single[1], rtol=rtol * 100, atol=1e-14)
    # ... and both equal the evaluation with one tile per block group.
    monkeypatch.setattr(_plan_module, "_TILE_ELEMENTS", 1 << 20)
    whole = plan.loss_gradient(Z, Y, backend)
    assert whole[0] == pytest.approx(single[0], rel=rtol)
    np.testing.assert_allclose(whole[1], single[1], rtol=rtol * 100, atol=1e-14)


def test_tile_threads_follow_the_machine_policy(monkeypatch):
    # The tiles use worker threads only from the main thread and never more than
    # the BLAS threads allowed before (threadpool_limits(1): serial), as the
    # attacks' row blocks do (skmixup.utils._threads.worker_count).
    import threading

    from threadpoolctl import threadpool_limits

    rng = np.random.RandomState(0)
    n, K = 300, 3
    Z, Y = rng.randn(n, K), np.eye(K)[rng.randint(0, K, n)]
    plan = _plan(n, rng)
    monkeypatch.setattr(_plan_module, "_TILE_ELEMENTS", 1 << 10)
    monkeypatch.setattr(_plan_module, "_PARALLEL_MIN", 1)
    calls = []
    run_on_threads = _plan_module.run_on_threads

    def spy(tasks, work, workers):
        calls.append(workers)
        return run_on_threads(tasks, work, workers)

    monkeypatch.setattr(_plan_module, "run_on_threads", spy)
    monkeypatch.setattr("skmixup.utils._threads.cpu_count", lambda: 4)
    with threadpool_limits(2, user_api="blas"):
        reference = plan.loss_gradient(Z, Y)
    assert calls and set(calls) == {2}  # one call per interior node
    threaded_calls = list(calls)
    with threadpool_limits(1, user_api="blas"):
        serial = plan.loss_gradient(Z, Y)
    out = []
    thread = threading.Thread(target=lambda: out.append(plan.loss_gradient(Z, Y)))
    thread.start()
    thread.join()
    assert (
        calls == threaded_calls
    )  # neither under threadpool_limits(1) nor off the main thread
    for value, grad in (serial, out[0]):
        assert value == pytest.approx(reference[0], rel=1e-12)
        np.testing.assert_allclose(grad, reference[1], rtol=1e-10, atol=1e-14)


def test_threaded_underflow_fallback_equals_single_thread(monkeypatch):
    # All pairs with huge logits: gemm hands row tiles to the direct evaluation,
    # whose partner gradient spans other tiles' rows (summed per thread).
    rng = np.random.RandomState(2)
    n, K = 120, 3
    Z, Y = rng.randn(n, K) * 2000, np.eye(K)[rng.randint(0, K, n)]
    plan = _plan(n, rng)
    monkeypatch.setattr(_plan_module, "_TILE_ELEMENTS", 1 << 10)
    monkeypatch.setattr(_plan_module, "worker_count", lambda n, blas: 3)
    monkeypatch.setattr(_plan_module, "_PARALLEL_MIN", 1)
    value, grad = plan.loss_gradient(Z, Y, "gemm")
    ref_value, ref_grad = plan.loss_gradient(Z, Y, "direct")
    assert value == pytest.approx(ref_value, rel=1e-10)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-8, atol=1e-14)


def test_sampled_blocks_are_an_unbiased_estimate_of_all_pairs():
    # Averaged over block draws, the sampled objective equals Eq. (1): the
    # in-block pairs are scaled by (n - 1) / (m - 1), self-pairs keep 1 / n^2.
    rng = np.random.RandomState(0)
    n, K = 31, 3
    Z, Y = rng.randn(n, K) * 2, np.eye(K)[rng.randint(0, K, n)]
    exact = _plan(n, rng).loss(Z, Y)
    draws = [_plan(n, rng, partners=2).loss(Z, Y) for _ in range(3000)]
    se = np.std(draws) / np.sqrt(len(draws))
    assert se > 0
    assert abs(np.mean(draws) - exact) < 4 * se


def test_folded_symmetric_rule_equals_the_unfolded_rule():
    # alpha == beta: the nodes l and 1 - l give the same term and are folded;
    # the folded rule must equal the Beta rule with every node kept.
    rng = np.random.RandomState(1)
    n, K = 40, 3
    Z, Y = rng.randn(n, K), np.eye(K)[rng.randint(0, K, n)]
    folded = _plan(n, rng, n_nodes=5, a=0.7, b=0.7)
    assert folded.nodes.size == 4  # 0, 1 and 5 interior nodes -> 1 + 3
    unfolded = _plan(n, rng, n_nodes=5, a=0.7, b=0.7 * (1 + 1e-13))
    assert unfolded.nodes.size == 7
    assert folded.loss(Z, Y) == pytest.approx(unfolded.loss(Z, Y), rel=1e-11)


def test_lobatto_rule_is_exact_for_polynomials():
    nodes, weights = lobatto_beta_quadrature(0.3, 2.0, 4)
    assert nodes[0] == 0.0 and nodes[-1] == 1.0
    for k in range(10):  # exact up to degree 2 * 4 + 1
        assert weights @ nodes**k == pytest.approx(
            special.beta(0.3 + k, 2.0) / special.beta(0.3, 2.0), rel=1e-12
        )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_logits_fall_back_to_the_direct_evaluation(dtype):
    # Logit gaps beyond exp's range: the factorised exponentials underflow, and
    # gemm must hand the tile to the direct evaluation instead of returning inf.
    rng = np.random.RandomState(1)
    n, K = 30, 3
    Z = (rng.randn(n, K) * 2000).astype(dtype)
    Y = np.eye(K)[rng.randint(0, K, n)].astype(dtype)
    plan = _plan(n, rng, partners=4)
    value, grad = plan.loss_gradient(Z, Y, "gemm")
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    ref_value, ref_grad = plan.loss_gradient(Z.astype(np.float64), Y, "direct")
    # float32: the shifted logits z - max(z) carry rounding errors ~1e-4 here.
    atol = 1e-12 if dtype == np.float64 else 1e-6
    assert value == pytest.approx(ref_value, rel=1e-6)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=atol)


def test_auto_is_exact_within_the_budget_and_sampled_above():
    from skmixup.linear_model._plan import EXACT_WORK, resolve_settings

    n_exact = int(np.sqrt(EXACT_WORK / 2))  # 4 interior nodes, alpha == beta: 2
    assert resolve_settings(n_exact, 1.0, None, "auto", "auto")[0] is None
    assert resolve_settings(n_exact + 1, 1.0, None, "auto", "auto")[0] is not None
    assert resolve_settings(n_exact, 5.0, 0.5, "auto", "auto")[0] is not None
    P, _ = resolve_settings(50_000, 1.0, None, "auto", "auto")
    assert 15 <= P < 100
    assert resolve_settings(500, 1.0, None, 600, "auto")[0] is None  # P + 1 >= n


@pytest.mark.parametrize("partners", ["all", 5])
def test_fit_is_bit_identical_on_any_number_of_cores(monkeypatch, partners):
    # The partner sums that cross tiles are dealt into fixed shares, whatever the
    # thread count: 1, 2, 3 or 8 cores give the same bits (issue 17, item 14).
    X, y = _data(n=400, d=6, K=3, seed=1)
    monkeypatch.setattr(_plan_module, "_TILE_ELEMENTS", 1 << 10)  # many tiles
    monkeypatch.setattr(_plan_module, "_PARALLEL_MIN", 1)
    fits = []
    for cores in (1, 2, 3, 8):
        monkeypatch.setattr(
            _plan_module, "worker_count", lambda n, blas, cores=cores: cores
        )
        clf = MixupLogisticRegression(n_partners=partners, random_state=0)
        fits.append(clf.fit(X, y))
    for clf in fits[1:]:
        np.testing.assert_array_equal(clf.coef_, fits[0].coef_)
        np.testing.assert_array_equal(clf.intercept_, fits[0].intercept_)
