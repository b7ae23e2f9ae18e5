"""Probability vector-Jacobian products, and meta-estimators through their members.

``proba_forward(model, X, path)`` returns ``(P, vjp)`` with
``vjp(V) = sum_k V[:, k] dP_k/dx`` for models whose probabilities are known
functions of their members': CalibratedClassifierCV (sigmoid, isotonic), soft
VotingClassifier and StackingClassifier, over linear models, MLPClassifier and
pipelines of these; None when some part is unknown (the caller then falls back to
finite differences).
"""

import numpy as np
from scipy.special import expit, logsumexp
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline

from skmixup.metrics._jacobians import as_float, chain, forward_steps
from skmixup.metrics._models import (
    inner_model,
    is_linear,
    is_linear_proba_model,
    linear_scores,
    mlp_backward,
    mlp_layers,
    uses_ovr,
)

# Probability Jacobians (vector-Jacobian products) for meta-estimators
# --------------------------------------------------------------------------------------


def proba_forward(model, X, path):
    """``(P, vjp)`` with ``vjp(V) = sum_k V[:, k] dP_k/dx``, or None if unknown."""
    model = inner_model(model)
    if isinstance(model, Pipeline):
        return _through_pipeline(model, X, path, proba_forward)
    if is_linear_proba_model(model) and not uses_ovr(model):
        W, b = linear_scores(model)
        Xf = as_float(X, path)
        Z = Xf @ W.T.astype(np.float64) + b
        return _logit_proba(Z, lambda dZ: dZ @ W.astype(np.float64))
    if isinstance(model, MLPClassifier):
        coefs, hidden, ZT = mlp_layers(model, as_float(X, path))
        return _logit_proba(
            ZT.T, lambda dZ: mlp_backward(model, coefs, hidden, dZ.copy())
        )
    if isinstance(model, CalibratedClassifierCV):
        return _calibrated_forward(model, X, path)
    if isinstance(model, VotingClassifier) and model.voting == "soft":
        return _voting_forward(model, X, path)
    if isinstance(model, StackingClassifier):
        return _stacking_forward(model, X, path)
    return None


def _through_pipeline(pipeline, X, path, forward):
    """``forward`` of a pipeline's final step, chained back through its steps."""
    X, steps = forward_steps(pipeline.steps[:-1], X, path)
    inner = forward(pipeline.steps[-1][1], X, path)
    if inner is None:
        return None
    out, vjp = inner
    back = chain(steps)
    return out, lambda V: back(vjp(V))


def _logit_proba(Z, back):
    """Softmax (or sigmoid for one column) probabilities of logits, and their VJP."""
    if Z.shape[1] == 1:
        p = expit(Z[:, 0])
        P = np.column_stack([1 - p, p])
        return P, lambda V: back(((V[:, 1] - V[:, 0]) * p * (1 - p))[:, None])
    P = np.exp(Z - logsumexp(Z, axis=1, keepdims=True))
    return P, lambda V: back(P * (V - (P * V).sum(axis=1, keepdims=True)))


def response_forward(model, X, path):
    """``(R, vjp)`` of decision_function (else predict_proba), as calibration uses."""
    model = inner_model(model)
    if isinstance(model, Pipeline):
        return _through_pipeline(model, X, path, response_forward)
    if hasattr(model, "decision_function"):
        if is_linear_proba_model(model) or is_linear(model):
            W, b = linear_scores(model)
            W = W.astype(np.float64)
            R = as_float(X, path) @ W.T + b
            return R, lambda V: V @ W
        return None
    forward = proba_forward(model, X, path)
    if forward is None:
        return None
    P, vjp = forward
    if P.shape[1] == 2:  # binary: the positive class's probability only
        return P[:, 1:], _positive_class_vjp(vjp)
    return P, vjp


def _calibrator_derivative(calibrator, t):
    """``(value, derivative)`` of a fitted sigmoid or isotonic calibrator at t."""
    if isinstance(calibrator, IsotonicRegression):
        xs = np.asarray(calibrator.X_thresholds_, dtype=np.float64)
        ys = np.asarray(calibrator.y_thresholds_, dtype=np.float64)
        value = calibrator.predict(t)
        if len(xs) < 2:
            return value, np.zeros_like(t)
        i = np.clip(np.searchsorted(xs, t, side="right") - 1, 0, len(xs) - 2)
        slope = (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])
        inside = (t >= xs[0]) & (t <= xs[-1])
        return value, np.where(inside, slope, 0.0)
    if hasattr(calibrator, "a_") and hasattr(calibrator, "b_"):
        p = expit(-(calibrator.a_ * t + calibrator.b_))
        return p, -calibrator.a_ * p * (1 - p)
    return None


