"""End to end in a real browser: notebook 03's live Dashboard runs, updates its plot, and stops.

JupyterLab (headless, 127.0.0.1, one-off token) serves a temporary copy of ``notebooks/``;
Debian's Chromium, driven by Playwright, opens ``03_fedsgd_vs_fedavg.ipynb``, runs all cells
(Run → Run All Cells, as a student would), presses the Dashboard's Run and checks that the round
counter advances and the plot image changes, then presses Stop and checks that the counter stops.
Screenshots go to ``$FEDLAB_ARTIFACTS/browser/`` (default ``artifacts/browser/``). Fixtures and
skip rules: ``conftest.py``; how to run: ``README.md``.

``FEDLAB_BROWSER_NOTEBOOK`` points the test at another notebook following the same DOM contract
(a name in ``notebooks/`` or a path), e.g. a throwaway mock while the real one is being written.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

NOTEBOOK = os.environ.get("FEDLAB_BROWSER_NOTEBOOK", "03_fedsgd_vs_fedavg.ipynb")
ROUNDS = 2000  # typed into the Dashboard's rounds box, so a Run lasts long enough to press Stop
OPEN_TIMEOUT_S = 90  # page load + kernel start
RUN_ALL_TIMEOUT_S = 150  # every cell of the notebook, on 2 busy cores
ROUNDS_TIMEOUT_S = 60  # the first rounds after pressing Run
STOP_GRACE_S = 2.0  # time for a round in flight to finish after Stop
STILL_INTERVAL_S = 2.0  # the counter must not move over this interval once stopped

ROUND_RE = re.compile(r"^\s*round\s+(\d+)\b", re.IGNORECASE)
STALL_S = 5  # kernel idle, nothing queued, cells left unrun: Run All stopped at an error

# One evaluation of the notebook's execution state: kernel attached and idle, cells queued or running, code
# cells with source that have no execution count yet, and the text of any error output.
NOTEBOOK_STATE_JS = r"""() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return null;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  const cells = [...panel.querySelectorAll('.jp-CodeCell')];
  const prompt = c => (c.querySelector('.jp-InputPrompt')?.textContent || '').trim();
  const source = c => (c.querySelector('.cm-content')?.textContent || '').trim();
  const kernel = [...document.querySelectorAll('.jp-StatusBar-TextItem')]
    .map(e => e.textContent.trim()).find(t => t.includes(' | ')) || '';
  return {
    // the indicator says "idle" before any kernel is attached; the status bar says which kernel
    ready: indicator?.dataset.status === 'idle' && /\| Idle$/.test(kernel)
      && !kernel.startsWith('No Kernel'),
    kernel: kernel,
    cells: cells.length,
    running: cells.filter(c => prompt(c).includes('*')).length,
    unexecuted: cells.filter(c => source(c) && !/\[\d+\]/.test(prompt(c))).length,
    // JupyterLab renders a traceback as stderr text
    errors: [...panel.querySelectorAll('.jp-OutputArea-output[data-mime-type$="stderr"]')]
      .map(e => e.innerText)
      .filter(t => /Traceback \(most recent call last\)|^\s*\w*(Error|Exception)\b/m.test(t))
      .map(t => t.slice(-4000)),
  };
}"""


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25, on_poll=None):
    """Poll ``predicate()`` until it returns something truthy; return it, or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if on_poll is not None:
            on_poll()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def handle_dialogs(page) -> None:
    """Accept a "Select Kernel" dialog (the default kernel is fine), decline the news toast, and
    fail on any other dialog (JupyterLab shows errors such as "File Load Error" as dialogs)."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count():
        text = dialog.first.inner_text()
        if "Select Kernel" not in text:
            raise AssertionError(f"JupyterLab shows a dialog:\n{text}")
        dialog.first.locator(".jp-mod-accept").first.click()
        print("accepted JupyterLab's Select Kernel dialog")
    news = page.locator(".jp-Notification-Toast", has_text="Jupyter news")
    if news.count():
        news.get_by_role("button", name="No").first.click()


def menu(page, top: str, item: str) -> None:
    """Click a menu bar entry, then one of its items, as a user would."""
    page.locator(f'.lm-MenuBar-itemLabel:text-is("{top}")').first.click()
    page.locator(f'.lm-Menu-itemLabel:text-is("{item}")').first.click()


def notebook_state(page) -> dict | None:
    return page.evaluate(NOTEBOOK_STATE_JS)


def round_of(page, dashboard) -> int | None:
    """The round number in the status line ("round 12 · ..."), None before the first round."""
    text = dashboard.locator(".fedlab-status").first.inner_text(timeout=10_000)
    match = ROUND_RE.match(text)
    return int(match.group(1)) if match else None


def plot_state(dashboard) -> dict:
    """The plot's src and whether that image decoded (a real PNG, not a broken icon)."""
    return dashboard.locator("img.fedlab-plot").first.evaluate(
        "img => ({src: img.src, loaded: img.complete && img.naturalWidth > 0})"
    )


