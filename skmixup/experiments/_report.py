"""Tables, a measured summary, the protocol, figures and summary.json of ``reproduce``.

Every experiment's part of the report is one :class:`Section` in :data:`SECTIONS`:
the key of its rows in the results, the title, the table, the summary sentences and
its figure. To add an experiment to the report, add its function to
``_reproduce.EXPERIMENTS`` and one entry here; nothing else needs to change.

How a difference is judged (:func:`verdict`): with several splits, a difference is
called better or worse only when it exceeds both :data:`TIE` and the larger of the
two split-to-split standard deviations; otherwise it is "within the spread". With
one split there is no spread, and differences are only stated as higher or lower.
"""

import json
import pathlib
import textwrap
from typing import Callable, NamedTuple

import numpy as np

from skmixup.experiments._common import mixup_label, number, torch_available
from skmixup.experiments._compose import (
    boosting_table,
    compose_protocol,
    compose_summary,
    regression_table,
)
from skmixup.experiments._demo import format_table
from skmixup.experiments._generalization import BINS, GAP_VALUES
from skmixup.experiments._models import (
    ERM_LOGISTIC_NAME,
    ERM_MLP_NAME,
    MODELS,
    describe,
)
from skmixup.experiments._robustness import CURVES

# A difference of at most this much is never called better or worse.
TIE = 0.01
WIDTH = 88  # report.md lines are wrapped at this width (tables excepted)
SUMMARY_NAME = "summary.json"
SUMMARY_FORMAT = 1


# ---------------------------------------------------------------- judgements
def verdict(value, value_sd, base, base_sd, n_splits, *, higher_is_better=True):
    """``"better"``, ``"worse"``, ``"within the spread"``, or, for one split,
    ``"higher"``/``"lower"``/``"equal"`` (no spread to judge against).

    >>> verdict(0.723, 0.042, 0.734, 0.060, 3)
    'within the spread'
    >>> verdict(0.482, 0.010, 0.433, 0.012, 3), verdict(0.5, 0, 0.4, 0, 1)
    ('better', 'higher')
    """
    diff = value - base
    if n_splits < 2:
        return "equal" if diff == 0 else ("higher" if diff > 0 else "lower")
    if abs(diff) <= max(TIE, value_sd, base_sd):
        return "within the spread"
    return "better" if (diff > 0) == higher_is_better else "worse"


def with_sd(value, sd, n_splits, spec=".3f"):
    """``0.921 (sd 0.012)``, or ``0.921`` for one split (no spread to show)."""
    text = number(value, spec)
    return text if n_splits < 2 else f"{text} (sd {number(sd, '.3f')})"


def how_we_judge(n_splits):
    """The sentence of the report that says how differences are judged."""
    if n_splits < 2:
        return (
            "One split: there is no split-to-split spread, so differences are "
            "stated as higher or lower, never as better or worse."
        )
    return (
        f"Better/worse: only when a difference exceeds both {TIE:g} and the larger "
        "of the two split-to-split standard deviations (sd, over the "
        f"{n_splits} splits); otherwise 'within the spread'."
    )


# ---------------------------------------------------------------- tables
APPROX_COLUMNS = [
    "mixup",
    "training",
    "iteration",
    "coef_norm",
    "exact",
    "approximate",
    "R1",
    "R2",
    "relative_error",
]
GAP_COLUMNS = ["dataset", "model", "mixup", *(v for v in GAP_VALUES if v != "ece")]
CALIBRATION_COLUMNS = ["dataset", "model", "mixup", "test_accuracy", "ece"]


def _n_splits(rows):
    return min((r.get("n_splits", 1) for r in rows), default=1)


def _approx_table(rows):
    # The ERM optimum is another fit (scikit-learn's LogisticRegression): it has no
    # iteration on the Mixup path.
    shown = [
        {**r, "iteration": r["iteration"] if r["training"] == "Mixup" else "-"}
        for r in rows
    ]
    return format_table(shown, APPROX_COLUMNS)


def robustness_wide(rows):
    """One row per data set and model, one ``eps=...`` column per radius (with the
    split-to-split sd when there are several splits)."""
    wide = {}
    for r in rows:
        key = (r["dataset"], r["model"])
        wide.setdefault(key, {"dataset": key[0], "model": key[1]})
        value = r["robust_accuracy"]
        if r["n_splits"] > 1:
            value = f"{number(value)} ± {number(r['robust_accuracy_std'])}"
        wide[key][f"eps={r['eps']:g}"] = value
    return list(wide.values())


