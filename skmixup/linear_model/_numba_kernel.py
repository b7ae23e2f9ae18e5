"""Optional fused kernel for :class:`~skmixup.linear_model._loss.MixupLoss` (numba).

The numpy evaluation of the exact Mixup loss makes several passes over an
``(anchors, partners, nodes, classes)`` block and pays for gathers and tiny batched
matrix products; here one compiled loop per anchor does the same arithmetic in
registers, in parallel over anchors. It is used automatically when numba is
installed (``pip install "skmixup[fast]"``) and the partners are sampled; results
agree with the numpy path to rounding (``tests/test_logistic.py``).

The arithmetic is that of ``_Segments``: with ``z~ = z - max(z)`` (so ``z~ <= 0``),
``exp(lam z~_i + (1 - lam) z~_r) = A[i, q] * B[r, q]`` with the tables
``B[r, q] = exp((1 - lam_q) z~_r)`` and ``A[i, q] = exp(z~_i) / B[i, q]`` (by
exponentials where ``exp(z~_i)`` underflows), so no exponential is taken per pair.
A pair and node whose sum of exponentials is near underflow (logit gaps beyond
~700 in float64) is recomputed with its own maximum.
"""

import contextlib
import math
import os
import threading

import numba
import numpy as np

# Reassociation lets LLVM vectorize the sums over classes; no change to inf/nan.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
# numba's "workqueue" threading layer (used where neither OpenMP nor TBB is found)
# aborts the process if two Python threads run parallel kernels at once, as a
# threaded GridSearchCV or Dask would: calls are then serialized.
_WORKQUEUE_LOCK = threading.Lock()
# Quadrature nodes per pass: the DESIGN default (16) in one pass; more nodes are
# split to bound the (n, K, nodes) exponential table.
_NODE_GROUP = 16


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _partner_tables(Zs, nodes, B):  # pragma: no cover - compiled
    """Fill ``B[r, k, q] = exp((1 - lam_q) z~_rk)``, shape (n, K, Q): nodes innermost,
    so that the per-pair loops run over contiguous nodes (SIMD-friendly)."""
    n, K = Zs.shape
    Q = nodes.shape[0]
    for r in numba.prange(n):
        for k in range(K):
            for q in range(Q):
                B[r, k, q] = math.exp((1.0 - nodes[q]) * Zs[r, k])


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _multiclass(
    Z,
    Zs,
    zmax,
    B,
    Y,
    nodes,
    weights,
    order,
    positions,
    pw,
    sw,
    e_lam,
    e_1mlam,
    tiny,
    labels,
    value,
    g_anchor,
    g_partner,
    G,
    windowed,
    parity,
    n_chunks,
):  # pragma: no cover - compiled
    """Add one node group's loss and gradients into ``value`` (per anchor),
    ``g_anchor`` (per sample) and ``g_partner`` (per position and partner).

    The anchor at position ``t`` is sample ``i = order[t]``; its ``p``-th partner is
    at position ``positions[t, p]``. ``B`` is indexed by position, everything else
    by sample. Contributions are multiplied by the anchor weight ``sw[i]`` and the
    pair weight ``pw[i, p]``; the label terms (linear in the logits, weights
    ``e_lam`` and ``e_1mlam`` of the whole rule) are added when ``labels`` is true,
    once per evaluation.

    Anchors are processed in ``n_chunks`` chunks of consecutive positions. With
    ``windowed`` (partners in a window of consecutive positions, chunks at least as
    long as the window, ``n_chunks`` even), the partner gradients are added straight
    into ``G`` (per position): chunks of one ``parity`` then write disjoint ranges,
    so the two parities run as two calls. Otherwise they go to ``g_partner`` (per
    position and partner) and :func:`_scatter` adds them up.
    """
    n, K = Z.shape
    P = positions.shape[1]
    Q = nodes.shape[0]
    if not labels:
        e_lam = 0.0 * e_lam
        e_1mlam = 0.0 * e_1mlam
    # Scratch is allocated once per chunk of anchors, not per anchor: allocations
    # inside a parallel loop cost more than the arithmetic of a small problem.
    step = 2 if windowed else 1
    for j in numba.prange(n_chunks // step):
        chunk = step * j + parity
        A = np.empty((K, Q), dtype=Z.dtype)  # (K, Q) layout: nodes innermost
        E = np.empty((K, Q), dtype=Z.dtype)
        S = np.empty(Q, dtype=Z.dtype)
        ga = np.empty(K, dtype=np.float64)
        for t in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            i = order[t]
            for k in range(K):
                ga[k] = 0.0
            for k in range(K):
                # exp(lam z~) = exp(z~) / exp((1 - lam) z~), unless exp(z~) underflows.
                ez = math.exp(Zs[i, k])
                for q in range(Q):
                    if ez > tiny:
                        A[k, q] = ez / B[t, k, q]
                    else:
                        A[k, q] = math.exp(nodes[q] * Zs[i, k])
            yz_i = 0.0
            for k in range(K):
                yz_i += Y[i, k] * Z[i, k]
            total = 0.0
            for p in range(P):
                tp = positions[t, p]
                r = order[tp]
                # exp(u_q - shift_q) for every class and node; sums over classes.
                for q in range(Q):
                    S[q] = 0.0
                for k in range(K):
                    for q in range(Q):
                        e = A[k, q] * B[tp, k, q]
                        E[k, q] = e
                        S[q] += e
                pair = 0.0
                for q in range(Q):
                    lam = nodes[q]
                    s = S[q]
                    if s > tiny:
                        lse = math.log(s) + lam * zmax[i] + (1.0 - lam) * zmax[r]
                    else:  # near underflow: per-node maximum, one exponential per entry
                        m = -np.inf
                        for k in range(K):
                            m = max(m, lam * Z[i, k] + (1.0 - lam) * Z[r, k])
                        s = 0.0
                        for k in range(K):
                            e = math.exp(lam * Z[i, k] + (1.0 - lam) * Z[r, k] - m)
                            E[k, q] = e
                            s += e
                        lse = math.log(s) + m
                    pair += weights[q] * lse
                    S[q] = weights[q] / s  # now the softmax normalisation of node q
                w_pair = pw[i, p]
                yz_r = 0.0
                scale = sw[i] * w_pair
                for k in range(K):
                    a = 0.0
                    c = 0.0
                    for q in range(Q):
                        f = S[q] * E[k, q]
                        a += nodes[q] * f
                        c += f
                    ga[k] += w_pair * a
                    # sum_q w_q (1 - lam_q) softmax_k(u_q) = c - a
                    g = scale * (c - a - e_1mlam * Y[i, k])
                    if windowed:
                        G[tp, k] += g
                    else:
                        g_partner[t, p, k] += g
                    yz_r += Y[i, k] * Z[r, k]
                pair -= e_lam * yz_i + e_1mlam * yz_r
                total += w_pair * pair
            value[i] += sw[i] * total
            for k in range(K):
                g_anchor[i, k] += sw[i] * (ga[k] - e_lam * Y[i, k])


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH)
def _binary(z, y, nodes, weights, partners, pw, sw, e_lam, e_1mlam):  # pragma: no cover
    """The sigmoid model (one logit): softplus along mixing segments."""
    n = z.shape[0]
    P = partners.shape[1]
    Q = nodes.shape[0]
    value = np.zeros(n, dtype=np.float64)
    g_anchor = np.zeros(n, dtype=z.dtype)
    g_partner = np.zeros((n, P), dtype=z.dtype)
    for i in numba.prange(n):
        total = 0.0
        ga = 0.0
        for p in range(P):
            r = partners[i, p]
            pair = 0.0
            gp = 0.0
            for q in range(Q):
                lam = nodes[q]
                u = lam * z[i] + (1.0 - lam) * z[r]
                e = math.exp(-abs(u))
                softplus = max(u, 0.0) + math.log1p(e)
                sigma = 1.0 / (1.0 + e) if u >= 0 else e / (1.0 + e)
                w = weights[q]
                pair += w * softplus
                ga += pw[i, p] * w * lam * sigma
                gp += w * (1.0 - lam) * sigma
            pair -= y[i] * (e_lam * z[i] + e_1mlam * z[r])
            total += pw[i, p] * pair
            g_partner[i, p] = sw[i] * pw[i, p] * (gp - e_1mlam * y[i])
        value[i] = sw[i] * total
        g_anchor[i] = sw[i] * (ga - e_lam * y[i])
    return value, g_anchor, g_partner


