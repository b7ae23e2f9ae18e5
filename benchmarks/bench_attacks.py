"""Throughput of skmixup's FGSM against ART and a hand-written torch FGSM.

Data: ``make_classification(n_samples=50_000, n_features=100, n_informative=30,
n_classes=10, random_state=0)``; models: LogisticRegression and
MLPClassifier(hidden_layer_sizes=(256,)), both fitted briefly (the timing is of the
attack, not of the fit), once on float64 data and once on float32 data (then their
coefficients, and skmixup's computation, are float32, like the torch FGSM's). For
each model the table gives the attacked samples per second of

* ``skmixup fgsm`` (:func:`skmixup.metrics.fgsm` in raw units, ``feature_scale=1``,
  numpy in the model's precision, cache-sized row blocks on one thread per usable
  core, BLAS at one thread each; the header says how many);
* ART's FastGradientMethod with its default ``batch_size=32`` (timed on the first
  5,000 samples and scaled to all, as its time is linear in them) and with
  ``batch_size=1024``, through ``SklearnClassifier`` for the LogisticRegression. ART
  has no gradient for ``MLPClassifier`` (its generic scikit-learn wrapper refuses
  FGSM), so for the MLP ART runs through ``PyTorchClassifier`` on a torch copy of the
  same weights;
* a hand-written torch FGSM (float32, CPU, one batch, numpy conversion included);
* one ``predict_proba`` call, the unit of the "x predict_proba" column.

A torch row attacks a :class:`~skmixup.neural_network.MixupMLPClassifier` with
``hidden_layer_sizes=(256,)`` (float32, fitted for one epoch) against a hand-written
FGSM on its own module. A last row attacks the canonical mixed-type pipeline (a
DataFrame of 20 numeric columns with 10% missing values and 5 categorical columns,
ColumnTransformer of
SimpleImputer + StandardScaler and SimpleImputer + OneHotEncoder, then
LogisticRegression), eps in standard deviations, categorical columns immutable;
its cost is given relative to one ``predict_proba`` of that pipeline.

``--square`` prints instead the square attack's table (:func:`square_table`): a
depth-8 tree against the exact robust accuracy, an MLP against PGD, and
HistGradientBoosting on 10,000 rows (2,000 with ``--quick``), each timed against the
model's own predictions on as many rows.

Run ``python benchmarks/bench_attacks.py`` (``--quick`` uses 5,000 samples;
``--skip-art`` leaves ART out; ``--threads 1`` limits BLAS and torch threads for every
method, which makes timings on a busy machine steadier). ``--interleave N`` instead
alternates, N times, skmixup with its blocks run serially, skmixup with its blocks
on threads, and the torch FGSM, on the four scikit-learn models, and prints the
best and median of each: a shared machine's load then hits all three alike.
"""

import argparse
import os
import time
import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from skmixup.metrics import fgsm

EPS = 0.1
ART_SMALL_BATCH_ROWS = 5_000


def best_time(func, *, min_total=1.0, max_repeats=5, min_repeats=3):
    """Best wall time of ``func()`` over ``min_repeats`` to ``max_repeats`` runs.

    After ``min_repeats`` runs (one slow run on a busy machine is no measurement)
    it stops once the runs took ``min_total`` seconds.
    """
    times, result = [], None
    while len(times) < min(min_repeats, max_repeats) or (
        len(times) < max_repeats and sum(times) < min_total
    ):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def torch_layers(model):
    """(weight, bias) float32 tensors of the model, in x @ W + b layout."""
    import torch

    if isinstance(model, LogisticRegression):
        pairs = [(model.coef_.T, model.intercept_)]
    else:
        pairs = list(zip(model.coefs_, model.intercepts_, strict=True))
    return [
        (torch.tensor(W, dtype=torch.float32), torch.tensor(b, dtype=torch.float32))
        for W, b in pairs
    ]


def torch_module(layers):
    import torch

    modules = []
    for i, (W, b) in enumerate(layers):
        linear = torch.nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            linear.weight.copy_(W.T)
            linear.bias.copy_(b)
        modules.append(linear)
        if i < len(layers) - 1:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


def torch_fgsm(layers, X, y):
    import torch

    Xt = torch.from_numpy(X.astype(np.float32)).requires_grad_(True)
    H = Xt
    for W, b in layers[:-1]:
        H = torch.relu(H @ W + b)
    logits = H @ layers[-1][0] + layers[-1][1]
    loss = torch.nn.functional.cross_entropy(
        logits, torch.from_numpy(y), reduction="sum"
    )
    (grad,) = torch.autograd.grad(loss, Xt)
    return (Xt + EPS * grad.sign()).detach().numpy()


