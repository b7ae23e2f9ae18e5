"""Persistence of the torch estimators without pickle's code execution (skops).

``pickle`` and ``copy`` reach an object through ``__reduce_ex__``; skops reads
``__getstate__`` and refuses what it cannot rebuild without running code (torch
tensors are such objects). The estimators therefore answer the two differently:

* ``__reduce_ex__`` returns the pickle state (skorch's, with the tensors in
  torch's format), so that pickle, joblib and ``copy.deepcopy`` behave as in
  skorch;
* ``__getstate__`` returns a *portable* state made of parameters, numpy arrays
  and plain lists and dicts: weights, optimizer state, history and generator
  states. Loading it rebuilds the network from the parameters and copies the
  arrays in; nothing is unpickled.

A skops file then holds no type besides the estimator's own class and the types
named in its parameters (module, criterion, optimizer classes, ...), which skops
imports but never calls while loading.
"""

import json

import numpy as np
import torch
from skorch.history import History

__all__ = [
    "PORTABLE_KEY",
    "fitted_state",
    "from_portable",
    "load_fitted_state",
    "reduce_with",
    "to_portable",
]

PORTABLE_KEY = "__skmixup_portable__"
_TENSOR = "__tensor__"
_PAIRS = "__pairs__"


def new_instance(cls):
    """``cls.__new__(cls)``: the constructor that ``__reduce_ex__`` names."""
    return cls.__new__(cls)


def reduce_with(obj, pickle_state):
    """``__reduce_ex__`` output restoring ``obj`` from ``pickle_state``."""
    return (new_instance, (type(obj),), pickle_state)


def to_portable(obj):
    """Nested dicts, lists, tensors and scalars as skops-safe values.

    Tensors become ``{"__tensor__": ndarray}`` (on the CPU); dicts with keys that
    are not strings become ``{"__pairs__": [[key, value], ...]}``.
    """
    if isinstance(obj, torch.Tensor):
        return {_TENSOR: obj.detach().cpu().numpy().copy()}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: to_portable(v) for k, v in obj.items()}
        return {_PAIRS: [[k, to_portable(v)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [to_portable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def from_portable(obj):
    """Inverse of :func:`to_portable` (tuples come back as lists)."""
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR}:
            return torch.from_numpy(np.array(obj[_TENSOR]))
        if set(obj) == {_PAIRS}:
            return {_key(k): from_portable(v) for k, v in obj[_PAIRS]}
        return {k: from_portable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_portable(v) for v in obj]
    return obj


def _key(key):
    return tuple(key) if isinstance(key, list) else key


def _json_safe(obj):
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    raise TypeError(f"history value of type {type(value).__name__} cannot be saved")


def _rng_state(rng):
    kind, keys, pos, has_gauss, gauss = rng.get_state()
    return [kind, keys, int(pos), int(has_gauss), float(gauss)]


def fitted_state(net, generators):
    """The trained state of an initialised skorch net, as portable values."""
    state = {
        "modules": {
            name: to_portable(getattr(net, name + "_").state_dict())
            for name in net._modules
        },
        "optimizers": {  # none after trim_for_prediction
            name: to_portable(getattr(net, name + "_").state_dict())
            for name in net._optimizers
            if getattr(net, name + "_", None) is not None
        },
        "history": _json_safe(net.history.to_list()),
        "generators": {
            name: getattr(net, name).get_state().numpy()
            for name in generators
            if hasattr(net, name)
        },
        "rngs": {
            name: _rng_state(getattr(net, name))
            for name in ("_mixup_rng_", "_seed_rng_")
            if hasattr(net, name)
        },
    }
    for name in ("classes_inferred_", "n_features_in_"):
        if hasattr(net, name):
            state[name] = getattr(net, name)
    return state


def load_fitted_state(net, state):
    """Copy a :func:`fitted_state` into an initialised net (on the CPU)."""
    for name, values in state["modules"].items():
        getattr(net, name + "_").load_state_dict(from_portable(values))
    for name, values in state["optimizers"].items():
        optimizer_state = from_portable(values)
        getattr(net, name + "_").load_state_dict(optimizer_state)
    net.history_ = History(state["history"])
    for name, values in state["generators"].items():
        generator = torch.Generator()
        generator.set_state(torch.from_numpy(np.array(values, dtype=np.uint8)))
        setattr(net, name, generator)
    for name, (kind, keys, pos, has_gauss, gauss) in state["rngs"].items():
        rng = np.random.RandomState()
        rng.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        setattr(net, name, rng)
    for name in ("classes_inferred_", "n_features_in_"):
        if name in state:
            setattr(net, name, state[name])