def _robust_table(rows):
    wide = robustness_wide(rows)
    return format_table(wide, list(wide[0]))


def _gap_table(rows):
    columns = list(GAP_COLUMNS)
    if _n_splits(rows) > 1:
        columns.append("log_loss_gap_std")
    return format_table(rows, columns)


def _calibration_table(rows):
    columns = list(CALIBRATION_COLUMNS)
    if _n_splits(rows) > 1:
        columns.append("ece_std")
    return format_table(rows, columns)


# ---------------------------------------------------------------- summaries
def _approx_summary(rows):
    parts = []
    for mixup in dict.fromkeys(r["mixup"] for r in rows):
        path = [r for r in rows if r["mixup"] == mixup and r["training"] == "Mixup"]
        erm = [r for r in rows if r["mixup"] == mixup and r["training"] != "Mixup"]
        if not path:
            continue
        text = (
            f"Mixup {mixup}: {number(path[0]['relative_error'], '+.2%')} at "
            f"iteration {path[0]['iteration']} (||w|| = "
            f"{number(path[0]['coef_norm'], '.2f')}), "
            f"{number(path[-1]['relative_error'], '+.2%')} at the last iterate, "
            f"iteration {path[-1]['iteration']} (||w|| = "
            f"{number(path[-1]['coef_norm'], '.2f')})"
        )
        if erm:
            text += (
                f", {number(erm[0]['relative_error'], '+.2%')} at the ERM optimum "
                f"(||w|| = {number(erm[0]['coef_norm'], '.2f')})"
            )
        parts.append(text)
    return [
        "Approximation (logistic regression trained on the exact Mixup loss, "
        "standardized moons): the relative error (approx - exact) / exact of "
        "L_std + R1 + R2 was " + "; ".join(parts) + "."
    ]


def robustness_pairs(models):
    """``(Mixup model, its ERM baseline)`` for the models of one data set."""
    pairs = [
        (m, ERM_LOGISTIC_NAME)
        for m in models
        if m.startswith(("MixupLogistic", "MixupRegularizedLogistic"))
    ]
    pairs += [
        (m, ERM_MLP_NAME)
        for m in models
        if m.startswith(("MixupMLP", "MixupRegularizedMLP"))
    ]
    return [(m, base) for m, base in pairs if base in models]


def _robust_summary(rows):
    eps_max = max(r["eps"] for r in rows)
    n = _n_splits(rows)
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        at = {
            r["model"]: (r["robust_accuracy"], r["robust_accuracy_std"])
            for r in rows
            if r["dataset"] == dataset and r["eps"] == eps_max
        }
        verdicts = []
        for model, base in robustness_pairs(at):
            (acc, sd), (base_acc, base_sd) = at[model], at[base]
            word = verdict(acc, sd, base_acc, base_sd, n)
            verdicts.append(
                f"{model} {with_sd(acc, sd, n)} vs {base} "
                f"{with_sd(base_acc, base_sd, n)}: {word}"
            )
        if verdicts:
            lines.append(
                f"Robustness on {dataset} at eps={eps_max:g}: "
                + "; ".join(verdicts)
                + "."
            )
    lines.append(how_we_judge(n))
    return lines


def _certified_table(rows):
    """Certified accuracy (a lower bound) and the band up to FGSM's, per eps."""
    if "certified_accuracy" not in rows[0]:
        return "(not measured in this run)"
    wide = {}
    for r in rows:
        key = (r["dataset"], r["model"])
        wide.setdefault(key, {"dataset": key[0], "model": key[1]})
        wide[key][f"eps={r['eps']:g}"] = (
            f"{number(r['certified_accuracy'])} (band {number(r['band'])})"
        )
    wide = list(wide.values())
    return format_table(wide, list(wide[0]))