def art_fgsm(model, layers, X, y, batch_size):
    from art.attacks.evasion import FastGradientMethod

    if isinstance(model, LogisticRegression):
        from art.estimators.classification import SklearnClassifier

        classifier = SklearnClassifier(model=model)
    else:
        import torch
        from art.estimators.classification import PyTorchClassifier

        classifier = PyTorchClassifier(
            model=torch_module(layers),
            loss=torch.nn.CrossEntropyLoss(),
            input_shape=(X.shape[1],),
            nb_classes=len(model.classes_),
            device_type="cpu",
        )
    attack = FastGradientMethod(classifier, eps=EPS, batch_size=batch_size)
    onehot = np.eye(len(model.classes_))[y]
    return lambda: attack.generate(X, y=onehot)


def art_rows(name, model, X, y, add, rows):
    """ART's FastGradientMethod with batches of 32 and 1024 rows."""
    try:
        import art  # noqa: F401
    except ImportError:
        rows.append(
            (
                name,
                "ART: not installed (pip install adversarial-robustness-toolbox)",
                *[float("nan")] * 4,
                "",
            )
        )
        return
    n = X.shape[0]
    layers = torch_layers(model)
    wrapper = "Sklearn" if isinstance(model, LogisticRegression) else "PyTorch"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for batch in (32, 1024):
            # ART's default batch of 32 is slow: time it on a subset and report
            # its throughput (it is linear in the number of samples).
            m = min(n, ART_SMALL_BATCH_ROWS) if batch == 32 else n
            run = art_fgsm(model, layers, X[:m], y[:m], batch)
            seconds, X_adv = best_time(run, max_repeats=3)
            add(f"ART {wrapper}Classifier batch {batch}", seconds * n / m, X_adv)


def bench_model(name, model, X, y, rows, skip_art=False):
    t_proba, _ = best_time(lambda: model.predict_proba(X))
    t_ours, ours = best_time(lambda: fgsm(model, X, y, eps=EPS, feature_scale=1))
    n = X.shape[0]

    def add(method, seconds, X_adv=None):
        agree = ""
        if X_adv is not None:
            k = len(X_adv)
            same = np.sign(X_adv - X[:k]) == np.sign(ours[:k] - X[:k])
            agree = f"{np.mean(same):.4f}"
        rows.append(
            (
                name,
                method,
                seconds,
                n / seconds,
                seconds / t_ours,
                seconds / t_proba,
                agree,
            )
        )

    add("skmixup fgsm", t_ours)
    if not skip_art:
        art_rows(name, model, X, y, add, rows)
    try:
        layers = torch_layers(model)
    except ImportError:
        rows.append((name, "torch: not installed", *[float("nan")] * 4, ""))
    else:
        seconds, X_adv = best_time(lambda: torch_fgsm(layers, X, y))
        add("hand-written torch fgsm (float32)", seconds, X_adv)
    add("one predict_proba", t_proba)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 samples")
    parser.add_argument("--skip-art", action="store_true", help="leave ART out")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit BLAS and torch to this many threads for every method "
        "(default: the libraries' defaults, as a user runs them)",
    )
    parser.add_argument(
        "--square",
        action="store_true",
        help="only the square-attack table (trees, MLP, HistGradientBoosting)",
    )
    parser.add_argument(
        "--interleave",
        type=int,
        default=0,
        metavar="N",
        help="alternate serial blocks, threaded blocks and torch N times instead",
    )
    args = parser.parse_args(argv)
    if args.square:
        square_table(args.quick)
    elif args.interleave:
        interleaved(args.quick, args.interleave)
    elif args.threads is None:
        run(args.quick, None, args.skip_art)
    else:
        from threadpoolctl import threadpool_limits

        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            pass
        with threadpool_limits(args.threads):
            run(args.quick, args.threads, args.skip_art)


