"""The second-order Mixup terms ``R1``, ``R2``, ``R3`` of any PyTorch module.

Zhang et al. (ICLR 2021), Lemma 3.1: for a loss affine in the label, the Mixup
loss equals ``(1/n) sum_i E_{lambda ~ D~} E_r l(x_i + (1 - lambda)(r - x_i), y_i)``
with ``r`` a random training input (``x_i`` itself included). Expanding ``l`` to
second order in ``u = 1 - lambda`` along ``Delta_i = r - x_i`` gives
``L_mix ~ L_std + R1 + R2 + R3`` (the paper's Eq. (3)) with, for logits ``f``,
``J_i`` the Jacobian of ``f`` with respect to the *input* at ``x_i``,
``e_i = p_i - y_i`` and ``H_i`` the Hessian of the loss in the logits
(``diag(p) - p p^T`` for softmax, ``sigma (1 - sigma)`` for a sigmoid output)::

    R1_i = m1       E_r[ e_i^T J_i Delta_i ]
    R2_i = (m2 / 2) E_r[ (J_i Delta_i)^T H_i (J_i Delta_i) ]
    R3_i = (m2 / 2) E_r[ sum_k e_ik Delta_i^T Hess_x f_k(x_i) Delta_i ]

where ``m1 = E[1 - lambda]`` and ``m2 = E[(1 - lambda)^2]`` under ``D~``; ``R_k`` is
the mean of ``R_k_i`` over the samples (the paper's formulas for a scalar output,
extended to softmax outputs for this library). Each needs only the first and
second *directional* derivatives of the network along ``Delta_i``, which
:func:`directional_derivatives` gets by forward-mode differentiation
(:func:`torch.func.jvp`, twice for ``R3``), for any module that treats its rows
independently.

Partners (``r``):

* **all partners, exactly**: ``E_r[Delta_i] = -(x_i - x_bar)`` and
  ``E_r[Delta_i Delta_i^T] = Sigma + (x_i - x_bar)(x_i - x_bar)^T`` with ``x_bar``
  and ``Sigma`` the (weighted, ``1/n``) mean and covariance of the training inputs.
  With ``Sigma = sum_k l_k l_k^T`` every quadratic term is a sum over the
  ``rank(Sigma) + 1`` directions ``x_i - x_bar, l_1, ..., l_r``, so the cost is
  ``rank(Sigma) + 1`` directional derivatives per sample
  (:class:`PartnerMoments`);
* **sampled partners**: ``E_r`` is the average over given partner rows, an unbiased
  estimate (one directional derivative per partner).

Everything is differentiable in the module's parameters, which is how
:class:`~skmixup.neural_network.MixupRegularizedMLPClassifier` trains on the penalty.
"""

from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.func import jvp

__all__ = [
    "MixupTerms",
    "PartnerMoments",
    "directional_derivatives",
    "is_piecewise_linear",
    "mixup_terms",
    "partner_moments",
]

LINKS = ("softmax", "sigmoid")

# Modules under which a network is piecewise linear in its input (Hess_x f = 0
# almost everywhere, so R3 = 0 exactly).
_PIECEWISE_LINEAR = (
    nn.Linear,
    nn.ReLU,
    nn.LeakyReLU,
    nn.Identity,
    nn.Sequential,
    nn.Dropout,
    nn.Flatten,
)


class PartnerMoments(NamedTuple):
    """Mean ``x_bar`` and a factor ``L`` of the covariance ``Sigma = L L^T``.

    Attributes
    ----------
    mean : Tensor of shape (n_features,)
    factor : Tensor of shape (n_features, rank)
        Columns ``sqrt(eigenvalue) * eigenvector`` of the non-zero eigenvalues.
    """

    mean: torch.Tensor
    factor: torch.Tensor


class MixupTerms(NamedTuple):
    """Per-sample terms of the second-order Mixup loss.

    Attributes
    ----------
    logits : Tensor of shape (n_samples, n_outputs)
    standard, R1, R2, R3 : Tensor of shape (n_samples,)
        Cross-entropy and ``R1_i``, ``R2_i``, ``R3_i`` (``R3`` is zeros when it
        was not computed, see :func:`mixup_terms`).
    """

    logits: torch.Tensor
    standard: torch.Tensor
    R1: torch.Tensor
    R2: torch.Tensor
    R3: torch.Tensor


