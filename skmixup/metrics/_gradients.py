"""Input gradients of a classifier's cross-entropy, by dispatch on the estimator.

Every function here returns, for each sample ``i``, the gradient of that sample's own
loss ``CE_i = -log p(y_i | x_i)`` with respect to the raw input row ``x_i``. Because the
loss of sample ``i`` depends on row ``i`` only, one backward pass over the summed loss
gives all rows at once.

Supported without finite differences (``gradient="auto"``):

* skmixup estimators (linear ones analytically, torch ones through their private
  ``_loss_input_gradient``);
* :class:`~sklearn.linear_model.LogisticRegression` (sigmoid / softmax, or the
  normalized one-vs-rest probabilities of old ``multi_class="ovr"`` models),
  :class:`~sklearn.linear_model.SGDClassifier` with ``loss="log_loss"`` (one-vs-rest);
* :class:`~sklearn.neural_network.MLPClassifier` (backpropagation through ``coefs_``);
* skorch nets (autograd; torch is imported only for them);
* :class:`~sklearn.pipeline.Pipeline` whose transformers have known Jacobians, chained
  by vector-Jacobian products.
"""

import numbers

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils import check_array, column_or_1d
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from skmixup.metrics._jacobians import _identity, _transformer_forward

_TINY = np.finfo(np.float64).tiny
# Relative step of the central differences: cube root of the machine epsilon.
_FD_STEP = np.cbrt(np.finfo(np.float64).eps)
# Rows per predict_proba call in the finite-difference path (memory bound).
_FD_ROWS = 2**17
# Elements (rows x widest layer) per block of the numpy attack paths: ~1 MB.
_BLOCK_ELEMENTS = 2**17
# Rows per chunk in the torch paths (memory bound).
_TORCH_ROWS = 2**15


def input_gradient(estimator, X, y, *, gradient="auto"):
    """Gradient of each sample's cross-entropy with respect to its raw input.

    Row ``i`` of the result is :math:`\\nabla_{x_i} \\, (-\\log p(y_i \\mid x_i))`,
    the gradient of sample ``i``'s own loss at its true label, where ``p`` is what
    the estimator's ``predict_proba`` returns. Through a :class:`~sklearn.pipeline.
    Pipeline` the gradient is taken with respect to the pipeline's raw input, so
    attacks measure ``eps`` in raw feature units.

    Parameters
    ----------
    estimator : fitted classifier
        See the Notes for what ``gradient="auto"`` supports.
    X : array-like of shape (n_samples, n_features)
        Input samples. Sparse input is densified (an attack perturbs every feature).
    y : array-like of shape (n_samples,)
        True labels, as given to ``fit`` (mapped through ``estimator.classes_``).
    gradient : {"auto", "numerical"}, default="auto"
        ``"auto"`` uses the analytic or autograd gradient of a supported estimator and
        raises :class:`TypeError` otherwise. ``"numerical"`` uses batched central
        differences of ``predict_proba`` and works for any probabilistic classifier
        (about ``2 * n_features`` predictions of ``n_samples`` rows).

    Returns
    -------
    grad : ndarray of shape (n_samples, n_features), dtype float64
        The input gradients.

    Raises
    ------
    TypeError
        If ``gradient="auto"`` and the estimator has no known gradient.
    ValueError
        If ``y`` holds labels the estimator was not fitted on.

    See Also
    --------
    fgsm : Fast gradient sign attack built on this gradient.

    Notes
    -----
    Supported with ``gradient="auto"``: skmixup's estimators;
    :class:`~sklearn.linear_model.LogisticRegression` and
    :class:`~sklearn.linear_model.LogisticRegressionCV` (binary sigmoid, multinomial
    softmax, or for old ``multi_class="ovr"`` models the normalized one-vs-rest
    probabilities); :class:`~sklearn.linear_model.SGDClassifier` with
    ``loss="log_loss"``, where for more than two classes the loss is the
    cross-entropy of the normalized one-vs-rest probabilities that its
    ``predict_proba`` returns; :class:`~sklearn.neural_network.MLPClassifier` (all
    activations; binary and multiclass, not multilabel); skorch nets whose criterion
    is ``NLLLoss`` (module outputs probabilities), ``CrossEntropyLoss`` (logits) or
    ``BCEWithLogitsLoss`` (binary logit); and pipelines of these with the
    transformers :class:`~sklearn.preprocessing.StandardScaler`,
    :class:`~sklearn.preprocessing.MinMaxScaler`,
    :class:`~sklearn.preprocessing.MaxAbsScaler`,
    :class:`~sklearn.preprocessing.RobustScaler`,
    :class:`~sklearn.preprocessing.Normalizer`, :class:`~sklearn.decomposition.PCA`,
    :class:`~sklearn.decomposition.TruncatedSVD`, nested pipelines and
    ``"passthrough"``. Class weights are not part of the loss.

    The true-class residual ``p_y - 1`` is computed as minus the sum of the other
    probabilities, so the gradient keeps its sign for confidently classified samples
    instead of underflowing to zero.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.metrics import input_gradient
    >>> X = np.array([[-2.0, 0.5], [-1.0, 0.0], [1.0, 0.2], [2.0, -0.4]])
    >>> y = np.array([0, 0, 1, 1])
    >>> clf = LogisticRegression().fit(X, y)
    >>> grad = input_gradient(clf, X, y)
    >>> grad.shape
    (4, 2)
    >>> p = clf.predict_proba(X)[:, 1]
    >>> bool(np.allclose(grad, (p - y)[:, None] * clf.coef_))
    True
    """
    X, y_idx, wrap, _ = _validate_inputs(estimator, X, y)
    return _loss_gradient(estimator, X, y, y_idx, wrap, _check_gradient(gradient))[0]


