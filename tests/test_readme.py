"""The README's Python example runs, and its commands are the ones CI runs."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _blocks(lang):
    text = (ROOT / "README.md").read_text()
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_python_example_runs(capsys):
    (code,) = _blocks("python")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    search = namespace["search"]
    assert search.best_params_["mixuplogisticregression__mixup_alpha"] in (
        0.2,
        1.0,
        4.0,
    )
    assert "mixup_alpha" in capsys.readouterr().out


def test_ci_runs_the_readme_test_command():
    test_command = _blocks("bash")[1].strip().split("&&")[-1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()


def test_main_job_runs_quick(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "skmixup",
            "reproduce",
            "--quick",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "MixupLogisticRegression(alpha=1.0)" in out
    assert "| LogisticRegression" in out
    titles = [
        "## Approximation: exact vs second-order Mixup loss along training",
        "## Robustness: FGSM robust test accuracy vs eps",
        "## Generalization: train-test gaps vs Mixup",
    ]
    report = (tmp_path / "report.md").read_text()
    for title in titles:
        assert title in out and title in report
    assert report.count("|") > 10 and "## What we measured" in report
    for dataset in ("digits", "breast_cancer", "wine", "moons"):
        assert f"Robustness on {dataset} at eps=" in report
