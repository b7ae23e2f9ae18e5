"""Experiment E3 (paper Fig. 2): exact vs second-order Mixup loss along training."""

import warnings

import numpy as np
from sklearn.datasets import make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skmixup.experiments._common import alpha_beta, mixup_label, notify, number
from skmixup.linear_model import MixupLogisticRegression
from skmixup.theory import approximate_mixup_loss, mixup_loss


def approximation_experiment(
    *,
    mixups=(0.2, 1.0, (5.0, 0.5)),
    iterations=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55),
    n_samples=300,
    noise=0.2,
    random_state=0,
    progress=None,
):
    """Exact and approximate Mixup loss of logistic regression along its training.

    On standardized ``make_moons`` data, :class:`~skmixup.linear_model.
    MixupLogisticRegression` (all pairs, no ridge) is trained on the exact Mixup
    loss by L-BFGS; the ``k``-th iterate is the fit with ``max_iter=k`` from zero
    (L-BFGS is deterministic, so these are the iterates of one run). At each
    iterate the exact Mixup training loss (:func:`~skmixup.theory.mixup_loss`, all
    pairs, quadrature) is compared with its second-order approximation ``L_std +
    R1 + R2`` (:func:`~skmixup.theory.approximate_mixup_loss`; ``R3 = 0`` for a
    linear model). The ``ConvergenceWarning`` of the truncated fits is expected
    and silenced here (only that warning, only from these fits). One more row per
    setting evaluates the same two losses at the ERM optimum (scikit-learn's
    ``LogisticRegression`` without ridge), a more confident model.

    Parameters
    ----------
    mixups : sequence, default=(0.2, 1.0, (5.0, 0.5))
        Mixup settings ``alpha`` (``Beta(alpha, alpha)``) or ``(alpha, beta)``.
    iterations : sequence of int, default=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55)
        L-BFGS iterations at which to evaluate; iterates after convergence are
        reported once, at the iteration where L-BFGS stopped.
    n_samples : int, default=300
        Size of the moons training set.
    noise : float, default=0.2
        Noise of ``make_moons``.
    random_state : int, default=0
        Seeds the data.
    progress : callable, default=None
        Called with a one-line message per Mixup setting.

    Returns
    -------
    rows : list of dict
        One row per Mixup setting and iterate, then one at the ERM optimum:
        ``mixup``, ``training`` (``"Mixup"`` or ``"ERM optimum"``), ``iteration``,
        ``coef_norm`` (``||w||_2``), ``exact``, ``approximate`` (``L_std + R1 +
        R2``), ``standard``, ``R1``, ``R2`` and ``relative_error``
        (``(approximate - exact) / exact``).

    Examples
    --------
    >>> from skmixup.experiments import approximation_experiment
    >>> rows = approximation_experiment(mixups=(1.0,), iterations=(0, 2), n_samples=60)
    >>> [(row["training"], row["iteration"]) for row in rows][:2]
    [('Mixup', 0), ('Mixup', 2)]
    >>> abs(rows[0]["relative_error"]) < 1e-12  # zero logits: exact
    True
    """
    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=random_state)
    X = StandardScaler().fit_transform(X)
    erm = LogisticRegression(C=np.inf, max_iter=1000).fit(X, y)
    rows = []
    for mixup in mixups:
        alpha, beta = alpha_beta(mixup)
        label = mixup_label(mixup)
        seen = set()
        for k in sorted(iterations):
            model = MixupLogisticRegression(
                mixup_alpha=alpha, mixup_beta=beta, C=np.inf, n_partners="all"
            )
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore",
                    message="MixupLogisticRegression (with max_iter=0|did not conv)",
                    category=ConvergenceWarning,
                )
                model.set_params(max_iter=k).fit(X, y)
            it = k if k == 0 else int(model.n_iter_[0])
            if it in seen:  # converged before k
                continue
            seen.add(it)
            rows.append(_row(model, X, y, mixup, "Mixup", it))
        rows.append(_row(erm, X, y, mixup, "ERM optimum", int(erm.n_iter_[0])))
        notify(
            progress,
            f"approximation Mixup {label}: relative error "
            + ", ".join(
                (
                    f"iteration {r['iteration']}"
                    if r["training"] == "Mixup"
                    else "ERM optimum"
                )
                + f": {number(r['relative_error'], '+.2%')}"
                for r in rows
                if r["mixup"] == label
            ),
        )
    return rows


def _row(model, X, y, mixup, training, iteration):
    alpha, beta = alpha_beta(mixup)
    exact = mixup_loss(model, X, y, mixup_alpha=alpha, mixup_beta=beta)
    approx = approximate_mixup_loss(model, X, y, mixup_alpha=alpha, mixup_beta=beta)
    return {
        "mixup": mixup_label(mixup),
        "training": training,
        "iteration": iteration,
        "coef_norm": float(np.linalg.norm(model.coef_)),
        "exact": exact,
        "approximate": approx.total,
        "standard": approx.standard,
        "R1": approx.R1,
        "R2": approx.R2,
        "relative_error": (approx.total - exact) / exact,
    }
