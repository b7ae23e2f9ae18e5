"""The one label encoder: labels to class indices, and class indices to targets.

Every estimator and tool of skmixup that turns labels into numbers goes through
here: the linear models and :mod:`skmixup.theory` (:func:`encode_targets`, the
sigmoid column or one-hot matrix of the logit-space objectives), the attacks
and scorers and the PyTorch theory tools (:func:`label_indices`), and the
networks' ``partial_fit``.
"""

import numpy as np

__all__ = ["encode_targets", "label_indices", "one_hot"]


def label_indices(classes, y):
    """Index of each label of ``y`` into ``classes`` (which need not be sorted).

    Labels ``0..K-1`` with ``classes == arange(K)`` (the common case) are their
    own indices, without a sorted search over all samples.

    Raises
    ------
    ValueError
        If ``y`` holds labels that are not in ``classes`` (or that cannot be
        compared with them).

    Examples
    --------
    >>> import numpy as np
    >>> from skmixup.utils._labels import label_indices
    >>> label_indices(np.array(["b", "a"]), np.array(["a", "a", "b"])).tolist()
    [1, 1, 0]
    """
    classes = np.asarray(classes)
    y = np.asarray(y)
    if (
        classes.dtype.kind in "iu"
        and y.dtype.kind in "iu"
        and np.array_equal(classes, np.arange(len(classes)))
    ):  # labels 0..K-1: they are their own indices
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            _raise_unknown(classes, y[(y < 0) | (y >= len(classes))])
        return y.astype(np.intp, copy=False)
    sorter = np.argsort(classes, kind="stable")
    try:
        pos = np.searchsorted(classes, y, sorter=sorter)
    except TypeError as exc:
        raise ValueError(
            f"y contains labels not in the estimator's classes_ "
            f"{classes.tolist()!r}: labels of a type that cannot be compared with "
            "them."
        ) from exc
    pos = np.clip(pos, 0, len(classes) - 1)
    idx = sorter[pos]
    unknown = classes[idx] != y
    if np.any(unknown):
        _raise_unknown(classes, y[unknown])
    return idx


def _raise_unknown(classes, unknown):
    raise ValueError(
        f"y contains labels not in the estimator's classes_ "
        f"{classes.tolist()!r}: {np.unique(unknown).tolist()!r}."
    )


def one_hot(indices, n_classes, dtype=np.float64):
    """Rows of the identity: ``(n, n_classes)`` with a 1 at each index."""
    out = np.zeros((len(indices), n_classes), dtype=dtype)
    out[np.arange(len(indices)), indices] = 1
    return out


def encode_targets(classes, y):
    """Target matrix of labels ``y`` among ``classes``: ``(n, 1)`` of 0/1 for two
    classes (sigmoid model), else one-hot ``(n, n_classes)``; float64.

    Raises
    ------
    ValueError
        If ``y`` is not 1-dimensional or holds labels not in ``classes``.

    Examples
    --------
    >>> from skmixup.utils._labels import encode_targets
    >>> encode_targets([3, 5], [5, 3]).tolist()
    [[1.0], [0.0]]
    >>> encode_targets([0, 1, 2], [2, 0]).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    classes = np.asarray(classes)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-dimensional, got shape {y.shape}.")
    codes = label_indices(classes, y)
    if classes.size == 2:
        return codes[:, None].astype(np.float64)
    return one_hot(codes, classes.size)
