"""Seconds per epoch of Mixup MLP training: skmixup vs a raw PyTorch loop,
hand-written Mixup in skorch, and scikit-learn's MLPClassifier (no Mixup).

All models are the same (256, 256) ReLU MLP trained with Adam (lr 1e-3, no weight
decay) on minibatches of 256. Run in one process so the numbers are comparable::

    python benchmarks/bench_mlp.py                 # 50k samples, 5 epochs, CPU
    python benchmarks/bench_mlp.py --quick         # about a minute
    python benchmarks/bench_mlp.py --device cuda --n-samples 1000000 --skip sklearn
    python benchmarks/bench_mlp.py --quick --only-regularized   # penalty table only

Per-epoch time is the median over epochs (the first epoch is dropped when there
are three or more, as warm-up), and with ``--repeats R`` the smallest such median
over R rounds (methods run in a rotated order each round), which damps noise from
other jobs on a shared machine; the ratio column is that time over the raw loop's.
"""

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from skorch.dataset import unpack_data

from skmixup.neural_network import (
    MixupMLPClassifier,
    MixupRegularizedMLPClassifier,
    MLPModule,
)

HIDDEN = (256, 256)
BATCH = 256
LR = 1e-3
ALPHA = 1.0  # Mixup Beta(1, 1)


def _median_epoch(times):
    times = list(times)
    if len(times) >= 3:
        times = times[1:]
    return float(np.median(times))


def bench_raw(X, y, Xt, yt, n_classes, epochs, device, seed):
    """The reference: tensors on the device, index slicing, Mixup by hand."""
    torch.manual_seed(seed)
    model = MLPModule(X.shape[1], n_classes, HIDDEN).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    Xd = torch.as_tensor(X, device=device)
    yd = torch.as_tensor(y, device=device)
    beta = torch.distributions.Beta(
        torch.tensor(ALPHA, device=device), torch.tensor(ALPHA, device=device)
    )
    ce = torch.nn.CrossEntropyLoss(reduction="none")
    n = len(Xd)
    times = []
    for _ in range(epochs):
        _sync(device)
        tic = time.perf_counter()
        model.train()
        order = torch.randperm(n, device=device)
        for start in range(0, n, BATCH):
            idx = order[start : start + BATCH]
            xb, yb = Xd[idx], yd[idx]
            lam = beta.sample((len(idx),))
            lam = torch.maximum(lam, 1 - lam)
            perm = torch.randperm(len(idx), device=device)
            xm = lam[:, None] * xb + (1 - lam[:, None]) * xb[perm]
            out = model(xm)
            loss = (lam * ce(out, yb) + (1 - lam) * ce(out, yb[perm])).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()  # as skorch does, to record the loss
        _sync(device)
        times.append(time.perf_counter() - tic)
    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(Xt, device=device)).argmax(1).cpu().numpy()
    return times, float(np.mean(pred == yt))


class HandMixupNet(NeuralNetClassifier):
    """What a skorch user writes: Mixup in train_step_single, default DataLoader."""

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        Xi, yi = Xi.to(self.device), yi.to(self.device)
        lam = torch.distributions.Beta(ALPHA, ALPHA).sample((len(yi),)).to(self.device)
        lam = torch.maximum(lam, 1 - lam)
        perm = torch.randperm(len(yi), device=self.device)
        y_pred = self.infer(lam[:, None] * Xi + (1 - lam[:, None]) * Xi[perm])
        ce = torch.nn.functional.cross_entropy
        loss = (
            lam * ce(y_pred, yi, reduction="none")
            + (1 - lam) * ce(y_pred, yi[perm], reduction="none")
        ).mean()
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}


def bench_skorch(X, y, Xt, yt, n_classes, epochs, device, seed):
    torch.manual_seed(seed)
    net = HandMixupNet(
        MLPModule,
        module__n_features=X.shape[1],
        module__n_outputs=n_classes,
        module__hidden_layer_sizes=HIDDEN,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=LR,
        batch_size=BATCH,
        max_epochs=epochs,
        iterator_train__shuffle=True,
        train_split=None,
        device=device,
        verbose=0,
    ).fit(X, y)
    acc = float(np.mean(net.predict(Xt) == yt))
    return list(net.history[:, "dur"]), acc


