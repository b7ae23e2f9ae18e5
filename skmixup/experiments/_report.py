"""Tables, a measured summary, the protocol and figures of ``reproduce``."""

import inspect
import pathlib

from skmixup.experiments._approximation import approximation_experiment
from skmixup.experiments._calibration import reliability_curve
from skmixup.experiments._common import mixup_label, torch_available
from skmixup.experiments._compose import (
    compose_protocol,
    compose_summary,
    compose_tables,
)
from skmixup.experiments._demo import format_table
from skmixup.experiments._generalization import (
    GAP_VALUES,
    generalization_experiment,
)
from skmixup.experiments._models import (
    ERM_LOGISTIC_NAME,
    ERM_MLP_NAME,
    MODELS,
    describe,
)
from skmixup.experiments._robustness import CURVES, robustness_experiment

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
CALIBRATION_COLUMNS = ["dataset", "model", "mixup", "test_accuracy", "ece", "ece_std"]
FIGURE_NAMES = {
    "approx": "approximation.png",
    "robust": "robustness.png",
    "gaps": "generalization_gap.png",
    "calibration": "reliability.png",
}
# Within this many points of accuracy, a robust-accuracy difference is "no change".
_TIE = 0.01


def robustness_wide(rows):
    """One row per data set and model, one ``eps=...`` column per radius."""
    wide = {}
    for r in rows:
        key = (r["dataset"], r["model"])
        wide.setdefault(key, {"dataset": key[0], "model": key[1]})
        wide[key][f"eps={r['eps']:g}"] = r["robust_accuracy"]
    return list(wide.values())


def tables(approx, robust, gaps, compose=()):
    """Markdown tables ``{title: table}`` of the experiments (empty rows: skipped).

    The generalization rows give two tables: the train-test gaps and the
    calibration (expected calibration error on the test set).
    """
    out = {}
    if approx:
        out["Approximation: exact vs second-order Mixup loss along training"] = (
            format_table(approx, APPROX_COLUMNS)
        )
    if robust:
        wide = robustness_wide(robust)
        out["Robustness: FGSM robust test accuracy vs eps"] = format_table(
            wide, list(wide[0])
        )
    if gaps:
        out["Generalization: train-test gaps vs Mixup"] = format_table(
            gaps, GAP_COLUMNS
        )
        out["Calibration: expected calibration error (test set) vs Mixup"] = (
            format_table(gaps, CALIBRATION_COLUMNS)
        )
    out.update(compose_tables(compose))
    return out


def summary(approx, robust, gaps, compose=()):
    """Sentences stating what the numbers show, and only that."""
    lines = []
    if approx:
        lines.append(_approx_summary(approx))
    if robust:
        lines += _robust_summary(robust)
    if gaps:
        lines += _gap_summary(gaps)
        lines += _calibration_summary(gaps)
    lines += compose_summary(compose)
    return lines


def resolved_settings(experiments):
    """Every keyword of each experiment: its defaults updated with ``experiments``.

    ``experiments`` maps ``"approximation"``, ``"robustness"`` and
    ``"generalization"`` to the keyword arguments a run used.
    """
    funcs = {
        "approximation": approximation_experiment,
        "robustness": robustness_experiment,
        "generalization": generalization_experiment,
    }
    out = {}
    for name, func in funcs.items():
        params = inspect.signature(func).parameters.values()
        defaults = {p.name: p.default for p in params if p.default is not p.empty}
        defaults.pop("progress", None)
        out[name] = {**defaults, **experiments.get(name, {})}
    return out


