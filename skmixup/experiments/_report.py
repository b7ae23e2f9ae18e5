"""Tables, a measured summary and figures for ``python -m skmixup reproduce``."""

import pathlib

from skmixup.experiments._demo import format_table
from skmixup.experiments._generalization import GAP_VALUES

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
GAP_COLUMNS = ["dataset", "model", "mixup", *GAP_VALUES]
PROTOCOL = [
    "Every model is a StandardScaler pipeline fitted on a stratified 50/50 "
    "train/test split; numbers are means over the splits (n_splits in the "
    "settings) with seeds from random_state; on CPU the run is deterministic.",
    "Logistic models: scikit-learn LogisticRegression (ERM), "
    "MixupLogisticRegression (exact expected Mixup loss, 8 partners per sample) and "
    "MixupRegularizedLogisticRegression (L_std + R1 + R2), all with C=1.",
    "MLP: MixupMLPClassifier, two ReLU layers, Adam 1e-3, batches of 200, no weight "
    "decay (alpha=0), a fixed number of epochs (tol=0); ERM is the same network "
    "with mixup_prob=0 and the same seed. Torch runs on one thread. The penalty "
    "MLP is the same network as MixupRegularizedMLPClassifier (cross-entropy + "
    "R1 + R2 + R3, no mixed inputs).",
    "FGSM (l_inf) attacks the raw test inputs through the pipeline with "
    "feature_scale = the training standard deviation (the scaler's scale_), so eps "
    "is in standardized units, exactly as if the scaled inputs were attacked; no "
    "clipping. Robust accuracy counts every test sample (at eps=0 it is the clean "
    "accuracy).",
    "Gaps: log_loss_gap = test CE - standard (un-mixed) train CE; accuracy_gap = "
    "train - test accuracy. Mixup 'ERM' rows are the ERM models.",
    "Approximation: the expected ConvergenceWarning of the truncated L-BFGS fits "
    "(max_iter = the iteration shown) is silenced, only there.",
]
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


def tables(approx, robust, gaps):
    """Markdown tables ``{title: table}`` of the three experiments (None: skipped)."""
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
    return out


def summary(approx, robust, gaps):
    """Sentences stating what the numbers show, and only that."""
    lines = []
    if approx:
        lines.append(_approx_summary(approx))
    if robust:
        lines += _robust_summary(robust)
    if gaps:
        lines += _gap_summary(gaps)
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
            (m, "LogisticRegression")
            for m in at
            if m.startswith(("MixupLogistic", "MixupRegularizedLogistic"))
        ]
        pairs += [
            (m, "MLP ERM (mixup_prob=0)")
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


def _gap_summary(rows):
    lines = []
    families = {
        "Logistic": "LogisticRegression",
        "MLP": "MLP ERM (mixup_prob=0)",
        "RegularizedMLP": "MLP ERM (mixup_prob=0)",
    }
    for family, erm in families.items():
        fam = [
            r
            for r in rows
            if r["model"] == erm or r["model"].startswith(f"Mixup{family}")
        ]
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
        name = {"Logistic": "logistic regression", "MLP": "the MLP"}.get(
            family, "the penalty MLP (MixupRegularizedMLPClassifier)"
        )
        lines.append(
            f"Generalization, {name}: Mixup gave a smaller log-loss gap (test CE - "
            f"train CE) than ERM in {smaller} of {total} (data set, alpha) cases; "
            + "; ".join(parts)
            + "."
        )
    return lines


def write_report(out, *, settings, approx, robust, gaps, notes=()):
    """Write ``report.md`` and the figures into ``out``; return the paths written."""
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures, figure_note = write_figures(out, approx, robust, gaps)
    text = ["# skmixup reproduce", "", "## Settings", ""]
    text += [f"- {k}: {v}" for k, v in settings.items()]
    text += [f"- {line}" for line in PROTOCOL]
    text += ["", "## What we measured", ""]
    text += [f"- {line}" for line in summary(approx, robust, gaps)]
    text += [f"- {note}" for note in notes]
    if figure_note:
        text.append(f"- {figure_note}")
    for title, table in tables(approx, robust, gaps).items():
        text += ["", f"## {title}", "", table]
    if figures:
        text += ["", "## Figures", ""]
        text += [f"![{p.stem}]({p.name})" for p in figures]
    report = out / "report.md"
    report.write_text("\n".join(text) + "\n")
    return [report, *figures]


def write_figures(out, approx, robust, gaps):
    """PNG figures (matplotlib Agg); ``([], note)`` when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "Figures skipped: matplotlib is not installed."
    paths = []
    if approx:
        paths.append(_plot_approx(plt, out, approx))
    if robust:
        paths.append(_plot_robust(plt, out, robust))
    if gaps:
        paths.append(_plot_gaps(plt, out, gaps))
    return paths, None


def _plot_approx(plt, out, rows):
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for mixup in dict.fromkeys(r["mixup"] for r in rows):
        rs = [r for r in rows if r["mixup"] == mixup and r["training"] == "Mixup"]
        its = [r["iteration"] for r in rs]
        (line,) = left.plot(its, [r["exact"] for r in rs], label=f"exact {mixup}")
        left.plot(
            its,
            [r["approximate"] for r in rs],
            "--",
            color=line.get_color(),
            label=f"L_std+R1+R2 {mixup}",
        )
        right.plot(
            its,
            [100 * r["relative_error"] for r in rs],
            marker="o",
            color=line.get_color(),
            label=f"Mixup {mixup}",
        )
    left.set(xlabel="L-BFGS iteration", ylabel="Mixup training loss")
    left.legend(fontsize=7)
    right.set(xlabel="L-BFGS iteration", ylabel="(approx - exact) / exact  [%]")
    right.legend(fontsize=7)
    fig.suptitle("Exact vs second-order Mixup loss, logistic regression, moons")
    return _save(plt, fig, out / "approximation.png")


def _plot_robust(plt, out, rows):
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(
        1, len(datasets), figsize=(4 * len(datasets), 3.5), squeeze=False
    )
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for model in dict.fromkeys(r["model"] for r in rows):
            rs = [r for r in rows if r["dataset"] == dataset and r["model"] == model]
            style = "--" if "MLP" in model else "-"
            ax.plot(
                [r["eps"] for r in rs],
                [r["robust_accuracy"] for r in rs],
                style,
                marker="o",
                label=model,
            )
        ax.set(title=dataset, xlabel="FGSM eps (training std)")
    axes[0, 0].set_ylabel("robust test accuracy")
    axes[0, -1].legend(fontsize=6)
    return _save(plt, fig, out / "robustness.png")


def _gap_family(model):
    if model.startswith("MixupRegularizedMLP"):
        return "RegularizedMLP"
    return "MLP" if "MLP" in model else "logistic"


def _plot_gaps(plt, out, rows):
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(
        1, len(datasets), figsize=(4 * len(datasets), 3.5), squeeze=False
    )
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for family in ("logistic", "MLP", "RegularizedMLP"):
            rs = [
                r
                for r in rows
                if r["dataset"] == dataset and _gap_family(r["model"]) == family
            ]
            if rs:
                ax.plot(
                    [r["mixup"] for r in rs],
                    [r["log_loss_gap"] for r in rs],
                    marker="o",
                    label=family,
                )
        ax.set(title=dataset, xlabel="Mixup (alpha or (alpha, beta))")
    axes[0, 0].set_ylabel("test CE - train CE")
    axes[0, -1].legend()
    return _save(plt, fig, out / "generalization_gap.png")


def _save(plt, fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
