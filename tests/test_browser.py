"""End to end in a real browser: build a 3-step pipeline in the app, preview it, save it, run the
saved YAML with the CLI and check the rows it wrote. Also refreshes docs/screenshot.png.

Needs Debian's Chromium at /usr/bin/chromium (``bash scripts/test.sh`` installs it); the test
installs nothing itself and is skipped, with the reason, only when that browser is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = ROOT / "docs" / "screenshot.png"
# How long a page condition may take: the full suite runs on 2 cores beside CPU-heavy tests,
# where one rerun can take tens of seconds. Playwright's expect() waits 5 s unless told, which
# only a quiet machine meets; every wait here is on a page condition, so a long bound costs
# nothing when the page is quick.
WAIT_MS = 180_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"Chromium not found at {CHROMIUM}: install it with "
                              "'apt-get install chromium' (scripts/test.sh does this)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path):
    """``streamlit run app.py`` on a free port, saving into a private pipelines folder."""
    folder = tmp_path / "pipelines"
    folder.mkdir()
    shutil.copytree(ROOT / "saved_pipelines" / "data", folder / "data")
    port = _free_port()
    env = {**os.environ, "DOCKYARD_PIPELINES_DIR": str(folder)}
    log = open(tmp_path / "streamlit.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
         str(port), "--server.headless", "true", "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail("streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text())
        time.sleep(0.3)
    yield url, folder
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _settle(page) -> None:
    """Wait until Streamlit has finished the rerun a widget change started."""
    for _ in range(2):  # an edit can cause a second rerun (the page redraws from the model)
        page.wait_for_timeout(300)
        page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=WAIT_MS)
    page.wait_for_function("document.querySelectorAll('[data-stale=\"true\"]').length === 0",
                           timeout=WAIT_MS)


def _choose(page, label: str, option: str) -> None:
    """Pick an option of a select box or multiselect by typing it, as a user would.

    The canvas (an iframe) may still be sizing itself after a rerun, and a layout change closes
    an open dropdown under the pointer: then the user opens it again, and so does this."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    box = page.get_by_label(label, exact=True)
    expect(box).to_be_visible()  # on failure, Playwright prints what the page shows instead
    for attempt in range(3):
        box.click()
        box.press_sequentially(option)
        try:
            page.get_by_role("option", name=option).first.click(timeout=60_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
            page.wait_for_timeout(500)
    _settle(page)


def test_build_preview_save_and_run_with_the_cli(server, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    url, folder = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1900})
            page.set_default_timeout(WAIT_MS)
            page.goto(url)
            # A new pipeline.
            page.get_by_label("New pipeline name").fill("e2e_paid")
            page.get_by_label("New pipeline name").press("Enter")
            _settle(page)
            page.get_by_role("button", name="New pipeline").click()
            _settle(page)
            expect(page.get_by_role("heading", name="e2e_paid")).to_be_visible()
            # Source: the orders sample file.
            _choose(page, "File", "data/orders.parquet")
            page.get_by_role("button", name="Add source").click()
            _settle(page)
            expect(page.get_by_text("Added source 'orders'")).to_be_visible()
            # Step 1: filter.
            page.get_by_text("Columns & rows", exact=True).click()
            page.get_by_role("button", name="+ filter").click()
            _settle(page)
            where = page.get_by_role("textbox", name="where *")
            where.fill("status = 'paid'")
            where.press("Control+Enter")
            _settle(page)
            # Step 2: select three columns (pickers filled from the schema).
            page.get_by_role("button", name="+ select").click()
            _settle(page)
            for c in ("user_id", "amount"):
                _choose(page, "columns *", c)
            page.keyboard.press("Escape")
            _settle(page)
            # Step 3: the user's own SQL over step 2.
            page.get_by_text("SQL", exact=True).click()
            page.get_by_role("button", name="+ SQL step").click()
            _settle(page)
            sql = page.get_by_role("textbox", name="SQL (one SELECT; read sources and steps by their id)")
            sql.fill("SELECT user_id, count(*) AS orders, round(sum(amount), 2) AS revenue\n"
                     "FROM select_1\nGROUP BY user_id")
            sql.press("Control+Enter")
            _settle(page)
            expect(page.get_by_text("Valid: 3 columns.")).to_be_visible()
            page.get_by_text("A file", exact=True).click()
            _settle(page)
            # Preview.
            page.get_by_role("button", name="▶ Preview").click()
            _settle(page)
            expect(page.get_by_text("rows, 3 columns").first).to_be_visible()
            # Save.
            page.get_by_role("button", name="Save", exact=True).click()
            _settle(page)
            expect(page.get_by_text("✓ saved")).to_be_visible()
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()

    saved = folder / "e2e_paid.yaml"
    assert saved.exists()
    run = subprocess.run([sys.executable, "-m", "builder.cli", "run", str(saved)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    out = folder.parent / "out" / "e2e_paid" / "sql_1.parquet"
    got = duckdb.sql(f"SELECT * FROM '{out}' ORDER BY user_id").fetchall()
    want = duckdb.sql(
        f"SELECT user_id, count(*), round(sum(amount), 2) FROM '{folder}/data/orders.parquet' "
        "WHERE status = 'paid' GROUP BY user_id ORDER BY user_id").fetchall()
    assert got == want and len(got) > 10


def test_edit_after_preview_is_kept(server):
    """Issue 20: after a preview, editing a param of the inspected step (Enter) must keep the
    step inspected and land in the saved YAML; the node list's labels used to change after a
    preview, so the browser sent back a label that no longer existed and the app jumped away."""
    from playwright.sync_api import expect, sync_playwright

    from builder.pipeline.model import load

    expect.set_options(timeout=WAIT_MS)
    url, folder = server
    shutil.copy(ROOT / "saved_pipelines" / "clicks_daily.yaml", folder)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1900})
            page.set_default_timeout(WAIT_MS)
            page.goto(url)
            page.locator(".st-key-dy_open_clicks_daily button").click()
            _settle(page)
            _choose(page, "Inspect", "sessions")
            page.get_by_role("button", name="▶ Preview").click()
            _settle(page)
            expect(page.get_by_text("rows, ").first).to_be_visible()
            # Toggling sample mode is an ordinary rerun: the step stays inspected.
            page.get_by_text("Sample mode (approximate)", exact=True).click()
            _settle(page)
            expect(page.get_by_role("textbox", name="gap")).to_be_visible()
            gap = page.get_by_role("textbox", name="gap")
            gap.fill("20 minutes")
            gap.press("Enter")
            _settle(page)
            expect(page.get_by_role("textbox", name="gap")).to_have_value("20 minutes")
            page.get_by_role("button", name="Save", exact=True).click()
            _settle(page)
            expect(page.get_by_text("✓ saved")).to_be_visible()
        finally:
            browser.close()
    assert load(folder / "clicks_daily.yaml").step("sessions").params["gap"] == "20 minutes"
