"""The experiments behind ``python -m skmixup reproduce``, as plain functions.

``skmixup.__main__`` only parses arguments and prints; everything that computes lives
here, so that the experiments can be run and tested from Python.
"""

from skmixup.experiments._demo import linear_digits_demo

__all__ = ["linear_digits_demo"]