def protocol(experiments):
    """The protocol of a run, as sentences built from the settings it used."""
    settings = resolved_settings(experiments)
    rob, gen, app = (
        settings["robustness"],
        settings["generalization"],
        settings["approximation"],
    )
    lines = []
    for name, kw in (("Robustness", rob), ("Generalization", gen)):
        lines.append(
            f"{name}: every model is a StandardScaler pipeline fitted on "
            f"{kw['n_splits']} stratified train/test split(s) per data set (test "
            f"fraction {kw['test_size']}); numbers are means over the splits, seeded "
            f"by random_state={kw['random_state']}; on CPU the run is deterministic."
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
    lines.append(
        f"FGSM (l_inf) with eps in {tuple(rob['eps'])} attacks the raw test inputs "
        "through the pipeline with feature_scale = the training standard deviation "
        "(the scaler's scale_), so eps is in standardized units; no clipping. "
        f"Mixup models use Mixup {mixup_label(rob['mixup'])}. Robust accuracy counts "
        "every test sample (at eps=0 it is the clean accuracy)."
    )
    lines.append(
        "Gaps, for Mixup settings "
        + ", ".join(mixup_label(m) for m in gen["mixups"])
        + ": log_loss_gap = test CE - standard (un-mixed) train CE; accuracy_gap = "
        "train - test accuracy. Calibration: expected calibration error (ECE) of "
        f"the top-label confidence on the test set, {gen['n_bins']} equal-width "
        "bins; the reliability diagram pools the test predictions of all splits."
    )
    lines.append(
        "Approximation: standardized make_moons "
        f"(n_samples={app['n_samples']}, noise={app['noise']}), Mixup "
        + ", ".join(mixup_label(m) for m in app["mixups"])
        + f", L-BFGS iterations {tuple(app['iterations'])}; the expected "
        "ConvergenceWarning of the truncated fits is silenced, only there."
    )
    return lines


def _approx_summary(rows):
    parts = []
    for mixup in dict.fromkeys(r["mixup"] for r in rows):
        path = [r for r in rows if r["mixup"] == mixup and r["training"] == "Mixup"]
        erm = [r for r in rows if r["mixup"] == mixup and r["training"] != "Mixup"]
        if not path:
            continue
        text = (
            f"Mixup {mixup}: {path[0]['relative_error']:+.2%} at iteration "
            f"{path[0]['iteration']} (||w|| = {path[0]['coef_norm']:.2f}), "
            f"{path[-1]['relative_error']:+.2%} at the last iterate "
            f"{path[-1]['iteration']} (||w|| = {path[-1]['coef_norm']:.2f})"
        )
        if erm:
            text += (
                f", {erm[0]['relative_error']:+.2%} at the ERM optimum "
                f"(||w|| = {erm[0]['coef_norm']:.2f})"
            )
        parts.append(text)
    return (
        "Approximation (logistic regression trained on the exact Mixup loss, "
        "standardized moons): the relative error (approx - exact) / exact of "
        "L_std + R1 + R2 was " + "; ".join(parts) + "."
    )


def _robust_summary(rows):
    eps_max = max(r["eps"] for r in rows)
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        at = {
            r["model"]: (r["robust_accuracy"], r["robust_accuracy_std"])
            for r in rows
            if r["dataset"] == dataset and r["eps"] == eps_max
        }
        pairs = [
            (m, ERM_LOGISTIC_NAME)
            for m in at
            if m.startswith(("MixupLogistic", "MixupRegularizedLogistic"))
        ]
        pairs += [
            (m, ERM_MLP_NAME)
            for m in at
            if m.startswith(("MixupMLP", "MixupRegularizedMLP"))
        ]
        verdicts = []
        for model, base in pairs:
            if base not in at:
                continue
            (acc, std), (base_acc, base_std) = at[model], at[base]
            diff = acc - base_acc
            word = (
                "no change"
                if abs(diff) <= _TIE
                else ("better" if diff > 0 else "worse")
            )
            verdicts.append(
                f"{model} {acc:.3f} (sd {std:.3f}) vs {base} {base_acc:.3f} "
                f"(sd {base_std:.3f}): {word}"
            )
        lines.append(
            f"Robustness on {dataset} at eps={eps_max:g}: " + "; ".join(verdicts) + "."
        )
    lines.append(
        f"('no change' means within {_TIE:.2f} accuracy; sd is the standard "
        "deviation over the splits, so differences smaller than it are not "
        "conclusive.)"
    )
    return lines


# (family named in the summary, its ERM model, prefix of its Mixup models, what
# its Mixup models add to ERM); the penalty MLP's ERM counterpart is the MLP
# trained with mixup_prob=0.
_SUMMARY_FAMILIES = (
    ("logistic regression", ERM_LOGISTIC_NAME, "MixupLogistic", "Mixup"),
    ("the MLP", ERM_MLP_NAME, "MixupMLP", "Mixup"),
    (
        "the penalty MLP (MixupRegularizedMLPClassifier)",
        ERM_MLP_NAME,
        "MixupRegularizedMLP",
        "the explicit penalty",
    ),
)


def _gap_summary(rows):
    lines = []
    for family, erm, prefix, what in _SUMMARY_FAMILIES:
        fam = [r for r in rows if r["model"] == erm or r["model"].startswith(prefix)]
        if not fam:
            continue
        smaller, total, parts = 0, 0, []
        for dataset in dict.fromkeys(r["dataset"] for r in fam):
            rs = {r["mixup"]: r for r in fam if r["dataset"] == dataset}
            if "ERM" not in rs:
                continue
            base = rs.pop("ERM")["log_loss_gap"]
            for r in rs.values():
                total += 1
                smaller += r["log_loss_gap"] < base
            best = min(rs.values(), key=lambda r: r["log_loss_gap"], default=None)
            if best is not None:
                parts.append(
                    f"{dataset} {base:+.3f} (ERM) vs {best['log_loss_gap']:+.3f} "
                    f"(smallest Mixup gap, at {best['mixup']})"
                )
        lines.append(
            f"Generalization, {family}: {what} gave a smaller log-loss gap (test CE - "
            f"train CE) than ERM in {smaller} of {total} (data set, alpha) cases; "
            + "; ".join(parts)
            + "."
        )
    return lines


def _calibration_summary(rows):
    lines = []
    for family, erm, prefix, what in _SUMMARY_FAMILIES:
        better, total, parts = 0, 0, []
        for dataset in dict.fromkeys(r["dataset"] for r in rows):
            rs = [r for r in rows if r["dataset"] == dataset]
            base = [r for r in rs if r["model"] == erm]
            mix = [r for r in rs if r["model"].startswith(prefix)]
            if not base or not mix:
                continue
            base = base[0]["ece"]
            total += len(mix)
            better += sum(r["ece"] < base for r in mix)
            parts.append(
                f"{dataset} {base:.3f} (ERM) vs "
                + ", ".join(f"{r['ece']:.3f} ({r['mixup']})" for r in mix)
            )
        if total:
            lines.append(
                f"Calibration, {family}: {what} had a lower test ECE than ERM in "
                f"{better} of {total} (data set, alpha) cases; "
                + "; ".join(parts)
                + "."
            )
    return lines


def write_report(
    out, *, settings, approx, robust, gaps, compose=(), experiments=None, notes=()
):
    """Write ``report.md`` and the figures into ``out``.

    ``settings`` are printed as given; ``experiments`` (the keyword arguments of
    each experiment, see :func:`protocol`) give the protocol text.

    Returns
    -------
    paths : list of pathlib.Path
        ``report.md``, then the figures.
    figure_note : str or None
        Why the figures were skipped (matplotlib missing), else None.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures, figure_note = write_figures(out, approx, robust, gaps)
    text = ["# skmixup reproduce", "", "## Settings", ""]
    text += [f"- {k}: {v}" for k, v in settings.items()]
    text += [f"- {line}" for line in protocol(experiments or {})]
    if compose:
        compose_settings = (experiments or {}).get("compose")
        text += [f"- {line}" for line in compose_protocol(compose_settings)]
    text += ["", "## What we measured", ""]
    text += [f"- {line}" for line in summary(approx, robust, gaps, compose)]
    text += [f"- {note}" for note in notes]
    if figure_note:
        text.append(f"- {figure_note}")
    for title, table in tables(approx, robust, gaps, compose).items():
        text += ["", f"## {title}", "", table]
        key = _figure_key(title)
        for path in figures:
            if key and path.name == FIGURE_NAMES[key]:
                text += ["", f"![{path.stem}]({path.name})"]
    report = out / "report.md"
    report.write_text("\n".join(text) + "\n")
    return [report, *figures], figure_note


def _figure_key(title):
    for key, word in (
        ("approx", "Approximation"),
        ("robust", "Robustness"),
        ("gaps", "Generalization"),
        ("calibration", "Calibration"),
    ):
        if title.startswith(word):
            return key
    return None


def write_figures(out, approx, robust, gaps):
    """PNG figures (matplotlib Agg); ``([], note)`` when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], (
            "Figures skipped: matplotlib is not installed "
            '(pip install "skmixup[plot]").'
        )
    out = pathlib.Path(out)
    paths = []
    if approx:
        paths.append(_plot_approx(plt, out / FIGURE_NAMES["approx"], approx))
    if robust:
        paths.append(_plot_robust(plt, out / FIGURE_NAMES["robust"], robust))
    if gaps:
        paths.append(_plot_gaps(plt, out / FIGURE_NAMES["gaps"], gaps))
        paths.append(_plot_reliability(plt, out / FIGURE_NAMES["calibration"], gaps))
    return paths, None


