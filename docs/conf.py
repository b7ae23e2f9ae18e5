"""Sphinx configuration.

Build with ``pip install -e ".[docs]"`` then ``sphinx-build docs docs/_build``. The
build works offline: links to other projects' documentation (intersphinx) are
only made with ``SKMIXUP_DOCS_INTERSPHINX=1``, as they need the network.
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
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
html_theme = "pydata_sphinx_theme"
_intersphinx_mapping = {
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

if os.environ.get("SKMIXUP_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = _intersphinx_mapping
