"""Sphinx configuration.

Build with ``pip install -e ".[docs]"`` then ``sphinx-build docs docs/_build``.
"""

import os

import skmixup

project = "skmixup"
author = "skmixup developers"
release = skmixup.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
html_theme = "pydata_sphinx_theme"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "scipy": ("https://docs.scipy.org/doc/scipy", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "skorch": ("https://skorch.readthedocs.io/en/stable", None),
}
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
}
exclude_patterns = ["_build"]

if os.environ.get("SKMIXUP_DOCS_OFFLINE"):  # tests/test_docs.py: no network there
    extensions.remove("sphinx.ext.intersphinx")
    del intersphinx_mapping
