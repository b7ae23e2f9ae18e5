"""The README's Python example runs, and its commands are the ones CI runs."""

import pathlib
import re
import subprocess
import sys

import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from skmixup.metrics import make_adversarial_scorer

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _blocks(lang):
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _bash(containing):
    (block,) = [b for b in _blocks("bash") if containing in b]
    return block


def test_readme_quick_start_prints_what_the_readme_shows(capsys):
    (code,) = _blocks("python")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    printed = capsys.readouterr().out
    (shown,) = _blocks("text")
    assert printed == shown
    search = namespace["search"]
    # The selected alpha is the one with the best cross-validated robust score,
    # recomputed here independently of GridSearchCV.
    X, y = namespace["X_train"], namespace["y_train"]
    scorer = make_adversarial_scorer(eps=0.2)
    scores = {
        alpha: cross_val_score(
            clone(search.estimator).set_params(
                mixuplogisticregression__mixup_alpha=alpha
            ),
            X,
            y,
            scoring=scorer,
            cv=3,
        ).mean()
        for alpha in (0.2, 1.0, 4.0)
    }
    best = max(scores, key=scores.get)  # the first of ties, as GridSearchCV
    assert search.best_params_ == {"mixuplogisticregression__mixup_alpha": best}
    df = namespace["df"]  # the frame the README promises
    assert df["age"].isna().any() and df["income"].isna().any()
    assert isinstance(df["city"].dtype, pd.CategoricalDtype)
    assert namespace["y"].dtype.kind in "OU"


def test_readme_names_the_public_tools():
    text = (ROOT / "README.md").read_text()
    for name in (
        "robust_accuracy_score",
        "make_adversarial_scorer",
        "expected_calibration_error",
        "ReliabilityDisplay",
        "mixup_beta",
        "--data TABLE.csv --target",
        "--index-url https://download.pytorch.org/whl/cpu",
    ):
        assert name in text, name
    assert "mixup_alpha=0` is rejected" in text
    assert _bash("pip install -e .").strip() == "pip install -e ."


def test_mixup_alpha_zero_is_rejected_as_the_readme_says():
    from sklearn.utils._param_validation import InvalidParameterError

    from skmixup.linear_model import MixupLogisticRegression

    with pytest.raises(InvalidParameterError, match="mixup_alpha"):
        MixupLogisticRegression(mixup_alpha=0).fit([[0.0], [1.0]], [0, 1])


def test_main_command_installs_what_the_figures_need():
    main_command = _bash("python -m skmixup reproduce")
    assert '".[torch,plot]"' in main_command
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^plot = \["matplotlib', pyproject, flags=re.M)


def test_ci_runs_the_readme_test_command():
    test_command = _bash("python -m pytest").strip().split("&&")[-1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()


def test_main_job_runs_quick(tmp_path):
    # No --out: the report goes to ./skmixup-report, as the README says. Two of
    # the four data sets (digits, the largest, is left out) keep the test fast.
    out = subprocess.run(
        [sys.executable, "-m", "skmixup", "reproduce", "--quick"]
        + ["--datasets", "wine", "moons"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    folder = tmp_path / "skmixup-report"
    assert "`./skmixup-report`" in (ROOT / "README.md").read_text()
    assert f"wrote 6 files to {folder}" in out
    for name in (
        "report.md",
        "approximation.png",
        "robustness.png",
        "generalization_gap.png",
        "reliability.png",
        "summary.json",
    ):
        assert (folder / name).stat().st_size > 500
        assert f"  {name}\n" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["skmixup-report"]
    # progress, then the measured summary at the end
    assert "[1/12] wine split 1/1 LogisticRegression: eps 0: " in out
    assert "[1/10] wine split 1/1 LogisticRegression: log-loss gap " in out
    summary = out.split("## What we measured")[-1]
    assert "Calibration, logistic regression: Mixup had a lower test ECE" in summary
    assert "MixupLogisticRegression(alpha=1.0)" in out
    assert "| LogisticRegression" in out
    titles = [
        "## Approximation: exact vs second-order Mixup loss along training",
        "## Robustness: FGSM robust test accuracy vs eps",
        "## Generalization: train-test gaps vs Mixup",
    ]
    report = (folder / "report.md").read_text()
    for title in titles:
        assert title in out and title in report
    assert report.count("|") > 10 and "## What we measured" in report
    for dataset in ("wine", "moons"):
        assert f"Robustness on {dataset} at eps=" in report
    assert "Robustness on digits" not in report
