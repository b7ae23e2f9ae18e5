"""matplotlib for the displays, or a clear ImportError before any work is done."""


def pyplot():
    """``matplotlib.pyplot``; ImportError with the install line when it is missing.

    The displays call it first, so that a missing matplotlib fails before an
    attack or a prediction has run.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "Plotting needs matplotlib: pip install matplotlib "
            '(or pip install "skmixup[plot]").'
        ) from None
    return plt
