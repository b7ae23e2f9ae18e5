"""The one definition of every model the experiments fit, and of their settings.

:data:`MODELS` maps a model kind to a :class:`Model`: ``build(mixup, config)``
returns ``(name, pipeline)`` (a ``StandardScaler`` pipeline, or the standard
ColumnTransformer of a user's table; ``mixup=None`` is the ERM counterpart),
``needs_torch`` says whether the ``torch`` extra is needed, and ``shown`` lists
the estimator parameters that the report's protocol prints. To add a model, add
one entry. ``config`` holds ``C``, ``mlp_params``, ``random_state``
and, while fitting, ``dataset`` (a name or a user's table).
"""

from typing import Callable, NamedTuple

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixup.experiments._common import Table, alpha_beta, table_preprocessor
from skmixup.linear_model import (
    MixupLogisticRegression,
    MixupRegularizedLogisticRegression,
)

# Inverse ridge strength of every logistic model (scikit-learn's default).
C_DEFAULT = 1.0
# The MLP of the paper's tabular reproduction: two ReLU layers of 128 units, Adam
# (lr 1e-3), no weight decay, a fixed budget of 150 epochs.
MLP_DEFAULTS = {"hidden_layer_sizes": (128, 128), "max_iter": 150}
ERM_LOGISTIC_NAME = "LogisticRegression"
ERM_MLP_NAME = "MLP ERM (mixup_prob=0)"


class Model(NamedTuple):
    build: Callable
    needs_torch: bool
    shown: tuple


def _pipe(config, est):
    """``est`` behind a StandardScaler, or behind the standard ColumnTransformer
    when ``config["dataset"]`` is a user's :class:`~._common.Table`."""
    table = config.get("dataset")
    if isinstance(table, Table):
        return make_pipeline(table_preprocessor(table.numeric, table.categorical), est)
    return make_pipeline(StandardScaler(), est)


def _mixup_params(mixup):
    alpha, beta = alpha_beta(mixup)
    text = f"alpha={alpha}" + ("" if beta is None else f", beta={beta}")
    return {"mixup_alpha": alpha, "mixup_beta": beta}, text


def _erm_logistic(config):
    est = LogisticRegression(C=config["C"], max_iter=1000)
    return ERM_LOGISTIC_NAME, _pipe(config, est)


def _logistic(mixup, config):
    if mixup is None:
        return _erm_logistic(config)
    params, text = _mixup_params(mixup)
    est = MixupLogisticRegression(
        C=config["C"], random_state=config["random_state"], **params
    )
    return f"MixupLogisticRegression({text})", _pipe(config, est)


def _regularized(mixup, config):
    if mixup is None:
        return _erm_logistic(config)
    params, text = _mixup_params(mixup)
    est = MixupRegularizedLogisticRegression(C=config["C"], **params)
    name = f"MixupRegularizedLogisticRegression({text})"
    return name, _pipe(config, est)


def _mlp(mixup, config, penalty=False):
    """No weight decay (``alpha=0``), CPU, exactly ``max_iter`` epochs (``tol=0``
    with a patience of ``max_iter``); ERM is ``mixup_prob=0``, same seed. With
    ``penalty=True`` the Mixup model is the same network as a
    :class:`~skmixup.neural_network.MixupRegularizedMLPClassifier` (cross-entropy
    plus ``R1 + R2 + R3``, no mixed inputs)."""
    from skmixup.neural_network import (
        MixupMLPClassifier,
        MixupRegularizedMLPClassifier,
    )

    mlp = {**MLP_DEFAULTS, **(config.get("mlp_params") or {})}
    params = {
        **mlp,
        "alpha": 0.0,
        "tol": 0.0,
        "n_iter_no_change": mlp["max_iter"],
        "device": "cpu",
        "random_state": config["random_state"],
    }
    if mixup is None:
        est = MixupMLPClassifier(mixup_prob=0.0, **params)
        return ERM_MLP_NAME, _pipe(config, est)
    mix, text = _mixup_params(mixup)
    cls = MixupRegularizedMLPClassifier if penalty else MixupMLPClassifier
    est = cls(**mix, **params)
    return f"{cls.__name__}({text})", _pipe(config, est)


def _mlp_penalty(mixup, config):
    return _mlp(mixup, config, penalty=True)


_MLP_SHOWN = (
    "hidden_layer_sizes",
    "activation",
    "max_iter",
    "batch_size",
    "learning_rate_init",
    "alpha",
    "tol",
)


MODELS = {
    "logistic": Model(_logistic, False, ("C", "n_partners", "n_quadrature")),
    "regularized": Model(_regularized, False, ("C", "terms")),
    "mlp": Model(_mlp, True, _MLP_SHOWN),
    "mlp_penalty": Model(_mlp_penalty, True, (*_MLP_SHOWN, "terms")),
}


def check_models(kinds, *, torch_ok):
    """Validate model kinds; drop those that need torch when it is missing."""
    unknown = set(kinds) - set(MODELS)
    if unknown:
        raise ValueError(f"models must be among {sorted(MODELS)}; got {unknown}.")
    return [k for k in kinds if torch_ok or not MODELS[k].needs_torch]


def build(kind, mixup, config):
    """``(name, pipeline)`` of model ``kind`` for a Mixup setting."""
    return MODELS[kind].build(mixup, config)


def describe(kind, config):
    """One line naming the estimator of ``kind`` and its parameters in ``config``."""
    _, pipe = build(kind, 1.0, config)
    est = pipe[-1]
    params = est.get_params()
    shown = ", ".join(f"{p}={params[p]!r}" for p in MODELS[kind].shown)
    erm = build(kind, None, config)[1][-1]
    if type(erm) is type(est):
        erm_text = "the same network with mixup_prob=0 and the same seed"
    elif "mixup_prob" in erm.get_params():  # the penalty MLP: its ERM is the MLP's
        erm_text = (
            f"the same network as {type(erm).__name__} with mixup_prob=0 and the "
            "same seed"
        )
    else:
        erm_text = f"scikit-learn's {type(erm).__name__}(C={erm.C!r})"
    return f"{type(est).__name__}({shown}); ERM: {erm_text}"