def partner_moments(X, sample_weight=None, *, rtol=1e-12):
    """Weighted mean and covariance factor of the partner inputs.

    ``Sigma = sum_j w_j (x_j - x_bar)(x_j - x_bar)^T`` with weights summing to one
    (the ``1/n`` covariance when unweighted, as in Lemma 3.1 where ``r`` is drawn
    from the empirical law, ``x_i`` included). Eigen-directions with eigenvalue
    below ``rtol * max eigenvalue`` are dropped (their contribution is below that
    relative level).

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
    sample_weight : Tensor of shape (n_samples,), default=None

    Returns
    -------
    moments : PartnerMoments
    """
    X = X.detach()
    if sample_weight is None:
        w = torch.full((X.shape[0],), 1.0 / X.shape[0], dtype=X.dtype, device=X.device)
    else:
        w = sample_weight.to(X.dtype) / sample_weight.sum()
    # float64 for the eigen-decomposition, whatever the module's dtype
    X64, w64 = X.double(), w.double()
    mean = w64 @ X64
    Xc = X64 - mean
    cov = Xc.T @ (Xc * w64[:, None])
    return _moments(mean, cov, rtol, X.dtype)


def sparse_partner_moments(X, dtype, device, *, rtol=1e-12):
    """:func:`partner_moments` (unweighted) of a scipy sparse matrix, without
    making it dense: ``Sigma = X^T X / n - x_bar x_bar^T`` (float64)."""
    n = X.shape[0]
    mean = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
    second = np.asarray((X.T @ X).toarray(), dtype=np.float64) / n
    cov = torch.as_tensor(second - np.outer(mean, mean), device=device)
    return _moments(torch.as_tensor(mean, device=device), cov, rtol, dtype)


def _moments(mean, cov, rtol, dtype):
    eigval, eigvec = torch.linalg.eigh(cov)
    keep = eigval > rtol * max(float(eigval.max()), 0.0)
    factor = eigvec[:, keep] * eigval[keep].sqrt()
    return PartnerMoments(mean.to(dtype), factor.to(dtype))