# --------------------------------------------------------------------------------------
# Validation shared with the attacks
# --------------------------------------------------------------------------------------


def _check_gradient(gradient):
    if gradient not in ("auto", "numerical"):
        raise ValueError(f"gradient must be 'auto' or 'numerical', got {gradient!r}.")
    return gradient


def _input_wrapper(X):
    """Return a function that gives arrays the container type of ``X``.

    Estimators fitted on a DataFrame warn when given a bare array; arrays in the raw
    input space are wrapped back into a DataFrame with ``X``'s columns before they are
    handed to the estimator.
    """
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "iloc"):
        return lambda A: A
    frame_type = type(X)
    return lambda A: frame_type(A, columns=columns)


def _validate_inputs(estimator, X, y):
    """Return ``(X as dense float64, class indices of y, wrap, X's float dtype)``."""
    check_is_fitted(estimator)
    wrap = _input_wrapper(X)
    X = check_array(
        X, accept_sparse=True, dtype=(np.float64, np.float32), ensure_all_finite=True
    )
    if sparse.issparse(X):
        X = X.toarray()
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    X = np.asarray(X, dtype=np.float64)
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is "
            f"expecting {n_features} features as input."
        )
    y = column_or_1d(y)
    check_consistent_length(X, y)
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        raise TypeError(
            f"{type(estimator).__name__} has no classes_: input gradients and attacks "
            "need a fitted classifier."
        )
    return X, _encode_labels(np.asarray(classes), y), wrap, dtype


def _encode_labels(classes, y):
    """Map labels to indices into ``classes``; unknown labels raise ValueError."""
    sorter = np.argsort(classes, kind="stable")
    try:
        pos = np.searchsorted(classes, y, sorter=sorter)
    except TypeError as exc:
        raise ValueError(
            f"y has labels of a type that cannot be compared with classes_ "
            f"{classes.tolist()!r}."
        ) from exc
    pos = np.clip(pos, 0, len(classes) - 1)
    idx = sorter[pos]
    unknown = classes[idx] != y
    if np.any(unknown):
        raise ValueError(
            f"y contains labels not in the estimator's classes_ "
            f"{classes.tolist()!r}: {np.unique(y[unknown]).tolist()!r}."
        )
    return idx


# --------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------


