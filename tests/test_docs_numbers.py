"""Every measured number that README.md and docs/user_guide.rst quote from a run is
written from a stored summary (docs/doc_numbers.py): the text is what the summary
gives, the summary is a full run, and a few numbers are checked by hand."""

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def numbers():
    spec = importlib.util.spec_from_file_location(
        "doc_numbers", ROOT / "docs" / "doc_numbers.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stored(numbers):
    return numbers.load()


def test_every_passage_is_what_the_stored_summaries_give(numbers, stored):
    for (path, name), text in numbers.expected(stored).items():
        assert numbers.current(path, name) == text, (
            f"{path}, passage {name!r} differs from the stored summary: refresh it "
            "with `PYTHONPATH=. python docs/doc_numbers.py` (see its docstring)"
        )


def test_the_stored_summary_is_a_full_run(stored):
    data = stored["reproduce"]
    assert "--quick" not in data["settings"]["command"]
    assert data["settings"]["datasets"] == "digits, breast_cancer, wine, moons"
    from skmixup.experiments._reproduce import SETTINGS

    # the experiments the docs quote; experiments added later join the stored
    # summary at its next refresh
    quoted = ("approximation", "robustness", "generalization")
    for name in quoted:
        for key, value in SETTINGS["full"][name].items():
            stored_value = data["experiments"][name][key]
            assert stored_value == _as_json(value), (name, key)
    assert set(data["results"]) >= {"approx", "robust", "gaps"}


def _as_json(value):
    if isinstance(value, (tuple, list)):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    return value


def test_quoted_numbers_by_hand(stored):
    """Independent look-ups of a few quoted numbers in the stored rows."""
    data = stored["reproduce"]
    readme = " ".join((ROOT / "README.md").read_text().split())
    robust = data["results"]["robust"]
    eps = max(r["eps"] for r in robust)
    (mlp,) = [
        r
        for r in robust
        if r["dataset"] == "digits"
        and r["eps"] == eps
        and r["model"].startswith("MixupMLPClassifier")
    ]
    (erm,) = [
        r
        for r in robust
        if r["dataset"] == "digits"
        and r["eps"] == eps
        and r["model"].startswith("MLP ERM")
    ]
    assert (
        f"digits {mlp['robust_accuracy']:.3f} against {erm['robust_accuracy']:.3f}"
        in readme
    )
    gaps = data["results"]["gaps"]
    logistic = [
        r for r in gaps if r["dataset"] == "digits" and "Logistic" in r["model"]
    ]
    erm_ll = [r for r in logistic if r["mixup"] == "ERM"][0]["test_log_loss"]
    mixed = "/".join(
        f"{r['test_log_loss']:.3f}" for r in logistic if r["mixup"] != "ERM"
    )
    assert f"(digits {erm_ll:.3f} to {mixed})" in readme
    higher = sum(
        r["ece"] > base["ece"]
        for base in gaps
        if base["model"] == "LogisticRegression"
        for r in gaps
        if r["dataset"] == base["dataset"] and r["model"].startswith("MixupLogistic")
    )
    assert f"`LogisticRegression` in {higher} of 12 cases" in readme
    scaling = stored["scaling"]
    assert f"{scaling['unscaled']['seconds']:.2f} s and" in readme
    assert scaling["unscaled"]["convergence_warning"]
    assert not scaling["scaled"]["convergence_warning"]