def directional_derivatives(module, X, T, *, order=2):
    """Logits and their first (and second) derivatives along directions.

    ``T`` holds ``k`` blocks of ``n`` directions, one per row of ``X``: row
    ``b * n + i`` of the derivatives is ``J_i t`` and (``order=2``)
    ``t^T Hess_x f(x_i) t`` for the direction ``t = T[b * n + i]`` (one value per
    output), with ``J_i`` the input Jacobian of ``f = module`` at ``x_i``. Forward
    mode: for plain MLPs the derivatives are written out layer by layer and the
    value is computed once; otherwise :func:`torch.func.jvp` (nested for the
    second derivative) runs on ``X`` repeated ``k`` times. Both stay
    differentiable in the module's parameters. The module must treat rows
    independently (no batch statistics).

    Parameters
    ----------
    module : callable
        Maps ``(n, d)`` inputs to ``(n, K)`` logits.
    X : Tensor of shape (n, d)
        Points.
    T : Tensor of shape (k * n, d)
        Directions, block by block.
    order : {1, 2}, default=2

    Returns
    -------
    f : Tensor of shape (n, K)
    df, d2f : Tensor of shape (k * n, K)
        ``d2f`` is ``None`` when ``order=1``.
    """
    n = X.shape[0]
    layers = _elementwise_sequence(module)
    if layers is not None:
        f, df, d2f = _propagate(layers, X, T, order)
        return _as_2d(f), _as_2d(df), None if d2f is None else _as_2d(d2f)
    Xs = X.repeat(T.shape[0] // n, 1)
    if order == 1:
        f, df = jvp(module, (Xs,), (T,))
        return _as_2d(f)[:n], _as_2d(df), None

    def first(x):
        return jvp(module, (x,), (T,))

    (f, df), (_, d2f) = jvp(first, (Xs,), (T,))
    return _as_2d(f)[:n], _as_2d(df), _as_2d(d2f)


def _elementwise_sequence(module):
    """The layers of a plain MLP (``Linear`` and known activations), else None."""
    from skmixup.neural_network._module import MLPModule

    if isinstance(module, MLPModule):
        module = module.layers
    if type(module) is not nn.Sequential:
        return None
    layers = list(module)
    if all(type(layer) in _DERIVATIVES or type(layer) is nn.Linear for layer in layers):
        return layers
    return None


def _propagate(layers, X, T, order):
    """Forward-mode derivatives of a plain MLP along the blocks of ``T``, written out.

    The value ``a`` (``n`` rows), the first derivatives ``da`` and (``order=2``) the
    second derivatives ``d2a`` (``k * n`` rows each) of every layer's output along
    ``u`` in ``f(x_i + u t)`` at ``u = 0`` travel together: a ``Linear`` maps each
    with its weight (the bias enters ``a`` only), and an activation ``s`` maps them
    to ``s(a)``, ``s'(a) da`` and ``s''(a) da^2 + s'(a) d2a``. The same numbers as
    :func:`torch.func.jvp`, at about half its cost. (Separate products, not one on
    stacked rows: the backward of slicing a stacked product zero-fills its whole
    gradient at every layer, which cost more than the products' batching saved.)
    """
    n = X.shape[0]
    k = T.shape[0] // n
    a, da, d2a = X, T, None  # the input is linear in u: no second derivative
    for layer in layers:
        if type(layer) is nn.Linear:
            a = nn.functional.linear(a, layer.weight, layer.bias)
            da = nn.functional.linear(da, layer.weight)
            d2a = None if d2a is None else nn.functional.linear(d2a, layer.weight)
            continue
        value, first, second = _DERIVATIVES[type(layer)](layer, a)
        width = a.shape[1]
        first = first.unsqueeze(0)
        dab = da.view(k, n, width)
        if order == 2 and second is not None:
            new = second.unsqueeze(0) * dab * dab
            d2a = new if d2a is None else new + first * d2a.view(k, n, width)
            d2a = d2a.reshape(k * n, width)
        elif order == 2 and d2a is not None:
            d2a = (first * d2a.view(k, n, width)).reshape(k * n, width)
        a, da = value, (first * dab).reshape(k * n, width)
    if order == 2 and d2a is None:
        d2a = torch.zeros_like(da)
    return a, da, d2a if order == 2 else None


def _relu(layer, a):
    return torch.relu(a), (a > 0).to(a.dtype), None


def _leaky_relu(layer, a):
    slope = layer.negative_slope
    pos = a > 0
    first = pos.to(a.dtype) * (1.0 - slope) + slope  # slope in a's dtype
    return (
        torch.where(pos, a, slope * a),
        first,
        None,
    )


def _tanh(layer, a):
    t = torch.tanh(a)
    first = 1.0 - t * t
    return t, first, -2.0 * t * first


def _sigmoid(layer, a):
    s = torch.sigmoid(a)
    first = s * (1.0 - s)
    return s, first, first * (1.0 - 2.0 * s)


def _identity(layer, a):
    return a, torch.ones_like(a), None


# value, first and second derivative (None: zero) of elementwise activations
_DERIVATIVES = {
    nn.ReLU: _relu,
    nn.LeakyReLU: _leaky_relu,
    nn.Tanh: _tanh,
    nn.Sigmoid: _sigmoid,
    nn.Identity: _identity,
}


def is_piecewise_linear(module):
    """Whether ``module`` is built only of linear layers and ReLU-type activations.

    Such a network is piecewise linear in its input, so ``Hess_x f = 0`` almost
    everywhere and ``R3 = 0`` exactly (paper, section on ReLU networks).
    """
    from skmixup.neural_network._module import MLPModule

    for sub in module.modules():
        if isinstance(sub, MLPModule):
            continue
        if type(sub) not in _PIECEWISE_LINEAR:
            return False
    return True


def mixup_terms(module, X, y, *, m1, m2, partners, link="softmax", order=2):
    """Per-sample ``standard``, ``R1``, ``R2``, ``R3`` of the Mixup expansion.

    Parameters
    ----------
    module : callable
        Returns logits: ``(n, K)`` for ``link="softmax"``, ``(n,)`` or ``(n, 1)``
        for ``link="sigmoid"``.
    X : Tensor of shape (n, d)
        Anchors ``x_i``.
    y : Tensor
        Integer class indices of shape ``(n,)``, or targets of the logits' shape
        (one-hot or probability rows for softmax, ``{0, 1}`` for sigmoid).
    m1, m2 : float
        ``E[1 - lambda]`` and ``E[(1 - lambda)^2]`` under ``D~``.
    partners : PartnerMoments or Tensor of shape (n, S, d)
        All partners through their moments (exact), or ``S`` partner rows per
        anchor (their average is an unbiased estimate).
    link : {"softmax", "sigmoid"}, default="softmax"
    order : {1, 2}, default=2
        ``1`` skips the second derivatives: ``R3`` is then returned as zeros
        (exact for piecewise-linear networks, see :func:`is_piecewise_linear`).

    Returns
    -------
    terms : MixupTerms
    """
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}, got {link!r}.")
    n = X.shape[0]
    if isinstance(partners, PartnerMoments):
        mean, factor = partners
        r = factor.shape[1]
        lk = factor.T.to(X)[:, None, :].expand(r, n, X.shape[1])
        # direction 0 is E_r[Delta_i] = -(x_i - x_bar); the others span Sigma
        T = torch.cat([mean.to(X) - X, lk.reshape(r * n, -1)])
        blocks, weight = r + 1, None
    else:  # block s holds the s-th partner of every anchor
        S = partners.shape[1]
        T = (partners.to(X) - X[:, None, :]).transpose(0, 1).reshape(S * n, -1)
        blocks, weight = S, 1.0 / S
    f, dF, d2F = directional_derivatives(module, X, T, order=order)
    K = f.shape[1]
    dF = dF.reshape(blocks, n, K)
    d2F = None if d2F is None else d2F.reshape(blocks, n, K)
    standard, e, p = _loss_residual(f, y, link)
    if weight is None:
        r1 = m1 * (e * dF[0]).sum(-1)
        r2 = 0.5 * m2 * _hessian_quadratic(p, dF, link).sum(0)
        r3 = 0 if d2F is None else 0.5 * m2 * (e * d2F).sum(-1).sum(0)
    else:
        r1 = m1 * weight * (e * dF).sum(-1).sum(0)
        r2 = 0.5 * m2 * weight * _hessian_quadratic(p, dF, link).sum(0)
        r3 = 0 if d2F is None else 0.5 * m2 * weight * (e * d2F).sum(-1).sum(0)
    r3 = torch.zeros_like(r1) if d2F is None else r3
    return MixupTerms(f, standard, r1, r2, r3)


def _as_2d(t):
    return t[:, None] if t.ndim == 1 else t


def _loss_residual(f, y, link):
    """Per-sample cross-entropy, residual ``e = p - y`` and probabilities ``p``."""
    if link == "sigmoid":
        if f.shape[1] != 1:
            raise ValueError(f"link='sigmoid' needs one logit per row, got {f.shape}.")
        Y = y.reshape(-1, 1).to(f)
        p = torch.sigmoid(f)
        standard = (nn.functional.softplus(f) - Y * f)[:, 0]
        return standard, p - Y, p
    if y.ndim == 1 and not torch.is_floating_point(y):
        Y = nn.functional.one_hot(y.long(), f.shape[1]).to(f)
    else:
        Y = y.to(f)
    logp = torch.log_softmax(f, dim=1)
    p = logp.exp()
    standard = -(Y * logp).sum(1)
    return standard, p - Y, p


def _hessian_quadratic(p, V, link):
    """``v^T H v`` for every direction block ``v`` of ``V`` (shape ``(b, n, K)``)."""
    if link == "sigmoid":
        return (p * (1.0 - p) * V * V).sum(-1)
    return (p * V * V).sum(-1) - (p * V).sum(-1) ** 2
