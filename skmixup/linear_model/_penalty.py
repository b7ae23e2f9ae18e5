"""The second-order Mixup penalty ``R1 + R2`` of a linear classifier, in logit space.

For a linear model ``z_i = W x_i + b`` every term of the second-order expansion of
the Mixup loss (Zhang et al., ICLR 2021, Lemma 3.1 and Eq. (3)) depends on ``X``
only through the logits ``Z``:

* ``x_bar`` and ``Sigma_X`` are the (weighted) mean and 1/n covariance of the
  inputs, so ``zc_i = W (x_i - x_bar) = z_i - z_bar`` with ``z_bar = sum_j w_j z_j``,
  and ``G = W Sigma_X W^T = sum_j w_j zc_j zc_j^T`` is the covariance of the
  centered logits;
* ``R1 = -m1 sum_i w_i (p_i - y_i)^T zc_i``;
* ``R2 = m2/2 sum_i w_i tr(H_i (G + zc_i zc_i^T))`` with
  ``H_i = diag(p_i) - p_i p_i^T`` (``sigma_i (1 - sigma_i)`` for the binary model).

So one evaluation costs the two matrix products with ``X`` of plain logistic
regression (``Z`` and ``dZ^T X``) and ``O(n K^2)`` work on the logits; sparse ``X``
is never centered nor densified.

Gradient with respect to the logits (``w`` sums to one, ``e_i = p_i - y_i``,
``M_i = G + zc_i zc_i^T``, ``a_i = diag(M_i)``, ``H_bar = sum_i w_i H_i``,
``v_i = 2 w_i H_i zc_i``; centering contributes ``-w_j sum_i (...)`` terms)::

    dR1/dz_j = -m1 w_j (H_j zc_j + e_j - sum_i w_i e_i)
    dR2/dz_j = m2/2 (w_j H_j (a_j - 2 M_j p_j) + 2 w_j H_bar zc_j
                     + v_j - w_j sum_i v_i)

(for the binary model ``H_j (a_j - 2 M_j p_j)`` becomes
``sigma_j (1 - sigma_j)(1 - 2 sigma_j) M_j``). The term ``2 w_j H_bar zc_j`` is the
derivative through ``G``; its centering correction vanishes because
``sum_j w_j zc_j = 0``.
"""

import numpy as np
from scipy import special

from skmixup.linear_model._loss import _LinearModel
from skmixup.utils._threads import one_blas_thread

# The logit-space work is a series of skinny (n x K) BLAS calls; OpenBLAS threads
# make them 5-20x slower on a busy machine, so they run on one thread
# (skmixup.utils._threads.one_blas_thread).
# Elements of an (rows x K) block of the softmax pass.
_BLOCK_ELEMENTS = 1 << 14


_TERMS = ("R1+R2", "R2")


