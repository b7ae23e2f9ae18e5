"""Loss objects for linear classifiers, evaluated in logit space.

For a linear model the logits of a mixed input are the mix of the logits,
``W (l x_i + (1 - l) x_j) + b = l z_i + (1 - l) z_j`` with ``Z = X W^T + b``. So one
evaluation of the exact expected Mixup loss costs two matmuls with ``X`` (``Z`` and
``dZ^T X``) and cheap work on the ``n x K`` logits only.

Coefficient layout
------------------
``coef`` is a flat array: ``W.ravel()`` (``W`` of shape ``(K, n_features)``), followed
by the ``K`` intercepts when ``fit_intercept=True``. ``K = 1`` is the binary logistic
model (sigmoid, labels in ``[0, 1]``); ``K >= 3`` is the multinomial softmax model
(labels are rows of a probability matrix, one-hot for hard labels).

Normalisation
-------------
Per-sample losses are weighted by ``sample_weight / sample_weight.sum()``, and the
ridge term is ``l2_reg_strength / 2 * ||W||_F^2`` (intercepts unpenalised), so that
``l2_reg_strength = 1 / (C * sample_weight.sum())`` gives scikit-learn's meaning of
``C``.
"""

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import special

# Number of float elements of the (rows, partners, nodes, classes) block processed at
# once: small enough to stay in the CPU caches, large enough to amortise numpy's
# per-call overhead.
_BLOCK_ELEMENTS = 1 << 17
# Quadrature nodes handled together (bounds the (n, nodes, K) exponential table).
_NODE_GROUP = 8
# Below this many (anchor, partner, node, class) entries one thread does the work.
_PARALLEL_MIN = 1 << 20


# Set to False to force the numpy evaluation even when numba is installed (tests).
USE_NUMBA = True


def _numba_kernel():
    """The numba kernel module, or None when numba is missing, disabled, or unsafe
    in this process (a child forked after the parent ran OpenMP kernels)."""
    kernel = _import_numba_kernel() if USE_NUMBA else None
    return kernel if kernel is not None and kernel.usable() else None


@functools.cache
def _import_numba_kernel():
    try:
        from skmixup.linear_model import _numba_kernel as kernel
    except ImportError:
        return None
    return kernel


def _n_threads():
    """Worker threads for the logit-space work: the CPUs this process may use."""
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, min(8, os.cpu_count() or 1))


class _LinearModel:
    """Shared plumbing: packing coefficients and going between X and logits.

    A subclass supplies ``logit_loss_gradient(Z, Y, sample_weight) -> (value, dZ)``,
    its objective as a function of the logits; this class adds the ridge term and
    back-propagates through ``Z = X W^T + b``.
    """

    def __init__(self, n_classes, n_features, fit_intercept):
        self.n_classes = n_classes
        self.n_features = n_features
        self.fit_intercept = fit_intercept

    @property
    def n_dof(self):
        return self.n_classes * (self.n_features + int(self.fit_intercept))

    def loss(self, coef, X, Y, sample_weight, l2_reg_strength=0.0):
        """Value of the objective."""
        return self.loss_gradient(coef, X, Y, sample_weight, l2_reg_strength)[0]

    def gradient(self, coef, X, Y, sample_weight, l2_reg_strength=0.0):
        """Gradient of the objective with respect to ``coef``."""
        return self.loss_gradient(coef, X, Y, sample_weight, l2_reg_strength)[1]

    def loss_gradient(self, coef, X, Y, sample_weight, l2_reg_strength=0.0):
        """Value and gradient (float64, same layout as ``coef``) of the objective.

        ``sample_weight`` must already be normalised to sum to one.
        """
        Z = self.logits(coef, X)
        value, dZ = self.logit_loss_gradient(Z, Y, sample_weight)
        value += self.ridge(coef, l2_reg_strength)
        return value, self.backprop(coef, X, dZ, l2_reg_strength)

    def unpack(self, coef):
        K, d = self.n_classes, self.n_features
        W = coef[: K * d].reshape(K, d)
        b = coef[K * d :] if self.fit_intercept else None
        return W, b

    def pack(self, W, b):
        parts = [np.asarray(W).ravel()]
        if self.fit_intercept:
            parts.append(np.asarray(b).ravel())
        return np.concatenate(parts)

    def logits(self, coef, X):
        W, b = self.unpack(coef)
        Z = X @ W.T.astype(X.dtype, copy=False)
        Z = np.asarray(Z)
        if b is not None:
            Z += b.astype(Z.dtype, copy=False)
        return Z

    def backprop(self, coef, X, dZ, l2_reg_strength):
        """Gradient of ``sum(dZ * Z) + l2/2 ||W||^2`` with respect to ``coef``."""
        W, _ = self.unpack(coef)
        grad_W = np.asarray(dZ.T @ X, dtype=np.float64)
        if l2_reg_strength:
            grad_W += l2_reg_strength * W
        parts = [grad_W.ravel()]
        if self.fit_intercept:
            parts.append(dZ.sum(axis=0, dtype=np.float64))
        return np.concatenate(parts)

    def ridge(self, coef, l2_reg_strength):
        if not l2_reg_strength:
            return 0.0
        W, _ = self.unpack(coef)
        return 0.5 * l2_reg_strength * float(np.dot(W.ravel(), W.ravel()))


