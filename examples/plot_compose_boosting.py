"""
=======================================================================
Mixup for gradient boosting: a mixed table and a regression table
=======================================================================

Mixup trains on convex combinations of pairs of rows. For a model that
minimises a weighted log-loss, the soft label of a mixed row is exactly two
weighted copies of it (label ``y_i`` with weight ``lam``, label ``y_j`` with
weight ``1 - lam``): :class:`~skmixup.compose.MixupClassifier` fits any
scikit-learn classifier that takes ``sample_weight`` that way, and
:class:`~skmixup.compose.MixupRegressor` fits a regressor on mixed inputs and
mixed targets, with partners drawn uniformly (Mixup) or by label distance
(C-Mixup).

We wrap :class:`~sklearn.ensemble.HistGradientBoostingClassifier` on the Palmer
penguins table (numeric columns with missing values, categorical columns, given
to the booster directly with its native categorical support) and
:class:`~sklearn.ensemble.HistGradientBoostingRegressor` on scikit-learn's
diabetes data, and compare cross-validated scores with the plain estimators.
The numbers are what this run measures: on small tables Mixup is a regulariser
that may or may not pay off.
"""

# %%
# A mixed table, given directly to the booster
# --------------------------------------------
# The task: predict a penguin's sex from its species, island and measurements.
# ``species`` and ``island`` are categorical columns; the booster splits on them
# natively. In a mixed row a numeric entry is ``lam * x_i + (1 - lam) * x_j``; a
# categorical entry takes the value of the row with the larger weight, and a
# missing numeric entry on either side gives that row's value.
import matplotlib.pyplot as plt
import numpy as np
from palmerpenguins import load_penguins
from sklearn.datasets import load_diabetes
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from threadpoolctl import threadpool_limits

from skmixup.compose import MixupClassifier, MixupRegressor

# The tables are small: one OpenMP thread per booster is faster than two that
# spin-wait for each other on a busy machine.
threadpool_limits(1)

penguins = load_penguins().dropna(subset=["sex"])
y = penguins.pop("sex").to_numpy()
X = penguins.drop(columns="year")
X[["species", "island"]] = X[["species", "island"]].astype("category")
print(X.dtypes.to_dict())

hgb = HistGradientBoostingClassifier(
    max_iter=30, categorical_features="from_dtype", random_state=0
)
models = {
    "HGB": hgb,
    "HGB in MixupClassifier": MixupClassifier(hgb, mixup_alpha=0.4, random_state=0),
}
cv = StratifiedKFold(3, shuffle=True, random_state=0)
scores = {}
for name, model in models.items():
    res = cross_validate(model, X, y, cv=cv, scoring=["accuracy", "neg_log_loss"])
    scores[name] = (res["test_accuracy"].mean(), -res["test_neg_log_loss"].mean())
    print(f"{name:>24}: accuracy {scores[name][0]:.3f}, log-loss {scores[name][1]:.3f}")

# %%
# A regression table: Mixup and C-Mixup
# -------------------------------------
# Mixing two patients' targets is a strong assumption when their targets are far
# apart; C-Mixup draws each partner with probability proportional to a Gaussian
# kernel of the target distance (bandwidth by Silverman's rule).
Xd, yd = load_diabetes(return_X_y=True)
hgb_r = HistGradientBoostingRegressor(max_iter=30, learning_rate=0.05, random_state=0)
regressors = {
    "HGB": hgb_r,
    "Mixup": MixupRegressor(hgb_r, random_state=0),
    "C-Mixup": MixupRegressor(hgb_r, partners="label_kernel", random_state=0),
}
mse = {}
for name, model in regressors.items():
    res = cross_validate(
        model,
        Xd,
        yd,
        cv=KFold(3, shuffle=True, random_state=0),
        scoring="neg_mean_squared_error",
        return_train_score=True,
    )
    mse[name] = (-res["train_score"].mean(), -res["test_score"].mean())
    print(f"{name:>8}: train MSE {mse[name][0]:7.0f}, test MSE {mse[name][1]:7.0f}")

# %%
# The scores side by side
# -----------------------
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
names = list(scores)
ax1.bar(names, [scores[n][1] for n in names], color=["C0", "C1"])
ax1.set_ylabel("cross-validated log-loss")
ax1.set_title("penguins: sex (lower is better)")
x = np.arange(len(mse))
ax2.bar(x - 0.2, [v[0] for v in mse.values()], 0.4, label="train")
ax2.bar(x + 0.2, [v[1] for v in mse.values()], 0.4, label="test")
ax2.set_xticks(x, list(mse))
ax2.set_ylabel("mean squared error")
ax2.set_title("diabetes")
ax2.legend()
fig.tight_layout()
plt.show()
