"""Models as layer lists for certification, and the affine map from raw inputs.

A certified model is written as ``z_0 = W_0 x + b_0``, ``a_j = f_j(z_j)``,
``z_{j+1} = W_{j+1} a_j + b_{j+1}``, with the logits ``z_L``; ``f_j`` is one of
ReLU / LeakyReLU (``max(z, slope * z)``, ``0 <= slope <= 1``), tanh, the logistic
sigmoid or the identity. A linear model is the case ``L = 0``. A binary model with
one output logit ``z`` is written with the two logits ``(0, z)`` (class 1 iff
``z > 0``, as ``predict`` decides).

Pipelines: every transformer before the model must be affine on the movable
columns (scalers, PCA, SimpleImputer, ColumnTransformer, encoders as immutable
inputs). For sample ``i`` the model input is then exactly
``x_model = x_model(x_i) + J_i delta`` with ``J_i`` the Jacobian of the
transformers (per sample: an imputed entry does not depend on its raw value),
computed column by column from the registry's vector-Jacobian products
(:mod:`._jacobians`).
"""

from dataclasses import dataclass

import numpy as np
from sklearn.neural_network import MLPClassifier

from skmixup.metrics._jacobians import as_float, chain, forward_steps
from skmixup.metrics._models import (
    _torch_parts,
    is_linear,
    is_linear_proba_model,
    linear_scores,
    skorch_net_of,
)
from skmixup.utils._torch import uncompiled

PIECEWISE_LINEAR = ("relu", "identity")


@dataclass
class Network:
    """Layers ``(W, b)`` (W of shape (out, in), float64) and hidden activations.

    ``activations[j]`` is ``(kind, slope)`` with kind in ``"relu"`` (slope: the
    negative-side slope of a LeakyReLU, 0 for ReLU), ``"tanh"``, ``"sigmoid"``,
    ``"identity"``. ``dtype`` is the precision the model computes in.
    """

    weights: list
    activations: list
    dtype: type

    @property
    def piecewise_linear(self):
        return all(kind in PIECEWISE_LINEAR for kind, _ in self.activations)


def _two_logits(W, b):
    """One binary logit ``z`` as the two logits ``(0, z)``."""
    if W.shape[0] != 1:
        return W, b
    return np.vstack([np.zeros_like(W), W]), np.concatenate([[0.0], b])


def linear_network(model):
    W, b = linear_scores(model)
    dtype = W.dtype.type
    W, b = _two_logits(W.astype(np.float64), b.astype(np.float64))
    return Network([(W, b)], [], dtype)


_MLP_ACTIVATIONS = {
    "relu": ("relu", 0.0),
    "identity": ("identity", 0.0),
    "tanh": ("tanh", 0.0),
    "logistic": ("sigmoid", 0.0),
}


def mlp_network(model):
    if model.n_outputs_ != 1 and model.out_activation_ != "softmax":
        raise TypeError(
            "certify supports binary and multiclass MLPClassifier, not multilabel "
            "targets."
        )
    if model.activation not in _MLP_ACTIVATIONS:
        raise TypeError(f"Unknown MLPClassifier activation {model.activation!r}.")
    dtype = np.asarray(model.coefs_[0]).dtype.type
    weights = [
        (np.asarray(W, dtype=np.float64).T, np.asarray(b, dtype=np.float64))
        for W, b in zip(model.coefs_, model.intercepts_, strict=True)
    ]
    weights[-1] = _two_logits(*weights[-1])
    act = _MLP_ACTIVATIONS[model.activation]
    return Network(weights, [act] * (len(weights) - 1), dtype)


def _flat_children(module, nn):
    if isinstance(module, nn.Sequential):
        for child in module:
            yield from _flat_children(child, nn)
    else:
        yield module


