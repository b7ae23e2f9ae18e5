"""Epoch time of one Mixup network trained by one and by two processes.

The documented recipe (docs/user_guide.rst, "Scaling out"): skorch's
``AccelerateMixin`` before ``MixupNeuralNetClassifier``, launched with
``python -m torch.distributed.run --standalone --nproc_per_node N`` (Accelerate's
multi-CPU mode, gloo backend; ``accelerate launch --cpu`` starts one process
without mpirun). The global batch is the same in every configuration (each of
``N`` processes takes ``batch / N`` rows of it), so each configuration takes
the same optimisation steps; the processes mix within their own shard and
average their gradients. Compared in the same run: one process with one
thread, one process with ``N`` threads (the other way to use the cores), and
``N`` processes of one thread each.

Run: ``PYTHONPATH=. python benchmarks/bench_processes.py [--n-samples 100000]``.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RECIPE = Path(__file__).parent.parent / "tests" / "_accelerate_train.py"


def worker(args):
    import importlib.util

    import numpy as np
    import torch
    from accelerate import Accelerator
    from sklearn.datasets import make_classification
    from torch.utils.data import DataLoader

    from skmixup.neural_network import MLPModule

    # the recipe class that tests/test_multiprocess.py runs
    spec = importlib.util.spec_from_file_location("_accelerate_train", RECIPE)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    AcceleratedMixupNet = recipe.AcceleratedMixupNet
    torch.set_num_threads(args.threads)

    X, y = make_classification(
        n_samples=args.n_samples,
        n_features=args.n_features,
        n_informative=args.n_features // 2,
        n_classes=4,
        random_state=0,
    )
    X = X.astype(np.float32)
    accelerator = Accelerator(cpu=True)
    n_proc = accelerator.num_processes
    net = AcceleratedMixupNet(
        MLPModule,
        module__n_features=args.n_features,
        module__n_outputs=4,
        module__hidden_layer_sizes=(256, 256),
        accelerator=accelerator,
        device=None,
        iterator_train=DataLoader,
        iterator_valid=DataLoader,
        iterator_train__shuffle=True,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=args.epochs,
        batch_size=args.batch_size // n_proc,
        train_split=None,
        verbose=0,
        random_state=0,
    )
    t0 = time.perf_counter()
    net.fit(X, y)
    wall = time.perf_counter() - t0
    accuracy = float(net.score(X, y))  # a collective: every process predicts
    if accelerator.is_main_process:
        print(
            "RESULT "
            + json.dumps(
                {
                    "epoch_s": list(net.history[:, "dur"]),
                    "loss": list(net.history[:, "train_loss"]),
                    "wall": wall,
                    "processes": n_proc,
                    "accuracy": accuracy,
                }
            ),
            flush=True,
        )


def launch(args, n_proc, threads):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={n_proc}",
        __file__,
        "--worker",
        f"--threads={threads}",
        f"--n-samples={args.n_samples}",
        f"--n-features={args.n_features}",
        f"--epochs={args.epochs}",
        f"--batch-size={args.batch_size}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:  # the whole process group
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed with status {proc.returncode}")
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-samples", type=int, default=100_000)
    parser.add_argument("--n-features", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds per configuration")
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    N = args.processes
    print(f"load average: {os.getloadavg()}, {os.cpu_count()} CPUs")
    print(
        f"data: {args.n_samples:,} x {args.n_features}, 4 classes; MLP (256, 256), "
        f"global batch {args.batch_size}, {args.epochs} epochs"
    )
    runs = [("1 process x 1 thread", 1, 1), (f"1 process x {N} threads", 1, N),
            (f"{N} processes x 1 thread", N, 1)]
    results = [(name, launch(args, p, t)) for name, p, t in runs]
    base = None
    print(f"\n{'configuration':<26} {'epoch s':>8} {'speed-up':>9} {'last loss':>10} "
          f"{'accuracy':>9}")
    for name, r in results:
        if r is None:
            print(f"{name:<26} did not finish in {args.timeout:.0f} s")
            continue
        # the first epoch includes the process group's and the DataLoader's start
        epoch = min(r["epoch_s"][1:] or r["epoch_s"])
        base = base or epoch
        print(f"{name:<26} {epoch:>8.2f} {base / epoch:>9.2f} {r['loss'][-1]:>10.4f} "
              f"{r['accuracy']:>9.4f}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