def _calibrated_forward(model, X, path):
    """CalibratedClassifierCV: the mean over folds of calibrated probabilities."""
    folds = []
    for calibrated in model.calibrated_classifiers_:
        if calibrated.method not in ("sigmoid", "isotonic"):
            return None
        response = response_forward(calibrated.estimator, X, path)
        if response is None:
            return None
        folds.append((calibrated, response))
    n_classes = len(model.classes_)
    parts = []
    total = 0.0
    for calibrated, (R, back) in folds:
        R = np.asarray(R, dtype=np.float64).reshape(len(R), -1)
        classes = np.searchsorted(model.classes_, calibrated.estimator.classes_)
        if n_classes == 2:
            classes = np.array([1])
        p = np.zeros((len(R), n_classes))
        dp = np.zeros((len(R), n_classes))
        for j, (k, calibrator) in enumerate(
            zip(classes, calibrated.calibrators, strict=True)
        ):
            result = _calibrator_derivative(calibrator, R[:, j])
            if result is None:
                return None
            p[:, k], dp[:, k] = result
        if n_classes == 2:
            P = np.column_stack([1 - p[:, 1], p[:, 1]])
        else:
            S = p.sum(axis=1, keepdims=True)
            P = np.divide(p, S, out=np.full_like(p, 1 / n_classes), where=S != 0)
        total = total + P
        parts.append((P, p, dp, classes, back))
    k_folds = len(parts)

    def vjp(V):
        grad = 0.0
        for P, p, dp, classes, back in parts:
            if n_classes == 2:
                dL_dp = (V[:, 1] - V[:, 0])[:, None]
            else:
                S = p.sum(axis=1, keepdims=True)
                safe = np.where(S == 0, 1.0, S)
                dL_dp = (V - (V * P).sum(axis=1, keepdims=True)) / safe
                dL_dp = dL_dp[:, classes]
            dR = dL_dp * dp[:, classes]
            grad = grad + back(dR)
        return grad / k_folds

    return total / k_folds, vjp


def _voting_forward(model, X, path):
    """Soft voting: the weighted mean of the members' probabilities."""
    weights = model._weights_not_none
    weights = np.ones(len(model.estimators_)) if weights is None else weights
    weights = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    members = []
    for name, member in zip(model.named_estimators_, model.estimators_, strict=False):
        forward = proba_forward(member, X, f"{path}/{name}")
        if forward is None:
            return None
        members.append(forward)
    P = sum(w * Pm for w, (Pm, _) in zip(weights, members, strict=True))

    def vjp(V):
        return sum(w * back(V) for w, (_, back) in zip(weights, members, strict=True))

    return P, vjp


def _stacking_forward(model, X, path):
    """Stacking: the final estimator on the members' outputs (and X if passthrough).

    Members stacked through ``predict`` are piecewise constant: then None.
    """
    binary = len(model.classes_) == 2
    blocks = []
    members = [e for e in model.estimators_ if not isinstance(e, str)]
    for name, member, method in zip(
        model.named_estimators_, members, model.stack_method_, strict=False
    ):
        if method == "predict_proba":
            forward = proba_forward(member, X, f"{path}/{name}")
            if forward is not None and binary:
                P, back = forward
                forward = (P[:, 1:], _positive_class_vjp(back))
        elif method == "decision_function":
            forward = response_forward(member, X, f"{path}/{name}")
        else:
            forward = None
        if forward is None:
            return None
        R, back = forward
        blocks.append((np.asarray(R, dtype=np.float64).reshape(len(R), -1), back))
    if model.passthrough:
        blocks.append((as_float(X, path), lambda V: V))
    widths = np.cumsum([0] + [R.shape[1] for R, _ in blocks])
    X_meta = np.hstack([R for R, _ in blocks])
    final = proba_forward(model.final_estimator_, X_meta, f"{path}/final_estimator")
    if final is None:
        return None
    P, back_final = final

    def vjp(V):
        G = back_final(V)
        return sum(
            back(G[:, start:stop])
            for (_, back), start, stop in zip(
                blocks, widths[:-1], widths[1:], strict=True
            )
        )

    return P, vjp


def _positive_class_vjp(back):
    """VJP of the positive-class column of binary probabilities."""
    return lambda V: back(np.column_stack([np.zeros(len(V)), V[:, 0]]))


# --------------------------------------------------------------------------------------