@numba.njit(cache=True)
def _scatter(dZ, order, positions, g_partner):  # pragma: no cover - compiled
    """``dZ[order[positions[t, p]]] += g_partner[t, p]`` (serial: partners collide)."""
    n, P = positions.shape
    for t in range(n):
        for p in range(P):
            r = order[positions[t, p]]
            for k in range(dZ.shape[1]):
                dZ[r, k] += g_partner[t, p, k]


# GNU OpenMP (numba's "omp" layer on Linux) cannot run in a child forked after the
# parent used it: numba terminates such a child. A fork after first use is noted,
# and the child then falls back to the numpy evaluation (same results, slower).
_STATE = {"used": False, "forked_after_use": False}


def _note_fork():
    if _STATE["used"]:
        _STATE["forked_after_use"] = True


os.register_at_fork(after_in_child=_note_fork)


def usable():
    """Whether this process may run the kernel (False in a forked OpenMP child)."""
    if not _STATE["forked_after_use"]:
        return True
    try:
        return numba.threading_layer() != "omp"
    except ValueError:  # pragma: no cover - a parallel region ran before the fork
        return False


def _serialized():
    """The workqueue lock, or a no-op context under a thread-safe layer."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet: the layer is not chosen
        return _WORKQUEUE_LOCK
    return _WORKQUEUE_LOCK if layer == "workqueue" else contextlib.nullcontext()


def logit_loss_gradient(loss, Z, Y, sample_weight):
    """Value and ``dZ`` of ``MixupLoss`` for sampled partners (numba path)."""
    with _serialized():
        _STATE["used"] = True
        return _logit_loss_gradient(loss, Z, Y, sample_weight)


def _logit_loss_gradient(loss, Z, Y, sample_weight):
    dtype = Z.dtype
    Z = np.ascontiguousarray(Z)
    Y = np.ascontiguousarray(Y, dtype=dtype)
    sw = np.ascontiguousarray(sample_weight, dtype=dtype)
    pw = np.ascontiguousarray(loss.pair_weight, dtype=dtype)
    nodes = loss.nodes.astype(dtype)
    weights = loss.weights.astype(dtype)
    e_lam, e_1mlam = dtype.type(loss._e_lam), dtype.type(loss._e_1mlam)
    if Z.shape[1] == 1:  # indexed by sample: the partners are the positions
        partners = np.ascontiguousarray(loss.partners, dtype=np.intp)
        value, g_anchor, g_partner = _binary(
            Z[:, 0], Y[:, 0], nodes, weights, partners, pw, sw, e_lam, e_1mlam
        )
        dZ = g_anchor[:, None].copy()
        identity = np.arange(Z.shape[0])
        _scatter(dZ, identity, partners, g_partner[:, :, None])
        return float(value.sum()), dZ
    order, positions = loss.layout()
    n, K = Z.shape
    zmax = Z.max(axis=1)
    Zs = Z - zmax[:, None]
    Zs_by_position = np.ascontiguousarray(Zs[order])
    tiny = dtype.type(np.finfo(dtype).tiny * 1e6)
    value = np.zeros(n)
    dZ = np.zeros_like(Z)
    P = positions.shape[1]
    # Shifted partners form a window of P consecutive positions: with chunks of at
    # least P positions, partner gradients go straight into a per-position array.
    windowed = loss.order is not None and n >= 2 * P
    if windowed:
        n_chunks = 2 * min(8 * numba.get_num_threads(), n // (2 * P))
        G, g_partner = np.zeros((n, K), dtype=dtype), np.zeros((1, 1, 1), dtype)
    else:
        n_chunks = min(n, 16 * numba.get_num_threads())
        G, g_partner = np.zeros((1, 1), dtype), np.zeros((n, P, K), dtype=dtype)
    # Node groups bound the (n, K, nodes) table, as in the numpy path.
    for first in range(0, nodes.size, _NODE_GROUP):
        group = slice(first, first + _NODE_GROUP)
        B = np.empty((n, K, nodes[group].size), dtype=dtype)  # numpy-owned
        _partner_tables(Zs_by_position, nodes[group], B)
        for parity in (0, 1) if windowed else (0,):
            _multiclass(
                Z,
                Zs,
                zmax,
                B,
                Y,
                nodes[group],
                weights[group],
                order,
                positions,
                pw,
                sw,
                e_lam,
                e_1mlam,
                tiny,
                first == 0,
                value,
                dZ,
                g_partner,
                G,
                windowed,
                parity,
                n_chunks,
            )
    if windowed:
        dZ[order] += G
    else:
        _scatter(dZ, order, positions, g_partner)
    return float(value.sum()), dZ
