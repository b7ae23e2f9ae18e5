"""
=========================================================================
Robustness on a real mixed-type table: tuning Mixup on penguins
=========================================================================

A tabular data set rarely holds only clean numbers. The Palmer penguins data
(344 penguins of three species, shipped offline by the ``palmerpenguins`` package,
CC0) has four numeric measurements with missing values, two categorical columns
(``island``, and ``sex`` with missing values) and a string target. We put it in the
usual preprocessing pipeline,

``ColumnTransformer([numeric: SimpleImputer + StandardScaler,
categorical: SimpleImputer + OneHotEncoder])`` followed by
:class:`~skmixup.linear_model.MixupLogisticRegression`,

and tune ``mixup_alpha`` with :class:`~sklearn.model_selection.GridSearchCV` on the
clean and the robust accuracy together.

The threat model (see the user guide): the attacker moves the numeric input columns
only, each by at most ``eps`` of its standard deviation (so that one ``eps`` means
the same on bill length in millimetres and on body mass in grams); categorical
columns are immutable and missing entries stay missing.
"""

# %%
# Data
# ----
import matplotlib.pyplot as plt
import numpy as np
from palmerpenguins import load_penguins
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skmixup.linear_model import MixupLogisticRegression
from skmixup.metrics import (
    RobustnessCurveDisplay,
    fgsm,
    gradient_methods,
    make_adversarial_scorer,
    robust_accuracy_score,
)

penguins = load_penguins()
y = penguins.pop("species").to_numpy()
X = penguins.drop(columns="year")
numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
categorical = ["island", "sex"]
print(X.dtypes)
print("missing values per column:", X.isna().sum().to_dict())


def make_model(clf):
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    return Pipeline([("pre", pre), ("clf", clf)])


# %%
# The threat model, in a picture
# ------------------------------
# An attacked penguin stays on its island and keeps its sex; its measurements move
# inside a box whose half-width is ``eps`` standard deviations of each column. In
# raw units the box is about 5.5 mm wide in bill length and 800 g in body mass: a
# raw ``eps`` would be no attack on one axis and a huge one on the other. FGSM goes
# to the corner of the box that increases the loss most.
model = make_model(LogisticRegression()).fit(X, y)
eps = 0.5
X_adv = fgsm(model, X, y, eps=eps)
std = X[numeric].std(ddof=0)
fig, ax = plt.subplots(figsize=(6, 4.5))
for species, color in zip(np.unique(y), ["C0", "C1", "C2"], strict=True):
    mask = y == species
    ax.scatter(
        X.loc[mask, "bill_length_mm"],
        X.loc[mask, "body_mass_g"],
        s=8,
        color=color,
        alpha=0.4,
        label=species,
    )
for i in [20, 160, 230, 300]:
    x0, m0 = X.loc[i, "bill_length_mm"], X.loc[i, "body_mass_g"]
    dx, dm = eps * std["bill_length_mm"], eps * std["body_mass_g"]
    ax.add_patch(
        plt.Rectangle(
            (x0 - dx, m0 - dm), 2 * dx, 2 * dm, fill=False, color="k", linewidth=1
        )
    )
    ax.annotate(
        "",
        xy=(X_adv.loc[i, "bill_length_mm"], X_adv.loc[i, "body_mass_g"]),
        xytext=(x0, m0),
        arrowprops={"arrowstyle": "->", "color": "k"},
    )
    ax.text(
        x0 + dx,
        m0 + dm,
        f" {X.loc[i, 'island']}, {X.loc[i, 'sex']}: fixed",
        fontsize=7,
        va="bottom",
    )
ax.set_xlabel("bill_length_mm (movable)")
ax.set_ylabel("body_mass_g (movable)")
ax.set_title(f"l_inf ball of eps={eps} standard deviations, FGSM step")
ax.legend(loc="lower right")
plt.show()

# Categorical columns and missing entries are bit-identical after the attack.
assert X_adv[categorical].equals(X[categorical])
assert X_adv[numeric].isna().equals(X[numeric].isna())
print(gradient_methods(model, X, y))

# %%
# Tuning ``mixup_alpha`` on clean and robust accuracy together
# ------------------------------------------------------------
# The robust scorer measures ``eps`` in standard deviations of each scored fold,
# the same unit for every candidate.
robust = make_adversarial_scorer(eps=eps)
print(robust)
alphas = [0.1, 0.5, 1.0, 2.0, 5.0]
search = GridSearchCV(
    make_model(MixupLogisticRegression(random_state=0)),
    {"clf__mixup_alpha": alphas},
    scoring={"clean": "accuracy", "robust": robust},
    refit="robust",
    cv=StratifiedKFold(5, shuffle=True, random_state=0),
    error_score="raise",
)
search.fit(X, y)
results = search.cv_results_
for alpha, clean, rob in zip(
    alphas, results["mean_test_clean"], results["mean_test_robust"], strict=True
):
    print(f"mixup_alpha={alpha:<4}  clean {clean:.3f}  robust {rob:.3f}")
print("refit on robust accuracy:", search.best_params_)

fig, ax = plt.subplots()
ax.plot(alphas, results["mean_test_clean"], marker="o", label="clean")
ax.plot(alphas, results["mean_test_robust"], marker="s", label=f"FGSM eps={eps} std")
ax.set_xscale("log")
ax.set_xlabel("mixup_alpha")
ax.set_ylabel("mean CV accuracy")
ax.legend()
plt.show()

# %%
# Robustness curves on held-out penguins
# --------------------------------------
# For a multiclass linear model behind this (affine) preprocessing the exact
# robust accuracy is known: a penguin stays correct iff, for every other species
# ``k``, its score margin exceeds the largest change the box allows in
# ``(w_k - w_y)^T x``. FGSM and PGD can only be weaker.
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.4, stratify=y, random_state=0
)
best_alpha = search.best_params_["clf__mixup_alpha"]
best = make_model(MixupLogisticRegression(mixup_alpha=best_alpha, random_state=0))
best.fit(X_train, y_train)
erm = make_model(LogisticRegression()).fit(X_train, y_train)
fig, ax = plt.subplots()
grid = np.linspace(0.0, 1.0, 6)
for name, clf in [("ERM (LogisticRegression)", erm), ("Mixup (refit)", best)]:
    RobustnessCurveDisplay.from_estimator(
        clf, X_test, y_test, eps=grid, attack="exact", ax=ax, name=name
    )
    exact = robust_accuracy_score(clf, X_test, y_test, attack="exact", eps=eps)
    fgsm_acc = robust_accuracy_score(clf, X_test, y_test, eps=eps)
    pgd_acc = robust_accuracy_score(
        clf, X_test, y_test, attack="pgd", eps=eps, random_state=0
    )
    print(f"{name}: exact {exact:.3f}, FGSM {fgsm_acc:.3f}, PGD {pgd_acc:.3f}")
ax.set_title("Penguins, test set")
plt.show()