def _certified_summary(rows):
    """Whether "Mixup is more robust" holds for the certified (lower-bound)
    accuracy too, at the largest eps."""
    if "certified_accuracy" not in rows[0]:
        return []
    eps_max = max(r["eps"] for r in rows)
    n = _n_splits(rows)
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        at = {
            r["model"]: r
            for r in rows
            if r["dataset"] == dataset and r["eps"] == eps_max
        }
        verdicts = []
        for model, base in robustness_pairs(at):
            row, base_row = at[model], at[base]
            word = verdict(
                row["certified_accuracy"],
                row["certified_accuracy_std"],
                base_row["certified_accuracy"],
                base_row["certified_accuracy_std"],
                n,
            )
            cert = with_sd(row["certified_accuracy"], row["certified_accuracy_std"], n)
            base_cert = with_sd(
                base_row["certified_accuracy"], base_row["certified_accuracy_std"], n
            )
            verdicts.append(
                f"{model} {cert} vs {base} {base_cert}: {word} (band "
                f"{number(row['band'])} vs {number(base_row['band'])})"
            )
        if verdicts:
            lines.append(
                f"Certified robustness on {dataset} at eps={eps_max:g} (is Mixup "
                "more robust by the lower bound?): " + "; ".join(verdicts) + "."
            )
    if lines:
        lines.append(
            "(Certified accuracy, CROWN for the networks and exact for the linear "
            "models, is a lower bound of the true robust accuracy and FGSM's an "
            "upper bound; the band is their difference, where the truth lies.)"
        )
    return lines


# (family named in the summary, its ERM model, prefix of its Mixup models, what
# its Mixup models add to ERM); the penalty MLP's ERM counterpart is the MLP
# trained with mixup_prob=0.
SUMMARY_FAMILIES = (
    ("logistic regression", ERM_LOGISTIC_NAME, "MixupLogistic", "Mixup"),
    ("the MLP", ERM_MLP_NAME, "MixupMLP", "Mixup"),
    (
        "the penalty MLP (MixupRegularizedMLPClassifier)",
        ERM_MLP_NAME,
        "MixupRegularizedMLP",
        "the explicit penalty",
    ),
)


def family_cases(rows, erm, prefix):
    """``[(dataset, ERM row, [Mixup rows])]`` of one model family."""
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        rs = [r for r in rows if r["dataset"] == dataset]
        base = [r for r in rs if r["model"] == erm and r["mixup"] == "ERM"]
        mix = [r for r in rs if r["model"].startswith(prefix) and r["mixup"] != "ERM"]
        if base and mix:
            out.append((dataset, base[0], mix))
    return out


def _count(cases, value):
    """``({"lower", "higher", "lower beyond", "higher beyond"}: counts, total)``:
    how the Mixup rows' ``value`` compares with their ERM row's."""
    counts = {"lower": 0, "higher": 0, "lower beyond": 0, "higher beyond": 0}
    total = 0
    for _, base, mix in cases:
        for r in mix:
            total += 1
            diff = r[value] - base[value]
            if diff == 0:
                continue
            side = "lower" if diff < 0 else "higher"
            counts[side] += 1
            word = verdict(
                r[value],
                r[value + "_std"],
                base[value],
                base[value + "_std"],
                r["n_splits"],
            )
            counts[side + " beyond"] += word in ("better", "worse")
    return counts, total


def _split_counts(counts, total, n_splits, higher="higher"):
    """``"6 of 12 (data set, Mixup) cases (0 beyond the spread), and higher in 6
    (2 beyond the spread)"``; no spread is named for one split."""

    def beyond(side):
        if n_splits < 2:
            return ""
        return f" ({counts[side + ' beyond']} beyond the spread)"

    return (
        f"{counts['lower']} of {total} (data set, Mixup) cases{beyond('lower')}, "
        f"and {higher} in {counts['higher']}{beyond('higher')}"
    )


def _gap_summary(rows):
    lines = []
    n = _n_splits(rows)
    for family, erm, prefix, what in SUMMARY_FAMILIES:
        cases = family_cases(rows, erm, prefix)
        if not cases:
            continue
        gap, total = _count(cases, "log_loss_gap")
        test, _ = _count(cases, "test_log_loss")
        parts = []
        for dataset, base, mix in cases:
            best = min(mix, key=lambda r: r["log_loss_gap"])
            parts.append(
                f"{dataset}: ERM gap {number(base['log_loss_gap'], '+.3f')} (test "
                f"log-loss {number(base['test_log_loss'])}), smallest Mixup gap "
                f"{number(best['log_loss_gap'], '+.3f')} at {best['mixup']} (test "
                f"log-loss {number(best['test_log_loss'])})"
            )
        lines.append(
            f"Generalization, {family}: {what} gave a smaller log-loss gap (test CE "
            f"- train CE) than ERM in {_split_counts(gap, total, n, higher='larger')}"
            f"; its test log-loss was higher than ERM's in {test['higher']} of "
            f"{total} (a smaller gap can come from a worse fit of the training "
            "set); " + "; ".join(parts) + "."
        )
    return lines