def bench_ours(X, y, Xt, yt, n_classes, epochs, device, seed):
    with warnings.catch_warnings():  # a fixed epoch budget, as for the others
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = _fit_ours(X, y, epochs, device, seed)
    return list(clf.net_.history[:, "dur"]), float(clf.score(Xt, yt))


def _fit_ours(X, y, epochs, device, seed):
    return MixupMLPClassifier(
        hidden_layer_sizes=HIDDEN,
        mixup_alpha=ALPHA,
        alpha=0.0,
        batch_size=BATCH,
        learning_rate_init=LR,
        max_iter=epochs,
        n_iter_no_change=epochs + 1,
        device=device,
        random_state=seed,
    ).fit(X, y)


def bench_sklearn(X, y, Xt, yt, n_classes, epochs, device, seed):
    clf = MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        alpha=0.0,
        batch_size=BATCH,
        learning_rate_init=LR,
        max_iter=epochs,
        n_iter_no_change=epochs + 1,
        random_state=seed,
    )
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    total = time.perf_counter() - tic
    return [total / clf.n_iter_] * clf.n_iter_, float(clf.score(Xt, yt))


METHODS = {
    "raw": ("raw PyTorch loop + Mixup", bench_raw),
    "ours": ("skmixup MixupMLPClassifier", bench_ours),
    "skorch": ("skorch, hand-written Mixup", bench_skorch),
    "sklearn": ("sklearn MLPClassifier (no Mixup)", bench_sklearn),
}


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------- MixupRegularizedMLPClassifier
# The explicit second-order penalty (R1 + R2 + R3, no mixed inputs) against Mixup
# training of the same network, per activation: ReLU networks are piecewise linear
# (R3 = 0, first derivatives only), tanh networks also need second derivatives.
REGULARIZED = [
    ("relu", "MixupMLPClassifier", {}),
    ("relu", "Regularized, R1+R2+R3 (default)", {}),
    ("relu", "Regularized, R2", {"terms": "R2"}),
    ("tanh", "MixupMLPClassifier", {}),
    ("tanh", "Regularized, R1+R2+R3 (default)", {}),
    ("tanh", "Regularized, R1+R2", {"terms": "R1+R2"}),
]


