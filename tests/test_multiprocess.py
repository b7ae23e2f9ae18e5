"""The networks on several processes: the documented Accelerate recipes
(docs/user_guide.rst, "Scaling out") run for real with two CPU processes."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")
pytest.importorskip("skorch")

SCRIPT = Path(__file__).with_name("_accelerate_train.py")
ROOT = SCRIPT.parent.parent


def _launch(out, n_processes=2, timeout=240):
    """``python -m torch.distributed.run`` (torchrun) with ``n_processes`` CPU
    processes; Accelerate's own launcher starts only one process with ``--cpu``
    unless mpirun is installed. The whole process group is killed on timeout."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={n_processes}",
        str(SCRIPT),
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{n_processes}-process training did not finish in {timeout} s")
    assert proc.returncode == 0, output.decode(errors="replace")[-3000:]


def test_two_processes_train_one_mixup_model(tmp_path):
    from sklearn.datasets import make_classification

    _launch(tmp_path)
    ranks = [
        torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)
    ]
    assert [r["world_size"] for r in ranks] == [2, 2]
    X, _ = make_classification(
        n_samples=256, n_features=8, n_informative=6, random_state=0
    )
    total = float(X.astype(np.float32).sum())
    for kind in ("net", "mlp"):
        a, b = (r[kind] for r in ranks)
        # gradients are averaged: both processes end with the same weights
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
        # each process mixed every one of its batches, 4 of 32 rows per epoch
        # (256 rows, batch 32, two processes), and the two shards are disjoint:
        # together they hold every row once per epoch
        batches = [r[f"{kind}_batches"] for r in ranks]
        assert [len(x) for x in batches] == [24, 24]
        assert all(n == 32 and mixed for x in batches for n, _, mixed in x)
        assert batches[0] != batches[1]
        for epoch in range(6):
            sums = [s for x in batches for _, s, _ in x[4 * epoch : 4 * epoch + 4]]
            assert sum(sums) == pytest.approx(total, rel=1e-4)
        # training loss falls on each process's shard
        for r in ranks:
            loss = r[f"{kind}_loss"]
            assert np.mean(loss[-2:]) < 0.9 * loss[0]
    assert ranks[0]["mlp_accuracy"] == ranks[1]["mlp_accuracy"] > 0.75


def test_mlp_classifier_recipe_in_one_process(torch_single_thread):
    # The MixupMLPClassifier recipe in this process (Accelerate's single-process
    # CPU mode): skorch's AccelerateMixin.initialize does not call the Mixup
    # net's, and the estimator trains the net on validated data directly.
    from _accelerate_train import AcceleratedMixupMLPClassifier, _RecordingNet
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=96, n_features=5, random_state=0)
    _RecordingNet.batches_ = []
    clf = AcceleratedMixupMLPClassifier(
        hidden_layer_sizes=(8,), max_iter=3, batch_size=32, n_iter_no_change=100,
        learning_rate_init=0.01, random_state=0,
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=3: not converged, on purpose
        clf.fit(X, y)
    assert len(_RecordingNet.batches_) == 3 * 3
    assert all(mixed for _, _, mixed in _RecordingNet.batches_)
    assert clf.predict(X).shape == (96,)