_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_STYLES = ("-", "--", ":", "-.")


def _plot_approx(plt, path, rows):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for i, mixup in enumerate(dict.fromkeys(r["mixup"] for r in rows)):
        rs = [r for r in rows if r["mixup"] == mixup and r["training"] == "Mixup"]
        erm = [r for r in rows if r["mixup"] == mixup and r["training"] != "Mixup"]
        its = [r["iteration"] for r in rs]
        marker = _MARKERS[i % len(_MARKERS)]
        (line,) = left.plot(
            its,
            [r["exact"] for r in rs],
            marker=marker,
            fillstyle="none",
            markersize=8,
            label=f"exact, Mixup {mixup}",
        )
        color = line.get_color()
        left.plot(
            its,
            [r["approximate"] for r in rs],
            "--",
            marker=marker,
            markersize=3,
            color=color,
            label=f"L_std+R1+R2, Mixup {mixup}",
        )
        right.plot(
            its,
            [100 * r["relative_error"] for r in rs],
            _STYLES[i % len(_STYLES)],
            marker=marker,
            color=color,
            label=f"Mixup {mixup}",
        )
        for r in erm:  # the ERM optimum, at the iteration where its fit stopped
            left.plot(r["iteration"], r["exact"], "*", color=color, markersize=12)
            left.plot(r["iteration"], r["approximate"], "x", color=color)
            right.plot(
                r["iteration"],
                100 * r["relative_error"],
                "*",
                color=color,
                markersize=12,
                label=f"ERM optimum, Mixup {mixup} loss",
            )
    left.set(
        title="Mixup training loss (star: exact at the ERM optimum)",
        xlabel="L-BFGS iteration",
        ylabel="Mixup training loss",
    )
    right.set(
        title="Relative error of the approximation",
        xlabel="L-BFGS iteration",
        ylabel="(approx - exact) / exact  [%]",
    )
    right.axhline(0, color="0.6", lw=0.8)
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.suptitle("Exact vs second-order Mixup loss, logistic regression, moons")
    return _save(plt, fig, path)


