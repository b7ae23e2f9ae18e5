"""Command line: ``python -m skmixup reproduce [--quick] [--datasets ...] [--out DIR]``
or ``python -m skmixup reproduce --data TABLE.csv --target COLUMN``.

Runs the paper's experiments (``skmixup.experiments``) on data bundled with
scikit-learn or on the user's own table, prints labelled progress (one line per fit)
and the tables, writes ``report.md``, PNG figures and ``summary.json`` into ``--out``
(default: ``skmixup-report`` in the working directory) and ends with the measured
summary and where the files are. Every option is checked before the first fit.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

DEFAULT_OUT = "skmixup-report"
DESCRIPTION = """\
Run the experiments of "How Does Mixup Help With Robustness and Generalization?"
(Zhang et al., ICLR 2021) with skmixup's estimators: ERM against Mixup, for
robustness (FGSM robust accuracy against eps), generalization (train-test gaps)
and calibration (expected calibration error, reliability diagrams), plus the
exact vs second-order Mixup loss on moons. On data bundled with scikit-learn, or
on your own CSV table with --data and --target.
"""
REPRODUCE_DESCRIPTION = """\
Writes report.md, PNG figures and summary.json (the numbers, machine-readable)
into --out. With --data TABLE.csv --target COLUMN the robustness, generalization
and calibration experiments run on your table: numeric columns are mean-imputed
and standardized, every other column is one-hot encoded (the standard
ColumnTransformer), and the classes are the values of the target column.
"""


def _random_state(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32 - 1], got {value}")
    return value


def _writable_folder(text):
    """Create the folder (and its parents) now and check that a file can be
    written there, so that a bad --out fails before any fit."""
    folder = pathlib.Path(text).expanduser().resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".skmixup-check-"):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ValueError(
            f"--out: cannot write to the folder {folder}: {reason}"
        ) from None
    return folder


def _parser():
    from skmixup import __version__
    from skmixup.experiments._common import DATASETS

    parser = argparse.ArgumentParser(
        prog="python -m skmixup",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"skmixup {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to run"
    )
    rep = sub.add_parser(
        "reproduce",
        help="run the experiments (bundled data, or your table with --data)",
        description=REPRODUCE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument(
        "--quick",
        action="store_true",
        help="one split and fewer settings: seconds instead of minutes",
    )
    rep.add_argument(
        "--datasets",
        nargs="+",
        choices=DATASETS,
        metavar="NAME",
        help=f"bundled data sets to run on, among {', '.join(DATASETS)} "
        "(default: all four)",
    )
    rep.add_argument(
        "--data",
        metavar="TABLE.csv",
        help="your own table (CSV with a header row), instead of --datasets",
    )
    rep.add_argument(
        "--target",
        metavar="COLUMN",
        help="the column of --data holding the class labels",
    )
    rep.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"folder for report.md, figures and summary.json, created if needed "
        f"(default: ./{DEFAULT_OUT})",
    )
    rep.add_argument(
        "--random-state",
        type=_random_state,
        default=0,
        metavar="N",
        help="seed of the splits, the moons data and the models (default: 0)",
    )
    return parser, rep


def _check(args):
    """Every check of the options, before the first fit; returns what they give."""
    from skmixup.experiments._common import DATASETS

    if args.data is None and args.target is not None:
        raise ValueError("--target needs --data TABLE.csv")
    if args.data is not None and args.target is None:
        raise ValueError("--data needs --target COLUMN (the column of class labels)")
    if args.data is not None and args.datasets:
        raise ValueError("use either --data or --datasets, not both")
    table = description = None
    if args.data is not None:
        from skmixup.experiments._table import load_table

        table, description = load_table(args.data, args.target)
        datasets = [table]
    else:
        datasets = list(dict.fromkeys(args.datasets or DATASETS))
    out = _writable_folder(args.out)
    return datasets, out, description


def _reproduce(args, rep):
    from skmixup.experiments._common import dataset_name, torch_available
    from skmixup.experiments._report import summary, tables, write_report
    from skmixup.experiments._reproduce import run_reproduce

    t0 = time.perf_counter()
    try:
        datasets, out, table = _check(args)
    except ValueError as e:
        rep.error(str(e))
    names = [dataset_name(d) for d in datasets]
    source = f"table {args.data} (target {args.target!r})" if table else "datasets"
    print(
        f"skmixup reproduce{' --quick' if args.quick else ''}: {source} "
        f"{', '.join(names)}, random_state={args.random_state}; "
        f"report and figures go to {out}",
        flush=True,
    )

    def progress(message):
        print(f"[{time.perf_counter() - t0:6.1f} s] {message}", flush=True)

    notes = []
    if not torch_available():
        from skmixup.utils._install import TORCH_INSTALL

        notes.append(
            f"MLP rows skipped: PyTorch/skorch are not installed ({TORCH_INSTALL})."
        )
        print(f"note: {notes[-1]}", flush=True)
    if table and table["dropped_empty"]:
        notes.append(
            "Columns without any value, left out: "
            + ", ".join(table["dropped_empty"])
            + "."
        )
    if table:
        notes.append(
            "The approximation experiment (exact vs second-order Mixup loss) runs "
            "on moons only; it is not part of a run on your table."
        )
    results, experiments = run_reproduce(
        datasets, quick=args.quick, random_state=args.random_state, progress=progress
    )
    for title, text in tables(results).items():
        print(f"\n## {title}\n\n{text}", flush=True)
    elapsed = time.perf_counter() - t0
    report_settings = {
        "command": _command(args),
        "random_state": args.random_state,
        ("data" if table else "datasets"): ", ".join(names),
        "wall time": f"{elapsed:.1f} s",
        "load average at the end": _load(),
    }
    paths, figure_note = write_report(
        out,
        settings=report_settings,
        results=results,
        experiments=experiments,
        notes=notes,
        table=table,
    )
    print("\n## What we measured\n")
    for line in summary(results):
        print(f"- {line}")
    for note in notes:
        print(f"- {note}")
    if figure_note:
        print(f"\nnote: {figure_note}")
    files = f"{len(paths)} file" + ("s" if len(paths) > 1 else "")
    print(f"\ndone in {elapsed:.1f} s; wrote {files} to {out}:")
    for path in paths:
        print(f"  {path.name}")
    return 0


def _load():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


def _command(args):
    parts = ["python -m skmixup reproduce"] + (["--quick"] if args.quick else [])
    if args.data is not None:
        parts += ["--data", args.data, "--target", args.target]
    elif args.datasets:
        parts += ["--datasets", *dict.fromkeys(args.datasets)]
    parts += ["--random-state", str(args.random_state)]
    return " ".join(parts)


def main(argv=None):
    parser, rep = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # options the subcommand does not know: its usage, not the top one
        rep.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "reproduce":
        return _reproduce(args, rep)
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
