"""
==================================================
Robust accuracy against the attack radius (FGSM)
==================================================

How much accuracy does a classifier keep when every test sample is moved by a small
adversarial perturbation? :class:`~skmixup.metrics.RobustnessCurveDisplay` plots the
robust accuracy (plain accuracy on the attacked inputs, over all samples) as a
function of the radius ``eps`` of an l_inf FGSM attack.

We compare, on the breast cancer data set, a
:class:`~sklearn.linear_model.LogisticRegression`, a
:class:`~skmixup.linear_model.MixupLogisticRegression` (both fitted on standardized
features) and a :class:`~sklearn.pipeline.Pipeline` of
:class:`~sklearn.preprocessing.StandardScaler` and logistic regression fitted on the
raw features. By default ``eps`` is measured in standard deviations of each feature
of the attacked data; here we fix the unit to the *training* standard deviation for
all three: ``feature_scale=scaler.scale_`` for the pipeline (whose gradient is taken
with respect to the raw input), and ``feature_scale=1`` (raw units of already
standardized data) for the two models fitted on standardized data. The pipeline's
curve therefore matches the plain logistic regression's.
"""

# %%
# Data and models
# ---------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixup.linear_model import MixupLogisticRegression
from skmixup.metrics import RobustnessCurveDisplay, robust_accuracy_score

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
Z_train, Z_test = scaler.transform(X_train), scaler.transform(X_test)

logistic = LogisticRegression().fit(Z_train, y_train)
mixup = MixupLogisticRegression(mixup_alpha=1.0, random_state=0).fit(Z_train, y_train)
pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)

# %%
# Robustness curves
# -----------------
# FGSM needs one gradient per model: the display reuses it for every ``eps``.
eps = np.linspace(0.0, 0.3, 7)
fig, ax = plt.subplots()
for name, model, X_eval, params in [
    ("LogisticRegression", logistic, Z_test, {"feature_scale": 1}),
    ("MixupLogisticRegression", mixup, Z_test, {"feature_scale": 1}),
    (
        "StandardScaler + LogisticRegression (raw X)",
        pipeline,
        X_test,
        {"feature_scale": scaler.scale_},
    ),
]:
    RobustnessCurveDisplay.from_estimator(
        model, X_eval, y_test, eps=eps, attack_params=params, ax=ax, name=name
    )
ax.set_xlabel("eps (l_inf FGSM, in training standard deviations)")
ax.set_title("Breast cancer, test set")
plt.show()

# %%
# FGSM is exact for binary linear models
# --------------------------------------
# For a binary linear classifier a sample stays correct iff its margin exceeds
# ``eps`` times the l1 norm of ``w * feature_scale``; FGSM finds that worst case, so
# ``attack="exact"`` gives the same numbers.
for name, model in [("logistic", logistic), ("mixup", mixup)]:
    kw = {"eps": 0.1, "feature_scale": 1}
    fgsm_acc = robust_accuracy_score(model, Z_test, y_test, **kw)
    exact_acc = robust_accuracy_score(model, Z_test, y_test, attack="exact", **kw)
    print(f"{name:>8}: FGSM {fgsm_acc:.3f}, exact {exact_acc:.3f}")
