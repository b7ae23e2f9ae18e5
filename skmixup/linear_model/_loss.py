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

import numpy as np


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

    The objective is the paper's Eq. (1) (Zhang et al., ICLR 2021) as a function
    of the logits, for the pairs, pair weights and quadrature rule of ``plan``
    (:class:`skmixup.linear_model._plan.MixupPlan`, which states the formula), plus
    ``l2_reg_strength / 2 ||W||^2``. All pairs give Eq. (1) exactly; sampled
    partners give its unbiased, seeded estimate.

    Parameters
    ----------
    n_classes : int
        ``1`` for the binary logistic model, else the number of classes.
    n_features : int
    fit_intercept : bool
    plan : MixupPlan
        Built once per fit; it carries the (normalised) sample weights, so the
        ``sample_weight`` argument of the evaluation methods is not used.
    backend : {"gemm", "direct"}, default="gemm"
        Evaluation of the log-sum-exp term (see ``_plan``).
    """

    def __init__(self, n_classes, n_features, fit_intercept, plan, backend="gemm"):
        super().__init__(n_classes, n_features, fit_intercept)
        self.plan = plan
        self.backend = backend

    def logit_loss_gradient(self, Z, Y, sample_weight=None):
        """Mixup loss as a function of the logits ``Z`` and its gradient ``dZ``."""
        return self.plan.loss_gradient(Z, Y, self.backend)
