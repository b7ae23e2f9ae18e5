"""Attacks on tabular classifiers: FGSM, PGD, the exact linear attack; their registry.

The threat model is a ball around each sample, measured per feature and intersected
with a box of valid values:

* ``norm="inf"``: ``{delta : |delta_k| <= eps * scale_k}``;
* ``norm=2``: ``{delta : ||delta / scale||_2 <= eps}`` (an ellipsoid when the scales
  differ);

with ``scale`` the per-feature unit (by default each column's standard deviation),
``scale_k = 0`` for columns that may not move (categorical columns, see
:mod:`._validation`), missing entries left missing, and ``x + delta`` clipped to
``clip``. The scorers and the display take ``attack="fgsm"``, ``"pgd"`` or
``"exact"`` (:func:`exact_attack`, documented there as ``attack="exact"``: it has
no public function of its own), looked up in the private registry ``ATTACKS``;
any other attack is passed as a callable ``attack(estimator, X, y, *, eps,
...)``, not registered.
"""

import warnings

import numpy as np
from sklearn.utils import check_random_state

from skmixup.exceptions import UnsolvedSamplesWarning
from skmixup.metrics._gradients import block_rows, loss_direction
from skmixup.metrics._jacobians import as_float, forward_steps
from skmixup.metrics._models import (
    inner_model,
    is_linear,
    is_linear_proba_model,
    linear_scores,
)
from skmixup.metrics._trees import exact_tree_values, tree_of
from skmixup.metrics._validation import (
    TINY,
    attack_input,
    check_gradient,
    check_n_iter,
    check_norm,
    check_real,
)
from skmixup.utils._threads import run_blocks

ATTACKS = {}


def register_attack(name):
    """Make ``func`` available as ``attack=name`` in the scorer and the display
    (skmixup's own attacks; users pass a callable instead)."""

    def decorator(func):
        ATTACKS[name] = func
        return func

    return decorator


