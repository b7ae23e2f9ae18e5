"""Helpers for PyTorch objects that need no ``torch`` import (so that both
``skmixup.neural_network`` and ``skmixup.metrics``, which duck-types skorch nets,
can use them)."""


def uncompiled(module):
    """The module that ``torch.compile`` wrapped (``_orig_mod``), or ``module``.

    skorch's ``compile=True`` wraps the module and the criterion; type checks and
    input gradients need the original.

    Examples
    --------
    >>> from skmixup.utils._torch import uncompiled
    >>> class Wrapped:
    ...     _orig_mod = "the module"
    >>> uncompiled(Wrapped()), uncompiled("plain")
    ('the module', 'plain')
    """
    return getattr(module, "_orig_mod", module)
