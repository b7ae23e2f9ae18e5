"""Every gallery example runs to completion (seconds each), so none can rot, and
writes no file: sphinx-gallery runs them in the examples folder of the checkout."""

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted(
    (pathlib.Path(__file__).resolve().parents[1] / "examples").glob("*.py")
)
NEEDS_TORCH = {"plot_mlp_mixup_digits.py", "plot_penalty_mlp.py"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, tmp_path):
    pytest.importorskip("matplotlib")
    if path.name in NEEDS_TORCH:
        pytest.importorskip("torch")
        pytest.importorskip("skorch")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    # Run a copy from its own folder, as sphinx-gallery does with the original.
    (tmp_path / path.name).write_text(path.read_text())
    result = subprocess.run(
        [sys.executable, path.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # nothing written
