"""The settings and the run of ``python -m skmixup reproduce`` (full or quick)."""

import inspect
import time

from skmixup.experiments._approximation import approximation_experiment
from skmixup.experiments._common import Table
from skmixup.experiments._compose import compose_experiment
from skmixup.experiments._generalization import generalization_experiment
from skmixup.experiments._robustness import robustness_experiment

# Keyword arguments of each experiment; what is not given is the function's
# default (the MLP: MLP_DEFAULTS of skmixup.experiments._models).
SETTINGS = {
    "full": {
        "approximation": {
            "mixups": (0.2, 1.0, (5.0, 0.5)),
            "iterations": (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20),
            "n_samples": 300,
        },
        "robustness": {"eps": (0.0, 0.05, 0.1, 0.2, 0.3), "n_splits": 3},
        "generalization": {"mixups": (None, 0.2, 1.0, (5.0, 0.5)), "n_splits": 3},
        "compose": {"n_splits": 3},
    },
    "quick": {
        "approximation": {
            "mixups": (1.0,),
            "iterations": (0, 1, 2, 3, 5, 8),
            "n_samples": 200,
        },
        "robustness": {
            "eps": (0.0, 0.1, 0.2),
            "mlp_params": {"hidden_layer_sizes": (64, 64), "max_iter": 40},
            "n_splits": 1,
        },
        "generalization": {
            "mixups": (None, 1.0),
            "mlp_params": {"hidden_layer_sizes": (64, 64), "max_iter": 40},
            "n_splits": 1,
        },
        "compose": {
            "n_splits": 1,
            "mlp_params": {"max_iter": 40},
            "hgb_params": {"max_iter": 30},
            "regression_datasets": ("diabetes",),
            "classification_datasets": ("breast_cancer",),
        },
    },
}
EXPERIMENTS = (
    ("approx", "approximation", approximation_experiment),
    ("robust", "robustness", robustness_experiment),
    ("gaps", "generalization", generalization_experiment),
    # regression (ERM / Mixup / C-Mixup) and boosting in MixupClassifier, on
    # their own bundled data sets
    ("compose", "compose", compose_experiment),
)


def uses_datasets(func):
    """Whether an experiment runs on the data sets (a user's table too)."""
    return "datasets" in inspect.signature(func).parameters


def run_reproduce(datasets, *, quick=False, random_state=0, progress=None):
    """Run the experiments; return ``(results, settings)``.

    ``results`` maps each key of :data:`EXPERIMENTS` (``"approx"``, ``"robust"``,
    ``"gaps"``, ...) to the rows of that experiment; ``settings`` is the keyword
    arguments each one was given (for the report's protocol). When ``datasets`` is
    a user's table (a :class:`~._common.Table`), only the experiments that run on
    data sets are run (the approximation experiment is on moons by design).
    """
    table = any(isinstance(d, Table) for d in datasets)
    chosen = SETTINGS["quick" if quick else "full"]
    settings, results = {}, {}
    for key, name, func in EXPERIMENTS:
        on_data = uses_datasets(func)
        if table and not on_data:
            continue
        settings[name] = {**chosen.get(name, {}), "random_state": random_state}
        start = time.perf_counter()
        args = (datasets,) if on_data else ()
        results[key] = func(*args, **settings[name], progress=progress)
        if progress is not None:
            progress(f"{name} experiment done in {time.perf_counter() - start:.1f} s")
    return results, settings
