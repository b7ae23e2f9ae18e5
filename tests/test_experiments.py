"""The experiments of ``python -m skmixup reproduce``, on tiny settings."""

import importlib.util
import sys

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixup.experiments import (
    approximation_experiment,
    generalization_experiment,
    robustness_experiment,
)
from skmixup.experiments._common import stratified_splits
from skmixup.experiments._generalization import BINS, GAP_VALUES
from skmixup.experiments._report import protocol, summary, tables, write_report
from skmixup.metrics import ReliabilityDisplay

APPROX_KEYS = {
    "mixup",
    "training",
    "iteration",
    "coef_norm",
    "exact",
    "approximate",
    "standard",
    "R1",
    "R2",
    "relative_error",
}
ROBUST_KEYS = {
    "dataset",
    "model",
    "eps",
    "robust_accuracy",
    "robust_accuracy_std",
    "certified_accuracy",
    "certified_accuracy_std",
    "band",
    "n_splits",
}
GAP_KEYS = (
    {"dataset", "model", "mixup", "n_splits"}
    | set(GAP_VALUES)
    | {v + "_std" for v in GAP_VALUES}
    | set(BINS)
)


@pytest.fixture(scope="module")
def approx_rows():
    return approximation_experiment(
        mixups=(1.0, (5.0, 0.5)), iterations=(0, 1, 2, 50), n_samples=80
    )


@pytest.fixture(scope="module")
def robust_rows():
    return robustness_experiment(["wine"], eps=(0.0, 0.1, 0.3), mlp=False, n_splits=2)


@pytest.fixture(scope="module")
def gap_rows():
    return generalization_experiment(
        ["wine"], mixups=(None, 0.2, (5.0, 0.5)), models=("logistic",), n_splits=2
    )


def test_approximation_rows(approx_rows):
    assert all(set(r) == APPROX_KEYS for r in approx_rows)
    for mixup in ("1.0", "(5.0, 0.5)"):
        rs = [r for r in approx_rows if r["mixup"] == mixup]
        assert [r["training"] for r in rs][-1] == "ERM optimum"
        its = [r["iteration"] for r in rs[:-1]]
        assert its[:3] == [0, 1, 2] and its == sorted(set(its))
        assert its[-1] < 50  # converged: the last iterate is reported once
        # R1 = -m1 [w . grad_w L_std - (w . x_bar) dL_std/db] (from Lemma 3.1 of
        # Zhang et al. 2021 for a linear model): zero where L_std is stationary.
        assert abs(rs[-1]["R1"]) < 1e-3 < rs[-1]["R2"]


def test_approximation_is_accurate_at_small_scale(approx_rows):
    for r in approx_rows:
        assert r["approximate"] == pytest.approx(r["standard"] + r["R1"] + r["R2"])
        assert r["relative_error"] == pytest.approx(
            (r["approximate"] - r["exact"]) / r["exact"]
        )
        if r["iteration"] == 0:  # zero coefficients: every logit difference is 0
            assert abs(r["relative_error"]) < 1e-10
            assert r["exact"] == pytest.approx(np.log(2))
        elif r["coef_norm"] < 1.2:
            assert abs(r["relative_error"]) < 0.03
    # The approximation gets worse as training makes the model confident.
    for mixup in ("1.0", "(5.0, 0.5)"):
        errors = [abs(r["relative_error"]) for r in approx_rows if r["mixup"] == mixup]
        assert errors[-2] > errors[1] > errors[0]
        assert errors[-1] > errors[-2]  # the ERM optimum is more confident still


def test_robustness_rows(robust_rows):
    assert all(set(r) == ROBUST_KEYS for r in robust_rows)
    for r in robust_rows:  # the truth lies in the band
        assert r["certified_accuracy"] <= r["robust_accuracy"]
        assert r["band"] == pytest.approx(
            r["robust_accuracy"] - r["certified_accuracy"]
        )
    zero = [r for r in robust_rows if r["eps"] == 0]
    assert all(r["band"] == 0 for r in zero)
    models = list(dict.fromkeys(r["model"] for r in robust_rows))
    assert models == [
        "LogisticRegression",
        "MixupLogisticRegression(alpha=5.0, beta=0.5)",
        "MixupRegularizedLogisticRegression(alpha=5.0, beta=0.5)",
    ]
    for model in models:
        accs = [r["robust_accuracy"] for r in robust_rows if r["model"] == model]
        assert len(accs) == 3 and accs == sorted(accs, reverse=True)
    assert all(r["n_splits"] == 2 for r in robust_rows)