class MixupLoss(_LinearModel):
    """Exact expected Mixup cross-entropy of a linear classifier.

    The objective is the D~ form of Lemma 3.1 (Zhang et al., ICLR 2021)::

        L(W, b) = sum_i s_i sum_p pi_ip sum_q omega_q
                      CE(lambda_q z_i + (1 - lambda_q) z_{j_ip}, y_i)
                  + l2_reg_strength / 2 ||W||^2

    with ``s_i`` the normalised sample weights, ``(j_ip, pi_ip)`` the partners of
    anchor ``i`` and their weights (rows of ``pi`` sum to one) and ``(lambda_q,
    omega_q)`` quadrature nodes of the law ``D~``. The label is not mixed: for a loss
    that is affine in the label this is exactly the paper's Eq. (1). With all pairs
    (``partners=None``) it is the double sum of Eq. (1); with drawn partners it is its
    unbiased, deterministic (seeded) sample-average approximation.

    Parameters
    ----------
    n_classes : int
        ``1`` for the binary logistic model, else the number of classes.
    n_features : int
    fit_intercept : bool
    nodes, weights : ndarray of shape (n_nodes,)
        Quadrature rule for ``lambda ~ D~`` (:func:`skmixup._mixing.dtilde_quadrature`).
    partners : ndarray of shape (n_samples, n_partners) or None
        Partner indices of each anchor; ``None`` pairs every sample with all samples.
    pair_weight : ndarray of shape (n_samples, n_partners) or (n_samples,)
        Weights of the partners (see :func:`skmixup._mixing.draw_partners`).
    order, positions : ndarray, default=None
        The layout of :func:`skmixup._mixing.draw_shifted_partners`, when the
        partners were drawn that way: the optional numba kernel then streams
        through its per-sample tables in ``order`` instead of gathering them.
    """

    def __init__(
        self,
        n_classes,
        n_features,
        fit_intercept,
        nodes,
        weights,
        partners,
        pair_weight,
        order=None,
        positions=None,
    ):
        super().__init__(n_classes, n_features, fit_intercept)
        self.order = order
        self.positions = positions
        if order is not None:  # the windowed layout the numba kernel relies on
            n = len(order)
            steps = np.diff(positions, axis=1) % n
            starts = (positions[:, 0] - np.arange(n)) % n
            if np.any(steps != 1) or np.any(starts != starts[0]):
                raise ValueError(
                    "positions must be consecutive shifts (t + c + p) % n, as drawn "
                    "by skmixup._mixing.draw_shifted_partners."
                )
        self.nodes = np.asarray(nodes, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.partners = partners
        self.pair_weight = np.asarray(pair_weight, dtype=np.float64)
        self._layout = None
        if order is not None:
            self._layout = (
                np.ascontiguousarray(order, dtype=np.intp),
                np.ascontiguousarray(positions, dtype=np.intp),
            )
        elif partners is not None:
            self._layout = (
                np.arange(partners.shape[0]),
                np.ascontiguousarray(partners, dtype=np.intp),
            )
        # Quadrature moments of the anchor and partner shares of the mixed logits.
        self._e_lam = float(self.weights @ self.nodes)
        self._e_1mlam = float(self.weights @ (1.0 - self.nodes))

    def layout(self):
        """``(order, positions)`` of the sampled partners (built once, in
        ``__init__``): the shifted layout if given, else the identity order with
        the partners' own indices as positions."""
        return self._layout

    def logit_loss_gradient(self, Z, Y, sample_weight):
        """Mixup loss as a function of the logits ``Z`` and its gradient ``dZ``.

        With sampled partners and numba installed, the fused kernel of
        :mod:`skmixup.linear_model._numba_kernel` does the work; otherwise numpy.
        """
        kernel = _numba_kernel() if self.partners is not None else None
        if kernel is not None:
            return kernel.logit_loss_gradient(self, Z, Y, sample_weight)
        return self._numpy_loss_gradient(Z, Y, sample_weight)

    def _numpy_loss_gradient(self, Z, Y, sample_weight):
        """Mixup loss as a function of the logits ``Z`` and its gradient ``dZ``.

        The quadrature nodes are processed in groups of ``_NODE_GROUP`` (bounding the
        memory of the per-sample exponential tables), and row blocks by up to
        :func:`_n_threads` worker threads (numpy releases the GIL in its loops);
        each block writes only its own rows.
        """
        n, K = Z.shape
        dtype = Z.dtype
        P = n if self.partners is None else self.partners.shape[1]
        Q = self.nodes.size
        rows = max(1, _BLOCK_ELEMENTS // (P * min(Q, _NODE_GROUP) * K))
        blocks = [slice(s, min(s + rows, n)) for s in range(0, n, rows)]
        n_threads = min(_n_threads(), max(1, n * P * Q * K // _PARALLEL_MIN))
        chunks = [list(c) for c in np.array_split(np.arange(len(blocks)), n_threads)]
        dZ = np.zeros_like(Z)
        partner_grad = np.zeros((n, P, K), dtype) if self.partners is not None else None
        coefs = np.stack([self.weights * self.nodes, self.weights * (1 - self.nodes)])
        total = 0.0
        classes = _one_hot_classes(Y) if K > 1 else None
        for first in range(0, Q, _NODE_GROUP):
            group = slice(first, first + _NODE_GROUP)
            segments = _Segments(
                Z,
                self.nodes[group].astype(dtype),
                self.weights[group].astype(dtype),
                coefs[:, group].astype(dtype),
                out=self._buffer((n, min(Q - first, _NODE_GROUP), K), dtype)
                if K > 1
                else None,
            )
            labels = first == 0  # the label terms are added once, with the first group

            def run(chunk, segments=segments, labels=labels, dZ=dZ):
                total, partner_sum = (
                    0.0,
                    np.zeros((n, K)) if partner_grad is None else None,
                )
                for i in chunk:
                    sl = blocks[i]
                    value, g = self._block(
                        sl, Z, Y, sample_weight, segments, dZ, labels, classes
                    )
                    total += value
                    if partner_grad is None:
                        partner_sum += g.sum(axis=0)
                    else:
                        partner_grad[sl] += g
                return total, partner_sum

            if n_threads > 1:
                with ThreadPoolExecutor(n_threads) as pool:
                    results = list(pool.map(run, chunks))
            else:
                results = [run(chunks[0])]
            total += sum(r[0] for r in results)
            if partner_grad is None:
                dZ += sum(r[1] for r in results).astype(dtype)
        if partner_grad is not None:
            flat = self.partners.ravel()
            for k in range(K):
                dZ[:, k] += np.bincount(flat, partner_grad[..., k].ravel(), minlength=n)
        return total, dZ

    def _buffer(self, shape, dtype):
        """A scratch array kept between evaluations (saves page faults)."""
        buf = getattr(self, "_scratch", None)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._scratch = np.empty(shape, dtype)
        return buf

    def _block(self, sl, Z, Y, sample_weight, segments, dZ, labels, classes):
        """Loss of the anchors ``sl`` for one node group; adds their gradient into
        ``dZ[sl]`` and returns the gradient with respect to their partners' logits.
        The terms in the labels are linear in the nodes' weights and are added only
        when ``labels`` is true (once per evaluation)."""
        yi, si = Y[sl], sample_weight[sl]
        if self.partners is None:
            idx, pw = None, self.pair_weight[None, :]
        else:
            idx, pw = self.partners[sl], self.pair_weight[sl]
        lse_mean, T = segments(sl, idx)
        # Loss: E_q h(u_q) - y_i . (E[lam] z_i + E[1-lam] z_r), averaged over p.
        per_pair = lse_mean
        # Gradient: d/dz_i = sum_q w_q lam_q (h'(u_q) - y_i); partner: (1 - lam_q).
        g_anchor = np.einsum("cp,cpk->ck", pw, T[:, :, 0])
        g_partner = T[:, :, 1]
        if labels:
            yz_anchor = np.einsum("ck,ck->c", yi, Z[sl])
            if idx is None:
                yz_partner = yi @ Z.T
            elif classes is not None:  # one-hot labels: gather one logit per pair
                yz_partner = Z[idx, classes[sl][:, None]]
            else:
                yz_partner = np.einsum("ck,cpk->cp", yi, Z[idx])
            per_pair = (
                per_pair - self._e_lam * yz_anchor[:, None] - self._e_1mlam * yz_partner
            )
            g_anchor -= self._e_lam * yi
            g_partner = g_partner - self._e_1mlam * yi[:, None, :]
        value = float(si @ (per_pair * pw).sum(axis=1))
        dZ[sl] += si[:, None] * g_anchor
        return value, g_partner * (si[:, None, None] * pw[..., None])


def _one_hot_classes(Y):
    """Class index of each row if ``Y`` is one-hot, else ``None``."""
    classes = Y.argmax(axis=1)
    if np.array_equal(Y, np.eye(Y.shape[1], dtype=Y.dtype)[classes]):
        return classes
    return None


class _Segments:
    """Softplus / log-sum-exp along mixing segments, and node-weighted derivatives.

    For anchor rows ``sl`` and their partners ``idx`` (``None``: all samples), the
    mixed logits are ``u_q = lambda_q z_i + (1 - lambda_q) z_r``. A call returns
    ``sum_q w_q h(u_q)`` of shape (c, P), with ``h`` the softplus (K = 1) or the
    log-sum-exp (K > 1), and ``T`` of shape (c, P, 2, K) holding
    ``sum_q coefs[m, q] h'(u_q)`` for the anchor (m = 0) and partner (m = 1) shares.

    For K > 1 no exponential is taken per pair: with ``z~ = z - max(z)`` (so
    ``z~ <= 0``), ``exp(u~_q) = exp(lambda_q z~_i) * exp((1 - lambda_q) z~_r)``. The
    partner factor ``B`` is computed once per sample and node (into ``out``, reused
    across evaluations), and the anchor factor as ``exp(z~_i) / B_i`` (by
    exponentials where ``exp(z~_i)`` underflows). If a sum of exponentials
    underflows (logit gaps beyond ~700 in float64, ~85 in float32) the block is
    recomputed with a per-entry maximum instead.
    """

    def __init__(self, Z, nodes, weights, coefs, out=None):
        self.Z, self.nodes, self.weights, self.coefs = Z, nodes, weights, coefs
        if Z.shape[1] > 1:
            self.zmax = Z.max(axis=1)
            self.Zs = Z - self.zmax[:, None]
            self.expz = np.exp(self.Zs)
            # (n, Q, K): exp((1 - lambda_q) z~_r), gathered for every partner.
            self.B = np.multiply(
                (1 - nodes)[None, :, None], self.Zs[:, None, :], out=out
            )
            np.exp(self.B, out=self.B)
            self.tiny = np.finfo(Z.dtype).tiny * 1e6
            self.ones = np.ones(Z.shape[1], dtype=Z.dtype)

    def __call__(self, sl, idx):
        Z, nodes = self.Z, self.nodes
        if Z.shape[1] == 1:
            zi = Z[sl]
            zr = Z[None] if idx is None else Z[idx]
            U = (zi[:, None, :] - zr)[:, :, None, 0] * nodes  # (c, P, Q)
            U += zr[:, :, None, 0]
            value = np.logaddexp(0, U)
            special.expit(U, out=U)
            return value @ self.weights, (U @ self.coefs.T)[..., None]
        B_anchor = self.B[sl]
        expz = self.expz[sl]
        if expz.min() > self.tiny:  # exp(z~) / exp((1 - lambda) z~) is then exact
            A = expz[:, None, :] / B_anchor  # exp(lambda_q z~_i), (c, Q, K)
        else:
            A = np.exp(nodes[None, :, None] * self.Zs[sl][:, None, :])
        if idx is None:
            E = A[:, None] * self.B[None]
        else:
            E = self.B[idx]
            E *= A[:, None]
        S = E @ self.ones  # (c, P, Q); a BLAS mat-vec is ~3x faster than sum(-1)
        zmax_r = self.zmax[None] if idx is None else self.zmax[idx]
        shift = nodes * self.zmax[sl][:, None, None] + (1 - nodes) * zmax_r[..., None]
        if S.min() <= self.tiny:
            zr = Z[None] if idx is None else Z[idx]
            return _segment_lse_exact(Z[sl], zr, nodes, self.weights, self.coefs)
        value = np.log(S)
        value += shift
        scaled = self.coefs / S[:, :, None, :]  # (c, P, 2, Q)
        T = np.matmul(scaled, E)  # (c, P, 2, K)
        return value @ self.weights, T


def _segment_lse_exact(zi, zr, nodes, weights, coefs):
    """Log-sum-exp along mixing segments with a per-entry maximum (slow, safe).

    ``u_q = z_r + lambda_q (z_i - z_r)`` for every anchor row of ``zi`` (c, K) and
    partner of ``zr`` (c or 1, P, K). Returns ``sum_q w_q h(u_q)`` of shape (c, P),
    with ``h`` the softplus (K = 1) or the log-sum-exp (K > 1), and ``T`` of shape
    (c, P, 2, K): ``sum_q coefs[m, q] h'(u_q)`` for the anchor (m = 0) and partner
    (m = 1) shares.
    """
    diff = zi[:, None, :] - zr  # (c, P, K)
    U = diff[:, :, None, :] * nodes[:, None]  # (c, P, Q, K)
    U += zr[:, :, None, :]
    mx = U.max(axis=-1, keepdims=True)
    U -= mx
    np.exp(U, out=U)
    S = U.sum(axis=-1)  # (c, P, Q)
    lse = np.log(S) + mx[..., 0]
    # Fold the softmax normalisation 1/S into the node coefficients: T = C~ @ exp(U).
    scaled = coefs[:, None, None, :] / S[None]  # (2, c, P, Q)
    T = np.matmul(np.moveaxis(scaled, 0, 2), U)  # (c, P, 2, K)
    return lse @ weights, T
