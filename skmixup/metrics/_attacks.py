"""Gradient attacks on tabular classifiers: FGSM, PGD and the exact linear attack.

The threat model is a ball around each sample, optionally measured per feature and
intersected with a box of valid values:

* ``norm="inf"``: ``{delta : |delta_k| <= eps * scale_k}``;
* ``norm=2``: ``{delta : ||delta / scale||_2 <= eps}`` (an ellipsoid when the scales
  differ);

with ``scale = feature_scale`` (ones by default) and ``x + delta`` clipped to ``clip``.
"""

import contextlib
import numbers

import numpy as np
from sklearn.utils import check_random_state
from threadpoolctl import ThreadpoolController

from skmixup.metrics._gradients import (
    _TINY,
    _block_rows,
    _check_gradient,
    _check_real,
    _loss_gradient,
    _validate_inputs,
)
from skmixup.metrics._jacobians import _effective_binary_linear

_NORMS = {"inf": "inf", np.inf: "inf", 2: "2", "2": "2", "l2": "2", "linf": "inf"}


def fgsm(
    estimator, X, y, *, eps, norm="inf", clip=None, feature_scale=None, gradient="auto"
):
    """Fast gradient (sign) method: one step up the loss gradient.

    For ``norm="inf"`` this is the FGSM of Goodfellow et al. (2015),
    ``x_adv = x + eps * scale * sign(grad)``; for ``norm=2`` it is the normalized
    gradient step ``x_adv = x + eps * scale**2 * grad / ||scale * grad||_2``, the
    maximizer of the linearized loss over the (scaled) l2 ball. The gradient is that
    of each sample's cross-entropy at its true label (:func:`input_gradient`).

    Parameters
    ----------
    estimator : fitted classifier
        Any estimator :func:`input_gradient` supports.
    X : array-like of shape (n_samples, n_features)
        Clean samples. Sparse input is densified: the perturbation touches every
        feature.
    y : array-like of shape (n_samples,)
        True labels.
    eps : float
        Radius of the ball, ``>= 0``, in units of ``feature_scale``.
    norm : {"inf", 2}, default="inf"
        The norm of the ball.
    clip : tuple (low, high), default=None
        Valid range of the features. ``low`` and ``high`` are scalars, arrays of
        shape (n_features,) or None (unbounded). ``X`` should lie inside it.
    feature_scale : float or array-like of shape (n_features,), default=None
        Per-feature units of ``eps`` (for instance the training standard deviation):
        feature ``k`` moves by at most ``eps * feature_scale[k]``. None means 1.
    gradient : {"auto", "numerical"}, default="auto"
        How to compute the gradient; see :func:`input_gradient`.

    Returns
    -------
    X_adv : ndarray of shape (n_samples, n_features)
        Attacked samples, float32 if ``X`` was float32 and float64 otherwise.

    See Also
    --------
    pgd : Iterated, projected version of this attack.
    robust_accuracy_score : Accuracy on the attacked samples.

    Notes
    -----
    For a binary linear model FGSM with ``norm="inf"`` (and ``norm=2``) is the exact
    worst case: the attacked point minimizes the margin over the ball.

    References
    ----------
    .. [1] I. Goodfellow, J. Shlens and C. Szegedy, "Explaining and Harnessing
       Adversarial Examples", ICLR 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.metrics import fgsm
    >>> X = np.array([[-2.0, 0.5], [-1.0, 0.0], [1.0, 0.2], [2.0, -0.4]])
    >>> y = np.array([0, 0, 1, 1])
    >>> clf = LogisticRegression().fit(X, y)
    >>> X_adv = fgsm(clf, X, y, eps=0.5)
    >>> float(np.abs(X_adv - X).max())
    0.5
    >>> X_adv[0]  # moves towards the other class
    array([-1.5,  0. ])
    """
    eps = _check_real(eps, "eps")
    norm = _check_norm(norm)
    gradient = _check_gradient(gradient)
    X, y_idx, wrap, dtype = _validate_inputs(estimator, X, y)
    scale = _check_feature_scale(feature_scale, X.shape[1])
    low, high = _check_clip(clip, X.shape[1])
    y = np.asarray(y)
    X_adv = np.empty_like(X)
    blocks = _blocks(estimator, X.shape, gradient)
    with _blas_for_blocks(blocks):
        for rows in blocks:
            G, _ = _loss_gradient(
                estimator, X[rows], y[rows], y_idx[rows], wrap, gradient
            )
            # The step goes straight into the output block: no n x d temporary.
            D = _ascent_direction(G, norm, scale, out=X_adv[rows])
            D *= eps
            D += X[rows]
    return _clip(X_adv, low, high).astype(dtype, copy=False)