def _calibration_summary(rows):
    lines = []
    n = _n_splits(rows)
    for family, erm, prefix, what in SUMMARY_FAMILIES:
        cases = family_cases(rows, erm, prefix)
        if not cases:
            continue
        ece, total = _count(cases, "ece")
        parts = [
            f"{dataset} {number(base['ece'])} (ERM) vs "
            + ", ".join(f"{number(r['ece'])} ({r['mixup']})" for r in mix)
            for dataset, base, mix in cases
        ]
        lines.append(
            f"Calibration, {family}: {what} had a lower test ECE than ERM in "
            f"{_split_counts(ece, total, n)}; " + "; ".join(parts) + "."
        )
    return lines


# ---------------------------------------------------------------- the registry
class Section(NamedTuple):
    """One experiment's part of the report.

    ``key``: the key of its rows in the results (``_reproduce.EXPERIMENTS``);
    ``title``: its heading; ``table(rows)``: a markdown table; ``summary(rows)``:
    sentences for "What we measured"; ``figure``: the PNG's file name (or None);
    ``plot(plt, path, rows)``: draws it; ``protocol(settings)``: sentences of the
    protocol from the keyword arguments its experiment ran with (defaults filled
    in, see :func:`resolved_settings`), for experiments that the built-in protocol
    text does not describe; ``experiment``: the name of that experiment in
    ``_reproduce.EXPERIMENTS``.
    """

    key: str
    title: str
    table: Callable
    summary: Callable
    figure: str = None
    plot: Callable = None
    protocol: Callable = None
    experiment: str = None


def _lazy(name):
    """A plot function of this module, looked up when called (defined below)."""
    return lambda *args: globals()[name](*args)


SECTIONS = [
    Section(
        "approx",
        "Approximation: exact vs second-order Mixup loss along training",
        _approx_table,
        _approx_summary,
        "approximation.png",
        _lazy("_plot_approx"),
    ),
    Section(
        "robust",
        "Robustness: FGSM robust test accuracy vs eps",
        _robust_table,
        _robust_summary,
        "robustness.png",
        _lazy("_plot_robust"),
    ),
    Section(
        "robust",
        "Robustness: certified test accuracy (band up to FGSM's) vs eps",
        _certified_table,
        _certified_summary,
    ),
    Section(
        "gaps",
        "Generalization: train-test gaps vs Mixup",
        _gap_table,
        _gap_summary,
        "generalization_gap.png",
        _lazy("_plot_gaps"),
    ),
    Section(
        "gaps",
        "Calibration: expected calibration error (test set) vs Mixup",
        _calibration_table,
        _calibration_summary,
        "reliability.png",
        _lazy("_plot_reliability"),
    ),
    Section(
        "compose",
        "Regression: test MSE and train-test gap, ERM vs Mixup vs C-Mixup",
        regression_table,
        compose_summary,
        protocol=compose_protocol,
        experiment="compose",
    ),
    Section(
        "compose",
        "Gradient boosting in MixupClassifier: log-loss and accuracy",
        boosting_table,
        compose_summary,
    ),
]
FIGURE_NAMES = [s.figure for s in SECTIONS if s.figure]


def _sections(results):
    return [(s, results[s.key]) for s in SECTIONS if results.get(s.key)]


def tables(results):
    """Markdown tables ``{title: table}`` of the experiments that have rows."""
    return {s.title: s.table(rows) for s, rows in _sections(results)}


def summary(results):
    """Sentences stating what the numbers show, and only that."""
    lines = []
    for s, rows in _sections(results):
        lines += [line for line in s.summary(rows) if line not in lines]
    return lines


