"""``attack="auto"``: the per-sample worst case of the attacks that apply.

One scorer must be right for every candidate of a search over model types: a
network, a logistic regression, a forest and a boosted model. For each sample the
result is the worst point found by

* PGD (:func:`pgd`) from the clean point and from ``n_restarts - 1`` random starts,
  where the model has an input gradient (:func:`input_gradient` does not raise);
* then the square attack (:func:`square_attack`), always, on the samples still
  correctly classified (every sample of a regressor), starting from that point.

"Worst" is: misclassified if any attack misclassifies it, else the largest margin
loss ``max_{k != y} z_k - z_y`` (the squared error for a regressor).
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

from skmixup.metrics._attacks import pgd_values, register_attack
from skmixup.metrics._gradients import loss_direction
from skmixup.metrics._square import (
    N_QUERIES,
    Objective,
    check_n_queries,
    square_values,
)
from skmixup.metrics._validation import (
    attack_input,
    check_n_iter,
    check_norm,
    check_real,
)


def has_gradient(estimator, data):
    """Whether :func:`input_gradient` supports the model (tried on two rows)."""
    sub = data.subset(slice(0, min(2, data.n_samples)))
    try:
        loss_direction(estimator, sub, sub.V, "auto")
    except TypeError:
        return False
    return True


@register_attack("auto")
def auto_attack(
    estimator,
    X,
    y,
    *,
    eps,
    norm="inf",
    n_queries=N_QUERIES,
    n_iter=10,
    n_restarts=2,
    feature_scale="std",
    mutable=None,
    clip=None,
    random_state=None,
):
    """Per-sample worst case of PGD with restarts (where gradients exist) and square.

    Use it where one scorer must attack every candidate of a search: models with
    an input gradient get PGD and the square attack, the others (trees, forests,
    boosting, nearest neighbours) the square attack alone.

    Parameters
    ----------
    estimator : fitted classifier or regressor
        Any model :func:`square_attack` takes.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Clean samples.
    y : array-like of shape (n_samples,)
        True labels or targets.
    eps : float
        Radius of the ball, ``>= 0``, in units of ``feature_scale``.
    norm : {"inf", 2}, default="inf"
        The norm of the ball.
    n_queries : int, default=1000
        Queries of the square attack (see :func:`square_attack`).
    n_iter : int, default=10
        Steps of each PGD run.
    n_restarts : int, default=2
        PGD runs: the first from the clean point, the others from random points.
    feature_scale : "std", float, array-like or mapping, default="std"
        Per-feature unit of ``eps``, as in :func:`fgsm`.
    mutable : array-like of str, int or bool, default=None
        Columns that may move, as in :func:`fgsm`.
    clip : tuple (low, high), default=None
        Valid range of the features, as in :func:`fgsm`.
    random_state : int, RandomState instance or None, default=None
        Seeds the random starts and the search.

    Returns
    -------
    X_adv : ndarray or DataFrame of shape (n_samples, n_features)
        Attacked samples in ``X``'s container.

    See Also
    --------
    pgd, square_attack : The attacks it combines.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skmixup.metrics import robust_accuracy_score
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X, y = X[:150], y[:150]
    >>> linear = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    >>> boosted = HistGradientBoostingClassifier(max_iter=20).fit(X, y)
    >>> scores = [
    ...     robust_accuracy_score(m, X, y, attack="auto", eps=0.2, n_queries=50,
    ...                           random_state=0)
    ...     for m in (linear, boosted)
    ... ]
    >>> all(0 <= s <= 1 for s in scores)
    True
    """
    eps = check_real(eps, "eps")
    norm = check_norm(norm)
    n_queries = check_n_queries(n_queries)
    n_iter = check_n_iter(n_iter)
    if isinstance(n_restarts, bool) or not isinstance(n_restarts, numbers.Integral):
        raise ValueError(f"n_restarts must be an integer >= 0, got {n_restarts!r}.")
    if n_restarts < 0:
        raise ValueError(f"n_restarts must be an integer >= 0, got {n_restarts!r}.")
    data = attack_input(
        estimator, X, y, feature_scale=feature_scale, clip=clip, mutable=mutable
    )
    rng = check_random_state(random_state)
    objective = Objective(estimator, data)
    n = data.n_samples
    best = np.asarray(data.V, dtype=np.float64).copy()
    if n == 0:
        return data.rebuild(best)
    everyone = np.arange(n)
    loss, done = objective(best, everyone)
    if n_restarts and eps > 0 and has_gradient(estimator, data):
        step = 2.5 * eps / n_iter
        for restart in range(n_restarts):
            V_pgd = pgd_values(
                estimator, data, eps, step, n_iter, norm, restart > 0, rng, "auto"
            )
            new_loss, new_done = objective(V_pgd, everyone)
            better = (new_done & ~done) | ((new_done == done) & (new_loss > loss))
            best[better], loss[better], done[better] = (
                V_pgd[better],
                new_loss[better],
                new_done[better],
            )
    rows = np.flatnonzero(~done)
    if len(rows):
        sub = data.subset(rows)
        best[rows] = square_values(
            estimator, sub, eps, norm, n_queries, rng, start=best[rows]
        )
    return data.rebuild(best)
