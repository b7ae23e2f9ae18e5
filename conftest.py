"""Root conftest: keeps `--doctest-modules` collection working without the extras."""

import importlib.util

collect_ignore_glob = []
if importlib.util.find_spec("torch") is None or importlib.util.find_spec("skorch") is None:
    collect_ignore_glob.append("skmixup/neural_network/*")
if importlib.util.find_spec("matplotlib") is None:
    collect_ignore_glob.append("skmixup/metrics/_plot.py")
