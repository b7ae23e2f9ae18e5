"""The documentation builds: API pages from the docstrings, user guide, gallery."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_docs_build_without_errors_or_warnings(tmp_path):
    for module in ("sphinx", "sphinx_gallery", "numpydoc", "pydata_sphinx_theme"):
        pytest.importorskip(module)
    # Build a copy, so that autosummary and sphinx-gallery write nothing into the
    # checkout; examples are not executed here (tests/test_examples.py runs them).
    ignore = shutil.ignore_patterns("_build", "generated", "auto_examples")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=ignore)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    out = tmp_path / "html"
    # Offline, as the default build is: no intersphinx, so no network access.
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("SKMIXUP_DOCS_INTERSPHINX", None)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-D", "plot_gallery=0"]
        + [str(tmp_path / "docs"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    problems = [
        line
        for line in result.stderr.splitlines()
        if "WARNING" in line or "ERROR" in line
    ]
    assert not problems, "\n".join(problems)  # zero warnings, none excused
    pages = {p.name for p in (out / "generated").glob("*.html")}
    for name in (
        "skmixup.linear_model.MixupLogisticRegression.html",
        "skmixup.linear_model.MixupRegularizedLogisticRegression.html",
        "skmixup.metrics.make_adversarial_scorer.html",
        "skmixup.theory.mixup_loss.html",
    ):
        assert name in pages
    assert (out / "auto_examples" / "plot_robustness_curve.html").exists()


def test_api_reference_lists_exactly_the_public_names():
    # docs/api.rst documents every name of every sub-package's __all__, and no
    # other: a new public name must be added there, a removed one taken out.
    import importlib
    import pkgutil
    import re

    import skmixup

    text = (ROOT / "docs" / "api.rst").read_text()
    listed = set(re.findall(r"^   ([a-z_]+\.[A-Za-z_]+)$", text, flags=re.M))
    # every public module or sub-package of skmixup, so that a new one is checked too
    packages = [m.name for m in pkgutil.iter_modules(skmixup.__path__)]
    packages = [name for name in packages if not name.startswith("_")]
    public = set()
    for name in packages:
        try:
            module = importlib.import_module(f"skmixup.{name}")
        except ImportError:  # the torch extra is missing
            listed = {entry for entry in listed if not entry.startswith(name + ".")}
            continue
        public |= {f"{name}.{item}" for item in module.__all__}
    assert listed == public, (
        f"missing from api.rst: {sorted(public - listed)}; "
        f"not public: {sorted(listed - public)}"
    )
