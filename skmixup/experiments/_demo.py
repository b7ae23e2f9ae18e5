"""ERM vs Mixup logistic regression on scikit-learn's digits."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmixup.experiments._common import number
from skmixup.linear_model import MixupLogisticRegression


def linear_digits_demo(
    *, mixup_alphas=(0.2, 1.0), C=1.0, test_size=0.5, random_state=0
):
    """Fit LogisticRegression and MixupLogisticRegression on digits and compare them.

    Both are fitted in a ``StandardScaler`` pipeline on a stratified split, with the
    same ``C``.

    Parameters
    ----------
    mixup_alphas : tuple of float, default=(0.2, 1.0)
        ``mixup_alpha`` of each Mixup model (``mixup_beta = mixup_alpha``).
    C : float, default=1.0
        Inverse ridge strength, shared by every model.
    test_size : float, default=0.5
        Fraction of the samples held out for testing.
    random_state : int, default=0
        Seeds the split and the Mixup partner draws.

    Returns
    -------
    rows : list of dict
        One row per model: ``model``, ``train_accuracy``, ``test_accuracy``,
        ``train_log_loss``, ``test_log_loss`` and ``log_loss_gap`` (test - train).

    Examples
    --------
    >>> from skmixup.experiments import linear_digits_demo
    >>> rows = linear_digits_demo(mixup_alphas=(1.0,))
    >>> [row["model"] for row in rows]
    ['LogisticRegression', 'MixupLogisticRegression(alpha=1.0)']
    """
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state
    )
    models = {"LogisticRegression": LogisticRegression(C=C, max_iter=1000)}
    for alpha in mixup_alphas:
        models[f"MixupLogisticRegression(alpha={alpha})"] = MixupLogisticRegression(
            mixup_alpha=alpha, C=C, random_state=random_state
        )
    rows = []
    for name, model in models.items():
        pipe = make_pipeline(StandardScaler(), model).fit(X_train, y_train)
        train_ll = log_loss(y_train, pipe.predict_proba(X_train), labels=pipe.classes_)
        test_ll = log_loss(y_test, pipe.predict_proba(X_test), labels=pipe.classes_)
        rows.append(
            {
                "model": name,
                "train_accuracy": accuracy_score(y_train, pipe.predict(X_train)),
                "test_accuracy": accuracy_score(y_test, pipe.predict(X_test)),
                "train_log_loss": train_ll,
                "test_log_loss": test_ll,
                "log_loss_gap": test_ll - train_ll,
            }
        )
    return rows


def format_table(rows, columns):
    """Markdown table of ``rows`` (dicts) restricted to ``columns``."""
    widths = [max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in columns]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line + " |", "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        cells = (
            _fmt(r[c]).ljust(w) if isinstance(r[c], str) else _fmt(r[c]).rjust(w)
            for c, w in zip(columns, widths, strict=True)
        )
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _fmt(value):
    if isinstance(value, (float, np.floating)):
        return number(value, ".4f")
    return str(value)
