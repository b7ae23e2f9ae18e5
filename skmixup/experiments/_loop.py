"""The one split/fit/score loop of the robustness and generalization experiments."""

from sklearn.utils import _safe_indexing

from skmixup.experiments._common import (
    check_datasets,
    dataset_name,
    fixed_epoch_budget,
    load_dataset,
    mixup_label,
    notify,
    stratified_splits,
)
from skmixup.experiments._models import build
from skmixup.utils._threads import torch_single_thread


def run_splits(datasets, models, config, score, *, n_splits, test_size, progress):
    """Fit and score every model on every split of every data set.

    For each data set and each of ``n_splits`` seeded stratified splits (seed
    ``config["random_state"]``), a fresh pipeline of every ``(kind, mixup)`` in
    ``models`` (see :func:`skmixup.experiments._models.build`) is fitted on the
    training part, and ``score(pipe, X_train, y_train, X_test, y_test)`` returns a
    list of row dicts; each row gets ``dataset``, ``split``, ``model`` and
    ``mixup``. ``progress`` gets a line ``[k/N] dataset split model: text`` after
    each fit, where ``text`` is the ``"progress"`` entry of the first row (removed
    from the rows).
    """
    datasets = check_datasets(datasets)
    random_state = config["random_state"]
    n_fits = len(datasets) * n_splits * len(models)
    raw, k = [], 0
    for dataset in datasets:
        name = dataset_name(dataset)
        X, y = load_dataset(dataset, random_state=random_state)
        splits = stratified_splits(
            y, n_splits=n_splits, test_size=test_size, random_state=random_state
        )
        for s, (train, test) in enumerate(splits):
            for kind, mixup in models:
                model, pipe = build(kind, mixup, {**config, "dataset": dataset})
                X_train, X_test = _safe_indexing(X, train), _safe_indexing(X, test)
                with torch_single_thread(), fixed_epoch_budget():
                    pipe.fit(X_train, y[train])
                    rows = score(pipe, X_train, y[train], X_test, y[test])
                k += 1
                text = rows[0].pop("progress", "")
                for row in rows:
                    row.update(
                        dataset=name, split=s, model=model, mixup=mixup_label(mixup)
                    )
                raw += rows
                notify(
                    progress,
                    f"[{k}/{n_fits}] {name} split {s + 1}/{n_splits} {model}: {text}",
                )
    return raw