def _loss_gradient(estimator, X, y, y_idx, wrap, gradient):
    """Return ``(grad, proba)``; ``proba`` at ``X`` is None when not computed."""
    if gradient == "numerical":
        return _numerical_gradient(estimator, X, y_idx, wrap), None
    if isinstance(estimator, Pipeline):
        return _pipeline_gradient(estimator, X, y, y_idx, wrap)
    if hasattr(estimator, "_loss_input_gradient"):
        # skorch nets take class indices (what their fit takes), others labels.
        target = y_idx if _is_skorch_net(estimator) else y
        grad = estimator._loss_input_gradient(X, target)
        return np.asarray(grad, dtype=np.float64), None
    if _is_linear_proba_model(estimator):
        return _linear_gradient(estimator, X, y_idx, ovr=_uses_ovr(estimator))
    if isinstance(estimator, MLPClassifier):
        return _mlp_gradient(estimator, X, y_idx)
    if _is_skorch_net(estimator):
        return _skorch_gradient(estimator, X, y_idx), None
    raise TypeError(_unsupported_message(estimator))


def _block_rows(estimator, n_samples, n_features, gradient):
    """Rows per block for the numpy gradient paths (temporaries stay in cache).

    Attacks process the rows in blocks of this size: each block's n x d
    temporaries then stay in the CPU cache and the BLAS calls stay small. Other
    paths (torch, finite differences) take all rows at once.
    """
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    if gradient != "auto" or hasattr(final, "_loss_input_gradient"):
        return max(n_samples, 1)
    if isinstance(final, MLPClassifier):
        width = max([n_features] + [W.shape[1] for W in final.coefs_])
    elif _is_linear_proba_model(final):
        width = n_features
    else:
        return max(n_samples, 1)
    rows = _BLOCK_ELEMENTS // max(width, 1)
    if isinstance(estimator, Pipeline):
        rows *= 4  # each block pays the transformers' validation overhead
    return int(min(max(rows, 64), max(n_samples, 1)))


def _unsupported_message(estimator):
    name = type(estimator).__name__
    return (
        f"No analytic input gradient is known for {name}. Pass "
        "gradient='numerical' to use central finite differences of predict_proba "
        "(any probabilistic classifier; about 2 * n_features predictions). For "
        "piecewise-constant models such as trees the gradient is zero almost "
        "everywhere, so gradient attacks on them are weak: prefer a black-box attack."
    )


def _is_skorch_net(estimator):
    return any(
        cls.__module__.split(".")[0] == "skorch" for cls in type(estimator).__mro__
    )


def _is_linear_proba_model(estimator):
    """Linear models whose predict_proba is sigmoid/softmax (or OvR) of coef_."""
    if isinstance(estimator, SGDClassifier):
        if estimator.loss != "log_loss":
            return False
        return True
    if isinstance(estimator, (LogisticRegression, LogisticRegressionCV)):
        return True
    module = type(estimator).__module__
    return module.startswith("skmixup.linear_model") and hasattr(estimator, "coef_")


def _uses_ovr(estimator):
    """Whether a multiclass linear model normalizes one-vs-rest sigmoids."""
    if isinstance(estimator, SGDClassifier):
        return True
    if isinstance(estimator, (LogisticRegression, LogisticRegressionCV)):
        multi_class = getattr(estimator, "multi_class", "deprecated")
        if multi_class == "ovr":
            return True
        if multi_class in ("auto", "deprecated", "warn"):
            return estimator.solver == "liblinear"
    return False


# --------------------------------------------------------------------------------------
# Residuals dCE/dlogits
# --------------------------------------------------------------------------------------


def _binary_residual(z, y_idx):
    """``sigmoid(z) - y`` without cancellation: ``-sigmoid(-z)`` when ``y = 1``."""
    return np.where(y_idx == 1, -expit(-z), expit(z))


def _softmax_residual(ZT, y_idx):
    """Softmax probabilities and ``P - onehot(y)`` from class-major logits.

    ``ZT`` has shape (n_classes, n_samples) (reductions over classes then run
    along contiguous rows) and is overwritten. Returns ``(P, R)`` of shape
    (n_samples, n_classes), as transposed views. The true-class entry of ``R`` is
    minus the sum of the other probabilities, which keeps it non-zero when ``p_y``
    rounds to 1.
    """
    ZT -= ZT.max(axis=0)
    np.exp(ZT, out=ZT)
    ZT /= ZT.sum(axis=0)
    RT = ZT.copy()
    cols = np.arange(ZT.shape[1])
    RT[y_idx, cols] = 0.0
    RT[y_idx, cols] = -RT.sum(axis=0)
    return ZT.T, RT.T