@register_attack("fgsm")
def fgsm(
    estimator,
    X,
    y,
    *,
    eps,
    norm="inf",
    clip=None,
    feature_scale="std",
    mutable=None,
    gradient="auto",
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
        Any estimator :func:`input_gradient` supports, including pipelines with
        :class:`~sklearn.compose.ColumnTransformer` and missing values.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Clean samples. Sparse input is densified.
    y : array-like of shape (n_samples,)
        True labels.
    eps : float
        Radius of the ball, ``>= 0``, in units of ``feature_scale``.
    norm : {"inf", 2}, default="inf"
        The norm of the ball.
    clip : tuple (low, high), default=None
        Valid range of the features. ``low`` and ``high`` are scalars, arrays of
        shape (n_features,), mappings of column names to bounds (DataFrames), or
        None (unbounded). ``X`` should lie inside it.
    feature_scale : "std", float, array-like or mapping, default="std"
        Per-feature unit of ``eps``: feature ``k`` moves by at most
        ``eps * feature_scale[k]``. ``"std"`` is each column's standard deviation
        in the attacked ``X`` (missing entries ignored), so that one ``eps`` means
        the same on every feature; ``1`` gives raw units.
    mutable : array-like of str, int or bool, default=None
        Columns that may move (names, positions or a boolean mask). None means
        the numeric columns that the estimator does not route to an encoder;
        categorical columns (object, category, string, bool dtypes) never move.
    gradient : {"auto", "numerical"}, default="auto"
        How to compute the gradient; see :func:`input_gradient`.

    Returns
    -------
    X_adv : ndarray or DataFrame of shape (n_samples, n_features)
        Attacked samples in ``X``'s container: a DataFrame keeps its columns,
        index and dtypes (integer columns become float where the attacked values
        are not integers); immutable columns and missing entries are unchanged.
        Arrays come back float32 if ``X`` was float32 and float64 otherwise.

    See Also
    --------
    pgd : Iterated, projected version of this attack.
    robust_accuracy_score : Accuracy on the attacked samples.

    Notes
    -----
    For a binary linear model FGSM is the exact worst case over the ball: the
    attacked point minimizes the margin.

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
    >>> X_adv = fgsm(clf, X, y, eps=0.5, feature_scale=1)  # raw units
    >>> float(np.abs(X_adv - X).max())
    0.5
    >>> X_adv[0]  # moves towards the other class
    array([-1.5,  0. ])
    """
    eps = check_real(eps, "eps")
    data = attack_input(
        estimator, X, y, feature_scale=feature_scale, clip=clip, mutable=mutable
    )
    return next(fgsm_path(estimator, data, [eps], check_norm(norm), gradient))


def fgsm_path(estimator, data, eps_values, norm, gradient):
    """FGSM at several radii from one gradient: a generator of attacked X."""
    gradient = check_gradient(gradient)
    eps_values = list(eps_values)
    tasks = _block_tasks(estimator, data, gradient)
    step = np.empty_like(data.V)
    one = len(eps_values) == 1

    def ascent(rows, sub):
        direction = loss_direction(estimator, sub, data.V[rows], gradient)
        _ascent_direction(direction.D, norm, data.scale, out=step[rows])
        if one:  # shift the block while it is in cache
            _shift(step[rows], eps_values[0], data, rows, out=step[rows])

    run_blocks(tasks, ascent)
    if one:
        yield data.rebuild(step)
        return
    for eps in eps_values:
        V_adv = np.empty_like(step)
        run_blocks(
            tasks,
            lambda rows, sub, eps=eps, V_adv=V_adv: _shift(
                step[rows], eps, data, rows, out=V_adv[rows]
            ),
        )
        yield data.rebuild(V_adv)


def _shift(step, eps, data, rows, *, out):
    """``clip(X + eps * step)`` on some rows, into ``out``."""
    np.multiply(step, np.asarray(eps, dtype=step.dtype), out=out)
    out += data.V[rows]
    return _clip(out, data.low, data.high)


@register_attack("pgd")
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
    feature_scale="std",
    mutable=None,
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
    X : array-like or DataFrame of shape (n_samples, n_features)
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
    feature_scale : "std", float, array-like or mapping, default="std"
        Per-feature unit of ``eps``, as in :func:`fgsm`.
    mutable : array-like of str, int or bool, default=None
        Columns that may move, as in :func:`fgsm`.
    random_state : int, RandomState instance or None, default=None
        Seeds the random start. Pass an int for reproducible results.
    gradient : {"auto", "numerical"}, default="auto"
        How to compute the gradient; see :func:`input_gradient`.

    Returns
    -------
    X_adv : ndarray or DataFrame of shape (n_samples, n_features)
        Attacked samples in ``X``'s container, as for :func:`fgsm`.

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
    >>> X_adv = pgd(clf, X, y, eps=0.5, feature_scale=1, random_state=0)
    >>> bool(np.abs(X_adv - X).max() <= 0.5 + 1e-12)
    True
    """
    eps = check_real(eps, "eps")
    norm = check_norm(norm)
    gradient = check_gradient(gradient)
    n_iter = check_n_iter(n_iter)
    step = 2.5 * eps / n_iter if step is None else check_real(step, "step")
    data = attack_input(
        estimator, X, y, feature_scale=feature_scale, clip=clip, mutable=mutable
    )
    rng = check_random_state(random_state)
    best = pgd_values(
        estimator, data, eps, step, n_iter, norm, random_start, rng, gradient
    )
    return data.rebuild(best)


def pgd_values(estimator, data, eps, step, n_iter, norm, random_start, rng, gradient):
    """PGD on ``data``'s rows (checked arguments): the best iterates (float64)."""
    n, d = data.V.shape
    U = np.zeros((n, d))
    if random_start:
        U = _random_start(rng, n, d, eps, norm, data.scale > 0)
    best = np.empty(data.V.shape, dtype=np.float64)

    def attack_block(rows, sub):
        best[rows] = _pgd_block(
            estimator, sub, U[rows], eps, step, n_iter, norm, gradient
        )

    run_blocks(_block_tasks(estimator, data, gradient), attack_block)
    return best


def _pgd_block(estimator, data, U, eps, step, n_iter, norm, gradient):
    """PGD on a block of rows from the start ``X + scale * U``; the best iterates."""
    X = np.asarray(data.V, dtype=np.float64)
    scale = data.scale
    n = X.shape[0]
    inv_scale = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
    X_adv = _clip(X + scale * U, data.low, data.high)
    best = X_adv.copy()
    best_wrong = np.zeros(n, dtype=bool)
    best_loss = np.full(n, -np.inf)
    rows = np.arange(n)
    y_idx = data.y_idx
    for it in range(n_iter + 1):
        P = None
        if it < n_iter:
            direction = loss_direction(estimator, data, X_adv, gradient)
            P = direction.proba
        if data.is_regression:  # the squared error; P holds the predictions
            if P is None:  # in X's precision (float32 torch models)
                P = estimator.predict(data.model_input(_in_dtype(X_adv, data)))
            P = np.asarray(P, dtype=np.float64).reshape(n, -1)[:, 0]
            wrong = np.zeros(n, dtype=bool)
            loss = (P - data.y) ** 2
        else:
            if P is None:  # in X's dtype: a float32 torch module rejects float64
                P = estimator.predict_proba(data.model_input(_in_dtype(X_adv, data)))
            P = np.asarray(P, dtype=np.float64)
            wrong = P.argmax(axis=1) != y_idx
            loss = -np.log(np.maximum(P[rows, y_idx], TINY))
        better = (wrong & ~best_wrong) | ((wrong == best_wrong) & (loss > best_loss))
        best[better] = X_adv[better]
        best_wrong |= wrong
        best_loss[better] = loss[better]
        if it == n_iter:
            break
        U = np.nan_to_num((X_adv - X) * inv_scale)
        # The gradient with respect to U (scale units) is G * scale.
        U += step * _ascent_direction(direction.D * scale, norm, None)
        _project(U, eps, norm)
        X_adv = _clip(X + scale * U, data.low, data.high)
    return best


@register_attack("exact")
def exact_attack(
    estimator,
    X,
    y,
    *,
    eps,
    norm="inf",
    clip=None,
    feature_scale="std",
    mutable=None,
    time_limit=None,
):
    """Worst-case point of a linear classifier, a tree, a forest or a ReLU network.

    For a :class:`~sklearn.tree.DecisionTreeClassifier` (behind affine steps) the
    point lies in a leaf that the threat model reaches and that predicts another
    class, if there is one (closed form, see :mod:`._trees`). For a
    :class:`~sklearn.ensemble.RandomForestClassifier` or
    :class:`~sklearn.ensemble.ExtraTreesClassifier` (``norm="inf"``) it is
    :func:`certify`'s verified counterexample from Kantchelian et al.'s
    mixed-integer program. The description below is that of the linear case.

    For scores ``z = W x + b`` (in the raw input space, through affine pipeline
    steps) and label ``y``, a perturbation ``delta`` changes the score difference
    ``z_k - z_y`` by ``(w_k - w_y)^T delta``. Its largest value over the ball is
    ``eps * ||(w_k - w_y) * scale||_*`` (the dual norm: l1 for ``norm="inf"``, l2
    for ``norm=2``), or, with box bounds and ``norm="inf"``, the sum over
    coordinates of the best end of each coordinate's interval. A sample stays
    correct iff for every class ``k != y`` its margin ``z_y - z_k`` exceeds that
    change; the attack returns the maximizer for the most violated class.

    Parameters
    ----------
    estimator : fitted classifier
        A linear classifier (``coef_``, ``intercept_``; binary or multiclass), a
        DecisionTreeClassifier, a RandomForestClassifier or ExtraTreesClassifier
        (``norm="inf"``), optionally the last step of a pipeline whose
        transformers are affine on the moving columns (scalers, PCA, SimpleImputer,
        ColumnTransformer, encoders; for a tree each feature it splits on must
        depend on at most one movable column, so not PCA).
    X : array-like or DataFrame of shape (n_samples, n_features)
        Clean samples.
    y : array-like of shape (n_samples,)
        True labels.
    eps : float
        Radius of the ball, ``>= 0``, in units of ``feature_scale``.
    norm : {"inf", 2}, default="inf"
        The norm of the ball.
    clip : tuple (low, high), default=None
        Box bounds, as in :func:`fgsm` (``norm="inf"`` only for linear models).
    feature_scale : "std", float, array-like or mapping, default="std"
        Per-feature unit of ``eps``, as in :func:`fgsm`.
    mutable : array-like of str, int or bool, default=None
        Columns that may move, as in :func:`fgsm`.
    time_limit : float, default=None
        Networks and forests only: seconds of the mixed-integer program per
        sample (None: no limit). Samples it cannot settle in time are left
        unattacked, counted as robust: the score is then an upper bound, and a
        :class:`~skmixup.exceptions.UnsolvedSamplesWarning` gives their number.

    Returns
    -------
    X_adv : ndarray or DataFrame of shape (n_samples, n_features)
        The worst-case samples, in ``X``'s container: for a network, a verified
        counterexample where one exists (:func:`certify` with ``method="milp"``)
        and the clean sample elsewhere.

    Notes
    -----
    For networks with piecewise-linear activations (ReLU, LeakyReLU, identity)
    ``X_adv`` comes from :func:`certify`'s exact mixed-integer program
    (``norm="inf"`` only); other activations raise a TypeError.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmixup.metrics import robust_accuracy_score
    >>> X = np.array([[-2.0, 0.5], [-1.0, 0.0], [1.0, 0.2], [2.0, -0.4]])
    >>> y = np.array([0, 0, 1, 1])
    >>> clf = LogisticRegression().fit(X, y)
    >>> robust_accuracy_score(clf, X, y, attack="exact", eps=0.5, feature_scale=1)
    1.0
    """
    eps = check_real(eps, "eps")
    norm = check_norm(norm)
    if norm == "2" and clip is not None and tree_of(estimator) is None:
        raise ValueError(
            "attack='exact' with norm=2 does not support clip: the l2 ball "
            "intersected with a box has no closed-form worst case. Use pgd."
        )
    if _is_deep_network(estimator) or _is_forest(estimator):
        return _exact_network_attack(
            estimator,
            X,
            y,
            eps=eps,
            norm=norm,
            clip=clip,
            feature_scale=feature_scale,
            mutable=mutable,
            time_limit=time_limit,
        )
    data = attack_input(
        estimator, X, y, feature_scale=feature_scale, clip=clip, mutable=mutable
    )
    if tree_of(estimator) is not None:
        return data.rebuild(exact_tree_values(estimator, data, eps, norm)[0])
    Z, weights = _affine_scores(estimator, data)
    n, K = Z.shape
    rows = np.arange(n)
    y_idx = data.y_idx
    V = np.asarray(data.V, dtype=np.float64)
    scale = data.scale
    moves = (scale > 0) & ~np.isnan(V)
    lo, hi = data.delta_box(eps)
    A_y = np.empty((n, V.shape[1]))
    for k in range(K):
        mask = y_idx == k
        if np.any(mask):
            A_y[mask] = weights(k)[mask]
    best_violation = np.full(n, -np.inf)
    delta = np.zeros_like(V)
    for k in range(K):
        others = y_idx != k
        if not np.any(others):
            continue
        a = np.where(moves, weights(k) - A_y, 0.0)  # gradient of z_k - z_y
        if norm == "inf":
            d_k = np.where(a > 0, hi, np.where(a < 0, lo, 0.0))
        else:
            s = a * scale
            length = np.linalg.norm(s, axis=1, keepdims=True)
            d_k = eps * s * scale / np.where(length == 0, 1.0, length)
        change = np.einsum("ij,ij->i", a, d_k)
        violation = change - (Z[rows, y_idx] - Z[:, k])
        better = others & (violation > best_violation)
        delta[better] = d_k[better]
        best_violation[better] = violation[better]
    V_adv = V + delta
    return data.rebuild(V_adv)


def _is_deep_network(estimator):
    from skmixup.metrics._network import network_of, split_pipeline

    try:
        network = network_of(split_pipeline(estimator)[1])
    except TypeError:
        return False
    return network is not None and len(network.activations) > 0


def _is_forest(estimator):
    from skmixup.metrics._certify import _is_forest as is_forest
    from skmixup.metrics._network import split_pipeline

    return is_forest(split_pipeline(estimator)[1])


def _exact_network_attack(estimator, X, y, *, eps, time_limit, **params):
    """Verified counterexamples of the exact MILP (the clean sample elsewhere)."""
    from skmixup.metrics._certify import certify

    if check_norm(params["norm"]) != "inf":
        raise ValueError(
            "attack='exact' for networks and forests supports norm='inf' only (a "
            "mixed-integer linear program); use pgd (networks) or square for "
            "norm=2."
        )
    result = certify(
        estimator,
        X,
        y,
        eps=eps,
        method="milp",
        time_limit=time_limit,
        random_state=0,
        **params,
    )
    n_unknown = int(result.unknown.sum())
    if n_unknown:
        warnings.warn(
            f"attack='exact': {n_unknown} of {len(result.status)} samples were not "
            f"settled within time_limit={time_limit} s per sample (or, for a "
            "forest, sit on an exact tie of class probabilities); they count as "
            "robust, so the score is an upper bound. Raise time_limit or pass "
            "time_limit=None.",
            UnsolvedSamplesWarning,
            stacklevel=3,
        )
    return result.X_adv


def _affine_scores(estimator, data):
    """Clean scores (n, K) and ``weights(k)``: d z_k / d x per sample (n, d)."""
    X = data.model_input(data.V)
    name = type(estimator).__name__
    estimator = inner_model(estimator)
    steps, final = [], estimator
    if hasattr(estimator, "steps"):
        X, steps = forward_steps(estimator.steps[:-1], X, name, data.movable)
        final = inner_model(estimator.steps[-1][1])
        for (step_name, _), step in zip(estimator.steps[:-1], steps, strict=True):
            if not step.affine:
                raise TypeError(
                    f"attack='exact' needs affine pipeline steps; {name}/{step_name} "
                    "is not (its Jacobian depends on the input). Use pgd."
                )
    if not (is_linear_proba_model(final) or is_linear(final)) or not hasattr(
        final, "decision_function"
    ):
        raise TypeError(
            "attack='exact' needs a linear classifier (coef_ and intercept_ of a "
            "decision function), a DecisionTreeClassifier or a random forest, "
            "optionally behind "
            f"affine transformers; got {type(final).__name__}. Use attack='square' "
            "or attack='auto' (upper bounds) for other models."
        )
    W, b = linear_scores(final)
    W, b = W.astype(np.float64), b.astype(np.float64)
    Z = as_float(X, name) @ W.T + b
    n = Z.shape[0]
    if W.shape[0] == 1:  # binary: scores (0, z)
        Z = np.column_stack([np.zeros(n), Z[:, 0]])
        W = np.vstack([np.zeros_like(W), W])

    def back(G):
        for step in reversed(steps):
            G = step.vjp(G)
        return np.asarray(G, dtype=np.float64)

    d = data.V.shape[1]

    def weights(k):
        if not np.any(W[k]):
            return np.zeros((n, d))
        return back(np.broadcast_to(W[k], (n, W.shape[1])))

    return Z, weights


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _block_tasks(estimator, data, gradient):
    """``(rows, data of those rows)`` pairs: attacks treat blocks independently.

    The blocks are cache-sized (:func:`block_rows`); the subsets are made here, in
    the calling thread, so that workers only read shared data.
    """
    n, d = data.V.shape
    size = block_rows(estimator, n, d, gradient)
    blocks = [slice(start, start + size) for start in range(0, max(n, 1), size)]
    if len(blocks) == 1:
        return [(blocks[0], data)]
    return [(rows, data.subset(rows)) for rows in blocks]


def _in_dtype(V, data):
    """Attacked values of an array X in X's own float precision."""
    return V.astype(data.dtype, copy=False) if data.kind == "array" else V


def _clip(X, low, high):
    if low is not None or high is not None:
        np.clip(X, low, high, out=X)
    return X


def _ascent_direction(G, norm, scale, *, out=None):
    """Steepest ascent step of unit size in the scaled ball (into ``out``).

    ``scale`` zeroes the columns that may not move.
    """
    if norm == "inf":
        D = np.sign(G, out=out)
        if scale is not None and not np.all(scale == 1.0):
            D *= scale.astype(D.dtype, copy=False)
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
        U *= np.minimum(1.0, eps / np.maximum(lengths, TINY))


def _random_start(rng, n, d, eps, norm, movable):
    if norm == "inf":
        U = rng.uniform(-eps, eps, size=(n, d))
    else:
        U = rng.standard_normal((n, d)) * movable
        lengths = np.linalg.norm(U, axis=1, keepdims=True)
        lengths[lengths == 0] = 1.0
        dim = max(int(movable.sum()), 1)
        U *= eps * rng.random_sample((n, 1)) ** (1.0 / dim) / lengths
    return U * movable