def pgd(
    estimator,
    X,
    y,
    *,
    eps,
    step=None,
    n_iter=10,
    norm="inf",
    random_start=True,
    clip=None,
    feature_scale=None,
    random_state=None,
    gradient="auto",
):
    """Projected gradient descent attack (Madry et al., 2018).

    Starting from a uniform random point of the ball (or from ``X``), takes
    ``n_iter`` steps of size ``step`` along the steepest ascent direction of the loss
    for the norm (the sign of the gradient for ``norm="inf"``, the normalized gradient
    for ``norm=2``, both in ``feature_scale`` units), each followed by the projection
    onto the ball and the clipping to ``clip``. Returns, per sample, the best iterate
    seen: a misclassified one if any, else the one of highest loss.

    Parameters
    ----------
    estimator : fitted classifier
        Any estimator :func:`input_gradient` supports.
    X : array-like of shape (n_samples, n_features)
        Clean samples (sparse input is densified).
    y : array-like of shape (n_samples,)
        True labels.
    eps : float
        Radius of the ball, ``>= 0``, in units of ``feature_scale``.
    step : float, default=None
        Step size in the same units as ``eps``; None means ``2.5 * eps / n_iter``.
    n_iter : int, default=10
        Number of gradient steps.
    norm : {"inf", 2}, default="inf"
        The norm of the ball.
    random_start : bool, default=True
        Start from a uniformly drawn point of the ball instead of ``X``.
    clip : tuple (low, high), default=None
        Valid range of the features, as in :func:`fgsm`.
    feature_scale : float or array-like of shape (n_features,), default=None
        Per-feature units of ``eps``, as in :func:`fgsm`.
    random_state : int, RandomState instance or None, default=None
        Seeds the random start. Pass an int for reproducible results.
    gradient : {"auto", "numerical"}, default="auto"
        How to compute the gradient; see :func:`input_gradient`.

    Returns
    -------
    X_adv : ndarray of shape (n_samples, n_features)
        Attacked samples, float32 if ``X`` was float32 and float64 otherwise.

    See Also
    --------
    fgsm : The one-step attack.
    robust_accuracy_score : Accuracy on the attacked samples.

    Notes
    -----
    Without a random start the first step leaves from ``X``, and with the best
    iterate kept PGD is in practice at least as strong as :func:`fgsm`. With a
    random start on a non-convex model (an MLP) some samples can end in another
    local maximum of the loss than the one FGSM reaches, so for a worst-case
    estimate take, per sample, the worst of several attacks or seeds.

    References
    ----------
    .. [1] A. Madry, A. Makelov, L. Schmidt, D. Tsipras and A. Vladu, "Towards Deep
       Learning Models Resistant to Adversarial Attacks", ICLR 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.metrics import pgd
    >>> X = np.array([[-2.0, 0.5], [-1.0, 0.0], [1.0, 0.2], [2.0, -0.4]])
    >>> y = np.array([0, 0, 1, 1])
    >>> clf = LogisticRegression().fit(X, y)
    >>> X_adv = pgd(clf, X, y, eps=0.5, random_state=0)
    >>> bool(np.abs(X_adv - X).max() <= 0.5 + 1e-12)
    True
    """
    eps = _check_real(eps, "eps")
    norm = _check_norm(norm)
    gradient = _check_gradient(gradient)
    if not isinstance(n_iter, numbers.Integral) or n_iter < 1:
        raise ValueError(f"n_iter must be an integer >= 1, got {n_iter!r}.")
    step = 2.5 * eps / n_iter if step is None else _check_real(step, "step")
    X, y_idx, wrap, dtype = _validate_inputs(estimator, X, y)
    y = np.asarray(y)
    n, d = X.shape
    scale = _check_feature_scale(feature_scale, d)
    low, high = _check_clip(clip, d)
    s = np.ones(d) if scale is None else scale
    rng = check_random_state(random_state)

    U = _random_start(rng, n, d, eps, norm) if random_start else np.zeros((n, d))
    best = np.empty_like(X)
    blocks = _blocks(estimator, X.shape, gradient)
    with _blas_for_blocks(blocks):
        for rows in blocks:
            best[rows] = _pgd_block(
                estimator,
                X[rows],
                y[rows],
                y_idx[rows],
                U[rows],
                wrap=wrap,
                eps=eps,
                step=step,
                n_iter=n_iter,
                norm=norm,
                bounds=(low, high),
                scale=s,
                gradient=gradient,
            )
    return best.astype(dtype, copy=False)