def square_table(quick):
    """The square attack: queries per second and robust accuracy against a reference.

    Rows: a depth-8 DecisionTreeClassifier on breast_cancer (reference: the exact
    robust accuracy, ``attack="exact"``), an MLPClassifier behind a StandardScaler
    on breast_cancer (reference: PGD with 50 steps), HistGradientBoosting
    (100 iterations) on 10,000 rows of ``make_classification(n_features=20)``
    (reference: its clean accuracy; the target is under 10 s for 1,000 queries).
    Queries per second count one per sample and model call (samples that stop
    early make fewer), counted around the attack's objective. "x model" is the
    attack's time over that of the model alone on as many rows (whole-data calls
    of ``decision_function`` or ``predict_proba`` timed in the same run): what the
    search itself adds.
    """
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    from skmixup.metrics import _square, robust_accuracy_score, square_attack

    objective_call = _square.Objective.__call__
    eps, n_queries = 0.3, 1000
    X, y = load_breast_cancer(return_X_y=True)
    tree = DecisionTreeClassifier(max_depth=8, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), random_state=0)
        ).fit(X, y)
    n_big = 2_000 if quick else 10_000
    Xb, yb = make_classification(n_samples=n_big, n_features=20, random_state=0)
    hgb = HistGradientBoostingClassifier(random_state=0).fit(Xb, yb)
    rows = [
        ("depth-8 tree", tree, X, y, "exact", {}),
        ("MLP (64,)", mlp, X, y, "pgd", {"n_iter": 50, "random_state": 0}),
        (f"HistGB, {n_big} rows", hgb, Xb, yb, None, {}),
    ]
    print(f"square attack, eps={eps} (l_inf, std units), n_queries={n_queries}")
    print(f"load average: {os.getloadavg()}")
    header = (
        f"{'model':<22}{'seconds':>9}{'x model':>9}{'queries/s':>12}"
        f"{'square':>8}{'ref':>8}"
    )
    print(header + "  reference")
    for name, model, Xs, ys, ref, params in rows:
        queries = [0]

        def counting(self, V, rows, queries=queries):
            queries[0] += len(rows)
            return objective_call(self, V, rows)

        _square.Objective.__call__ = counting
        start = time.perf_counter()
        try:
            X_adv = square_attack(
                model, Xs, ys, eps=eps, n_queries=n_queries, random_state=0
            )
        finally:
            _square.Objective.__call__ = objective_call
        seconds = time.perf_counter() - start
        square = float(np.mean(model.predict(X_adv) == ys))
        if ref is None:
            reference, label = model.score(Xs, ys), "clean accuracy"
        else:
            reference = robust_accuracy_score(
                model, Xs, ys, attack=ref, eps=eps, **params
            )
            label = "exact" if ref == "exact" else "PGD, 50 steps"
        rate = queries[0] / seconds  # sample-queries made (early stops make fewer)
        scores = getattr(model, "decision_function", None) or model.predict_proba
        one_call, _ = best_time(lambda f=scores, A=Xs: f(A), min_total=0.2)
        # The same number of sample-queries as whole-data model calls: the cost of
        # the model alone, against which the attack's own work shows.
        model_only = one_call * queries[0] / len(ys)
        print(
            f"{name:<22}{seconds:>9.2f}{seconds / model_only:>9.2f}{rate:>12.3g}"
            f"{square:>8.3f}{reference:>8.3f}  {label}"
        )


def mixed_pipeline_rows(n_samples, rows):
    """The canonical mixed-type pipeline: fgsm against one predict_proba."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.RandomState(0)
    numeric = rng.standard_normal((n_samples, 20)) * rng.uniform(0.1, 100, 20)
    numeric[rng.random_sample(numeric.shape) < 0.1] = np.nan
    frame = pd.DataFrame(numeric, columns=[f"x{i}" for i in range(20)])
    for j in range(5):
        frame[f"c{j}"] = rng.choice(["a", "b", "c", "d"], n_samples).astype(object)
    y = np.where(np.nan_to_num(numeric[:, 0]) + (frame["c0"] == "a") > 0, "yes", "no")
    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(), StandardScaler()),
                [f"x{i}" for i in range(20)],
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                [f"c{j}" for j in range(5)],
            ),
        ]
    )
    pipe = Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(frame, y)
    t_proba, _ = best_time(lambda: pipe.predict_proba(frame))
    t_ours, _ = best_time(lambda: fgsm(pipe, frame, y, eps=EPS))
    name = "mixed pipeline"
    for method, seconds in [("skmixup fgsm (DataFrame)", t_ours)]:
        rows.append(
            (name, method, seconds, n_samples / seconds, 1.0, seconds / t_proba, "")
        )
    rows.append(
        (
            name,
            "one predict_proba",
            t_proba,
            n_samples / t_proba,
            t_proba / t_ours,
            1.0,
            "",
        )
    )


def torch_model_rows(X, y, rows):
    """skmixup's torch MLP: fgsm against a hand-written FGSM on the same module."""
    try:
        import torch

        from skmixup.neural_network import MixupMLPClassifier
    except ImportError:
        rows.append(
            ("MixupMLPClassifier", "torch: not installed", *[float("nan")] * 4, "")
        )
        return
    model = MixupMLPClassifier(hidden_layer_sizes=(256,), max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    module = model.net_.module_

    def by_hand():
        Xt = torch.from_numpy(X.astype(np.float32)).requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(
            module(Xt), torch.from_numpy(y), reduction="sum"
        )
        (grad,) = torch.autograd.grad(loss, Xt)
        return (Xt + EPS * grad.sign()).detach().numpy()

    t_proba, _ = best_time(lambda: model.predict_proba(X))
    t_ours, ours = best_time(lambda: fgsm(model, X, y, eps=EPS, feature_scale=1))
    t_hand, ref = best_time(by_hand)
    agree = np.mean(np.sign(ref - X) == np.sign(ours - X))
    n, name = X.shape[0], "MixupMLPClassifier f32"
    rows.append((name, "skmixup fgsm", t_ours, n / t_ours, 1.0, t_ours / t_proba, ""))
    rows.append(
        (
            name,
            "hand-written torch fgsm (float32)",
            t_hand,
            n / t_hand,
            t_hand / t_ours,
            t_hand / t_proba,
            f"{agree:.4f}",
        )
    )
    rows.append(
        (name, "one predict_proba", t_proba, n / t_proba, t_proba / t_ours, 1.0, "")
    )


def interleaved(quick, repeats):
    """Serial blocks, threaded blocks and torch, alternated ``repeats`` times."""
    import statistics

    from skmixup.utils import _threads

    X, y, models = _data_and_models(quick)
    threaded = _threads.worker_count
    print(
        f"load average {os.getloadavg()[0]:.1f}; skmixup block threads: "
        f"{_block_threads()}; best and median of {repeats} alternations"
    )
    for name, (model, data) in models.items():
        layers = torch_layers(model)
        times = {"serial": [], "threads": [], "torch": []}
        for _ in range(repeats):
            for method, spent in times.items():
                if method == "torch":
                    start = time.perf_counter()
                    torch_fgsm(layers, data, y)
                else:
                    _threads.worker_count = (
                        threaded if method == "threads" else lambda n, b: 1
                    )
                    start = time.perf_counter()
                    fgsm(model, data, y, eps=EPS, feature_scale=1)
                spent.append(time.perf_counter() - start)
        _threads.worker_count = threaded
        best = {k: min(v) for k, v in times.items()}
        median = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"{name:<24} best: serial {best['serial']:.4f} threads "
            f"{best['threads']:.4f} torch {best['torch']:.4f} (torch / threads "
            f"{best['torch'] / best['threads']:.2f}); median: serial "
            f"{median['serial']:.4f} threads {median['threads']:.4f} torch "
            f"{median['torch']:.4f} (torch / threads "
            f"{median['torch'] / median['threads']:.2f})"
        )
    print(f"load average {os.getloadavg()[0]:.1f}")


