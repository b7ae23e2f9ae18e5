"""Every gallery example runs to completion (seconds each), so none can rot."""

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
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