def _pgd_block(
    estimator,
    X,
    y,
    y_idx,
    U,
    *,
    wrap,
    eps,
    step,
    n_iter,
    norm,
    bounds,
    scale,
    gradient,
):
    """PGD on a block of rows from the start ``X + scale * U``; the best iterates."""
    n = X.shape[0]
    inv_scale = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
    X_adv = _clip(X + scale * U, *bounds)
    best = X_adv.copy()
    best_wrong = np.zeros(n, dtype=bool)
    best_loss = np.full(n, -np.inf)
    rows = np.arange(n)
    for it in range(n_iter + 1):
        if it < n_iter:
            G, P = _loss_gradient(estimator, X_adv, y, y_idx, wrap, gradient)
        if it == n_iter or P is None:
            P = np.asarray(estimator.predict_proba(wrap(X_adv)), dtype=np.float64)
        wrong = P.argmax(axis=1) != y_idx
        loss = -np.log(np.maximum(P[rows, y_idx], _TINY))
        better = (wrong & ~best_wrong) | ((wrong == best_wrong) & (loss > best_loss))
        best[better] = X_adv[better]
        best_wrong |= wrong
        best_loss[better] = loss[better]
        if it == n_iter:
            break
        U = (X_adv - X) * inv_scale
        G *= scale
        U += step * _ascent_direction(G, norm, None)
        _project(U, eps, norm)
        X_adv = _clip(X + scale * U, *bounds)
    return best


def _exact_linear_attack(
    estimator, X, y, *, eps, norm="inf", clip=None, feature_scale=None
):
    """Worst-case point of a binary linear classifier over the ball (and box).

    A sample stays correct iff its margin exceeds ``eps`` times the dual norm of
    ``w * feature_scale`` (l1 for ``norm="inf"``, l2 for ``norm=2``). With ``clip``
    the box is separable for ``norm="inf"`` and the clipped corner stays optimal; for
    ``norm=2`` the intersection has no closed form and ``clip`` is refused.
    """
    eps = _check_real(eps, "eps")
    norm = _check_norm(norm)
    X, y_idx, _, dtype = _validate_inputs(estimator, X, y)
    scale = _check_feature_scale(feature_scale, X.shape[1])
    low, high = _check_clip(clip, X.shape[1])
    if norm == "2" and clip is not None:
        raise ValueError(
            "attack='exact' with norm=2 does not support clip: the l2 ball "
            "intersected with a box has no closed-form worst case. Use pgd."
        )
    w = _effective_binary_linear(estimator)
    direction = _ascent_direction(w[None, :], norm, scale)[0]
    # Decreasing the decision function attacks class 1, increasing it class 0.
    sign = np.where(y_idx == 1, -1.0, 1.0)
    X_adv = X + (eps * sign)[:, None] * direction
    return _clip(X_adv, low, high).astype(dtype, copy=False)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _blocks(estimator, shape, gradient):
    """Row slices: attacks treat blocks of rows independently (cache-sized)."""
    n, d = shape
    size = _block_rows(estimator, n, d, gradient)
    return [slice(start, start + size) for start in range(0, max(n, 1), size)]