def test_robust_accuracy_at_eps_zero_is_clean_accuracy(robust_rows):
    X, y = load_wine(return_X_y=True)
    scores = []
    for train, test in stratified_splits(y, n_splits=2, random_state=0):
        pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        scores.append(pipe.fit(X[train], y[train]).score(X[test], y[test]))
    (row,) = [
        r for r in robust_rows if r["model"] == "LogisticRegression" and r["eps"] == 0
    ]
    assert row["robust_accuracy"] == pytest.approx(np.mean(scores))


def test_robustness_is_deterministic(robust_rows):
    again = robustness_experiment(["wine"], eps=(0.0, 0.1, 0.3), mlp=False, n_splits=2)
    assert again == robust_rows


def test_generalization_rows_for_every_alpha(gap_rows):
    assert all(set(r) == GAP_KEYS for r in gap_rows)
    assert [r["mixup"] for r in gap_rows] == ["ERM", "0.2", "(5.0, 0.5)"]
    assert gap_rows[0]["model"] == "LogisticRegression"
    for r in gap_rows:
        assert r["log_loss_gap"] == pytest.approx(
            r["test_log_loss"] - r["train_log_loss"]
        )
        assert r["accuracy_gap"] == pytest.approx(
            r["train_accuracy"] - r["test_accuracy"]
        )


def test_mlp_rows():
    pytest.importorskip("torch")
    pytest.importorskip("skorch")
    mlp = {"hidden_layer_sizes": (8,), "max_iter": 3}
    robust = robustness_experiment(
        ["moons"], eps=(0.0, 0.2), mlp_params=mlp, n_splits=1
    )
    models = {r["model"] for r in robust}
    assert {
        "MLP ERM (mixup_prob=0)",
        "MixupMLPClassifier(alpha=5.0, beta=0.5)",
    } <= models
    gaps = generalization_experiment(
        ["moons"], mixups=(None, 1.0), models=("mlp",), mlp_params=mlp, n_splits=1
    )
    assert [(r["model"], r["mixup"]) for r in gaps] == [
        ("MLP ERM (mixup_prob=0)", "ERM"),
        ("MixupMLPClassifier(alpha=1.0)", "1.0"),
    ]


def test_calibration_of_the_generalization_fits(gap_rows):
    X, y = load_wine(return_X_y=True)
    for r in gap_rows:
        # every test sample of both splits is in exactly one bin
        assert r["bin_count"].sum() == 2 * (len(y) - len(y) // 2)
        pooled = ReliabilityDisplay.from_bins(r)
        conf, acc = pooled.prob_pred, pooled.prob_true
        assert np.all((conf >= 1 / 3 - 1e-12) & (conf <= 1) & (acc >= 0) & (acc <= 1))
        # the pooled ECE is close to the mean of the per-split ECEs
        assert pooled.ece == pytest.approx(r["ece"], abs=0.05)
        assert 0 <= r["ece"] <= 1


def test_protocol_is_built_from_the_settings():
    lines = protocol(
        {
            "robustness": {"n_splits": 2, "eps": (0.0, 0.4), "C": 0.5},
            "generalization": {"n_splits": 7, "C": 0.5, "mixups": (None, 2.0)},
        }
    )
    text = "\n".join(lines)
    assert "2 stratified train/test split(s)" in text
    assert "7 stratified train/test split(s)" in text
    assert "eps in (0.0, 0.4)" in text and "ERM, 2.0" in text
    assert "MixupLogisticRegression(C=0.5, n_partners='auto'" in text
    assert "LogisticRegression(C=0.5)" in text and "C=1" not in text


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="datasets must be among"):
        robustness_experiment(["iris"], mlp=False)
    with pytest.raises(ValueError, match="models must be among"):
        generalization_experiment(["wine"], models=("svm",))


def test_progress_counts_the_fits():
    lines = []
    robustness_experiment(
        ["wine"], eps=(0.0,), mlp=False, n_splits=1, progress=lines.append
    )
    assert [line.split("]")[0] for line in lines] == ["[1/3", "[2/3", "[3/3"]
    assert all(" wine split 1/1 " in line for line in lines)


