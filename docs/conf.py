"""Sphinx configuration of the course website (see docs/README.md; built by tools/site.py).

Offline by design: the notebooks are rendered from their committed outputs (never executed), and
nothing is fetched at build time (no intersphinx) or when a page is viewed (no CDN: MathJax is
served from the site, widget JavaScript is left out).
"""

import sys
import tomllib
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

import fedlab_site  # noqa: E402  (docs/_ext/fedlab_site.py)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
META = PYPROJECT["project"]

project = "fedlab"  # the import name; the distribution is META["name"] (fedlab-edu)
author = "the fedlab authors"
copyright = "the fedlab authors"
release = version = META["version"]
html_title = f"fedlab {release}"

# the pages are copies in a staging folder (tools/site.py): docs/*.md and notebooks/NN_*.ipynb
# fedlab_teaching: the teacher's guide's tables and prerequisite graph, from the notebooks
extensions = [
    "myst_nb", "sphinx_book_theme", "sphinxcontrib.bibtex", "fedlab_site", "fedlab_teaching",
]  # fmt: skip

# the notebooks: committed outputs only
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # its default loads RequireJS and the widget manager from a CDN
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath"]
myst_heading_anchors = 3  # [text](#a-heading) and [text](page.ipynb#a-heading) resolve
mathjax_path = "mathjax/tex-chtml.js"  # copied into _static/ by fedlab_site.copy_mathjax

# the papers (references.md)
bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

# the launch links of every notebook page, from pyproject.toml's [project.urls] Repository
fedlab_repository_url = fedlab_site.repository_url(PYPROJECT)
fedlab_readme = str(ROOT / "README.md")

html_theme = "sphinx_book_theme"
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["fedlab.css"]
html_theme_options = {
    "repository_url": fedlab_repository_url,
    "use_repository_button": True,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "article_footer_items": ["course-map-link.html"],  # previous · course map · next
}
# light or dark as the reader's system has it (unset, the theme logs an error in the console)
html_context = {"default_mode": "auto"}
html_show_sourcelink = False  # the theme's download button offers each page's source (.ipynb)