def button(dashboard, name: str):
    return dashboard.locator(f'button.widget-button:text-is("{name}")').first


def set_rounds(page, dashboard, rounds: int) -> str:
    """Type ``rounds`` into the Dashboard's control labelled "rounds"; return what it shows."""
    label = re.compile(r"^\s*(num[_ ])?rounds\b", re.IGNORECASE)
    row = dashboard.locator(".widget-inline-hbox").filter(
        has=page.locator("label.widget-label", has_text=label)
    )
    if not row.count():
        return "(no rounds control found)"
    row = row.first
    box = row.locator("input[type=number], input[type=text]")
    if box.count():  # IntText / BoundedIntText: the value syncs on Enter
        box.first.fill(str(rounds))
        box.first.press("Enter")
        return box.first.input_value()
    readout = row.locator(".widget-readout")  # IntSlider: its readout is editable
    readout.first.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(rounds))
    page.keyboard.press("Enter")
    return readout.first.inner_text()


def screenshot(page, artifacts: Path, name: str, dashboard=None) -> None:
    if dashboard is not None and dashboard.count():
        dashboard.scroll_into_view_if_needed(timeout=5_000)
        dashboard.screenshot(path=str(artifacts / f"{name}_dashboard.png"), timeout=10_000)
    page.screenshot(path=str(artifacts / f"{name}.png"))


def report_failure(page, lab_server, artifacts: Path, console: list[str]) -> None:
    """On failure: a screenshot, the Dashboard's messages, notebook errors, server + console logs."""
    lines = []
    try:
        page.screenshot(path=str(artifacts / "failure.png"), timeout=10_000)
        lines.append(f"screenshot: {artifacts / 'failure.png'}")
        messages = page.locator(".fedlab-message").all_inner_texts()
        lines.append(f".fedlab-message: {messages!r}")
        statuses = page.locator(".fedlab-status").all_inner_texts()
        lines.append(f".fedlab-status: {statuses!r}")
        state = notebook_state(page)
        lines.append(
            f"notebook state: { {k: v for k, v in (state or {}).items() if k != 'errors'} }"
        )
        for error in (state or {}).get("errors", []):
            lines.append(f"error output in the notebook:\n{error}")
    except Exception as exc:  # the page may be gone; report what we can
        lines.append(f"(could not inspect the page: {exc!r})")
    lines.append("---- jupyter server log (tail) ----\n" + lab_server.log_tail(60))
    lines.append("---- browser console (tail) ----\n" + "\n".join(console[-30:]))
    text = "\n".join(lines).replace(lab_server.token, "<token>")
    (artifacts / "failure.txt").write_text(text + "\n", encoding="utf-8")
    print(text)


def notebook_into(root: Path) -> str:
    """The notebook to open, copied into the server's root if it lives elsewhere; its name."""
    path = Path(NOTEBOOK)
    if not path.is_absolute() and (root / path).is_file():
        return path.as_posix()
    if not path.is_file():
        pytest.fail(f"notebook {NOTEBOOK!r} not found (in notebooks/ or as a path)")
    shutil.copy(path, root / path.name)
    return path.name