# ---------------------------------------------------------------- protocol
def resolved_settings(experiments):
    """Every keyword of each experiment: its defaults updated with ``experiments``.

    ``experiments`` maps experiment names (``"approximation"``, ``"robustness"``,
    ``"generalization"``, ...) to the keyword arguments a run used.
    """
    import inspect

    from skmixup.experiments._reproduce import EXPERIMENTS

    out = {}
    for _, name, func in EXPERIMENTS:
        params = inspect.signature(func).parameters.values()
        defaults = {p.name: p.default for p in params if p.default is not p.empty}
        defaults.pop("progress", None)
        defaults.pop("datasets", None)
        out[name] = {**defaults, **experiments.get(name, {})}
    return out


def protocol(experiments, *, table=None):
    """The protocol of a run, as sentences built from the settings it used.

    ``table``: the description of a user's table (``reproduce --data``), whose
    models sit behind the standard ColumnTransformer instead of a StandardScaler.
    """
    settings = resolved_settings(experiments)
    rob, gen, app = (
        settings["robustness"],
        settings["generalization"],
        settings["approximation"],
    )
    lines = []
    if table is not None:
        lines.append(
            f"Data: {table['path']}, {table['n_rows']} rows, target column "
            f"{table['target']!r} with classes {table['classes']}. Every model is a "
            "pipeline behind the standard ColumnTransformer: numeric columns "
            f"({', '.join(table['numeric']) or 'none'}) mean-imputed and "
            "standardized (StandardScaler); every other column "
            f"({', '.join(table['categorical']) or 'none'}) imputed with its most "
            "frequent value and one-hot encoded (OneHotEncoder, unseen categories "
            "ignored)."
        )
    front = "the ColumnTransformer" if table is not None else "a StandardScaler"
    for name, kw in (("Robustness", rob), ("Generalization", gen)):
        if name.lower() not in experiments and table is None and experiments:
            continue
        lines.append(
            f"{name}: every model is fitted behind {front} on {kw['n_splits']} "
            f"stratified train/test split(s) per data set (test fraction "
            f"{kw['test_size']}); numbers are means over the splits, seeded by "
            f"random_state={kw['random_state']}; on CPU the run is deterministic."
        )
    kinds = list(dict.fromkeys([k for k, _ in CURVES] + list(gen["models"])))
    torch_ok = torch_available()
    for kind in kinds:
        if MODELS[kind].needs_torch and not torch_ok:
            continue
        config = {
            "C": gen["C"],
            "mlp_params": gen["mlp_params"],
            "random_state": gen["random_state"],
        }
        text = describe(kind, config)
        if MODELS[kind].needs_torch:
            text += " (no weight decay, a fixed number of epochs; torch on 1 thread)"
        lines.append(f"Model '{kind}': {text}.")
    unit = (
        "the training standard deviation of each numeric column (one-hot columns "
        "do not move)"
        if table is not None
        else "the training standard deviation (the scaler's scale_)"
    )
    lines.append(
        f"FGSM (l_inf) with eps in {tuple(rob['eps'])} attacks the raw test inputs "
        f"through the pipeline with feature_scale = {unit}, so eps is in "
        "standardized units; no clipping. Mixup models use Mixup "
        f"{mixup_label(_setting(rob['mixup']))}. Robust accuracy counts every "
        "test sample (at eps=0 it is the clean accuracy)."
    )
    lines.append(
        "Gaps, for Mixup settings "
        + ", ".join(mixup_label(_setting(m)) for m in gen["mixups"])
        + ": log_loss_gap = test CE - standard (un-mixed) train CE; accuracy_gap = "
        "train - test accuracy; the test log-loss is stated beside the gap. "
        "Calibration: skmixup.metrics.expected_calibration_error (top-label "
        f"confidence, {gen['n_bins']} equal-width bins) on the test set; the "
        "reliability diagram (skmixup.metrics.ReliabilityDisplay) pools the test "
        "predictions of all splits."
    )
    if "approximation" in experiments or not experiments:
        lines.append(
            "Approximation: standardized make_moons "
            f"(n_samples={app['n_samples']}, noise={app['noise']}), Mixup "
            + ", ".join(mixup_label(_setting(m)) for m in app["mixups"])
            + f"; L-BFGS iterates requested at iterations {tuple(app['iterations'])}"
            ", each shown up to the iteration where L-BFGS stopped (later iterates "
            "are the same model); the ERM optimum is scikit-learn's "
            "LogisticRegression without ridge, a separate fit. The expected "
            "ConvergenceWarning of the truncated fits is silenced, only there."
        )
    for section in SECTIONS:
        if section.protocol is not None and section.experiment in experiments:
            lines += section.protocol(settings[section.experiment])
    return lines