def _ovr_residual(ZT, y_idx):
    """Probabilities ``s / sum(s)`` with ``s = sigmoid(Z)`` and dCE/dZ (class-major)."""
    ST = expit(ZT)
    total = ST.sum(axis=0)
    RT = ST * expit(-ZT) / total
    cols = np.arange(ZT.shape[1])
    RT[y_idx, cols] -= expit(-ZT[y_idx, cols])
    return (ST / total).T, RT.T


def _binary_proba(z):
    p = expit(z)
    return np.column_stack([1.0 - p, p])


# --------------------------------------------------------------------------------------
# Estimator-specific gradients
# --------------------------------------------------------------------------------------


def _linear_gradient(estimator, X, y_idx, *, ovr):
    W = np.asarray(estimator.coef_, dtype=np.float64)
    if W.ndim == 1:
        W = W[None, :]
    ZT = W @ X.T
    ZT += np.asarray(estimator.intercept_, dtype=np.float64).reshape(-1, 1)
    if W.shape[0] == 1:
        r = _binary_residual(ZT[0], y_idx)
        return r[:, None] * W[0], _binary_proba(ZT[0])
    if ovr:
        P, R = _ovr_residual(ZT, y_idx)
    else:
        P, R = _softmax_residual(ZT, y_idx)
    return R @ W, P


_ACTIVATIONS = {
    "identity": lambda A: A,
    "logistic": lambda A: expit(A, out=A),
    "tanh": lambda A: np.tanh(A, out=A),
    "relu": lambda A: np.maximum(A, 0.0, out=A),
}


def _activation_derivative(name, H, D):
    """Multiply ``D`` in place by the activation's derivative, given its output H."""
    if name == "logistic":
        D *= H * (1.0 - H)
    elif name == "tanh":
        D *= 1.0 - H * H
    elif name == "relu":
        D *= H > 0
    elif name != "identity":
        raise TypeError(f"Unknown MLPClassifier activation {name!r}.")


def _mlp_gradient(estimator, X, y_idx):
    if estimator.n_outputs_ != 1 and estimator.out_activation_ != "softmax":
        raise TypeError(
            "input_gradient supports binary and multiclass MLPClassifier, not "
            "multilabel targets."
        )
    if estimator.activation not in _ACTIVATIONS:
        raise TypeError(f"Unknown MLPClassifier activation {estimator.activation!r}.")
    coefs = [np.asarray(W, dtype=np.float64) for W in estimator.coefs_]
    intercepts = [np.asarray(b, dtype=np.float64) for b in estimator.intercepts_]
    hidden = []
    H = X
    for W, b in zip(coefs[:-1], intercepts[:-1], strict=True):
        H = H @ W
        H += b
        H = _ACTIVATIONS[estimator.activation](H)
        hidden.append(H)
    ZT = coefs[-1].T @ H.T
    ZT += intercepts[-1][:, None]
    if estimator.out_activation_ == "softmax":
        P, D = _softmax_residual(ZT, y_idx)
    else:
        P = _binary_proba(ZT[0])
        D = _binary_residual(ZT[0], y_idx)[:, None]
    for layer in range(len(coefs) - 1, 0, -1):
        D = D @ coefs[layer].T
        _activation_derivative(estimator.activation, hidden[layer - 1], D)
    return D @ coefs[0].T, P


def _uncompiled(module):
    """The module that ``torch.compile`` wrapped (skorch's ``compile=True``)."""
    return getattr(module, "_orig_mod", module)


