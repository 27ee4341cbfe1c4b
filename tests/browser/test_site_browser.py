"""The course website (docs/, built by tools/site.py) as a reader sees it, offline.

The site is built once per session from the committed notebooks into a temporary folder (or
``$FEDLAB_SITE`` names one already built) and served by ``python -m http.server`` on 127.0.0.1.
A link check reads every built page. Then Debian's Chromium, driven by Playwright and refused
any request that leaves 127.0.0.1, opens the landing page, four notebooks' pages and the glossary:
every image must load, math must render, previous / next must lead to the neighbouring notebooks
and each notebook page must have its "Run this notebook" box. The teacher's guide must show the
prerequisites the notebooks state, as a table and as a graph that loads. Screenshots go to
``$FEDLAB_ARTIFACTS/site/`` (default ``artifacts/site/``). Fixtures and skip rules: conftest.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
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
    expected = {"index.html", "glossary.html", "references.html", "teachers_guide.html"}
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