def _setting(mixup):
    """A Mixup setting read back from JSON (a list) as the tuple it was."""
    return tuple(mixup) if isinstance(mixup, list) else mixup


# ---------------------------------------------------------------- summary.json
def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_summary(path, *, settings, results, experiments, notes=(), table=None):
    """Write the machine-readable summary of a run (see :func:`load_summary`)."""
    from skmixup import __version__

    data = {
        "format": SUMMARY_FORMAT,
        "skmixup_version": __version__,
        "settings": settings,
        "experiments": experiments,
        "table": table,
        "notes": list(notes),
        "results": results,
        "summary": summary(results),
    }
    pathlib.Path(path).write_text(json.dumps(_jsonable(data), indent=1) + "\n")
    return pathlib.Path(path)


def load_summary(path):
    """Read a ``summary.json``; the reliability bins come back as arrays."""
    data = json.loads(pathlib.Path(path).read_text())
    if data.get("format") != SUMMARY_FORMAT:
        raise ValueError(
            f"{path} is not a summary.json of format {SUMMARY_FORMAT} written by "
            "python -m skmixup reproduce."
        )
    for rows in data["results"].values():
        for row in rows:
            for name in BINS:
                if name in row:
                    row[name] = np.asarray(row[name], dtype=np.float64)
    return data


def rebuild_report(summary_path, out):
    """Write the report, figures and summary.json of a stored ``summary.json``
    again (after a change of the report code: no experiment is rerun)."""
    data = load_summary(summary_path)
    return write_report(
        out,
        settings=data["settings"],
        results=data["results"],
        experiments=data["experiments"],
        notes=[n for n in data["notes"] if not n.startswith("Figures skipped")],
        table=data["table"],
    )


# ---------------------------------------------------------------- report.md
def _bullet(text):
    return textwrap.fill(
        text,
        WIDTH,
        initial_indent="- ",
        subsequent_indent="  ",
        break_on_hyphens=False,
        break_long_words=False,
    )


def write_report(out, *, settings, results, experiments=None, notes=(), table=None):
    """Write ``report.md``, the figures and ``summary.json`` into ``out``.

    ``settings`` are printed as given; ``experiments`` (the keyword arguments of
    each experiment, see :func:`protocol`) give the protocol text; ``table``
    describes a user's table (``reproduce --data``).

    Returns
    -------
    paths : list of pathlib.Path
        ``report.md``, the figures, then ``summary.json``.
    figure_note : str or None
        Why the figures were skipped (matplotlib missing), else None.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures, figure_note = write_figures(out, results)
    text = ["# skmixup reproduce", "", "## Settings", ""]
    text += [_bullet(f"{k}: {v}") for k, v in settings.items()]
    text += [_bullet(line) for line in protocol(experiments or {}, table=table)]
    text += ["", "## What we measured", ""]
    text += [_bullet(line) for line in summary(results)]
    text += [_bullet(note) for note in notes]
    if figure_note:
        text.append(_bullet(figure_note))
    by_name = {p.name: p for p in figures}
    for s, rows in _sections(results):
        text += ["", f"## {s.title}", "", s.table(rows)]
        if s.figure in by_name:
            text += ["", f"![{by_name[s.figure].stem}]({s.figure})"]
    report = out / "report.md"
    report.write_text("\n".join(text) + "\n")
    json_path = write_summary(
        out / SUMMARY_NAME,
        settings=settings,
        results=results,
        experiments=experiments or {},
        notes=[*notes, *([figure_note] if figure_note else [])],
        table=table,
    )
    return [report, *figures, json_path], figure_note


# ---------------------------------------------------------------- figures
def write_figures(out, results):
    """PNG figures (matplotlib Agg); ``([], note)`` when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from skmixup.utils._install import PLOT_INSTALL

        return [], f"Figures skipped: matplotlib is not installed ({PLOT_INSTALL})."
    out = pathlib.Path(out)
    return [
        s.plot(plt, out / s.figure, rows) for s, rows in _sections(results) if s.figure
    ], None


