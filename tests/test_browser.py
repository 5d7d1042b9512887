"""The explorer in a real browser: JupyterLab and Voilà, driven by Playwright with Debian's Chromium.

Each test starts a server on a free localhost port in a temporary copy of the explorer notebook,
opens it in headless Chromium (no browser download: ``executable_path=/usr/bin/chromium``), runs
the notebook, waits for the explorer to render, types a new test index, checks that the shown
test image and its training images changed, clicks *inspect* on a training image, and saves a
screenshot (to the test's tmp folder; the JupyterLab one is also copied to docs/images/explorer.png).
Every server is stopped by its PID in a ``finally`` block.

Fast mode (TFA_FAST=1) and a pre-warmed cache (models and gradient index, built once by the
``warm_cache`` fixture before any server starts) keep each test to about a minute or two.
Skipped only when Chromium or the playwright package is missing.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "05_interactive_explorer.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
SCREENSHOT_COPY = ROOT / "docs" / "images" / "explorer.png"
RUN_TIMEOUT_MS = 15 * 60 * 1000  # the whole notebook, under CPU contention
STEP_TIMEOUT_MS = 3 * 60 * 1000  # one interaction round trip


def _playwright():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright; no browser download needed)")
    return sync_playwright


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "TFA_FAST": "1",
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "lab-settings"),
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("TFA_STRICT", None)  # the browser run shows claims; nbval checks them
    env.pop("MPLBACKEND", None)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 180.0, path: str | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if path is None:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            else:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                    if r.status == 200:
                        return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"server on port {port} not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _start(cmd: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    out = open(log, "wb")
    # own session: the server's kernels can be stopped with it, and nothing else is touched
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # Jupyter servers shut their kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    try:  # kernels left behind in the server's own process group (by its PID), if any
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """Train (or load) the fast-mode models and build the explorer's gradient index once, in a
    subprocess with TFA_FAST=1, so that the servers' kernels only load from the cache."""
    _playwright()
    tmp = tmp_path_factory.mktemp("warm")
    code = (
        "from tfa_tutorial.training.experiment import shortcut_experiment\n"
        "from tfa_tutorial.explorer.state import ExplorerState\n"
        "exp = shortcut_experiment(seed=0, progress=False)\n"
        "ExplorerState.from_experiment(exp).build_index()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=_env(tmp), check=True, timeout=3600, cwd=tmp)


@pytest.fixture()
def workdir(tmp_path, warm_cache):
    d = tmp_path / "nb"
    d.mkdir()
    # a copy without the stored outputs, so that everything on the page comes from this run
    nb = nbformat.read(ROOT / "notebooks" / NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, d / NOTEBOOK)
    # no "Jupyter news" toast over the screenshot
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    return d


def _test_number(explorer) -> int:
    m = re.search(r"Test image #(\d+)", explorer.inner_text())
    assert m, "the explorer shows no test image"
    return int(m.group(1))


def _drive_explorer(page, shots: Path, name: str) -> Path:
    """The explorer is rendered and the kernel idle: change the test image, check that the view
    follows, open a training image in the detail pane, save a screenshot."""
    explorer = page.locator(".tfa-explorer").first
    explorer.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
    explorer.get_by_text("Test image #").first.wait_for(timeout=STEP_TIMEOUT_MS)
    tiles = explorer.locator("img")
    assert tiles.count() >= 1 + 2 * 5, "the test image and 5 + 5 training images are shown"
    before = _test_number(explorer)
    sources = [tiles.nth(i).get_attribute("src") for i in range(tiles.count())]
    captions = explorer.inner_text()
    page.screenshot(path=str(shots / f"{name}-before.png"), full_page=False)

    new = before + 7
    box = explorer.locator(".widget-text", has_text="Test index").locator("input")
    box.fill(str(new))
    box.press("Enter")
    explorer.get_by_text(f"Test image #{new}").first.wait_for(timeout=STEP_TIMEOUT_MS)
    page.wait_for_function(
        "() => !document.querySelector('.tfa-explorer').innerText.includes('computing')", timeout=STEP_TIMEOUT_MS,
    )
    assert _test_number(explorer) == new
    after_sources = [tiles.nth(i).get_attribute("src") for i in range(tiles.count())]
    assert after_sources != sources, "the displayed images did not change"
    assert explorer.inner_text() != captions
    assert "Not applied" not in explorer.inner_text()

    inspect = explorer.get_by_role("button", name=re.compile(r"inspect #\d+")).first
    train_index = re.search(r"#(\d+)", inspect.inner_text()).group(1)
    inspect.click()
    explorer.get_by_text(f"Training image #{train_index}").first.wait_for(timeout=STEP_TIMEOUT_MS)
    explorer.get_by_text("two-step baseline").first.wait_for(timeout=STEP_TIMEOUT_MS)

    shot = shots / f"{name}.png"
    explorer.scroll_into_view_if_needed()
    explorer.screenshot(path=str(shot))
    page.screenshot(path=str(shots / f"{name}-page.png"), full_page=True)
    assert shot.stat().st_size > 10_000
    return shot


NOTEBOOK_READY = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  return !!(panel && panel.content && panel.content.model && panel.sessionContext.session
            && panel.sessionContext.session.kernel && panel.sessionContext.session.kernel.status === 'idle'
            && app.commands.isEnabled('notebook:run-all-cells'));
}"""
ALL_CELLS_RUN = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext.session) return false;
  const cells = panel.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type === 'code' && !c.executionCount) return false;
  }
  return panel.sessionContext.session.kernel.status === 'idle';
}"""
CELL_ERRORS = """() => {
  const cells = window.jupyterapp.shell.currentWidget.content.model.cells, out = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    for (const o of c.toJSON().outputs || []) if (o.output_type === 'error') out.push(o.ename + ': ' + o.evalue);
  }
  return out;
}"""