def _skorch_gradient(net, X, y_idx):
    import torch
    import torch.nn.functional as F

    module = _uncompiled(net.module_)
    criterion = _uncompiled(net.criterion_)
    try:
        param = next(module.parameters())
        dtype, device = param.dtype, param.device
    except StopIteration:
        dtype, device = torch.float32, torch.device(net.device)
    if isinstance(criterion, torch.nn.CrossEntropyLoss):

        def loss_fn(out, target):
            return F.cross_entropy(out, target, reduction="sum")

    elif isinstance(criterion, torch.nn.NLLLoss):

        def loss_fn(out, target):
            logp = torch.log(out.clamp_min(torch.finfo(out.dtype).tiny))
            return F.nll_loss(logp, target, reduction="sum")

    elif isinstance(criterion, torch.nn.BCEWithLogitsLoss):

        def loss_fn(out, target):
            return F.binary_cross_entropy_with_logits(
                out.reshape(-1), target.to(out.dtype), reduction="sum"
            )

    else:
        raise TypeError(
            f"input_gradient supports skorch nets with NLLLoss, CrossEntropyLoss or "
            f"BCEWithLogitsLoss criteria, got {type(criterion).__name__}; pass "
            "gradient='numerical' otherwise."
        )
    was_training = module.training
    module.train(False)
    grads = []
    try:
        with torch.enable_grad():
            for start in range(0, X.shape[0], _TORCH_ROWS):
                stop = start + _TORCH_ROWS
                Xt = torch.as_tensor(X[start:stop], dtype=dtype, device=device)
                Xt.requires_grad_(True)
                target = torch.as_tensor(y_idx[start:stop], device=device)
                out = module(Xt)
                if isinstance(out, tuple):
                    out = out[0]
                (grad,) = torch.autograd.grad(loss_fn(out, target), Xt)
                grads.append(grad.detach().cpu().numpy().astype(np.float64))
    finally:
        module.train(was_training)
    if not grads:
        return np.zeros_like(X)
    return np.concatenate(grads, axis=0)


def _numerical_gradient(estimator, X, y_idx, wrap):
    """Central differences of ``-log predict_proba[y]``, many features per call."""
    n, d = X.shape
    G = np.empty_like(X)
    if n == 0:
        return G
    h = _FD_STEP * np.maximum(1.0, np.abs(X))
    per_call = max(1, _FD_ROWS // (2 * n))
    rows = np.arange(n)
    for k0 in range(0, d, per_call):
        ks = np.arange(k0, min(d, k0 + per_call))
        Xs = np.repeat(X[None, :, :], 2 * len(ks), axis=0)
        j = np.arange(len(ks))
        Xs[2 * j, :, ks] += h[:, ks].T
        Xs[2 * j + 1, :, ks] -= h[:, ks].T
        steps = Xs[2 * j, :, ks] - Xs[2 * j + 1, :, ks]
        P = estimator.predict_proba(wrap(Xs.reshape(-1, d)))
        P = np.asarray(P, dtype=np.float64).reshape(2 * len(ks), n, -1)
        loss = -np.log(np.maximum(P[:, rows, y_idx], _TINY))
        G[:, ks] = ((loss[0::2] - loss[1::2]) / steps).T
    return G


# --------------------------------------------------------------------------------------
# Pipelines: forward through the transformers, backward by vector-Jacobian products
# --------------------------------------------------------------------------------------


def _pipeline_gradient(pipeline, X, y, y_idx, wrap):
    steps = [est for _, est in pipeline.steps]
    transformers, final = steps[:-1], steps[-1]
    if final is None or final == "passthrough":
        raise TypeError("The pipeline has no final classifier.")
    vjps = []
    Xt = wrap(X)
    for transformer in transformers:
        Xt, vjp = _transformer_forward(transformer, Xt)
        vjps.append(vjp)
    Xt = np.asarray(Xt, dtype=np.float64)
    grad, proba = _loss_gradient(final, Xt, y, y_idx, _identity, "auto")
    for vjp in reversed(vjps):
        grad = vjp(grad)
    return grad, proba


def _check_real(value, name, *, low=0.0, include_low=True):
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    bad = value < low if include_low else value <= low
    if not np.isfinite(value) or bad:
        relation = ">=" if include_low else ">"
        raise ValueError(f"{name} must be finite and {relation} {low}, got {value!r}.")
    return value
