"""The settings and the run of ``python -m skmixup reproduce`` (full or quick)."""

import time

from skmixup.experiments._approximation import approximation_experiment
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
    ("compose", "compose", compose_experiment),  # its own data sets
)


def run_reproduce(datasets, *, quick=False, random_state=0, progress=None):
    """Run the experiments; return ``(results, settings)``.

    ``results`` maps ``"approx"``, ``"robust"``, ``"gaps"`` and ``"compose"``
    (regression and the wrapped gradient boosting) to the rows of each
    experiment; ``settings`` is the keyword arguments each one was given (for the
    report's protocol).
    """
    settings = {
        name: {**kwargs, "random_state": random_state}
        for name, kwargs in SETTINGS["quick" if quick else "full"].items()
    }
    results = {}
    for key, name, func in EXPERIMENTS:
        start = time.perf_counter()
        args = (datasets,) if key in ("robust", "gaps") else ()
        results[key] = func(*args, **settings[name], progress=progress)
        if progress is not None:
            progress(f"{name} experiment done in {time.perf_counter() - start:.1f} s")
    return results, settings
