"""Build the course website, offline, and check its links (docs/README.md).

    .venv/bin/python tools/site.py              # into build/site/
    .venv/bin/python tools/site.py --out DIR    # elsewhere (the tests build into a temporary dir)
    .venv/bin/python tools/site.py --check DIR  # only check an already built site's links
    python -m http.server -d build/site         # then open http://localhost:8000

Sphinx + MyST-NB render every notebook from its committed outputs: nothing is executed or
downloaded. The configuration is docs/conf.py; the pages are copies of docs/*.md and
notebooks/NN_*.ipynb in a staging folder beside the site (``build/site-work/src``; the notebooks
themselves are never modified), so a page's warning names its copy there. Warnings are errors.
MyST-NB writes the notebooks' images to ``build/jupyter_execute`` (beside the site) on the way.
After the build every page is checked: each relative link, image and script must point at a file
of the site (and a ``#fragment`` at an id in that page), and no page may load anything from the
internet. Needs the ``docs`` extras (``pip install -e ".[docs]"``; the test extras include them).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"
DEFAULT_OUT = ROOT / "build" / "site"
# what a browser fetches by itself when it shows a page (a remote one would need the internet)
FETCHED = {"img", "script", "source", "iframe", "video", "audio"}
FETCHED_LINKS = {"stylesheet", "preload", "modulepreload", "icon", "manifest"}  # <link rel=...>


def stage(src: Path) -> None:
    """Copy the pages (docs/*.md but its README, notebooks/NN_*.ipynb) into ``src``."""
    shutil.rmtree(src, ignore_errors=True)
    (src / "notebooks").mkdir(parents=True)
    for page in DOCS.glob("*.md"):
        if page.name != "README.md":
            shutil.copy2(page, src / page.name)
    for notebook in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        shutil.copy2(notebook, src / "notebooks" / notebook.name)


def build(out: Path = DEFAULT_OUT) -> None:
    """Run Sphinx into ``out``: every page read afresh (``-E``: about 10 s, and never a page left
    stale by a change to README.md or docs/_ext), warnings as errors, all of them listed."""
    work = out.with_name(out.name + "-work")
    stage(work / "src")
    if (out / ".buildinfo").is_file():  # an earlier build (Sphinx's mark): no page of it survives
        shutil.rmtree(out)
    command = [
        sys.executable, "-m", "sphinx", "-b", "html", "-E", "-W", "--keep-going", "-q",
        "-c", str(DOCS), "-d", str(work / "doctrees"), str(work / "src"), str(out),
    ]  # fmt: skip
    subprocess.run(command, check=True)


class _Page(HTMLParser):
    """The ids of one HTML page, and its URLs: ``(tag, attribute, url, fetched)``, where fetched
    says that the browser loads it by itself (an image, a script, a stylesheet), not on a click."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str, str, bool]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.update(attrs[key] for key in ("id", "name") if attrs.get(key))
        rel = set((attrs.get("rel") or "").split())
        for attr in ("href", "src"):
            if attrs.get(attr):
                fetched = tag in FETCHED or (tag == "link" and bool(rel & FETCHED_LINKS))
                self.urls.append((tag, attr, attrs[attr], fetched))


def _parse(path: Path, cache: dict[Path, _Page]) -> _Page:
    if path not in cache:
        cache[path] = page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
    return cache[path]


def check(site: Path) -> list[str]:
    """Every problem of the built ``site``: broken relative links or anchors, remote assets."""
    problems, cache = [], {}
    for html in pages(site):
        page = _parse(html, cache)
        where = html.relative_to(site).as_posix()
        for tag, attr, url, fetched in page.urls:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc:  # https:, mailto:, //host: links may leave the site
                if fetched and parts.scheme != "data":
                    problems.append(f"{where}: <{tag} {attr}> loads {url} from the internet")
                continue
            target = (html.parent / unquote(parts.path)).resolve() if parts.path else html
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{where}: <{tag} {attr}={url!r}>: no such file")
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in _parse(target, cache).ids:
                    problems.append(f"{where}: <{tag} {attr}={url!r}>: no such anchor")
    return problems


def pages(site: Path) -> list[Path]:
    """The site's pages (not the theme's templates under _static/)."""
    return [p for p in sorted(site.rglob("*.html")) if "_static" not in p.relative_to(site).parts]


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the site goes")
    parser.add_argument("--check", type=Path, metavar="SITE", help="only check a built site")
    args = parser.parse_args(argv)
    site = (args.check or args.out).resolve()
    if not args.check:
        start = time.monotonic()
        try:
            build(site)
        except subprocess.CalledProcessError:
            print("the site did not build: see Sphinx's warnings above", file=sys.stderr)
            return 1
        print(
            f"built the site in {time.monotonic() - start:.0f} s: {site} ({size_mb(site):.0f} MB)"
        )
    problems = check(site)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} broken links or remote assets in {site}", file=sys.stderr)
        return 1
    print(f"links checked: {len(pages(site))} pages, none broken, nothing remote")
    shown = site.relative_to(ROOT) if site.is_relative_to(ROOT) else site
    print(f"view it: python3 -m http.server -d {shown}   (then open http://localhost:8000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
