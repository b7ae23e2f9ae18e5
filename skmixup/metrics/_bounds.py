"""Sound lower bounds on a network's margins over a perturbation set: IBP and CROWN.

Notation of :mod:`._network`: ``z_0 = c_0 + A delta`` (the first layer composed with
the affine transformers, per sample), ``a_j = f_j(z_j)``,
``z_{j+1} = W_{j+1} a_j + b_{j+1}``, logits ``z_L``. The margin of class ``k`` for
label ``y`` is ``m_k = z_{L,y} - z_{L,k}``; a sample is certified when
``min_k min_delta m_k > 0`` over the perturbation set.

* **IBP** (interval bound propagation, Gowal et al., 2018): intervals of each
  ``z_j``, through the monotone activations and ``W`` (``center +- |W| radius``).
  The specification is folded into the last layer: ``m = (W_y - W_k) a + ...``.
* **CROWN** (Zhang et al., 2018; DeepPoly, Singh et al., 2019): each activation is
  enclosed by two lines ``lw z + lb <= f(z) <= uw z + ub`` on ``[l, u]``, and the
  linear function to bound is carried backwards to the input: a positive
  coefficient takes the lower line, a negative one the upper line. At the input,
  ``min over the box of D delta = D mid - |D| rad`` (l_inf), or ``-eps ||D s||_2``
  (l2 with per-feature units ``s``). Intermediate bounds (of every ``z_j``) come
  from the same backward pass, and are intersected with the IBP intervals, and
  the final margin is the larger of CROWN's and IBP's, so CROWN never certifies
  fewer samples than IBP.

Lines: ReLU / LeakyReLU with slope ``alpha`` on an unstable neuron (``l < 0 < u``):
upper ``(u - alpha l) / (u - l) (z - l) + alpha l``, lower ``lam z`` with
``lam = 1`` if ``u >= -l`` else ``alpha`` (CROWN's adaptive choice). Tanh and
sigmoid: on a convex piece (``u <= 0``) the chord above and the tangent at the
middle below, on a concave piece (``l >= 0``) the reverse; across 0 the lines of
slope ``min(f'(l), f'(u))`` through ``(l, f(l))`` (below) and ``(u, f(u))``
(above), sound because ``f'`` is unimodal (DeepPoly).

Floating point: every interval is widened by ``1e-9 (1 + |bound|)`` (the rounding of
float64 sums is far below that), so that the MILP's big-M constants stay valid.
"""

import numpy as np
from scipy.special import expit

from skmixup.utils._threads import run_blocks

# Widening of every computed bound (relative, plus the same absolute amount).
BOUND_SLACK = 1e-9
# Floats per block of the backward passes (rows x rows of Lambda x width).
_BLOCK_FLOATS = 2**22


def _rowdot(M, v):
    """``sum_h M[n, r, h] v[n, h]`` as a batched matrix product (BLAS)."""
    return np.matmul(M, v[:, :, None])[:, :, 0]


def _widen(lower, upper):
    return (
        lower - BOUND_SLACK * (1 + np.abs(lower)),
        upper + BOUND_SLACK * (1 + np.abs(upper)),
    )


class Region:
    """The perturbation set of each sample, in its moving columns.

    ``lo, hi`` (n, c): the l_inf box (clip included); for ``norm="2"`` also the
    ellipsoid ``||delta / s||_2 <= eps`` with ``s`` the per-sample units (0 where a
    column may not move); the box then encloses the ellipsoid, so both bounds
    are valid and the larger is used.
    """

    def __init__(self, lo, hi, norm="inf", eps=0.0, units=None):
        self.lo, self.hi, self.norm, self.eps, self.units = lo, hi, norm, eps, units

    def subset(self, rows):
        units = None if self.units is None else self.units[rows]
        return Region(self.lo[rows], self.hi[rows], self.norm, self.eps, units)

    def lower(self, D):
        """Lower bound of ``D delta`` over the set; D of shape (n, r, c)."""
        mid = 0.5 * (self.lo + self.hi)
        rad = 0.5 * (self.hi - self.lo)
        box = _rowdot(D, mid) - _rowdot(np.abs(D), rad)
        if self.norm != "2":
            return box
        ball = -self.eps * np.linalg.norm(D * self.units[:, None, :], axis=2)
        return np.maximum(box, ball)

    def argmin(self, D):
        """A minimizer of ``D delta`` over the set, D of shape (n, c)."""
        if self.norm != "2":
            return np.where(D > 0, self.lo, np.where(D < 0, self.hi, 0.0))
        S = D * self.units
        length = np.linalg.norm(S, axis=1, keepdims=True)
        return -self.eps * S * self.units / np.where(length == 0, 1.0, length)