def torch_network(net):
    """Layers of a skorch net whose module is a Sequential (or skmixup's MLPModule)."""
    from torch import nn

    module, kind = _torch_parts(net)
    from skmixup.neural_network._module import MLPModule

    if isinstance(module, MLPModule):
        module = module.layers
    name = type(module).__name__
    if not isinstance(module, nn.Sequential):
        raise TypeError(
            f"certify supports skorch modules that are a torch.nn.Sequential of "
            f"Linear and ReLU/LeakyReLU/Tanh/Sigmoid/Identity layers (or skmixup's "
            f"MLPModule); got {name}. Wrap the layers in an nn.Sequential."
        )
    weights, activations, pending = [], [], None
    children = list(_flat_children(module, nn))
    dtype = np.float32
    for position, child in enumerate(children):
        last = position == len(children) - 1
        if isinstance(child, nn.Linear):
            W = child.weight.detach().cpu().double().numpy()
            b = (
                np.zeros(W.shape[0])
                if child.bias is None
                else child.bias.detach().cpu().double().numpy()
            )
            dtype = child.weight.detach().cpu().numpy().dtype.type
            if weights and pending is None:  # two Linears in a row
                activations.append(("identity", 0.0))
            weights.append((W, b))
            pending = None
            continue
        if isinstance(child, (nn.Dropout, nn.Identity)):
            continue  # identity at prediction time
        if (
            last
            and isinstance(child, (nn.Softmax, nn.LogSoftmax))
            and kind != ("binary_logit")
        ):
            continue  # increasing: the arg max is unchanged
        activation = _torch_activation(child, nn)
        if activation is None or not weights or pending is not None:
            raise TypeError(
                f"certify cannot bound the layer {type(child).__name__} at position "
                f"{position} of {name}: supported are Linear layers separated by one "
                "ReLU, LeakyReLU (slope in [0, 1]), Tanh, Sigmoid or Identity, and a "
                "final Softmax/LogSoftmax."
            )
        if last:
            raise TypeError(
                f"certify needs {name} to end with a Linear layer (logits) or a "
                f"Softmax, not {type(child).__name__}."
            )
        activations.append(activation)
        pending = activation
    if not weights:
        raise TypeError(f"{name} has no Linear layer to certify.")
    if pending is not None:
        raise TypeError(f"certify needs {name} to end with a Linear layer.")
    if kind == "binary_logit":
        threshold = getattr(net, "threshold", 0.5)
        if weights[-1][0].shape[0] != 1 or threshold != 0.5:
            raise TypeError(
                "certify supports BCEWithLogitsLoss nets with one output and "
                "threshold=0.5."
            )
        weights[-1] = _two_logits(*weights[-1])
    return Network(weights, activations, dtype)


def _torch_activation(child, nn):
    if isinstance(child, nn.ReLU):
        return ("relu", 0.0)
    if isinstance(child, nn.LeakyReLU):
        slope = float(child.negative_slope)
        if not 0.0 <= slope <= 1.0:
            return None
        return ("relu", slope)
    if isinstance(child, nn.Tanh):
        return ("tanh", 0.0)
    if isinstance(child, nn.Sigmoid):
        return ("sigmoid", 0.0)
    return None


def network_of(model):
    """The :class:`Network` of a final model, or None if it is not one we know."""
    if isinstance(model, MLPClassifier):
        return mlp_network(model)
    net = skorch_net_of(model)
    if net is not None:
        return torch_network(net)
    if (is_linear_proba_model(model) or is_linear(model)) and hasattr(
        model, "decision_function"
    ):
        return linear_network(model)
    return None


# --------------------------------------------------------------------------------------
# The affine input map of a pipeline
# --------------------------------------------------------------------------------------


def split_pipeline(estimator):
    """``(transformer steps, final model)``; no steps for a bare model."""
    if hasattr(estimator, "steps"):
        return estimator.steps[:-1], uncompiled(estimator.steps[-1][1])
    return [], estimator


def affine_input(estimator, data, columns, what="certify"):
    """Model inputs at the clean samples and their Jacobian in the moving columns.

    Returns ``(Xm, J)``: ``Xm`` of shape (n, m) and ``J`` of shape (n, m, c) with
    ``c = len(columns)`` (None when there are no transformers: ``J`` is the
    identity restricted to ``columns``). A transformer that is not affine raises a
    TypeError naming its path.
    """
    steps, _ = split_pipeline(estimator)
    name = type(estimator).__name__
    X = data.model_input(data.V)
    if not steps:
        return as_float(X, name), None
    Xt, done = forward_steps(steps, X, name)
    for (step_name, _), step in zip(steps, done, strict=True):
        if not step.affine:
            raise TypeError(
                f"{what} needs affine pipeline steps on the movable columns; "
                f"{name}/{step_name} is not (its Jacobian depends on the input)."
            )
    Xm = as_float(Xt, name)
    n, m = Xm.shape
    J = np.empty((n, m, len(columns)))
    vjp = chain(done)
    for j in range(m):
        G = np.zeros((n, m))
        G[:, j] = 1.0
        J[:, j, :] = np.asarray(vjp(G), dtype=np.float64)[:, columns]
    return Xm, J
