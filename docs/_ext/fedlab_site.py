"""What the course website adds to Sphinx + MyST-NB (docs/README.md); loaded by docs/conf.py.

- **A "Run this notebook" box** under every notebook's title: how to open it locally
  (``python3 dev.py lab``), and Colab and Binder links built from pyproject.toml's
  ``[project.urls] Repository``. Added to the page as it is read; the notebooks are not changed.
- **Widgets as pictures**: a widget output shows the PNG saved beside it (or a short note), so no
  page needs the widget JavaScript that MyST-NB would load from a CDN.
- **``{readme-section}`` directive**: one ``## `` section of README.md, with the course map's
  notebook names linked to their pages (the landing page, docs/index.md).
- **MathJax from the site itself** (sphinx-mathjax-offline's copy, the parts a page uses), so
  formulas render without internet.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

WIDGET = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "*An interactive panel: it works when you run the notebook (see the box at the top).*"
NOTEBOOK_NAME = re.compile(r"`(\d\d_\w+)`")  # `03_fedsgd_vs_fedavg` in the README's course map
RELATIVE_LINK = re.compile(r"\]\((?!\w+:|#)([^)\s]+)\)")  # [text](path), not a URL or an anchor
# MathJax 3's tex-chtml component and what it loads on demand; not the 4 MB speech engine (sre/)
MATHJAX_PARTS = ["tex-chtml.js", "output/chtml", "input/tex/extensions", "a11y", "ui"]


def repository_url(pyproject: dict) -> str:
    """The GitHub repository declared in pyproject.toml's ``[project.urls]``, without a trailing ``/``.

    Example:
        >>> repository_url({"project": {"urls": {"Repository": "https://github.com/o/r"}}})
        'https://github.com/o/r'
    """
    url = pyproject.get("project", {}).get("urls", {}).get("Repository")
    if not url:
        raise ValueError(
            "pyproject.toml declares no repository: add it under [project.urls], e.g.\n"
            '    Repository = "https://github.com/OWNER/REPO"\n'
            "(the course website builds its Colab and Binder links from it)"
        )
    return url.rstrip("/").removesuffix(".git")


def launch_links(repository: str, notebook: str) -> dict[str, str]:
    """Colab and Binder links that open ``notebook`` (a path in the repository) from its main branch.

    Example:
        >>> launch_links("https://github.com/o/r", "notebooks/01_x.ipynb")["binder"]
        'https://mybinder.org/v2/gh/o/r/HEAD?labpath=notebooks/01_x.ipynb'
    """
    url = urlparse(repository.rstrip("/").removesuffix(".git"))
    parts = url.path.strip("/").split("/")
    if url.scheme != "https" or url.netloc != "github.com" or len(parts) != 2 or not all(parts):
        raise ValueError(
            f"the repository URL must be https://github.com/OWNER/REPO (Colab and Binder open "
            f"notebooks from GitHub), got {repository!r}"
        )
    owner, repo = parts
    return {
        "colab": f"https://colab.research.google.com/github/{owner}/{repo}/blob/main/{notebook}",
        "binder": f"https://mybinder.org/v2/gh/{owner}/{repo}/HEAD?labpath={notebook}",
    }


def run_box(repository: str, notebook: str) -> str:
    """The "Run this notebook" box, as MyST Markdown."""
    links = launch_links(repository, notebook)
    name = Path(notebook).name
    return f"""
:::{{admonition}} Run this notebook
:class: tip fedlab-run

- **On your computer:** in a clone of [the repository]({repository}), `python3 dev.py lab` opens
  JupyterLab on the course (the first run installs fedlab into `.venv/`, a few minutes); then
  open `{name}` in its file browser.
- **In the cloud:** [Open in Colab]({links["colab"]}) (the first code cell installs fedlab there)
  · [Launch on Binder]({links["binder"]}) (builds the repository's `environment.yml` first,
  which can take several minutes).
:::
"""


def prepare_notebook(nb: dict, box: str) -> None:
    """Put ``box`` under the title of ``nb`` and replace widget outputs by their PNG or a note."""
    nb.get("metadata", {}).pop("widgets", None)  # saved widget state: useless without JavaScript
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and box and source.startswith("# "):
            title, _, rest = source.partition("\n")
            cell["source"] = f"{title}\n{box}\n{rest}"
            box = ""
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if data.pop(WIDGET, None) is not None and "image/png" not in data:
                output["data"] = {"text/markdown": WIDGET_NOTE}


def on_source_read(app, docname: str, source: list[str]) -> None:
    """Sphinx ``source-read``: prepare every notebook page (the file itself is left as it is)."""
    if app.env.doc2path(docname).suffix != ".ipynb":
        return
    nb = json.loads(source[0])
    notebook = f"notebooks/{Path(docname).name}.ipynb"  # its path in the repository
    prepare_notebook(nb, run_box(app.config.fedlab_repository_url, notebook))
    source[0] = json.dumps(nb)


def readme_section(readme: str, heading: str, repository: str) -> list[str]:
    """The lines of README's ``## heading`` section up to the next heading (its subsections are
    for readers of the repository); notebook names link to their pages, other relative links to
    the repository on GitHub."""
    lines = readme.splitlines()
    try:
        start = lines.index(f"## {heading}") + 1
    except ValueError:
        raise ValueError(f"README.md has no section '## {heading}'") from None
    end, in_code = start, False
    while end < len(lines) and (in_code or not re.match(r"#+ ", lines[end])):
        in_code ^= lines[end].startswith("```")  # a `# comment` in a code block is no heading
        end += 1
    text = "\n".join(lines[start:end])
    text = RELATIVE_LINK.sub(lambda m: f"]({repository}/blob/main/{m.group(1)})", text)
    text = NOTEBOOK_NAME.sub(r"[`\1`](notebooks/\1.ipynb)", text)
    return text.strip("\n").splitlines()


class ReadmeSection(SphinxDirective):
    """``{readme-section} Heading``: the README's ``## Heading`` section, parsed as MyST."""

    required_arguments = 1
    final_argument_whitespace = True

    def run(self) -> list[nodes.Node]:
        readme = Path(self.config.fedlab_readme)
        self.env.note_dependency(str(readme))  # README.md edited: the page is rebuilt
        lines = readme_section(
            readme.read_text(encoding="utf-8"), self.arguments[0], self.config.fedlab_repository_url
        )
        container = nodes.container()
        self.state.nested_parse(StringList(lines, str(readme)), 0, container)
        return container.children


def copy_mathjax(app, exception) -> None:
    """Sphinx ``build-finished``: serve MathJax from ``_static/mathjax`` (no CDN)."""
    if exception is not None or app.builder.format != "html":
        return
    spec = importlib.util.find_spec("sphinx-mathjax-offline")  # a package named with hyphens
    if spec is None:
        raise RuntimeError("MathJax for the site comes from: pip install sphinx-mathjax-offline")
    source = Path(spec.submodule_search_locations[0]) / "static" / "mathjax"
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


def setup(app):
    app.add_config_value("fedlab_repository_url", "", "env")
    app.add_config_value("fedlab_readme", "", "env")
    app.add_directive("readme-section", ReadmeSection)
    app.connect("source-read", on_source_read)
    app.connect("build-finished", copy_mathjax)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
