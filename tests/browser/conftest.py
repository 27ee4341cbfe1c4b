"""Fixtures for the real-browser tests: a throwaway JupyterLab server and a headless Chromium page;
for the course website, the site built once (tools/site.py) and a static server for it.

Nothing here touches ``~``: the server gets temporary Jupyter config, data, runtime, settings and
workspace directories, and serves a temporary copy of ``notebooks/`` (the committed notebooks are
never modified or saved). Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright for
Python; Playwright's own browser downloads are never used. See ``tests/browser/README.md``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
CHROMIUM = Path(os.environ.get("FEDLAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    # --headless is added by Playwright itself (headless=True)
    "--no-sandbox",  # CI runs as root in a container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a 64 MB /dev/shm
]
SERVER_START_TIMEOUT_S = 60
# JupyterLab user settings for a quiet, deterministic page: no news toast, no update check, no
# autosave (the copy is thrown away anyway), every cell rendered (no windowing, so every output is
# in the DOM without scrolling).
LAB_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def _missing(reason: str) -> None:
    """Skip, or fail where a browser is required (FEDLAB_REQUIRE_BROWSER=1, set by CI)."""
    if os.environ.get("FEDLAB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (FEDLAB_REQUIRE_BROWSER=1, so this is an error, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} not found: `apt-get install chromium` (see tests/browser/README.md)")
    return CHROMIUM


@pytest.fixture(scope="session")
def sync_playwright_api():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed: `pip install playwright`")
    return sync_playwright


def _artifacts(name: str) -> Path:
    """``$FEDLAB_ARTIFACTS/name`` (default ``artifacts/name``, relative to the repo root), emptied
    of the previous run's screenshots and logs."""
    base = Path(os.environ.get("FEDLAB_ARTIFACTS", "artifacts"))
    path = (base if base.is_absolute() else ROOT / base) / name
    path.mkdir(parents=True, exist_ok=True)
    for old in [*path.glob("*.png"), *path.glob("*.log"), *path.glob("*.txt")]:
        old.unlink()
    return path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """``$FEDLAB_ARTIFACTS/browser`` (default ``artifacts/browser``)."""
    return _artifacts("browser")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    """A running ``jupyter lab`` serving a temporary copy of ``notebooks/``."""

    process: subprocess.Popen
    port: int
    token: str
    root: Path
    runtime_dir: Path
    log_path: Path
    log_file: object = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        return f"{self.base_url}/lab/tree/{quote(name)}?token={self.token}"

    def log(self) -> str:
        if not self.log_file.closed:
            self.log_file.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text.replace(self.token, "<token>")

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def api(self, method: str, path: str, timeout: float = 5) -> int:
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status


def _server_env(tmp: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # the kernel should see a user's environment, not pytest's: PYTEST_CURRENT_TEST changes
        # what ipykernel captures, and an MPLBACKEND=Agg would switch off inline plots
        if not key.startswith(("PYTEST_", "JUPYTER", "JPY_")) and key != "MPLBACKEND"
    }
    dirs = {
        "JUPYTER_CONFIG_DIR": tmp / "config",
        "JUPYTER_DATA_DIR": tmp / "data",
        "JUPYTER_RUNTIME_DIR": tmp / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": tmp / "config" / "lab" / "user-settings",
        "JUPYTERLAB_WORKSPACES_DIR": tmp / "workspaces",
        "IPYTHONDIR": tmp / "ipython",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    env.update({key: str(path) for key, path in dirs.items()})
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2",
        TF_ENABLE_ONEDNN_OPTS="0",
        PYTHONUNBUFFERED="1",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    for plugin, settings in LAB_USER_SETTINGS.items():
        target = dirs["JUPYTERLAB_SETTINGS_DIR"] / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(settings), encoding="utf-8")
    return env


def _wait_until_serving(server: LabServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"jupyter lab exited with code {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                pass
            if server.api("GET", "/api/status") == 200:
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"jupyter lab did not answer on port {server.port} within {SERVER_START_TIMEOUT_S} s:\n"
        f"{server.log_tail()}"
    )


def _processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (our unique temporary runtime dir)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