def logit_mixup_terms(Z, Y, sample_weight, m1, m2, *, with_r1=True, gradient=True):
    """Standard loss, ``R1``, ``R2`` and the gradient of their sum w.r.t. ``Z``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, K)
        Logits; ``K = 1`` is the binary sigmoid model, ``K >= 2`` softmax.
    Y : ndarray of shape (n_samples, K)
        Labels in {0, 1} (``K = 1``) or rows of a probability matrix.
    sample_weight : ndarray of shape (n_samples,)
        Non-negative weights summing to one; they also define ``x_bar`` and
        ``Sigma_X``.
    m1, m2 : float
        ``E[1 - lambda]`` and ``E[(1 - lambda)^2]`` under ``D~``.
    with_r1 : bool, default=True
        Whether the gradient includes ``R1`` (the values are always returned).
    gradient : bool, default=True

    Returns
    -------
    standard, R1, R2 : float
    dZ : ndarray of shape (n_samples, K) or None
        Gradient of ``standard + [R1] + R2``, float64.
    """
    Z = np.asarray(Z, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    w = np.asarray(sample_weight, dtype=np.float64)
    with one_blas_thread():
        Zc = Z - w @ Z
        if Z.shape[1] == 1:
            z, y, zc = Z[:, 0], Y[:, 0], Zc[:, 0]
            return _binary_terms(z, y, zc, w, m1, m2, with_r1, gradient)
        return _softmax_terms(Z, Y, Zc, w, m1, m2, with_r1, gradient)


def _binary_terms(z, y, zc, w, m1, m2, with_r1, gradient):
    p = special.expit(z)
    e = p - y
    h2 = p * (1.0 - p)
    G = float(w @ zc**2)
    q = G + zc**2
    standard = float(w @ (np.logaddexp(0.0, z) - y * z))
    r1 = -m1 * float(w @ (e * zc))
    r2 = 0.5 * m2 * float(w @ (h2 * q))
    if not gradient:
        return standard, r1, r2, None
    a1 = m1 if with_r1 else 0.0
    hz = h2 * zc
    g = (1.0 - a1) * e
    g += (m2 - a1) * hz
    g += 0.5 * m2 * h2 * (1.0 - 2.0 * p) * q
    g += m2 * float(w @ h2) * zc
    g += a1 * float(w @ e) - m2 * float(w @ hz)
    g *= w
    return standard, r1, r2, g[:, None]


def _softmax_terms(Z, Y, Zc, w, m1, m2, with_r1, gradient):
    # Two passes over row blocks: temporaries stay in cache (fresh n x K arrays
    # cost more in page faults than in arithmetic).
    n, K = Z.shape
    rows = max(1, _BLOCK_ELEMENTS // K)
    G = np.zeros((K, K))
    for sl in _blocks(n, rows):
        G += (Zc[sl] * w[sl, None]).T @ Zc[sl]  # covariance of centered logits
    dG = np.diag(G).copy()
    P = np.empty_like(Z)
    HZc = np.empty_like(Z)  # rows H_i zc_i
    standard = r1 = r2 = 0.0
    wP, wE, wHZc = np.zeros(K), np.zeros(K), np.zeros(K)
    PtwP = np.zeros((K, K))
    for sl in _blocks(n, rows):
        z, zc, y, ws = Z[sl], Zc[sl], Y[sl], w[sl]
        zmax = z.max(axis=1)
        p = np.exp(z - zmax[:, None])
        norm = p.sum(axis=1)
        p /= norm[:, None]
        P[sl] = p
        e = p - y
        pz = np.einsum("ik,ik->i", p, zc)
        pG = p @ G
        q = p @ dG - np.einsum("ik,ik->i", pG, p)
        q += np.einsum("ik,ik->i", p, zc * zc) - pz**2
        standard += ws @ (np.log(norm) + zmax - np.einsum("ik,ik->i", y, z))
        r1 -= m1 * (ws @ np.einsum("ik,ik->i", e, zc))
        r2 += 0.5 * m2 * (ws @ q)
        if gradient:
            hz = zc - pz[:, None]
            hz *= p
            HZc[sl] = hz
            wP += ws @ p
            wE += ws @ e
            wHZc += ws @ hz
            PtwP += (p * ws[:, None]).T @ p
    if not gradient:
        return float(standard), float(r1), float(r2), None
    # g_j = w_j [(1 - m1) e_j + (m2 - m1) H_j zc_j + m2/2 H_j (a_j - 2 M_j p_j)
    #            + m2 H_bar zc_j + m1 e_bar - m2 sum_i w_i H_i zc_i]
    a1 = m1 if with_r1 else 0.0
    H_bar = np.diag(wP) - PtwP
    shift = a1 * wE - m2 * wHZc
    g = np.empty_like(Z)
    for sl in _blocks(n, rows):
        p, zc, hz = P[sl], Zc[sl], HZc[sl]
        pz = np.einsum("ik,ik->i", p, zc)
        u = zc * zc - 2.0 * (p @ G + zc * pz[:, None])
        u += dG
        hu = u - np.einsum("ik,ik->i", p, u)[:, None]
        hu *= p
        gb = (p - Y[sl]) * (1.0 - a1)
        gb += (m2 - a1) * hz
        gb += 0.5 * m2 * hu
        gb += m2 * (zc @ H_bar)
        gb += shift
        gb *= w[sl, None]
        g[sl] = gb
    return float(standard), float(r1), float(r2), g


def _blocks(n, rows):
    for start in range(0, n, rows):
        yield slice(start, min(start + rows, n))


class MixupPenaltyLoss(_LinearModel):
    """Cross-entropy plus the second-order Mixup penalty of a linear classifier.

    The objective (Lemma 3.1 and Eq. (3) of Zhang et al., ICLR 2021)::

        L(W, b) = sum_i s_i CE(z_i, y_i) + [R1] + R2 + l2_reg_strength / 2 ||W||^2

    with ``z_i = W x_i + b``, ``s`` the normalised sample weights (which also define
    the mean ``x_bar`` and 1/n covariance ``Sigma_X`` used by ``R1`` and ``R2``),
    and ``m1 = E[1 - lambda]``, ``m2 = E[(1 - lambda)^2]`` under ``D~``. The
    coefficient layout and normalisation are those of
    :class:`skmixup.linear_model._loss.MixupLoss`. The penalty is not convex in
    general.

    Parameters
    ----------
    n_classes : int
        ``1`` for the binary logistic model, else the number of classes.
    n_features : int
    fit_intercept : bool
    m1, m2 : float
        Moments of ``D~`` (:func:`skmixup._mixing.mixing_moments`).
    terms : {"R1+R2", "R2"}, default="R1+R2"
        Which penalty terms enter the objective.
    """

    def __init__(self, n_classes, n_features, fit_intercept, m1, m2, terms="R1+R2"):
        super().__init__(n_classes, n_features, fit_intercept)
        if terms not in _TERMS:
            raise ValueError(f"terms must be one of {_TERMS}, got {terms!r}.")
        self.m1, self.m2, self.terms = float(m1), float(m2), terms

    def terms_at(self, coef, X, Y, sample_weight):
        """``(standard, R1, R2)`` at ``coef``; ``sample_weight`` sums to one."""
        Z = self.logits(coef, X)
        return logit_mixup_terms(Z, Y, sample_weight, self.m1, self.m2, gradient=False)[
            :3
        ]

    def logit_loss_gradient(self, Z, Y, sample_weight):
        """Cross-entropy plus the chosen terms as a function of the logits ``Z``,
        and its gradient ``dZ``; ``sample_weight`` sums to one."""
        with_r1 = self.terms == "R1+R2"
        standard, r1, r2, dZ = logit_mixup_terms(
            Z, Y, sample_weight, self.m1, self.m2, with_r1=with_r1
        )
        value = standard + r2 + (r1 if with_r1 else 0.0)
        return value, dZ.astype(Z.dtype, copy=False)
