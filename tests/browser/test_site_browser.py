"""The course website (docs/, built by tools/site.py) as a reader sees it, offline.

The site is built once per session from the committed notebooks into a temporary folder (or
``$FEDLAB_SITE`` names one already built) and served by ``python -m http.server`` on 127.0.0.1.
A link check reads every built page. Then Debian's Chromium, driven by Playwright and refused
any request that leaves 127.0.0.1, opens the landing page, four notebooks' pages and the glossary:
every image must load, math must render, previous / next must lead to the neighbouring notebooks
and each notebook page must have its "Run this notebook" box. The teacher's guide must show the
prerequisites the notebooks state, as a table and as a graph that loads. The API reference must
have a page per module listed in docs/api.md, with its signatures, and every fedlab name in a
notebook's exercises must link there; a link from an exercise must open its entry. Screenshots go to
``$FEDLAB_ARTIFACTS/site/`` (default ``artifacts/site/``). Fixtures and skip rules: conftest.py.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
OPENED = ["01_one_round_by_hand", "03_fedsgd_vs_fedavg", "04_client_drift", "10_what_updates_leak"]
NOTEBOOK_LINK = re.compile(r"\]\((\d\d_\w+)\.ipynb")
PAGE_LINK = re.compile(r'href="notebooks/(\d\d_\w+)\.html"')

# every <img> of the page, lazy ones included, once it has loaded (or failed to)
IMAGES_JS = """async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  return images.map(img => ({src: img.getAttribute("src"), loaded: img.naturalWidth > 0}));
}"""
MATH_JS = """async () => {
  await window.MathJax.startup.promise;
  return document.querySelectorAll("mjx-container").length;
}"""


def open_page(page, url: str) -> list[dict]:
    """Open ``url``; return its images, after checking that nothing left 127.0.0.1 or failed."""
    page.goto(url, wait_until="load")
    images = page.evaluate(IMAGES_JS)
    assert not page.offsite, f"{url} asked for resources outside the site: {page.offsite}"
    assert not page.failed, f"{url}: requests that failed: {page.failed}"
    errors = [line for line in page.console if line.startswith(("[error]", "[pageerror]"))]
    assert not errors, f"{url}: errors in the browser console: {errors}"
    broken = [image["src"] for image in images if not image["loaded"]]
    assert not broken, f"{url}: images that did not load: {broken}"
    return images


def test_the_built_site_has_every_page_and_no_broken_link(built_site, site_builder):
    pages = {p.relative_to(built_site).as_posix() for p in built_site.rglob("*.html")}
    expected = {"index.html", "glossary.html", "references.html", "teachers_guide.html", "api.html"}
    expected |= {f"notebooks/{name}.html" for name in NAMES}
    assert expected <= pages, f"missing pages: {sorted(expected - pages)}"
    assert site_builder.check(built_site) == []


@pytest.mark.browser
def test_landing_page_shows_the_course_map(site_page, site_server, site_artifacts_dir):
    open_page(site_page, f"{site_server}/index.html")
    links = site_page.locator("article table a").evaluate_all("as => as.map(a => a.href)")
    assert links == [f"{site_server}/notebooks/{name}.html" for name in NAMES]
    assert site_page.locator("a.right-next").get_attribute("href") == f"notebooks/{NAMES[0]}.html"
    site_page.screenshot(path=str(site_artifacts_dir / "index.png"))


@pytest.mark.browser
@pytest.mark.parametrize("name", OPENED)
def test_notebook_page_shows_figures_navigation_and_run_box(
    site_page, site_server, site_artifacts_dir, name
):
    images = open_page(site_page, f"{site_server}/notebooks/{name}.html")
    assert len(images) >= 1, "a notebook page without its figures"

    i = NAMES.index(name)
    previous = f"{NAMES[i - 1]}.html" if i else "../index.html"
    assert site_page.locator("a.left-prev").get_attribute("href") == previous
    if i + 1 < len(NAMES):
        assert site_page.locator("a.right-next").get_attribute("href") == f"{NAMES[i + 1]}.html"
    course_map = site_page.locator(".fedlab-course-map a")
    assert course_map.get_attribute("href") == "../index.html"

    box = site_page.locator(".fedlab-run")
    assert "python3 dev.py lab" in box.inner_text() and f"{name}.ipynb" in box.inner_text()
    colab = box.get_by_role("link", name="Open in Colab").get_attribute("href")
    binder = box.get_by_role("link", name="Launch on Binder").get_attribute("href")
    assert re.fullmatch(
        rf"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/main/notebooks/{name}\.ipynb",
        colab,
    )
    assert re.fullmatch(
        rf"https://mybinder\.org/v2/gh/[\w.-]+/[\w.-]+/HEAD\?labpath=notebooks/{name}\.ipynb",
        binder,
    )

    if "$" in (NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"):
        assert site_page.evaluate(MATH_JS) > 0, "the page's formulas were not typeset"
    site_page.screenshot(path=str(site_artifacts_dir / f"{name}.png"))
    site_page.locator("img").first.scroll_into_view_if_needed()
    site_page.screenshot(path=str(site_artifacts_dir / f"{name}_figure.png"))


@pytest.mark.browser
def test_glossary_gives_each_term_in_english_and_chinese(
    site_page, site_server, site_artifacts_dir
):
    open_page(site_page, f"{site_server}/glossary.html")
    terms = site_page.locator("dl.glossary > dt").all_inner_texts()
    chinese = [t for t in terms if re.search(r"[\u4e00-\u9fff]", t)]
    assert len(chinese) >= 30, f"{len(chinese)} Chinese terms: {chinese}"
    assert {"federated averaging (FedAvg)", "联邦平均", "client drift", "客户端漂移"} <= set(terms)
    site_page.screenshot(path=str(site_artifacts_dir / "glossary.png"))


def stated_needs() -> dict[str, list[str]]:
    """Each notebook's "You will need" links, from the paragraph of its first cell."""
    needs = {}
    for name in NAMES:
        nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
        head = "".join(nb["cells"][0]["source"])
        paragraph = head.split("**You will need:**", 1)[1].split("\n\n")[0]
        needs[name] = NOTEBOOK_LINK.findall(paragraph)
    return needs


