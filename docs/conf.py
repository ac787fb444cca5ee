"""Sphinx configuration of the dmft documentation (``make docs``).

Markdown pages (MyST, with dollar math and amsmath), the notebooks of ``notebooks/`` rendered
from their stored outputs (never executed), an API reference from the docstrings (numpydoc), a
CLI reference from the argparse parser (sphinx-argparse), and MathJax served from the site
itself (sphinx-mathjax-offline), so that the equations render without network access.
"""
import filecmp
import os
import pathlib
import shutil
import sys

from docutils import nodes
from sphinx.addnodes import pending_xref

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import dmft  # noqa: E402

project = "dmft"
author = "the dmft developers"
copyright = "2024-2026, the dmft developers"
release = dmft.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_nb",                      # Markdown (MyST) pages and notebooks; loads myst_parser
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinxarg.ext",
    "sphinx-mathjax-offline",       # MathJax 3 copied into _static/mathjax: works offline
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
templates_path = []
html_static_path = ["_static"]
html_css_files = ["dmft.css"]

# -- MyST ---------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- notebooks: rendered from their stored outputs, never executed ------------------------
nb_execution_mode = "off"
nb_merge_streams = True

# -- MathJax ------------------------------------------------------------------------------
# sphinx-mathjax-offline points mathjax_path at the copy it ships (MathJax 3.2.2) and copies
# it into the built site; set here too so that the choice is visible in this file.
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"tex": {"tags": "none"}, "chtml": {"displayAlign": "center"}}

# -- API reference ------------------------------------------------------------------------
autosummary_generate = False
# docstrings write |z| (a z-score) in plain text; in reST that is a substitution reference.
# Defined here to stand for itself, so that those docstrings render as written (api.rst only).
rst_prolog = r"""
.. |z| replace:: \|z\|
"""
autodoc_member_order = "bysource"
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_class_members_toctree = False

# nitpicky (-n) is on in `make docs`.  Today's public docstrings refer to internal modules that
# have no page yet (they get one with the full API reference of a later release), and to
# xarray.Dataset (no intersphinx: the build must work offline).  Listed one by one, so that any
# other broken reference still fails the build.
nitpick_ignore = [
    ("py:mod", "dmft.targets"),
    ("py:mod", "dmft.schedules"),
    ("py:mod", "dmft.onepass"),
    ("py:mod", "dmft.learnability_check"),
    ("py:data", "dmft.activations.ACTIVATIONS"),
    ("py:class", "xarray.Dataset"),
]

# -- HTML ---------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"dmft {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # no "on this page" column where a wide table needs the room
    "secondary_sidebar_items": {"**": ["page-toc"], "validation_report": [], "changelog": [],
                                "citing": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"changelog": [], "citing": [], "validation_report": []}
html_show_sourcelink = False


# -- the notebooks live in ../notebooks: copied into docs/notebooks/ (not committed) --------
def _copy_notebooks():
    dest = DOCS / "notebooks"
    dest.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    for old in dest.glob("*.ipynb"):
        if old.name not in wanted:
            old.unlink()
    for name, src in wanted.items():
        out = dest / name
        if not out.exists() or not filecmp.cmp(src, out, shallow=False):
            shutil.copy2(src, out)


_copy_notebooks()


# -- equation references: {eqn}`2.3` -> "(2.3)", a link to the equation tagged 2.3 ----------
def eqn_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """Cross-reference to the theory equation ``S.N``: the target ``(eq-S-N)=`` that precedes
    the displayed equation carrying ``\\tag{S.N}``; an unknown number fails the build."""
    number = text.strip()
    env = inliner.document.settings.env
    node = pending_xref(rawtext, refdomain="std", reftype="ref", reftarget="eq-" +
                        number.replace(".", "-"), refexplicit=True, refwarn=True,
                        refdoc=env.docname)
    node += nodes.inline(rawtext, f"({number})", classes=["xref", "std", "std-ref"])
    return [node], []


def setup(app):
    app.add_role("eqn", eqn_role)
