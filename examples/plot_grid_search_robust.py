"""
==============================================================
Tuning the Mixup strength for clean and robust accuracy
==============================================================

:func:`~skmixup.metrics.make_adversarial_scorer` turns an attack into a scorer, so
:class:`~sklearn.model_selection.GridSearchCV` can report the clean and the robust
accuracy of every candidate together and refit on the robust one. Here we tune
``mixup_alpha`` of :class:`~skmixup.linear_model.MixupLogisticRegression` (and its
inverse regularization ``C``) on a small noisy synthetic problem, with an l_inf FGSM
attack whose radius is a fraction of each feature's standard deviation.
"""

# %%
# Data and scorers
# ----------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from skmixup.linear_model import MixupLogisticRegression
from skmixup.metrics import make_adversarial_scorer

X, y = make_classification(
    n_samples=300, n_features=10, n_informative=4, class_sep=1.5, random_state=0
)
X = StandardScaler().fit_transform(X)
robust = make_adversarial_scorer(attack="fgsm", eps=0.1)
print(robust)

# %%
# Grid search on clean and robust accuracy, refit on robust
# ---------------------------------------------------------
alphas = [0.1, 0.5, 1.0, 2.0, 4.0]
search = GridSearchCV(
    MixupLogisticRegression(random_state=0),
    {"mixup_alpha": alphas, "C": [0.1, 10.0]},
    scoring={"clean": "accuracy", "robust": robust},
    refit="robust",
    cv=3,
)
search.fit(X, y)
print("best parameters (robust accuracy):", search.best_params_)

results = search.cv_results_
for params, clean, rob in zip(
    results["params"],
    results["mean_test_clean"],
    results["mean_test_robust"],
    strict=True,
):
    print(f"{params}  clean {clean:.3f}  robust {rob:.3f}")

# %%
# Clean and robust accuracy against ``mixup_alpha``
# -------------------------------------------------
fig, ax = plt.subplots()
for C, style in [(0.1, "--"), (10.0, "-")]:
    mask = np.array([p["C"] == C for p in results["params"]])
    ax.plot(
        alphas,
        results["mean_test_clean"][mask],
        style,
        marker="o",
        label=f"clean, C={C}",
    )
    ax.plot(
        alphas,
        results["mean_test_robust"][mask],
        style,
        marker="s",
        label=f"robust (FGSM eps=0.1), C={C}",
    )
ax.set_xscale("log")
ax.set_xlabel("mixup_alpha")
ax.set_ylabel("mean CV accuracy")
ax.legend()
plt.show()