_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_STYLES = ("-", "--", ":", "-.")


def _plot_approx(plt, path, rows):
    from matplotlib.lines import Line2D

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    colors = {}
    for mixup in dict.fromkeys(r["mixup"] for r in rows):
        rs = [r for r in rows if r["mixup"] == mixup and r["training"] == "Mixup"]
        erm = [r for r in rows if r["mixup"] == mixup and r["training"] != "Mixup"]
        its = [r["iteration"] for r in rs]
        (line,) = left.plot(its, [r["exact"] for r in rs], "-o", markersize=5)
        color = colors[mixup] = line.get_color()
        left.plot(its, [r["approximate"] for r in rs], "--s", markersize=3, color=color)
        right.plot(its, [100 * r["relative_error"] for r in rs], "-o", color=color)
        for r in erm:  # another fit: a level, not a point on the Mixup path
            left.axhline(r["exact"], color=color, ls=":", lw=1.2)
            left.axhline(r["approximate"], color=color, ls="-.", lw=1.0)
            right.axhline(100 * r["relative_error"], color=color, ls=":", lw=1.2)
    swatches = [
        Line2D([], [], color=c, lw=6, label=f"Mixup {m}") for m, c in colors.items()
    ]
    grey = {"color": "0.3"}
    left.legend(
        handles=swatches
        + [
            Line2D([], [], ls="-", marker="o", label="exact, L-BFGS iterate", **grey),
            Line2D(
                [], [], ls="--", marker="s", ms=3, label="L_std+R1+R2, iterate", **grey
            ),
            Line2D([], [], ls=":", label="exact, at the ERM optimum", **grey),
            Line2D([], [], ls="-.", label="L_std+R1+R2, at the ERM optimum", **grey),
        ],
        fontsize=8,
    )
    right.legend(
        handles=swatches
        + [
            Line2D([], [], ls="-", marker="o", label="L-BFGS iterate", **grey),
            Line2D([], [], ls=":", label="at the ERM optimum", **grey),
        ],
        fontsize=8,
    )
    left.set(
        title="Mixup training loss",
        xlabel="L-BFGS iteration (Mixup training)",
        ylabel="Mixup training loss",
    )
    right.set(
        title="Relative error of the approximation",
        xlabel="L-BFGS iteration (Mixup training)",
        ylabel="(approx - exact) / exact  [%]",
    )
    right.axhline(0, color="0.6", lw=0.8)
    fig.suptitle("Exact vs second-order Mixup loss, logistic regression, moons")
    return _save(plt, fig, path)


def _legend_below(fig, axes, extra=(), ncol=3):
    """One legend for the whole figure, below the panels: it covers no curve."""
    handles = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    for h in extra:
        handles.setdefault(h.get_label(), h)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="lower center",
        ncol=min(ncol, len(handles)),
        fontsize=8,
        frameon=False,
    )
    return len(handles)


def _panels(plt, n, title, n_rows=1, sharey=False, size=(3.6, 3.2)):
    fig, axes = plt.subplots(
        n_rows,
        n,
        # at least 8 inches wide: the titles and the legend of a single data set
        # (a user's table) fit too
        figsize=(max(size[0] * n + 0.6, 8.0), size[1] * n_rows + 1.4),
        squeeze=False,
        sharey=sharey,
    )
    fig.suptitle(title)
    return fig, axes


