"""Command line: ``python -m skmixup reproduce [--quick] [--datasets ...] [--out DIR]``.

Runs the paper's three experiments (``skmixup.experiments``) on data bundled with
scikit-learn, prints progress (one line per fit) and the tables, writes
``report.md`` and PNG figures into ``--out`` (default: ``skmixup-report`` in the
working directory) and ends with the measured summary and where the files are.
"""

import argparse
import pathlib
import sys
import time

DEFAULT_OUT = "skmixup-report"


def _reproduce(args):
    from skmixup.experiments._common import torch_available
    from skmixup.experiments._report import summary, tables, write_report
    from skmixup.experiments._reproduce import run_reproduce

    t0 = time.perf_counter()
    datasets = list(dict.fromkeys(args.datasets))
    out = pathlib.Path(args.out).resolve()
    print(
        f"skmixup reproduce{' --quick' if args.quick else ''}: datasets "
        f"{', '.join(datasets)}, random_state={args.random_state}; "
        f"report and figures go to {out}",
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
    results, experiments = run_reproduce(
        datasets, quick=args.quick, random_state=args.random_state, progress=progress
    )
    for title, table in tables(**results).items():
        print(f"\n## {title}\n\n{table}", flush=True)
    elapsed = time.perf_counter() - t0
    report_settings = {
        "command": _command(args),
        "random_state": args.random_state,
        "datasets": ", ".join(datasets),
        "wall time": f"{elapsed:.1f} s",
    }
    paths, figure_note = write_report(
        out, settings=report_settings, experiments=experiments, notes=notes, **results
    )
    print("\n## What we measured\n")
    for line in summary(**results):
        print(f"- {line}")
    if figure_note:
        print(f"\nnote: {figure_note}")
    files = f"{len(paths)} file" + ("s" if len(paths) > 1 else "")
    print(f"\ndone in {elapsed:.1f} s; wrote {files} to {out}:")
    for path in paths:
        print(f"  {path.name}")
    return 0


def _command(args):
    parts = ["python -m skmixup reproduce"] + (["--quick"] if args.quick else [])
    parts += ["--datasets", *args.datasets, "--random-state", str(args.random_state)]
    return " ".join(parts)


def main(argv=None):
    from skmixup.experiments._common import DATASETS

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
    rep.add_argument(
        "--out",
        default=DEFAULT_OUT,
        help=f"folder for report.md and figures (default: ./{DEFAULT_OUT})",
    )
    rep.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "reproduce":
        return _reproduce(args)
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
