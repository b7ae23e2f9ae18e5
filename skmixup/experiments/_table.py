"""A user's CSV table as a data set of the experiments (``reproduce --data``)."""

import pathlib

import numpy as np
from sklearn.utils.multiclass import type_of_target

from skmixup.experiments._common import Table

MIN_ROWS = 20


def load_table(path, target):
    """Read ``path`` (CSV) and check it; return ``(table, description)``.

    Numeric and boolean columns are imputed and scaled, every other column is
    one-hot encoded (:func:`~._common.table_preprocessor`); columns with no value
    at all are dropped. Raises ``ValueError`` naming the problem for a missing or
    unreadable file, an unknown target column, a target with missing values, a
    continuous target, a target with one class or a class of one row, fewer than
    :data:`MIN_ROWS` rows, or no feature column.
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with the test extra
        raise ImportError("--data needs pandas: pip install pandas") from None
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"--data: no such file: {path}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"--data: cannot read {path} as CSV: {e}") from None
    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise ValueError(
            f"--target: {path} has no column {target!r}; its columns are: {columns}."
        )
    y = frame[target]
    missing = int(y.isna().sum())
    if missing:
        raise ValueError(
            f"--target: column {target!r} has {missing} missing value(s); drop "
            "those rows or fill them first."
        )
    if len(frame) < MIN_ROWS:
        raise ValueError(
            f"--data: {path} has {len(frame)} rows; the experiments need at least "
            f"{MIN_ROWS} (half of them are held out for testing)."
        )
    y = y.to_numpy()
    if y.dtype.kind not in "biuf":  # labels as text
        y = np.array([str(v) for v in y], dtype=object)
    kind = type_of_target(y)
    if kind.startswith("continuous"):
        raise ValueError(
            f"--target: column {target!r} looks continuous ({len(np.unique(y))} "
            "distinct non-integer values): reproduce compares classifiers, and "
            "regression is not supported yet. Pass a column of class labels."
        )
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(
            f"--target: column {target!r} has one class ({classes[0]!r}); a "
            "classifier needs at least two."
        )
    if counts.min() < 2:
        rare = [repr(c) for c, n in zip(classes, counts, strict=True) if n < 2]
        raise ValueError(
            f"--target: class(es) {', '.join(rare)} of column {target!r} have a "
            "single row; every class needs at least 2 (the train/test splits are "
            "stratified)."
        )
    X = frame.drop(columns=[target])
    empty = [c for c in X.columns if X[c].isna().all()]
    X = X.drop(columns=empty)
    if X.shape[1] == 0:
        raise ValueError(f"--data: {path} has no feature column besides {target!r}.")
    numeric = tuple(X.select_dtypes(include=["number", "bool"]).columns)
    categorical = tuple(c for c in X.columns if c not in numeric)
    X = X.astype({c: object for c in categorical})  # NaN-safe for the imputer
    name = path.stem
    table = Table(name, X, y, numeric, categorical)
    description = {
        "path": str(path),
        "name": name,
        "target": target,
        "n_rows": int(len(frame)),
        "classes": [c.item() if hasattr(c, "item") else c for c in classes],
        "numeric": [str(c) for c in numeric],
        "categorical": [str(c) for c in categorical],
        "dropped_empty": [str(c) for c in empty],
    }
    return table, description