def _plot_robust(plt, path, rows):
    from matplotlib.patches import Patch

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    n = _n_splits(rows)
    band = n > 1
    title = "FGSM robust test accuracy, ERM vs Mixup"
    title += f" (mean of {n} splits; band: ± 1 sd)" if band else " (one split)"
    fig, axes = _panels(plt, len(datasets), title, sharey=True)
    models = list(dict.fromkeys(r["model"] for r in rows))
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for i, model in enumerate(models):
            rs = [r for r in rows if r["dataset"] == dataset and r["model"] == model]
            if not rs:
                continue
            eps = np.array([r["eps"] for r in rs])
            acc = np.array([r["robust_accuracy"] for r in rs])
            (line,) = ax.plot(
                eps,
                acc,
                "--" if "MLP" in model else "-",
                marker=_MARKERS[i % len(_MARKERS)],
                label=model,
            )
            if band:
                sd = np.array([r["robust_accuracy_std"] for r in rs])
                ax.fill_between(
                    eps, acc - sd, acc + sd, color=line.get_color(), alpha=0.15, lw=0
                )
        ax.set(title=dataset, xlabel="FGSM eps (training standard deviations)")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("robust test accuracy")
    extra = [Patch(color="0.5", alpha=0.3, label="± 1 sd over splits")] if band else []
    ncol = 3 if len(datasets) > 2 else 2
    k = _legend_below(fig, axes[0], extra, ncol=ncol)
    fig.tight_layout(rect=(0, 0.06 * (-(-k // ncol)) + 0.02, 1, 1))
    return _save(plt, fig, path, layout=False)


def _families(rows):
    """``{family: rows}``: logistic models and MLPs (an ERM row in each), and the
    penalty MLP, whose ERM row is the MLP's."""
    out = {}
    for r in rows:
        if r["model"].startswith("MixupRegularizedMLP"):
            family = "penalty MLP"
        else:
            family = "MLP" if "MLP" in r["model"] else "logistic"
        out.setdefault(family, []).append(r)
    if "penalty MLP" in out:
        erm = [r for r in out.get("MLP", []) if r["model"] == ERM_MLP_NAME]
        out["penalty MLP"] = erm + out["penalty MLP"]
    return out


def _plot_gaps(plt, path, rows):
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    n = _n_splits(rows)
    title = "Train-test log-loss gap against Mixup"
    title += f" (mean of {n} splits; bars: ± 1 sd)" if n > 1 else " (one split)"
    fig, axes = _panels(plt, len(datasets), title)
    settings = list(dict.fromkeys(r["mixup"] for r in rows))
    families = _families(rows)
    width = 0.6 / max(1, len(families))
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for i, (family, rs) in enumerate(families.items()):
            rs = [r for r in rs if r["dataset"] == dataset]
            x = [
                settings.index(r["mixup"]) + (i - (len(families) - 1) / 2) * width
                for r in rs
            ]
            ax.errorbar(
                x,
                [r["log_loss_gap"] for r in rs],
                yerr=[r["log_loss_gap_std"] for r in rs] if n > 1 else None,
                fmt=_MARKERS[i % len(_MARKERS)],
                capsize=3,
                label=family,
            )
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xticks(range(len(settings)), settings)
        ax.set(title=dataset, xlabel="Mixup alpha, or (alpha, beta)")
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("test CE - train CE")
    _legend_below(fig, axes[0])
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(plt, fig, path, layout=False)


def _plot_reliability(plt, path, rows):
    from skmixup.metrics import ReliabilityDisplay

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    families = _families(rows)
    fig, axes = _panels(
        plt,
        len(datasets),
        "Reliability diagrams of the test predictions, pooled over the splits\n"
        "(legend: their ECE; shaded disc area: share of the predictions in the bin)",
        n_rows=len(families),
        size=(3.9, 3.6),
    )
    for row_axes, (family, frows) in zip(axes, families.items(), strict=True):
        for ax, dataset in zip(row_axes, datasets, strict=True):
            rs = [r for r in frows if r["dataset"] == dataset]
            for i, r in enumerate(rs):
                name = "ERM" if r["mixup"] == "ERM" else f"Mixup {r['mixup']}"
                ReliabilityDisplay.from_bins(r, estimator_name=name).plot(
                    ax,
                    show_counts=False,
                    ls=_STYLES[i % len(_STYLES)],
                    marker=_MARKERS[i % len(_MARKERS)],
                    markersize=4,
                )
            ax.set_title(f"{dataset}: {family}", fontsize=10)
            ax.set(xlabel="confidence", ylabel="accuracy")
            handles, _ = ax.get_legend_handles_labels()
            disc = ax.scatter(
                [], [], s=120, color="0.5", alpha=0.3, label="area: share of the bin"
            )
            ax.legend(
                handles=[*handles, disc],
                fontsize=7.5,
                loc="lower right",
                framealpha=0.85,
            )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(plt, fig, path, layout=False)


def _save(plt, fig, path, layout=True):
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
