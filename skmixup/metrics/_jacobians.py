"""Vector-Jacobian products of scikit-learn transformers, for input gradients.

``_transformer_forward`` returns a transformer's output and a function mapping
gradients with respect to that output back to its input; chaining these through a
Pipeline's steps gives gradients in raw feature units. ``_effective_binary_linear``
folds affine steps into the weight vector of a binary linear classifier.
"""

import numpy as np
from scipy import sparse
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    RobustScaler,
    StandardScaler,
)


def _identity(A):
    return A


def _transformer_forward(transformer, X):
    """Return ``(transform(X), vjp)``; ``vjp(G)`` maps output to input gradients."""
    if transformer is None or transformer == "passthrough":
        return X, _identity
    Xt = transformer.transform(X)
    if sparse.issparse(Xt):
        Xt = Xt.toarray()
    Xt = np.asarray(Xt, dtype=np.float64)
    if isinstance(transformer, Normalizer):
        return Xt, _normalizer_vjp(transformer, np.asarray(X, dtype=np.float64), Xt)
    if isinstance(transformer, MinMaxScaler) and transformer.clip:
        low, high = transformer.feature_range
        scale = transformer.scale_
        unclipped = np.asarray(X, dtype=np.float64) * scale + transformer.min_
        # Subgradient at the kinks: the bounds count as inside (the attack may
        # move inwards from a training minimum or maximum).
        inside = (unclipped >= low) & (unclipped <= high)
        return Xt, lambda G: G * scale * inside
    if isinstance(transformer, Pipeline):
        vjps = []
        Xi = X
        for _, step in transformer.steps:
            Xi, vjp = _transformer_forward(step, Xi)
            vjps.append(vjp)

        def chained(G):
            for vjp in reversed(vjps):
                G = vjp(G)
            return G

        return Xi, chained
    return Xt, _affine_vjp(transformer)


def _affine_vjp(transformer):
    """VJP of an affine transformer (its Jacobian does not depend on X)."""
    if isinstance(transformer, (StandardScaler, MaxAbsScaler, RobustScaler)):
        scale = transformer.scale_
        if scale is None:
            return _identity
        return lambda G: G / scale
    if isinstance(transformer, MinMaxScaler):
        return lambda G: G * transformer.scale_
    if isinstance(transformer, PCA):
        components = np.asarray(transformer.components_, dtype=np.float64)
        if transformer.whiten:
            components = components / np.sqrt(transformer.explained_variance_)[:, None]
        return lambda G: G @ components
    if isinstance(transformer, TruncatedSVD):
        components = np.asarray(transformer.components_, dtype=np.float64)
        return lambda G: G @ components
    raise TypeError(
        f"No Jacobian is known for the pipeline step {type(transformer).__name__}. "
        "Supported: StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, "
        "Normalizer, PCA, TruncatedSVD, nested Pipeline and 'passthrough'. Pass "
        "gradient='numerical' to differentiate the whole pipeline by finite "
        "differences."
    )


def _normalizer_vjp(transformer, X, Xt):
    """VJP of ``x / ||x||_p`` (p in l1, l2, max)."""
    norm = transformer.norm
    if norm == "l2":
        lengths = np.linalg.norm(X, axis=1, keepdims=True)
    elif norm == "l1":
        lengths = np.abs(X).sum(axis=1, keepdims=True)
    else:
        lengths = np.abs(X).max(axis=1, keepdims=True)
    zero = lengths[:, 0] == 0
    lengths[zero] = 1.0

    def vjp(G):
        inner = (G * Xt).sum(axis=1, keepdims=True)
        if norm == "l2":
            dnorm = Xt
        elif norm == "l1":
            dnorm = np.sign(X)
        else:
            argmax = np.abs(X).argmax(axis=1)
            dnorm = np.zeros_like(X)
            rows = np.arange(X.shape[0])
            dnorm[rows, argmax] = np.sign(X[rows, argmax])
        return (G - inner * dnorm) / lengths

    return vjp


def _effective_binary_linear(estimator):
    """``(w, predict)`` of a binary linear decision function in the raw input space.

    For a (pipeline ending in a) binary linear classifier whose transformers are
    affine, ``decision_function(x) = w @ x + c``; ``w`` is returned. Otherwise a
    TypeError is raised.
    """
    steps = estimator.steps if isinstance(estimator, Pipeline) else [(None, estimator)]
    final = steps[-1][1]
    coef = getattr(final, "coef_", None)
    if (
        coef is None
        or not hasattr(final, "decision_function")
        or isinstance(final, MLPClassifier)
        or np.atleast_2d(coef).shape[0] != 1
        or len(getattr(estimator, "classes_", ())) != 2
    ):
        raise TypeError(
            "attack='exact' needs a binary linear classifier (coef_ of shape "
            f"(1, n_features)), optionally behind affine transformers; got "
            f"{type(final).__name__}."
        )
    w = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    for _, transformer in reversed(steps[:-1]):
        w = _affine_chain_vjp(transformer)(w)
    return w[0]


def _affine_chain_vjp(transformer):
    if transformer is None or transformer == "passthrough":
        return _identity
    if isinstance(transformer, Pipeline):
        vjps = [_affine_chain_vjp(step) for _, step in transformer.steps]

        def chained(G):
            for vjp in reversed(vjps):
                G = vjp(G)
            return G

        return chained
    if isinstance(transformer, Normalizer) or (
        isinstance(transformer, MinMaxScaler) and transformer.clip
    ):
        raise TypeError(
            f"attack='exact' needs affine pipeline steps; {transformer!r} is not."
        )
    return _affine_vjp(transformer)