def test_dashboard_runs_updates_plot_and_stops(
    lab_server, browser_page, browser_console, artifacts_dir
):
    page = browser_page
    name = notebook_into(lab_server.root)
    timings = {}
    start = time.monotonic()
    try:
        # 1. open the notebook and wait for its kernel
        page.goto(lab_server.notebook_url(name), timeout=OPEN_TIMEOUT_S * 1000)
        page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=OPEN_TIMEOUT_S * 1000)
        wait_until(
            lambda: (notebook_state(page) or {}).get("ready"),
            OPEN_TIMEOUT_S,
            "the kernel to start (status bar: '... | Idle')",
            on_poll=lambda: handle_dialogs(page),
        )
        timings["open"] = time.monotonic() - start
        screenshot(page, artifacts_dir, "01_opened")

        # 2. Edit → Clear Outputs of All Cells (the notebook is committed with outputs and
        # execution counts; cleared, a count means "ran in this session"), Run → Run All Cells
        menu(page, "Edit", "Clear Outputs of All Cells")
        wait_until(
            lambda: (notebook_state(page) or {}).get("unexecuted"),
            10,
            "cleared execution counts",
        )
        menu(page, "Run", "Run All Cells")
        dashboard = page.locator(".fedlab-dashboard").first

        stalled_since = []

        def all_cells_done():
            state = notebook_state(page) or {}
            if state.get("errors"):
                raise AssertionError("a cell raised:\n" + "\n\n".join(state["errors"]))
            idle = state.get("ready") and state.get("running") == 0
            if idle and state.get("unexecuted"):
                stalled_since.append(time.monotonic())
                if stalled_since[-1] - stalled_since[0] > STALL_S:
                    raise AssertionError(f"Run All Cells stopped early: {state}")
            else:
                stalled_since.clear()
            return idle and state.get("unexecuted") == 0 and dashboard.count() > 0

        wait_until(
            all_cells_done,
            RUN_ALL_TIMEOUT_S,
            "all cells to run and a .fedlab-dashboard to appear",
            interval=0.5,
            on_poll=lambda: handle_dialogs(page),
        )
        timings["run all"] = time.monotonic() - start
        screenshot(page, artifacts_dir, "02_ran_all", dashboard)

        # 3. a long run, so that Stop has something to stop
        shown = set_rounds(page, dashboard, ROUNDS)
        print(f"rounds control now shows {shown!r}")
        first_round = round_of(page, dashboard) or 0
        button(dashboard, "Run").click()
        timings["pressed Run"] = time.monotonic() - start

        r1 = wait_until(
            lambda: (r := round_of(page, dashboard)) is not None and r >= first_round + 2 and r,
            ROUNDS_TIMEOUT_S,
            f"the round counter to reach {first_round + 2} after Run",
        )
        plot1 = plot_state(dashboard)
        r2, plot2 = wait_until(
            lambda: (
                (r := round_of(page, dashboard)) is not None
                and r > r1
                and (p := plot_state(dashboard))["src"] != plot1["src"]
                and (r, p)
            ),
            ROUNDS_TIMEOUT_S,
            f"the counter to pass {r1} and the plot's src to change",
        )
        assert plot2["src"].startswith(("blob:", "data:")), plot2["src"][:80]
        wait_until(lambda: plot_state(dashboard)["loaded"], 10, "the plot image to decode")
        timings["running"] = time.monotonic() - start
        screenshot(page, artifacts_dir, "03_running", dashboard)

        # 4. Stop: the counter stops moving
        button(dashboard, "Stop").click()
        time.sleep(STOP_GRACE_S)
        after_stop = round_of(page, dashboard)
        time.sleep(STILL_INTERVAL_S)
        later = round_of(page, dashboard)
        timings["stopped"] = time.monotonic() - start
        wait_until(lambda: plot_state(dashboard)["loaded"], 10, "the plot to show an image")
        screenshot(page, artifacts_dir, "04_stopped", dashboard)
        assert after_stop is not None and after_stop >= r2
        assert later == after_stop, f"still counting after Stop: round {after_stop} -> {later}"
        if shown.strip().isdigit():  # Run trains until round `shown`; Stop must cut it short
            assert after_stop < int(shown), (
                f"the run reached round {after_stop} of {shown} before Stop; nothing was stopped"
            )
        messages = [m for m in dashboard.locator(".fedlab-message").all_inner_texts() if m.strip()]
        print(
            f"rounds: {first_round} -> {r1} -> {r2} -> stopped at {after_stop}; "
            f"messages: {messages!r}; timings: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        )
    except BaseException:
        report_failure(page, lab_server, artifacts_dir, browser_console)
        raise
