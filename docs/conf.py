"""Sphinx configuration of the documentation site.

Build: ``python -m sphinx -W -n -b html docs docs/_build/html`` (``pip install -e ".[docs]"``). ``-W``
turns every warning into an error and ``-n`` (nitpicky) warns on every cross-reference that does not
resolve, so a docstring naming a function that does not exist fails the build. The build reads no
network: names of torch, torchvision and the standard library link through the local table in
``docs/_ext/references.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # the package, as checked out
sys.path.insert(0, str(DOCS / "_ext"))

import antialias  # noqa: E402

project = "antialias"
author = "The antialias authors"
copyright = "The antialias authors, Apache-2.0"  # noqa: A001  (Sphinx's name)
release = antialias.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinxcontrib.mermaid",
    "readme_sections",
    "references",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "demo/table.md", "demo_methods/table.md"]
html_theme = "furo"
html_title = "antialias"

# Google-style docstrings, as torch, torchvision and kornia write them.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = ["Shape", "Convention"]
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_inherit_docstrings = False  # an undocumented forward() shows no nn.Module.forward text
default_role = "code"  # `x` in a docstring is code, as in Markdown

myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
myst_fence_as_directive = ["mermaid"]
nitpicky = True
