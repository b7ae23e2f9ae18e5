"""Utilities: estimator discovery and small validation helpers."""

from skmixup.utils._discovery import all_estimators

__all__ = ["all_estimators"]