def test_the_teachers_guide_shows_the_prerequisites_the_notebooks_state(built_site):
    html = (built_site / "teachers_guide.html").read_text(encoding="utf-8")
    table = re.search(r'<table class="fedlab-prerequisites.*?</table>', html, re.S)
    assert table, "the guide has no prerequisite table"
    shown = {}
    for row in re.findall(r"<tr.*?</tr>", table.group(0), re.S)[1:]:  # after the header
        cells = re.findall(r"<td.*?</td>", row, re.S)
        (name,) = PAGE_LINK.findall(cells[0])
        shown[name] = PAGE_LINK.findall(cells[1])
    assert shown == stated_needs()
    svg = (built_site / "_images" / "prerequisites.svg").read_text(encoding="utf-8")
    assert sorted(re.findall(r'id="node-(\d\d)"', svg)) == [name[:2] for name in NAMES]
    plan = re.search(r'<table class="fedlab-plan.*?</table>', html, re.S).group(0)
    assert sorted(PAGE_LINK.findall(plan)) == NAMES, "the plan leaves out or repeats a notebook"


@pytest.mark.browser
def test_teachers_guide_opens_with_its_plan_and_graph(site_page, site_server, site_artifacts_dir):
    images = open_page(site_page, f"{site_server}/teachers_guide.html")
    graph = [image for image in images if image["src"].endswith("_images/prerequisites.svg")]
    assert len(graph) == 1 and graph[0]["loaded"], images
    shown = site_page.locator("figure.fedlab-prerequisite-graph img")
    assert shown.evaluate("img => img.getBoundingClientRect().width") > 500, "the graph is tiny"
    assert site_page.locator("table.fedlab-plan > tbody > tr").count() == 10
    assert site_page.locator("table.fedlab-objectives > tbody > tr").count() == len(NAMES)
    sidebar = site_page.locator("nav.bd-links")
    assert "Teaching" in sidebar.inner_text()
    assert sidebar.get_by_role("link", name="Teacher’s guide · 教师指南").count() == 1
    site_page.screenshot(path=str(site_artifacts_dir / "teachers_guide.png"))
    shown.scroll_into_view_if_needed()
    site_page.screenshot(path=str(site_artifacts_dir / "teachers_guide_graph.png"))


# ---- the API reference (docs/api.md, docs/_ext/fedlab_api.py) ----