def _stop(server: LabServer) -> None:
    process = server.process
    if process.poll() is None:
        try:  # a clean shutdown also shuts the kernels down (they run in their own sessions)
            server.api("POST", "/api/shutdown")
            process.wait(timeout=15)
        except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
            pass
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    if os.name == "posix" and Path("/proc").is_dir():  # kernels left behind by a hard kill
        for pid in _processes_mentioning(str(server.runtime_dir)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    server.log_file.close()


@pytest.fixture
def lab_server(chromium_executable, sync_playwright_api, tmp_path, artifacts_dir):
    """JupyterLab on 127.0.0.1 with a one-off token, serving a copy of notebooks/ (see module doc)."""
    root = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    env = _server_env(tmp_path)
    token = secrets.token_hex(24)
    jupyter = Path(sys.executable).parent / ("jupyter.exe" if os.name == "nt" else "jupyter")
    log_path = tmp_path / "jupyter-server.log"
    log_file = log_path.open("w", encoding="utf-8")
    port = _free_port()
    command = [
        str(jupyter),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--allow-root",
    ]
    process = subprocess.Popen(
        command,
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, killed as a whole at teardown
    )
    server = LabServer(process, port, token, root, tmp_path / "runtime", log_path, log_file)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        _stop(server)
        (artifacts_dir / "jupyter-server.log").write_text(server.log(), encoding="utf-8")


@pytest.fixture
def browser_console() -> list[str]:
    """The page's console messages and uncaught errors, also saved as browser-console.log."""
    return []


@contextmanager
def chromium_page(sync_playwright_api, executable: Path, profile: Path, console: list[str]):
    """A fresh headless Chromium page (new user-data dir ``profile``) whose console messages and
    uncaught errors are appended to ``console``."""
    with sync_playwright_api() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(profile),
            executable_path=str(executable),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
            page.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
            yield page
        finally:
            context.close()


@pytest.fixture
def browser_page(
    lab_server, chromium_executable, sync_playwright_api, browser_console, tmp_path, artifacts_dir
):
    """A fresh headless Chromium page (new user-data dir, deleted with tmp_path)."""
    console = browser_console
    profile = tmp_path / "chromium-profile"
    try:
        with chromium_page(sync_playwright_api, chromium_executable, profile, console) as page:
            yield page
    finally:
        (artifacts_dir / "browser-console.log").write_text(
            "\n".join(console).replace(lab_server.token, "<token>") + "\n", encoding="utf-8"
        )


# ---- the course website (tests/browser/test_site_browser.py, docs/README.md) ----


@pytest.fixture(scope="session")
def site_builder():
    """tools/site.py as a module (named so that it does not shadow the standard ``site``)."""
    spec = importlib.util.spec_from_file_location("fedlab_site_builder", ROOT / "tools/site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def built_site(site_builder, tmp_path_factory) -> Path:
    """The course website, built once per session by tools/site.py into a temporary folder, or
    the already built site that ``$FEDLAB_SITE`` names (e.g. ``build/site``)."""
    if os.environ.get("FEDLAB_SITE"):
        site = Path(os.environ["FEDLAB_SITE"]).resolve()
        assert (site / "index.html").is_file(), f"FEDLAB_SITE={site}: no index.html there"
        return site
    site = tmp_path_factory.mktemp("course-website") / "site"
    start = time.monotonic()
    site_builder.build(site)
    print(f"built the site in {time.monotonic() - start:.1f} s")
    return site


@pytest.fixture(scope="session")
def site_server(built_site):
    """``python -m http.server`` on 127.0.0.1 (a free port) serving the built site; its base URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=built_site,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"http.server did not start on port {port}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def site_artifacts_dir() -> Path:
    """``$FEDLAB_ARTIFACTS/site`` (default ``artifacts/site``): the site tests' screenshots."""
    return _artifacts("site")


@pytest.fixture
def site_page(chromium_executable, sync_playwright_api, site_server, tmp_path, site_artifacts_dir):
    """A Chromium page for the course website that may not leave 127.0.0.1: every other request
    is refused and listed in ``page.offsite``; responses >= 400 go to ``page.failed``, console
    errors to ``page.console`` (the site must work offline)."""
    console: list[str] = []
    with chromium_page(
        sync_playwright_api, chromium_executable, tmp_path / "chromium-profile", console
    ) as page:
        offsite, failed = [], []

        def route(route):
            if route.request.url.startswith(site_server + "/"):
                route.continue_()
            else:
                offsite.append(route.request.url)
                route.abort()

        def response(response):
            if response.status >= 400:
                failed.append(f"{response.status} {response.url}")

        page.route("**/*", route)
        page.on("response", response)
        page.offsite, page.failed, page.console = offsite, failed, console
        yield page