def _launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def test_explorer_in_jupyterlab(workdir, tmp_path):
    sync_playwright = _playwright()
    port = _free_port()
    log = tmp_path / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={workdir}",
        "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    server = _start(cmd, workdir, _env(tmp_path), log)
    try:
        _wait_for_port(port, server, log, path="/api/status")
        with sync_playwright() as p:
            browser = _launch(p)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 2000})
                page.goto(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}", timeout=STEP_TIMEOUT_MS)
                page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=STEP_TIMEOUT_MS)
                page.wait_for_function(NOTEBOOK_READY, timeout=STEP_TIMEOUT_MS, polling=500)
                # Run All, through JupyterLab's own command (the same as Run ▸ Run All Cells);
                # the command's promise resolves when every cell has run
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
                # all cells done: every code cell has an execution count and the kernel is idle
                page.wait_for_function(ALL_CELLS_RUN, timeout=RUN_TIMEOUT_MS, polling=1000)
                errors = page.evaluate(CELL_ERRORS)
                assert errors == [], errors
                page.locator(".tfa-explorer").first.scroll_into_view_if_needed(timeout=STEP_TIMEOUT_MS)
                shot = _drive_explorer(page, tmp_path, "jupyterlab")
            finally:
                browser.close()
    finally:
        _stop(server)
    SCREENSHOT_COPY.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOT_COPY)


def test_explorer_as_voila_app(workdir, tmp_path):
    sync_playwright = _playwright()
    port = _free_port()
    log = tmp_path / "voila.log"
    cmd = [sys.executable, "-m", "voila", str(workdir / NOTEBOOK), "--no-browser", f"--port={port}",
           "--Voila.ip=127.0.0.1"]
    server = _start(cmd, workdir, _env(tmp_path), log)
    try:
        _wait_for_port(port, server, log)
        with sync_playwright() as p:
            browser = _launch(p)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 2000})
                # Voilà executes the notebook while it serves the page
                page.goto(f"http://127.0.0.1:{port}/", timeout=RUN_TIMEOUT_MS, wait_until="commit")
                page.get_by_text(re.compile(r"\d+/\d+ claims hold")).first.wait_for(state="attached", timeout=RUN_TIMEOUT_MS)
                assert "Traceback" not in page.inner_text("body")
                _drive_explorer(page, tmp_path, "voila")
            finally:
                browser.close()
    finally:
        _stop(server)