_CONTROLLER = []


def _blas_for_blocks(blocks):
    """Limit BLAS to one thread while looping over several small blocks.

    Each block's matrix products are small; a multi-threaded BLAS gains nothing
    on them and, on a busy machine, its threads wait for each other at every call
    (measured: 1.4 s instead of 0.04 s for 50,000 x 100 rows on 2 shared cores).
    The controller is created on first use, after numpy's BLAS is loaded.
    """
    if len(blocks) < 2:
        return contextlib.nullcontext()
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def _check_norm(norm):
    try:
        return _NORMS[norm]
    except (KeyError, TypeError):
        raise ValueError(f"norm must be 'inf' or 2, got {norm!r}.") from None


def _check_feature_scale(feature_scale, n_features):
    if feature_scale is None:
        return None
    scale = np.asarray(feature_scale, dtype=np.float64)
    if scale.ndim == 0:
        scale = np.full(n_features, float(scale))
    if scale.shape != (n_features,):
        raise ValueError(
            f"feature_scale must be a scalar or have shape ({n_features},), got "
            f"shape {scale.shape}."
        )
    if not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise ValueError("feature_scale must be finite and non-negative.")
    return scale


def _check_clip(clip, n_features):
    """Return ``(low, high)``, each None, a scalar or an array of shape (d,)."""
    if clip is None:
        return None, None
    if isinstance(clip, np.ndarray) and clip.ndim == 2 and clip.shape[0] == 2:
        clip = (clip[0], clip[1])
    if not isinstance(clip, (tuple, list)) or len(clip) != 2:
        raise ValueError(
            "clip must be a pair (low, high) of scalars, None or arrays of shape "
            f"(n_features,), got {clip!r}."
        )
    bounds = []
    for name, bound in zip(("low", "high"), clip, strict=True):
        if bound is None:
            bounds.append(None)
            continue
        bound = np.asarray(bound, dtype=np.float64)
        if bound.ndim not in (0, 1) or (
            bound.ndim == 1 and bound.shape[0] != n_features
        ):
            raise ValueError(
                f"clip {name} bound must be a scalar or have shape ({n_features},), "
                f"got shape {bound.shape}."
            )
        if np.any(np.isnan(bound)):
            raise ValueError(f"clip {name} bound contains NaN.")
        bounds.append(bound)
    low, high = bounds
    if low is not None and high is not None and np.any(low > high):
        raise ValueError("clip low bound exceeds the high bound.")
    return low, high


def _clip(X, low, high):
    if low is not None or high is not None:
        np.clip(X, low, high, out=X)
    return X


def _ascent_direction(G, norm, scale, *, out=None):
    """Steepest ascent step of unit size in the scaled ball (into ``out``).

    ``out`` must not be ``G``: numpy's in-place ``sign`` is several times slower
    than writing to another array.
    """
    if norm == "inf":
        D = np.sign(G, out=out)
        if scale is not None:
            D *= scale
        return D
    S = G if scale is None else G * scale
    lengths = np.linalg.norm(S, axis=1, keepdims=True)
    lengths[lengths == 0] = 1.0
    D = np.divide(S, lengths, out=out)
    if scale is not None:
        D *= scale
    return D


def _project(U, eps, norm):
    """Project rows of U (in scale units) onto the eps-ball, in place."""
    if norm == "inf":
        np.clip(U, -eps, eps, out=U)
    else:
        lengths = np.linalg.norm(U, axis=1, keepdims=True)
        factor = np.minimum(1.0, eps / np.maximum(lengths, _TINY))
        U *= factor


def _random_start(rng, n, d, eps, norm):
    if norm == "inf":
        return rng.uniform(-eps, eps, size=(n, d))
    U = rng.standard_normal((n, d))
    lengths = np.linalg.norm(U, axis=1, keepdims=True)
    lengths[lengths == 0] = 1.0
    radius = eps * rng.random_sample((n, 1)) ** (1.0 / d)
    return U * (radius / lengths)
