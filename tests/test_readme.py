"""The README's Python example runs, and its commands are the ones CI runs."""

import pathlib
import re
import subprocess
import sys

from sklearn.base import clone
from sklearn.model_selection import cross_val_score

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _blocks(lang):
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_python_example_runs(capsys):
    (code,) = _blocks("python")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    search = namespace["search"]
    # The selected alpha is the one with the best cross-validated log-loss,
    # recomputed here independently of GridSearchCV.
    X, y = namespace["X_train"], namespace["y_train"]
    scores = {
        alpha: cross_val_score(
            clone(search.estimator).set_params(
                mixuplogisticregression__mixup_alpha=alpha
            ),
            X,
            y,
            scoring="neg_log_loss",
            cv=3,
        ).mean()
        for alpha in (0.2, 1.0, 4.0)
    }
    best = max(scores, key=scores.get)
    assert search.best_params_ == {"mixuplogisticregression__mixup_alpha": best}
    test_score = search.score(namespace["X_test"], namespace["y_test"])
    assert capsys.readouterr().out == f"{search.best_params_} {round(test_score, 3)}\n"


def test_main_command_installs_what_the_figures_need():
    main_command = _blocks("bash")[0]
    assert "python -m skmixup reproduce" in main_command
    assert '".[torch,plot]"' in main_command
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^plot = \["matplotlib', pyproject, flags=re.M)


def test_ci_runs_the_readme_test_command():
    test_command = _blocks("bash")[1].strip().split("&&")[-1].strip()
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
    assert f"wrote 5 files to {folder}" in out
    for name in (
        "report.md",
        "approximation.png",
        "robustness.png",
        "generalization_gap.png",
        "reliability.png",
    ):
        assert (folder / name).stat().st_size > 500
        assert f"  {name}\n" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["skmixup-report"]
    # progress, then the measured summary at the end
    assert "[1/10] wine split 1/1 LogisticRegression:" in out
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