def _fit_regularized(X, y, epochs, device, seed, activation, params):
    common = {
        "hidden_layer_sizes": HIDDEN,
        "activation": activation,
        "mixup_alpha": ALPHA,
        "alpha": 0.0,
        "batch_size": BATCH,
        "learning_rate_init": LR,
        "max_iter": epochs,
        "n_iter_no_change": epochs + 1,
        "device": device,
        "random_state": seed,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if params is None:
            return MixupMLPClassifier(**common).fit(X, y)
        return MixupRegularizedMLPClassifier(**common, **params).fit(X, y)


def regularized_section(X, y, Xt, yt, args):
    """Epoch time of the penalty MLP relative to Mixup training, and test accuracy.

    On a shared machine the load changes from one fit to the next, so each fit
    keeps its fastest epoch after the first (the least disturbed one), and each
    configuration its fastest fit over the rounds (at least 3; the order of the
    rows is reversed every other round).
    """
    best = {}
    for rep in range(max(args.repeats, 3)):
        rows = REGULARIZED if rep % 2 == 0 else REGULARIZED[::-1]
        for activation, label, params in rows:
            baseline = label == "MixupMLPClassifier"
            clf = _fit_regularized(
                X,
                y,
                args.epochs,
                args.device,
                0,
                activation,
                None if baseline else params,
            )
            durations = list(clf.net_.history[:, "dur"])
            t = min(durations[1:] or durations)
            key = (activation, label)
            print(f"  round {rep + 1}: {activation} {label:<32} {t:.3f} s/epoch")
            if key not in best or t < best[key][0]:
                best[key] = (t, float(clf.score(Xt, yt)))
    print()
    print(f"| activation | {'method':<32} | s/epoch | vs Mixup | test acc |")
    print(f"|------------|{'-' * 34}|--------:|---------:|---------:|")
    for activation, label, _ in REGULARIZED:
        t, acc = best[(activation, label)]
        ratio = t / best[(activation, "MixupMLPClassifier")][0]
        print(
            f"| {activation:<10} | {label:<32} | {t:7.3f} | {ratio:7.2f}x | "
            f"{acc:8.3f} |"
        )


def regularized_step_section(X, y, args, reps=40):
    """Seconds per training step (one batch), all configurations interleaved.

    Each configuration is fitted for one epoch, then ``reps`` rounds time one
    ``train_step`` (forward, backward, Adam step) of every configuration in turn
    on the same batch; the fastest round is kept. Interleaving makes the ratios
    robust to the load of a shared machine; an epoch is this step times the
    number of batches plus the same per-epoch bookkeeping for all rows.
    """
    from skorch.dataset import Dataset

    nets = {}
    for activation, label, params in REGULARIZED:
        baseline = label == "MixupMLPClassifier"
        clf = _fit_regularized(
            X, y, 1, args.device, 0, activation, None if baseline else params
        )
        net = clf.net_
        y_enc = np.searchsorted(clf.classes_, y)
        net.get_iterator(Dataset(X, y_enc), training=True)  # the penalty's partners
        batch = (
            torch.as_tensor(X[:BATCH], device=args.device),
            torch.as_tensor(y_enc[:BATCH], device=args.device),
        )
        nets[(activation, label)] = (net, batch)
    times = {key: [] for key in nets}
    for _ in range(reps):
        for key, (net, batch) in nets.items():
            _sync(args.device)
            tic = time.perf_counter()
            net.train_step(batch)
            _sync(args.device)
            times[key].append(time.perf_counter() - tic)
    print()
    print(f"| activation | {'method':<32} | ms/step | vs Mixup |")
    print(f"|------------|{'-' * 34}|--------:|---------:|")
    for activation, label, _ in REGULARIZED:
        t = min(times[(activation, label)])
        ratio = t / min(times[(activation, "MixupMLPClassifier")])
        print(f"| {activation:<10} | {label:<32} | {1e3 * t:7.2f} | {ratio:7.2f}x |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument(
        "--quick", action="store_true", help="20k samples, 3 epochs, 1 round"
    )
    parser.add_argument("--repeats", type=int, default=2, help="rounds; min is kept")
    parser.add_argument("--skip", nargs="*", default=[], choices=list(METHODS))
    parser.add_argument(
        "--only-regularized", action="store_true", help="only the penalty table"
    )
    parser.add_argument(
        "--no-regularized", action="store_true", help="skip the penalty table"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n_samples, args.epochs = min(args.n_samples, 20_000), min(args.epochs, 3)
        args.repeats = 1
    if args.threads:
        torch.set_num_threads(args.threads)

    X, y = make_classification(
        n_samples=args.n_samples,
        n_features=100,
        n_informative=30,
        n_classes=10,
        random_state=0,
    )
    X, Xt, y, yt = train_test_split(X, y, test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(X)
    X = scaler.transform(X).astype(np.float32)
    Xt = scaler.transform(Xt).astype(np.float32)
    print(
        f"n_train={len(X)} n_features=100 n_classes=10 epochs={args.epochs} "
        f"batch={BATCH} hidden={HIDDEN} device={args.device} "
        f"torch_threads={torch.get_num_threads()} torch={torch.__version__}"
    )

    if not args.no_regularized:
        regularized_section(X, y, Xt, yt, args)
        regularized_step_section(X, y, args)
        if args.only_regularized:
            return
        print()
    keys = [k for k in METHODS if k not in args.skip]
    best = {}
    for rep in range(args.repeats):
        order = keys[rep % len(keys) :] + keys[: rep % len(keys)]
        for key in order:
            times, acc = METHODS[key][1](X, y, Xt, yt, 10, args.epochs, args.device, 0)
            t = _median_epoch(times)
            print(
                f"  round {rep + 1}: {METHODS[key][0]:<34} {t:.3f} s/epoch", flush=True
            )
            if key not in best or t < best[key][0]:
                best[key] = (t, acc)
    rows = [(k, METHODS[k][0], *best[k]) for k in keys]

    raw = {k: t for k, _, t, _ in rows}.get("raw")
    print()
    print(f"| {'method':<34} | s/epoch | vs raw | test acc |")
    print(f"|{'-' * 36}|--------:|-------:|---------:|")
    for _, label, t, acc in rows:
        ratio = f"{t / raw:.2f}x" if raw else "n/a"
        print(f"| {label:<34} | {t:7.3f} | {ratio:>6} | {acc:8.3f} |")


if __name__ == "__main__":
    main()