def test_report(tmp_path, approx_rows, robust_rows, gap_rows):
    results = {"approx": approx_rows, "robust": robust_rows, "gaps": gap_rows}
    text = tables(results)
    assert len(text) == 5
    assert "| eps=0.3" in text["Robustness: FGSM robust test accuracy vs eps"]
    (certified_table,) = [t for t in text if t.startswith("Robustness: certified")]
    assert "(band " in text[certified_table]
    lines = summary(results)
    assert any(line.startswith("Robustness on wine at eps=0.3") for line in lines)
    (certified,) = [line for line in lines if line.startswith("Certified robust")]
    assert "is Mixup more robust by the lower bound?" in certified
    assert any("at the ERM optimum" in line for line in lines)
    assert any("logistic regression" in line for line in lines)
    (calibration,) = [line for line in lines if line.startswith("Calibration")]
    assert "lower test ECE than ERM in" in calibration and "of 2" in calibration
    paths, note = write_report(tmp_path, settings={"n_splits": 2}, results=results)
    report = (tmp_path / "report.md").read_text()
    assert "## What we measured" in report and "- n_splits: 2" in report
    for title in text:
        assert f"## {title}" in report
    if importlib.util.find_spec("matplotlib") is not None:
        assert note is None
        assert {p.name for p in paths[1:]} == {
            "approximation.png",
            "robustness.png",
            "generalization_gap.png",
            "reliability.png",
            "summary.json",
        }
        assert all(p.stat().st_size > 1000 for p in paths)
        assert "![reliability](reliability.png)" in report


def test_main_says_when_figures_are_skipped(
    tmp_path, monkeypatch, capsys, approx_rows, robust_rows, gap_rows
):
    import skmixup.__main__ as cli
    import skmixup.experiments._reproduce as reproduce

    results = {"approx": approx_rows, "robust": robust_rows, "gaps": gap_rows}
    monkeypatch.setattr(reproduce, "run_reproduce", lambda *a, **k: (results, {}))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed
    monkeypatch.chdir(tmp_path)
    assert cli.main(["reproduce", "--datasets", "wine"]) == 0
    out = capsys.readouterr().out
    note = "Figures skipped: matplotlib is not installed"
    assert f'note: {note} (pip install "skmixup[plot]")' in out
    folder = tmp_path / "skmixup-report"
    assert f"wrote 2 files to {folder}:\n  report.md\n  summary.json\n" in out
    report = (tmp_path / "skmixup-report" / "report.md").read_text()
    assert note in report
    assert out.index("## What we measured") > out.index("## Calibration")


def test_progress_is_labelled():
    lines = []
    robustness_experiment(
        ["wine"], eps=(0.0, 0.1), mlp=False, n_splits=1, progress=lines.append
    )
    assert lines[0].startswith("[1/3] wine split 1/1 LogisticRegression: eps 0: ")
    assert ", eps 0.1: " in lines[0]
    lines = []
    approximation_experiment(
        mixups=(1.0,), iterations=(0, 2), n_samples=60, progress=lines.append
    )
    assert "iteration 0: +0.00%, iteration 2: -" in lines[0]  # no negative zero
    assert ", ERM optimum: -" in lines[0]


def test_verdicts_need_a_difference_beyond_the_spread():
    from skmixup.experiments._report import verdict, with_sd

    # the wine MLP case: 0.723 (sd 0.042) vs 0.734 (sd 0.060)
    assert verdict(0.723, 0.042, 0.734, 0.060, 3) == "within the spread"
    assert verdict(0.482, 0.01, 0.433, 0.012, 3) == "better"
    assert verdict(0.40, 0.01, 0.433, 0.012, 3) == "worse"
    assert verdict(0.440, 0.0, 0.433, 0.0, 3) == "within the spread"  # <= TIE
    assert verdict(0.1, 0.0, 0.2, 0.0, 3, higher_is_better=False) == "better"
    # one split: no spread, no judgement, no sd
    assert verdict(0.9, 0.0, 0.5, 0.0, 1) == "higher"
    assert with_sd(0.9, 0.0, 1) == "0.900"
    assert with_sd(-0.00001, 0.0123, 2) == "0.000 (sd 0.012)"


