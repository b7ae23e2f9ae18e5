"""Console output of verbose fits: plain text unless it goes to a terminal."""

import re
import sys

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain_print(*args, **kwargs):
    """``print``, without ANSI colour codes unless ``sys.stdout`` is a terminal.

    skorch's ``PrintLog`` colours the best value of each column; in a log file,
    a notebook or a pipe those codes are noise.

    Examples
    --------
    >>> plain_print("\\x1b[36m0.5000\\x1b[0m")  # doctest output is not a terminal
    0.5000
    """
    stream = kwargs.get("file") or sys.stdout
    if not getattr(stream, "isatty", lambda: False)():
        args = [_ANSI.sub("", str(a)) for a in args]
    print(*args, **kwargs)