class FirstLayer:
    """``z_0 = c0 + A delta``: A of shape (h, c) (shared) or (n, h, c)."""

    def __init__(self, A, c0):
        self.A, self.c0 = A, c0

    def subset(self, rows):
        A = self.A if self.A.ndim == 2 else self.A[rows]
        return FirstLayer(A, self.c0[rows])

    def apply(self, Lam):
        """``Lam A`` for Lam of shape (n, r, h): (n, r, c)."""
        if self.A.ndim == 2:  # one matrix product (BLAS) for all rows
            n, r, h = Lam.shape
            return (Lam.reshape(n * r, h) @ self.A).reshape(n, r, -1)
        return np.matmul(Lam, self.A)

    def interval(self, region):
        """Exact bounds of every ``z_0`` over the region."""
        A = self.A if self.A.ndim == 3 else self.A[None]
        if self.A.ndim == 2 and region.norm != "2":
            mid = 0.5 * (region.lo + region.hi)
            rad = 0.5 * (region.hi - region.lo)
            center = mid @ self.A.T
            radius = rad @ np.abs(self.A).T
            return _widen(self.c0 + center - radius, self.c0 + center + radius)
        A = np.broadcast_to(A, (self.c0.shape[0], *A.shape[1:]))
        low = region.lower(A)
        high = -region.lower(-A)
        return _widen(self.c0 + low, self.c0 + high)


def activate(kind, slope, Z):
    if kind == "relu":
        return np.maximum(Z, slope * Z)
    if kind == "tanh":
        return np.tanh(Z)
    if kind == "sigmoid":
        return expit(Z)
    return Z


def _derivative(kind, Z):
    F = activate(kind, 0.0, Z)
    return 1.0 - F * F if kind == "tanh" else F * (1.0 - F)


def relax(kind, slope, l, u, lower="adaptive"):
    """Lines ``lw z + lb <= f(z) <= uw z + ub`` on ``[l, u]`` (arrays of l's shape).

    ``lower`` picks the lower slope of unstable ReLUs: ``"adaptive"`` (CROWN),
    ``"zero"`` (``alpha``) or ``"one"``.
    """
    if kind == "identity":
        one = np.ones_like(l)
        return one, np.zeros_like(l), one, np.zeros_like(l)
    if kind == "relu":
        active, dead = l >= 0, u <= 0
        unstable = ~(active | dead)
        width = np.where(unstable, u - l, 1.0)
        uw = np.where(active, 1.0, slope)
        uw = np.where(unstable, (u - slope * l) / width, uw)
        ub = np.where(unstable, slope * l - uw * l, 0.0)
        if lower == "adaptive":
            lam = np.where(u >= -l, 1.0, slope)
        else:
            lam = np.full_like(l, slope if lower == "zero" else 1.0)
        lw = np.where(active, 1.0, np.where(dead, slope, lam))
        return lw, np.zeros_like(l), uw, ub
    # tanh, sigmoid: S-shaped, convex below 0 and concave above
    fl, fu = activate(kind, 0.0, l), activate(kind, 0.0, u)
    dl, du = _derivative(kind, l), _derivative(kind, u)
    lam = np.minimum(dl, du)
    lw, lb = lam, fl - lam * l
    uw, ub = lam.copy(), fu - lam * u
    wide = (u - l) > 1e-6
    width = np.where(wide, u - l, 1.0)
    chord = np.where(wide, (fu - fl) / width, lam)
    mid = 0.5 * (l + u)
    fm, dm = activate(kind, 0.0, mid), _derivative(kind, mid)
    convex, concave = wide & (u <= 0), wide & (l >= 0)
    uw = np.where(convex, chord, uw)
    ub = np.where(convex, fl - chord * l, ub)
    lw = np.where(convex, dm, lw)
    lb = np.where(convex, fm - dm * mid, lb)
    lw = np.where(concave, chord, lw)
    lb = np.where(concave, fl - chord * l, lb)
    uw = np.where(concave, dm, uw)
    ub = np.where(concave, fm - dm * mid, ub)
    pad = BOUND_SLACK * (1.0 + np.abs(fl) + np.abs(fu))
    return lw, lb - pad, uw, ub + pad


def _interval_affine(W, b, a_lo, a_hi):
    mid, rad = 0.5 * (a_lo + a_hi), 0.5 * (a_hi - a_lo)
    center = mid @ W.T + b
    radius = rad @ np.abs(W).T
    return _widen(center - radius, center + radius)


def _backward(M, const, j, weights, relaxations, first, region):
    """Lower bound of ``M a_j + const`` (M: (n, r, h_j)), carried to the input."""
    for i in range(j, -1, -1):
        lw, lb, uw, ub = relaxations[i]
        positive = M >= 0
        # M+ (lw z + lb) + M- (uw z + ub): slopes and intercepts picked by sign
        const = const + _rowdot(M, ub) + _rowdot(np.where(positive, M, 0.0), lb - ub)
        Lam = M * np.where(positive, lw[:, None, :], uw[:, None, :])
        if i == 0:
            const += _rowdot(Lam, first.c0)
            return const + region.lower(first.apply(Lam))
        W, b = weights[i]
        const += Lam @ b
        n, r, h = Lam.shape
        M = (Lam.reshape(n * r, h) @ W).reshape(n, r, -1)  # one BLAS product
    raise AssertionError("unreachable")