def test_report_text_is_wrapped_and_judged(
    tmp_path, approx_rows, robust_rows, gap_rows
):
    results = {"approx": approx_rows, "robust": robust_rows, "gaps": gap_rows}
    write_report(tmp_path, settings={"n_splits": 2}, results=results)
    report = (tmp_path / "report.md").read_text()
    prose = [line for line in report.splitlines() if not line.startswith("|")]
    assert max(map(len, prose)) <= 88
    assert "-0.000" not in report and "-0.00%" not in report
    text = " ".join(report.split())  # unwrapped
    assert "larger of the two split-to-split standard deviations" in text
    assert "(sd " in text  # two splits: the spread is shown
    assert "(test log-loss " in text
    assert "its test log-loss was higher than ERM's in" in text
    # the ERM optimum is another fit: no iteration number of the Mixup path
    (erm_line,) = [
        line
        for line in report.splitlines()
        if "| 1.0 " in line and "ERM optimum" in line
    ]
    assert erm_line.split("|")[3].strip() == "-"


def test_one_split_report_shows_no_sd(tmp_path):
    robust = robustness_experiment(["wine"], eps=(0.0, 0.1), mlp=False, n_splits=1)
    write_report(tmp_path, settings={}, results={"robust": robust})
    report = (tmp_path / "report.md").read_text()
    assert "sd " not in report and "±" not in report
    assert "One split: there is no split-to-split spread" in " ".join(report.split())
    verdicts = [line for line in report.splitlines() if "Robustness on wine" in line]
    assert verdicts and ": better" not in report and ": worse" not in report
    assert ": lower" in report or ": higher" in report or ": equal" in report


def test_summary_json_round_trips(tmp_path, robust_rows, gap_rows):
    from skmixup.experiments._report import load_summary

    results = {"robust": robust_rows, "gaps": gap_rows}
    paths, _ = write_report(
        tmp_path,
        settings={"command": "x"},
        results=results,
        experiments={"robustness": {"eps": (0.0, 0.1, 0.3), "n_splits": 2}},
    )
    assert paths[-1].name == "summary.json"
    data = load_summary(paths[-1])
    assert data["experiments"]["robustness"]["eps"] == [0.0, 0.1, 0.3]
    assert data["summary"] == summary(results)
    for key, rows in results.items():
        assert len(data["results"][key]) == len(rows)
        for stored, row in zip(data["results"][key], rows, strict=True):
            assert set(stored) == set(row)
            for name, value in row.items():
                np.testing.assert_array_equal(stored[name], value)
    # the report rebuilt from the stored summary is the same report
    again = tmp_path / "again"
    write_report(
        again,
        settings=data["settings"],
        results=data["results"],
        experiments=data["experiments"],
    )
    assert (again / "report.md").read_text() == (tmp_path / "report.md").read_text()


def test_a_new_experiment_is_one_registry_entry(tmp_path, monkeypatch):
    """What issues adding experiments do: one Section (and one EXPERIMENTS entry)."""
    from skmixup.experiments import _report, _reproduce

    def extra_experiment(datasets, *, size=3, random_state=0, progress=None):
        return [{"dataset": d, "value": float(size)} for d in datasets]

    def plot(plt, path, rows):
        fig, ax = plt.subplots()
        ax.plot([r["value"] for r in rows], "o", label="value")
        ax.legend()
        fig.savefig(path)
        plt.close(fig)
        return path

    section = _report.Section(
        "extra",
        "Extra: a new experiment",
        lambda rows: _report.format_table(rows, ["dataset", "value"]),
        lambda rows: [f"Extra measured {rows[0]['value']:g}."],
        "extra.png",
        plot,
        protocol=lambda kw: [f"Extra: size {kw['size']}."],
        experiment="extra",
    )
    monkeypatch.setattr(_report, "SECTIONS", [*_report.SECTIONS, section])
    monkeypatch.setattr(
        _reproduce,
        "EXPERIMENTS",
        (*_reproduce.EXPERIMENTS, ("extra", "extra", extra_experiment)),
    )
    results = {"extra": extra_experiment(["wine"], size=4)}
    paths, _ = write_report(
        tmp_path, settings={}, results=results, experiments={"extra": {"size": 4}}
    )
    report = (tmp_path / "report.md").read_text()
    assert "## Extra: a new experiment" in report and "| wine" in report
    assert "- Extra measured 4." in report and "- Extra: size 4." in report
    names = [p.name for p in paths]
    if importlib.util.find_spec("matplotlib") is not None:
        assert "extra.png" in names and "![extra](extra.png)" in report
    assert "summary.json" in names
