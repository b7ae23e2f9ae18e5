"""matplotlib for the displays, or a clear ImportError before any work is done."""


def pyplot():
    """``matplotlib.pyplot``; ImportError with the install line when it is missing.

    The displays call it first, so that a missing matplotlib fails before an
    attack or a prediction has run.
    """
    from skmixup.utils._install import PLOT_INSTALL

    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            f"Plotting needs matplotlib: pip install matplotlib (or {PLOT_INSTALL})."
        ) from None
    return plt
