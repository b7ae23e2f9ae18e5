"""Root conftest: keeps `--doctest-modules` collection working without the extras."""

import importlib.util

collect_ignore_glob = []
_find = importlib.util.find_spec
if _find("torch") is None or _find("skorch") is None:
    collect_ignore_glob.append("skmixup/neural_network/*")
if _find("matplotlib") is None:
    collect_ignore_glob.append("skmixup/metrics/_plot.py")
