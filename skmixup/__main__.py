"""Command line: ``python -m skmixup reproduce [--quick] [--datasets ...] [--out DIR]``.

Runs the paper's three experiments (``skmixup.experiments``) on data bundled with
scikit-learn, prints their tables and, with ``--out``, writes ``report.md`` and PNG
figures.
"""

import argparse
import sys
import time

DATASETS = ("digits", "breast_cancer", "wine", "moons")


def _settings(args):
    """Keyword arguments of the three experiments, full or ``--quick``."""
    if args.quick:
        mlp = {"hidden_layer_sizes": (64, 64), "max_iter": 40}
        return {
            "approximation": {
                "mixups": (1.0,),
                "iterations": (0, 1, 2, 3, 5, 8),
                "n_samples": 200,
            },
            "robustness": {"eps": (0.0, 0.1, 0.2), "mlp_params": mlp, "n_splits": 1},
            "generalization": {
                "mixups": (None, 1.0),
                "mlp_params": mlp,
                "n_splits": 1,
            },
        }
    mlp = {"hidden_layer_sizes": (128, 128), "max_iter": 150}
    return {
        "approximation": {
            "mixups": (0.2, 1.0, (5.0, 0.5)),
            "iterations": (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20),
            "n_samples": 300,
        },
        "robustness": {
            "eps": (0.0, 0.05, 0.1, 0.2, 0.3),
            "mlp_params": mlp,
            "n_splits": 3,
        },
        "generalization": {
            "mixups": (None, 0.2, 1.0, (5.0, 0.5)),
            "mlp_params": mlp,
            "n_splits": 3,
        },
    }


def _reproduce(args):
    from skmixup import experiments
    from skmixup.experiments._common import torch_available
    from skmixup.experiments._report import tables, write_report

    t0 = time.perf_counter()
    settings = _settings(args)
    datasets = list(dict.fromkeys(args.datasets))
    print(
        f"skmixup reproduce{' --quick' if args.quick else ''}: datasets "
        f"{', '.join(datasets)}, random_state={args.random_state}",
        flush=True,
    )

    def progress(message):
        print(f"[{time.perf_counter() - t0:6.1f} s] {message}", flush=True)

    notes = []
    if not torch_available():
        notes.append(
            "MLP rows skipped: PyTorch/skorch are not installed "
            '(pip install "skmixup[torch]").'
        )
        print(f"note: {notes[-1]}", flush=True)
    seed = {"random_state": args.random_state, "progress": progress}
    results = {}
    for key, func, kwargs in (
        ("approx", experiments.approximation_experiment, settings["approximation"]),
        ("robust", experiments.robustness_experiment, settings["robustness"]),
        ("gaps", experiments.generalization_experiment, settings["generalization"]),
    ):
        start = time.perf_counter()
        if key == "approx":
            results[key] = func(**kwargs, **seed)
        else:
            results[key] = func(datasets, **kwargs, **seed)
        progress(f"{func.__name__} done in {time.perf_counter() - start:.1f} s")
    for title, table in tables(**results).items():
        print(f"\n## {title}\n\n{table}", flush=True)
    elapsed = time.perf_counter() - t0
    print(f"\ndone in {elapsed:.1f} s")
    if args.out:
        report_settings = {
            "command": _command(args),
            "random_state": args.random_state,
            "datasets": ", ".join(datasets),
            "wall time": f"{elapsed:.1f} s",
            **{name: _describe(kw) for name, kw in settings.items()},
        }
        paths = write_report(args.out, settings=report_settings, notes=notes, **results)
        for path in paths:
            print(f"wrote {path}")
    return 0


def _command(args):
    parts = ["python -m skmixup reproduce"] + (["--quick"] if args.quick else [])
    parts += ["--datasets", *args.datasets, "--random-state", str(args.random_state)]
    return " ".join(parts)


def _describe(kwargs):
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m skmixup", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("reproduce", help="run the experiments on bundled data")
    rep.add_argument(
        "--quick", action="store_true", help="one split, fewer settings: seconds"
    )
    rep.add_argument(
        "--datasets",
        nargs="+",
        choices=DATASETS,
        default=list(DATASETS),
        help="data sets of the robustness and generalization experiments",
    )
    rep.add_argument("--out", default=None, help="folder for report.md and figures")
    rep.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "reproduce":
        return _reproduce(args)
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
