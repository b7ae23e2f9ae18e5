"""``python -m skmixup``: options checked before any fit, errors, --data TABLE.csv."""

import numpy as np
import pandas as pd
import pytest

import skmixup
import skmixup.__main__ as cli
import skmixup.experiments._reproduce as reproduce


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if the experiments start."""

    def run(*args, **kwargs):
        raise AssertionError("the experiments started before the options were checked")

    monkeypatch.setattr(reproduce, "run_reproduce", run)


def _error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"skmixup {skmixup.__version__}\n"


def test_unknown_option_shows_the_subcommand_usage(capsys, no_fit):
    err = _error(capsys, ["reproduce", "--bogus"])
    assert err.startswith("usage: python -m skmixup reproduce ")
    assert "unrecognized arguments: --bogus" in err


def test_every_option_has_help_and_the_descriptions_are_plain_text():
    parser, rep = cli._parser()
    for action in rep._actions + parser._actions:
        assert action.help, action.dest
    for text in (parser.format_help(), rep.format_help()):
        assert "``" not in text and ":func:" not in text
    assert "--random-state N" in rep.format_help()


def test_unwritable_out_fails_at_once_naming_the_folder(tmp_path, capsys, no_fit):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    err = _error(capsys, ["reproduce", "--quick", "--out", str(blocker / "report")])
    assert f"--out: cannot write to the folder {blocker / 'report'}" in err
    assert err.startswith("usage: python -m skmixup reproduce ")


def test_bad_random_state(capsys, no_fit):
    err = _error(capsys, ["reproduce", "--random-state", "-1"])
    assert "argument --random-state: must be in [0, 2**32 - 1], got -1" in err


def _table(tmp_path, n=60, seed=0, **change):
    rng = np.random.RandomState(seed)
    frame = pd.DataFrame(
        {
            "age": rng.randint(18, 80, n).astype(float),
            "income": rng.lognormal(3, 0.5, n),
            "city": rng.choice(["north", "south", "east"], n),
            "member": rng.choice(["yes", "no"], n),
        }
    )
    frame.loc[rng.rand(n) < 0.15, "age"] = np.nan
    frame.loc[rng.rand(n) < 0.1, "city"] = np.nan
    signal = (frame["age"].fillna(50) - 50) / 15 + (frame["city"] == "north")
    frame["outcome"] = np.where(signal + 0.5 * rng.randn(n) > 0, "good", "bad")
    for column, values in change.items():
        frame[column] = values
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "{dir}/nope.csv", "--target", "y"], "--data: no such file: "),
        (["--data", "{table}", "--target", "nope"], "has no column 'nope'; its"),
        (["--data", "{table}"], "--data needs --target COLUMN"),
        (["--target", "y"], "--target needs --data TABLE.csv"),
        (
            ["--data", "{table}", "--target", "outcome", "--datasets", "wine"],
            "use either --data or --datasets, not both",
        ),
        (["--data", "{table}", "--target", "income"], "looks continuous"),
        (["--data", "{one_class}", "--target", "outcome"], "has one class ('good')"),
        (["--data", "{small}", "--target", "outcome"], "has 19 rows; the experi"),
        (["--data", "{single}", "--target", "outcome"], "'rare' of column 'outcome'"),
    ],
)
def test_table_errors_before_any_fit(tmp_path, capsys, no_fit, argv, message):
    paths = {"dir": tmp_path, "table": _table(tmp_path)}
    for name, kwargs in {
        "one_class": {"outcome": "good"},
        "small": {"n": 19},
        "single": {"outcome": ["rare"] + ["good", "bad"] * 29 + ["good"]},
    }.items():
        folder = tmp_path / name
        folder.mkdir()
        paths[name] = _table(folder, **kwargs)
    argv = ["reproduce", *(a.format(**paths) for a in argv), "--out", str(tmp_path)]
    err = _error(capsys, argv)
    assert message in err
    assert err.startswith("usage: python -m skmixup reproduce ")


def test_reproduce_on_a_users_table(tmp_path, capsys):
    path = _table(tmp_path, n=80)
    out = tmp_path / "report"
    argv = ["reproduce", "--quick", "--data", str(path), "--target", "outcome"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "table " in printed and "(target 'outcome')" in printed
    assert "[1/6] table split 1/1 LogisticRegression: eps 0: " in printed
    report = (out / "report.md").read_text()
    text = " ".join(report.split())
    assert "80 rows, target column 'outcome' with classes ['bad', 'good']" in text
    assert "numeric columns (age, income) mean-imputed and standardized" in text
    assert "(city, member) imputed with its most frequent value and one-hot" in text
    assert "Robustness on table at eps=" in text
    assert "## Approximation" not in report  # moons only, said in a note
    assert "runs on moons only" in text
    names = sorted(p.name for p in out.iterdir())
    assert "summary.json" in names and "report.md" in names
    if "robustness.png" in names:  # matplotlib installed
        assert {"generalization_gap.png", "reliability.png"} <= set(names)
        assert "approximation.png" not in names