def _legend_below(fig, axes):
    """One legend for the whole figure, below the panels: it covers no curve."""
    handles, labels = {}, {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
            labels[label] = label
    fig.legend(
        list(handles.values()),
        list(labels),
        loc="lower center",
        ncol=min(3, len(labels)),
        fontsize=8,
        frameon=False,
    )
    return len(labels)


def _panels(plt, n, title, n_rows=1):
    fig, axes = plt.subplots(
        n_rows, n, figsize=(3.6 * n + 0.6, 3.2 * n_rows + 1.4), squeeze=False
    )
    fig.suptitle(title)
    return fig, axes


def _plot_robust(plt, path, rows):
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = _panels(
        plt, len(datasets), "FGSM robust test accuracy, ERM vs Mixup (mean of splits)"
    )
    models = list(dict.fromkeys(r["model"] for r in rows))
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for i, model in enumerate(models):
            rs = [r for r in rows if r["dataset"] == dataset and r["model"] == model]
            ax.plot(
                [r["eps"] for r in rs],
                [r["robust_accuracy"] for r in rs],
                "--" if "MLP" in model else "-",
                marker=_MARKERS[i % len(_MARKERS)],
                label=model,
            )
        ax.set(title=dataset, xlabel="FGSM eps (training standard deviations)")
    axes[0, 0].set_ylabel("robust test accuracy")
    n = _legend_below(fig, axes[0])
    fig.tight_layout(rect=(0, 0.06 * ((n + 2) // 3), 1, 1))
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
    fig, axes = _panels(
        plt, len(datasets), "Train-test log-loss gap against Mixup (mean of splits)"
    )
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for i, (family, rs) in enumerate(_families(rows).items()):
            rs = [r for r in rs if r["dataset"] == dataset]
            ax.plot(
                [r["mixup"] for r in rs],
                [r["log_loss_gap"] for r in rs],
                _STYLES[i % len(_STYLES)],
                marker=_MARKERS[i % len(_MARKERS)],
                label=family,
            )
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set(title=dataset, xlabel="Mixup (alpha or (alpha, beta)); ERM: none")
    axes[0, 0].set_ylabel("test CE - train CE")
    _legend_below(fig, axes[0])
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return _save(plt, fig, path, layout=False)


def _plot_reliability(plt, path, rows):
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    families = _families(rows)
    fig, axes = _panels(
        plt,
        len(datasets),
        "Reliability diagram on the test sets (ECE in the legend)",
        n_rows=len(families),
    )
    fig.set_figheight(fig.get_figheight() + 0.8 * len(families))
    for row_axes, (family, frows) in zip(axes, families.items(), strict=True):
        for ax, dataset in zip(row_axes, datasets, strict=True):
            ax.plot([0, 1], [0, 1], color="0.6", lw=0.8)
            rs = [r for r in frows if r["dataset"] == dataset]
            for i, r in enumerate(rs):
                conf, acc, _ = reliability_curve(r)
                ax.plot(
                    conf,
                    acc,
                    _STYLES[i % len(_STYLES)],
                    marker=_MARKERS[i % len(_MARKERS)],
                    label=f"{_setting_text(r['mixup'])}: ECE {r['ece']:.3f}",
                )
            ax.set(
                title=f"{dataset}, {family}",
                xlim=(0, 1.02),
                ylim=(0, 1.02),
                xlabel="confidence (top-label probability)",
            )
            ax.legend(  # below the panel: it covers no curve
                fontsize=7,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.22),
                ncol=2,
                frameon=False,
            )
        row_axes[0].set_ylabel("accuracy")
    return _save(plt, fig, path)


def _setting_text(mixup):
    return "ERM" if mixup == "ERM" else f"Mixup {mixup}"


def _save(plt, fig, path, layout=True):
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
