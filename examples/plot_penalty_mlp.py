"""
===================================================
ERM, Mixup and the explicit Mixup penalty on an MLP
===================================================

Zhang et al. (ICLR 2021, Lemma 3.1) show that the Mixup loss of a network ``f`` is,
to second order in ``1 - lambda``, the standard loss plus three terms: ``R1`` and
``R3`` act on the residuals ``p - y`` (``R3`` through the curvature of ``f`` in
its input, zero for ReLU networks), and ``R2`` penalises the input gradient of the
logits in the directions in which the training data vary. The paper reads Mixup
through this penalty.

:class:`~skmixup.neural_network.MixupRegularizedMLPClassifier` trains on that
penalty directly, without mixing inputs. We compare it with the same network
trained by empirical risk minimisation (ERM, ``mixup_prob=0``) and by Mixup
(:class:`~skmixup.neural_network.MixupMLPClassifier`) on breast_cancer: clean
test accuracy, the gap between test and training log-loss, and accuracy under
FGSM attacks of growing size (:class:`skmixup.metrics.RobustnessCurveDisplay`).
A tanh network is used so that all three terms are active. One seed, reported
as measured: the penalty is the second-order part of Mixup, not Mixup itself,
and the two need not behave alike.
"""

# %%
# Data and models
# ---------------
import warnings

import torch
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skmixup.neural_network import MixupMLPClassifier, MixupRegularizedMLPClassifier
from skmixup.theory import approximate_mixup_loss, mixup_loss

# A network this small trains fastest on one CPU thread: with PyTorch's default of
# one thread per core this script took 45.2 s, against 15.5 s with one thread, on a
# 2-core machine at load average 9 (about 7 s of CPU time).
torch.set_num_threads(1)

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

# no weight decay and a fixed budget of epochs, so that ERM can over-fit
common = dict(
    hidden_layer_sizes=(32,),
    activation="tanh",
    alpha=0.0,
    max_iter=40,
    batch_size=64,
    learning_rate_init=5e-3,
    random_state=0,
)
models = {
    "ERM": MixupMLPClassifier(mixup_prob=0.0, **common),
    "Mixup": MixupMLPClassifier(mixup_alpha=1.0, **common),
    "penalty": MixupRegularizedMLPClassifier(mixup_alpha=1.0, **common),
}
for model in models.values():
    with warnings.catch_warnings():  # the fixed budget is intended
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)

# %%
# Accuracy and generalization gap
# -------------------------------
# The gap is the test log-loss minus the training log-loss, both on clean data.
for name, model in models.items():
    train_loss = log_loss(y_train, model.predict_proba(X_train))
    test_loss = log_loss(y_test, model.predict_proba(X_test))
    acc = accuracy_score(y_test, model.predict(X_test))
    print(
        f"{name:>7}: test accuracy {acc:.3f}, train log-loss {train_loss:.3f}, "
        f"test log-loss {test_loss:.3f}, gap {test_loss - train_loss:+.3f}"
    )

# %%
# The terms at the end of training
# --------------------------------
# :func:`skmixup.theory.approximate_mixup_loss` evaluates ``R1``, ``R2`` and
# ``R3`` of any of these networks over all training partners (exactly, from the
# training mean and covariance), and :func:`skmixup.theory.mixup_loss` the exact
# Mixup loss they approximate (here with 10 sampled partners per sample).
for name, model in models.items():
    terms = approximate_mixup_loss(model, X_train, y_train, mixup_alpha=1.0)
    exact = mixup_loss(
        model, X_train, y_train, mixup_alpha=1.0, n_partners=10, random_state=0
    )
    print(
        f"{name:>7}: standard {terms.standard:.3f}  R1 {terms.R1:+.4f}  "
        f"R2 {terms.R2:.4f}  R3 {terms.R3:+.4f}  approx {terms.total:.3f}  "
        f"exact Mixup {exact:.3f}"
    )

# %%
# Robustness to FGSM
# ------------------
# ``eps`` is in training standard deviations (the data are standardized).
import matplotlib.pyplot as plt

from skmixup.metrics import RobustnessCurveDisplay

eps_grid = [0.0, 0.05, 0.1, 0.2]

fig, ax = plt.subplots(figsize=(5, 3.5))
curves = {
    name: RobustnessCurveDisplay.from_estimator(
        m, X_test, y_test, eps=eps_grid, ax=ax, name=name
    )
    for name, m in models.items()
}
print("eps      " + "  ".join(f"{eps:5.2f}" for eps in eps_grid))
for name, display in curves.items():
    print(f"{name:<8} " + "  ".join(f"{a:5.3f}" for a in display.accuracy))
ax.set_title("tanh MLP on breast_cancer")
fig.tight_layout()
plt.show()