def _block_threads():
    """Threads skmixup's attack uses for its row blocks (from the main thread)."""
    from threadpoolctl import threadpool_info

    from skmixup.utils._threads import worker_count

    info = threadpool_info()
    blas = [lib["num_threads"] for lib in info if lib["user_api"] == "blas"]
    return worker_count(10**6, max(blas, default=os.cpu_count() or 1))


def _data_and_models(quick):
    n_samples = 5_000 if quick else 50_000
    X, y = make_classification(
        n_samples=n_samples,
        n_features=100,
        n_informative=30,
        n_classes=10,
        random_state=0,
    )
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        models = {}
        for suffix, data in [("", X), (" f32", X32)]:
            models["LogisticRegression" + suffix] = (
                LogisticRegression(max_iter=20).fit(data, y),
                data,
            )
            models["MLPClassifier(256,)" + suffix] = (
                MLPClassifier((256,), max_iter=3, random_state=0).fit(data, y),
                data,
            )
    return X, y, models


def run(quick, threads, skip_art=False):
    X, y, models = _data_and_models(quick)
    n_samples = X.shape[0]
    X32 = X.astype(np.float32)
    try:
        import art

        art_version = art.__version__
    except ImportError:
        art_version = "not installed"
    print(
        f"FGSM eps={EPS} on make_classification(n_samples={n_samples}, "
        f"n_features=100, n_classes=10); ART {art_version}; best of up to 5 runs"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{os.cpu_count()} CPUs, load average {load}; threads: "
        f"{'library defaults' if threads is None else threads}; skmixup block "
        f"threads: {_block_threads()}"
    )
    rows = []
    for name, (model, data) in models.items():
        bench_model(name, model, data, y, rows, skip_art=skip_art or "f32" in name)
    torch_model_rows(X32, y, rows)
    mixed_pipeline_rows(n_samples, rows)
    header = (
        f"{'model':<24} {'method':<40} {'seconds':>9} {'samples/s':>11} "
        f"{'x ours':>8} {'x proba':>8} {'sign agree':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, method, seconds, rate, vs_ours, vs_proba, agree in rows:
        print(
            f"{name:<24} {method:<40} {seconds:>9.4f} {rate:>11,.0f} "
            f"{vs_ours:>8.2f} {vs_proba:>8.2f} {agree:>10}"
        )
    print(
        "x ours: time relative to skmixup fgsm (= our speedup over that method); "
        "x proba: time relative to one predict_proba; sign agree: fraction of "
        "coordinates whose perturbation sign equals ours."
    )


if __name__ == "__main__":
    main()