def api_modules() -> list[str]:
    """The modules docs/api.md documents: the entries of its ``autosummary`` blocks."""
    page = (ROOT / "docs/api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"\.\. autosummary::\n(.*?)```", page, re.S)
    pattern = r"^   (fedlab(?:\.\w+)+)$"  # fedlab.engine, fedlab.flower.apps
    return [name for block in blocks for name in re.findall(pattern, block, re.M)]


def parameters(module: str, function: str) -> list[str]:
    """The parameter names of ``function`` in ``fedlab/<module>.py``, read without importing it."""
    tree = ast.parse((ROOT / "fedlab" / f"{module}.py").read_text(encoding="utf-8"))
    (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    return [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]


def signature(page: str, target: str) -> str:
    """The text of the signature line (``<dt id=target>``) of an entry of an API page."""
    found = re.search(rf'<dt class="sig[^"]*" id="{re.escape(target)}">(.*?)</dt>', page, re.S)
    assert found, f"no entry {target}"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def test_the_api_reference_has_a_page_per_module_with_its_signatures(built_site):
    modules = api_modules()
    assert len(modules) > 25
    for module in modules:
        page = (built_site / "api" / f"{module}.html").read_text(encoding="utf-8")
        assert f'id="module-{module}"' in page, f"{module}: autodoc documented nothing"
        inside = [m for m in modules if m.startswith(f"{module}.")]
        if inside:  # a package (fedlab.flower): its docstring links to its modules' pages
            for name in inside:
                assert f'href="{name}.html#module-{name}"' in page, f"{module}: no link to {name}"
        else:
            assert '<dt class="sig' in page, f"{module}: a page without a single signature"
    engine = (built_site / "api/fedlab.engine.html").read_text(encoding="utf-8")
    shown = signature(engine, "fedlab.engine.simulate")
    arguments = parameters("engine", "simulate")
    assert arguments[:4] == ["algorithm", "model_fn", "data", "split"]
    assert re.search(r"simulate\(\s*" + r".*".join(arguments) + r".*\)", shown, re.S), shown
    # a docstring's :func:`fedlab.simulate` (a re-export) links to where it is defined
    role = r'href="#fedlab\.engine\.simulate"[^>]*><code class="xref py py-func[^>]*>'
    assert re.search(role + r'<span class="pre">fedlab\.simulate\(\)', engine)
    index = (built_site / "api.html").read_text(encoding="utf-8")
    article = index[index.index("<article") : index.index("</article>")]  # not the sidebar
    listed = re.findall(r'href="api/(fedlab(?:\.\w+)+)\.html#module-', article)
    assert listed == modules, "api.html's tables do not list docs/api.md's modules in order"


class _NestedLinks(HTMLParser):
    """Counts links inside links (a name linked twice: invalid HTML, the inner link is lost)."""

    def __init__(self):
        super().__init__()
        self.depth = self.nested = 0

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.nested += self.depth > 0
            self.depth += 1

    def handle_endtag(self, tag):
        self.depth -= tag == "a"


def test_no_page_links_a_name_twice(built_site, site_builder):
    nested = {}
    for page in site_builder.pages(built_site):
        parser = _NestedLinks()
        parser.feed(page.read_text(encoding="utf-8"))
        if parser.nested:
            nested[page.relative_to(built_site).as_posix()] = parser.nested
    assert nested == {}, f"links inside links: {nested}"


def exercise_sections(built_site: Path) -> dict[str, str]:
    """Each notebook page's Exercises section (its HTML), for notebooks that have one."""
    sections = {}
    for name in NAMES:
        page = (built_site / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
        start = page.find('<section id="exercises">')
        if start >= 0:
            sections[name] = page[start : page.index("</section>", start)]
    return sections


def test_every_fedlab_name_in_the_exercises_links_to_the_api_reference(built_site):
    spec = importlib.util.spec_from_file_location("fedlab_api", ROOT / "docs/_ext/fedlab_api.py")
    api = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(api)
    code = re.compile(r'(<a class="fedlab-api[^"]*" href="([^"]+)"[^>]*>)?<code[^>]*>(.*?)</code>')
    linked = 0
    for name, section in exercise_sections(built_site).items():
        for link, href, text in code.findall(section):
            shown = html.unescape(re.sub(r"<[^>]+>", "", text))
            if api.name_in(shown) is None:
                continue  # not a fedlab name (or a chain such as Stragglers(0.9).plan(...))
            assert link, f"{name}: `{shown}` in the exercises is not linked to the API reference"
            target, anchor = href.split("#")
            assert target.startswith("../api/fedlab."), href
            assert anchor.startswith(("fedlab.", "module-fedlab.")), href  # an object or a module
            linked += 1
    assert linked >= 40, f"only {linked} linked names in the notebooks' exercises"


@pytest.mark.browser
def test_an_api_page_opens_and_an_exercise_links_into_it(
    site_page, site_server, site_artifacts_dir
):
    open_page(site_page, f"{site_server}/api/fedlab.engine.html")
    entry = site_page.locator('dt[id="fedlab.engine.simulate"]')
    assert entry.is_visible()
    assert re.match(r"fedlab\.engine\.simulate\(\s*algorithm", entry.inner_text())
    sidebar = site_page.locator("nav.bd-links")
    assert sidebar.get_by_role("link", name="API reference · 接口参考").count() == 1
    assert sidebar.get_by_role("link", name="fedlab.engine", exact=True).count() == 1
    site_page.screenshot(path=str(site_artifacts_dir / "api_engine.png"))

    # notebook 07's exercise 2 uses Stragglers(min_epochs=...), which no cell of 07 calls
    open_page(site_page, f"{site_server}/notebooks/07_stragglers_and_limited_compute.html")
    site_page.locator("#exercises a.fedlab-api", has_text="min_epochs=3").first.click()
    site_page.wait_for_load_state("load")
    assert site_page.url == f"{site_server}/api/fedlab.stragglers.html#fedlab.stragglers.Stragglers"
    assert site_page.locator('dt[id="fedlab.stragglers.Stragglers"]').is_visible()
    assert "min_epochs" in site_page.locator('dt[id="fedlab.stragglers.Stragglers"]').inner_text()
    errors = [line for line in site_page.console if line.startswith(("[error]", "[pageerror]"))]
    assert not errors and not site_page.failed and not site_page.offsite
    site_page.screenshot(path=str(site_artifacts_dir / "api_from_exercise.png"))
