"""The exact margin of a piecewise-linear network: a mixed-integer linear program.

For one sample with label ``y`` and one other class ``k``, minimize
``m_k = (W_{L,y} - W_{L,k}) a_{L-1} + b_{L,y} - b_{L,k}`` over the perturbation box
``lo <= delta <= hi`` and the network's graph (Tjeng, Xiao and Tedrake, "Evaluating
Robustness of Neural Networks with Mixed Integer Programming", ICLR 2019). A
LeakyReLU ``a = max(z, alpha z)`` (ReLU: ``alpha = 0``) with pre-activation bounds
``l < 0 < u`` and a binary ``s`` (1: active) is exactly

    a >= z,  a >= alpha z,
    a <= z - (1 - alpha) l (1 - s),  a <= alpha z + (1 - alpha) u s;

with ``s = 1`` the constraints force ``a = z >= 0``, with ``s = 0`` ``a = alpha z``
and ``z <= 0``. Stable neurons (``l >= 0`` or ``u <= 0``) and identity
activations are equalities. The big-M constants ``l, u`` are CROWN's bounds
(:mod:`._bounds`), valid for every point of the box, so the program's optimum is
the true minimum. Rather than the minimum itself, HiGHS (through
:func:`scipy.optimize.milp`) is asked for *any* point with ``m_k <= tol`` (the safety
margin): branches whose relaxation stays above ``tol`` are pruned at once, which is
much faster than proving the optimum. Infeasible: the sample is certified for class
``k`` with margin ``> tol``; a point: the candidate counterexample, confirmed by
``predict`` (if not, a point with ``m_k < -tol`` is looked for, and failing that
the sample is too close to call: ``"unknown"``).
"""

import time

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from skmixup.metrics._bounds import activate


def _program(network, A, c0, lo, hi, pre):
    """Constraint matrix, bounds, integrality and the index of the last layer."""
    n_in = A.shape[1]
    blocks, row_lo, row_hi = [], [], []
    var_lo, var_hi, integral = [lo], [hi], [np.zeros(n_in)]
    n_vars = n_in
    prev = (0, n_in)  # position and width of the previous layer's variables
    P, q = A, c0  # z = P v_prev + q
    for j, (kind, slope) in enumerate(network.activations):
        l, u = pre[j]
        h = len(l)
        if kind == "identity":
            slope = 1.0
            unstable = np.zeros(h, dtype=bool)
            gain = np.ones(h)
        else:
            unstable = (l < 0) & (u > 0)
            gain = np.where(l >= 0, 1.0, slope)
        a_at = n_vars
        s_idx = np.flatnonzero(unstable)
        s_at = a_at + h
        n_vars = s_at + len(s_idx)
        a_lo = activate(kind, slope, l)
        a_hi = activate(kind, slope, u)
        var_lo += [np.minimum(a_lo, a_hi), np.zeros(len(s_idx))]
        var_hi += [np.maximum(a_lo, a_hi), np.ones(len(s_idx))]
        integral += [np.zeros(h), np.ones(len(s_idx))]

        # Build the rows as dense blocks over (previous, a, s).
        stable = np.flatnonzero(~unstable)
        U = s_idx
        g_s = gain[stable]  # a - g z = g q on stable neurons
        blocks.append(_block(prev, P[stable], -g_s, a_at, stable, None, None, n_vars))
        row_lo.append(g_s * q[stable])
        row_hi.append(g_s * q[stable])
        one_minus = 1.0 - slope
        for g, s_coef, low_side, high_side in (
            (1.0, None, q[U], np.full(len(U), np.inf)),  # a - z >= q
            (slope, None, slope * q[U], np.full(len(U), np.inf)),  # a - alpha z >= .
            (1.0, -one_minus * l[U], np.full(len(U), -np.inf), q[U] - one_minus * l[U]),
            (slope, -one_minus * u[U], np.full(len(U), -np.inf), slope * q[U]),
        ):
            gains = np.full(len(U), g)
            blocks.append(_block(prev, P[U], -gains, a_at, U, s_at, s_coef, n_vars))
            row_lo.append(low_side)
            row_hi.append(high_side)
        W, b = network.weights[j + 1]
        prev = (a_at, h)
        P, q = W, b
    M = sparse.vstack([_pad(B, n_vars) for B in blocks], format="csr")
    return (
        M.tocsr(),
        np.concatenate(row_lo) if row_lo else np.zeros(0),
        np.concatenate(row_hi) if row_hi else np.zeros(0),
        np.concatenate(var_lo),
        np.concatenate(var_hi),
        np.concatenate(integral),
        prev,
    )


def _pad(B, width):
    """A coo block with ``width`` columns."""
    return sparse.coo_matrix((B.data, (B.row, B.col)), shape=(B.shape[0], width))


def _block(prev, P_rows, coef, a_at, which, s_at, s_coef, n_vars):
    """Sparse rows ``coef_i * P_i v_prev + a_i (+ s_coef_i s_i)``."""
    m = len(which)
    at, width = prev
    prev_part = sparse.coo_matrix(coef[:, None] * P_rows)
    rows = [prev_part.row, np.arange(m)]
    cols = [prev_part.col + at, a_at + which]
    vals = [prev_part.data, np.ones(m)]
    if s_coef is not None:
        rows.append(np.arange(m))
        cols.append(s_at + np.arange(m))
        vals.append(s_coef)
    return sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(m, n_vars),
    )


def exact_margins(network, A, c0, lo, hi, pre, y, low, *, tol, time_limit, verify):
    """Solve the programs of one sample; ``(status, margin lower bound, delta)``.

    ``low`` (K,) holds CROWN's margin bounds (``+inf`` at ``y``); only the classes
    with ``low <= tol`` are solved, most threatening first. ``verify(delta)`` says
    whether ``predict`` misclassifies the candidate. Status: ``"certified"``,
    ``"attacked"`` or ``"unknown"`` (time limit, or an optimum too close to 0 to
    be confirmed by ``predict``).
    """
    start = time.perf_counter()
    M, r_lo, r_hi, v_lo, v_hi, integral, last = _program(network, A, c0, lo, hi, pre)
    W, b = network.weights[-1]
    low = low.copy()
    n_vars = len(v_lo)
    at, width = last
    unresolved = False
    for k in np.argsort(low):
        if low[k] > tol:
            break
        c = np.zeros(n_vars)
        c[at : at + width] = W[y] - W[k]
        const = b[y] - b[k]
        # Is there a point with margin <= tol? Infeasible: certified for k. Then,
        # for a candidate that predict does not confirm, a point with margin < -tol.
        settled = False
        for level in (tol, -tol):
            options = {"presolve": True}
            if time_limit is not None:
                left = time_limit - (time.perf_counter() - start)
                if left <= 0:
                    return "unknown", float(low.min()), None
                options["time_limit"] = left
            res = milp(
                np.zeros(n_vars),
                integrality=integral,
                bounds=Bounds(v_lo, v_hi),
                constraints=[
                    LinearConstraint(M, r_lo, r_hi),
                    LinearConstraint(c[None], -np.inf, level - const),
                ],
                options=options,
            )
            if res.status == 2:  # infeasible: every point has margin > level
                low[k] = max(low[k], level)
                settled = level > 0
                break
            if res.x is None:  # out of time
                return "unknown", float(low.min()), None
            delta = np.clip(res.x[: len(lo)], lo, hi)
            if verify(delta):
                return "attacked", float(low.min()), delta
        unresolved |= not settled
    status = "unknown" if unresolved else "certified"
    return status, float(low.min()), None