def bound_block(network, first, region, y_idx, method, lower="adaptive"):
    """Margin lower bounds (n, K) (``+inf`` at the label) and pre-activation bounds.

    ``method`` is ``"ibp"`` or ``"crown"``.
    """
    weights, acts = network.weights, network.activations
    n_hidden = len(acts)
    W_out, b_out = weights[-1]
    CW = W_out[y_idx][:, None, :] - W_out[None, :, :]  # (n, K, h): rows e_y - e_k
    Cb = b_out[y_idx][:, None] - b_out[None, :]
    n = len(y_idx)
    rows = np.arange(n)
    if n_hidden == 0:  # linear: the first layer is the output, the bound is exact
        K = W_out.shape[0]
        C = np.eye(K)[y_idx][:, None, :] - np.eye(K)[None]  # (n, K, K)
        low = first.c0[rows, y_idx][:, None] - first.c0
        low = low + region.lower(first.apply(C))
        low[rows, y_idx] = np.inf
        return low, []
    pre = [first.interval(region)]
    relaxations = []
    for j in range(n_hidden):
        kind, slope = acts[j]
        l, u = pre[j]
        relaxations.append(relax(kind, slope, l, u, lower))
        a_lo, a_hi = activate(kind, slope, l), activate(kind, slope, u)
        if j == n_hidden - 1:
            break
        W, b = weights[j + 1]
        il, iu = _interval_affine(W, b, a_lo, a_hi)
        next_kind = acts[j + 1][0]
        if next_kind == "relu":
            unstable = np.flatnonzero(np.any((il < 0) & (iu > 0), axis=0))
        elif next_kind == "identity":
            unstable = np.zeros(0, dtype=int)
        else:
            unstable = np.arange(W.shape[0])
        if method == "crown" and len(unstable):
            # CROWN bounds only where they can tighten the next relaxation: ReLUs
            # IBP leaves unstable in some row (the others' relaxation is exact, as
            # is the identity's); every tanh or sigmoid.
            Wu, bu, h = W[unstable], b[unstable], len(unstable)
            M = np.broadcast_to(np.concatenate([Wu, -Wu])[None], (n, 2 * h, W.shape[1]))
            const = np.broadcast_to(np.concatenate([bu, -bu])[None], (n, 2 * h))
            both = _backward(M, const, j, weights, relaxations, first, region)
            cl, cu = _widen(both[:, :h], -both[:, h:])
            il, iu = il.copy(), iu.copy()
            il[:, unstable] = np.maximum(il[:, unstable], cl)
            iu[:, unstable] = np.minimum(iu[:, unstable], cu)
        pre.append((il, iu))
    mid, rad = 0.5 * (a_lo + a_hi), 0.5 * (a_hi - a_lo)
    low = Cb + _rowdot(CW, mid) - _rowdot(np.abs(CW), rad)
    if method == "crown":
        crown = _backward(CW, Cb, n_hidden - 1, weights, relaxations, first, region)
        low = np.maximum(low, crown)
    low[rows, y_idx] = np.inf
    return low, pre


def block_size(network, n_columns):
    widths = [W.shape[0] for W, _ in network.weights] + [n_columns]
    widest = max(widths)
    return max(1, _BLOCK_FLOATS // (2 * widest * widest))


def bound_margins(network, first, region, y_idx, method, lower="adaptive"):
    """:func:`bound_block` over blocks of samples; margins (n, K) and bounds.

    The blocks run through :func:`~skmixup.utils._threads.run_blocks`: BLAS at
    one thread (its threads only wait for each other on these small products)
    and the blocks on the usable cores; each block writes its own rows.
    """
    n = len(y_idx)
    size = block_size(network, region.lo.shape[1])
    K = network.weights[-1][0].shape[0]
    low = np.empty((n, K))
    pre = [
        (np.empty((n, W.shape[0])), np.empty((n, W.shape[0])))
        for W, _ in network.weights[:-1]
    ]

    def work(rows, _):
        block_low, block_pre = bound_block(
            network,
            first.subset(rows),
            region.subset(rows),
            y_idx[rows],
            method,
            lower,
        )
        low[rows] = block_low
        for (l, u), (bl, bu) in zip(pre, block_pre, strict=True):
            l[rows], u[rows] = bl, bu

    tasks = [(slice(start, min(n, start + size)), None) for start in range(0, n, size)]
    run_blocks(tasks, work)
    return low, pre
