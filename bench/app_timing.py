"""Browser time from a param edit to the refreshed preview, in the app, in Chromium.

Starts ``streamlit run app.py`` on a free port over a private copy of the example pipelines,
opens ``clicks_daily`` in Chromium (Playwright, Debian's ``/usr/bin/chromium``), inspects its
``sessions`` step and previews it once. Then, ``--repeat`` times, it edits the step's ``gap``
param as a user does (type a new value, press Enter) and presses "▶ Preview", and times:

* ``edit_ms``: Enter pressed -> the page has redrawn from the edited model (the preview is
  marked "changed since this preview" and no element is stale);
* ``preview_ms``: "▶ Preview" clicked -> the new result is on the page (its headline says
  "computed in", the mark is gone, nothing is stale);
* ``total_ms``: the two together (what the user waits for; their own reaction time excluded).

Usage: ``python -m bench.app_timing [--repeat N]``; prints JSON (medians and every run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
STALE = "document.querySelectorAll('[data-stale=\"true\"]').length === 0"
CHANGED = "This step changed since this preview"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def app_server(folder: Path) -> Iterator[str]:
    """The app on a free port, saving into ``folder``; yields its URL."""
    port = _free_port()
    env = {**os.environ, "DOCKYARD_PIPELINES_DIR": str(folder)}
    log = open(folder.parent / "streamlit.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
         str(port), "--server.headless", "true", "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("streamlit did not start: see " + str(log.name))
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _idle(page: Any) -> None:
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")
    page.wait_for_function(STALE)


def measure(repeat: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="dockyard-app-timing-") as tmp:
        folder = Path(tmp) / "pipelines"
        folder.mkdir()
        shutil.copytree(ROOT / "saved_pipelines" / "data", folder / "data")
        shutil.copy(ROOT / "saved_pipelines" / "clicks_daily.yaml", folder)
        with app_server(folder) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 1900})
                page.set_default_timeout(120_000)
                page.goto(url)
                page.locator(".st-key-dy_open_clicks_daily button").click()
                _idle(page)
                box = page.get_by_label("Inspect", exact=True)
                box.click()
                box.press_sequentially("sessions")
                page.get_by_role("option", name="sessions").first.click()
                _idle(page)
                page.get_by_role("button", name="▶ Preview").click()
                page.get_by_text(" rows, ").first.wait_for()
                _idle(page)
                gap = page.get_by_role("textbox", name="gap")
                for i in range(repeat):
                    minutes = 20 + i
                    gap.fill(f"{minutes} minutes")
                    t0 = time.perf_counter()
                    gap.press("Enter")
                    page.get_by_text(CHANGED).wait_for()
                    _idle(page)
                    t1 = time.perf_counter()
                    page.get_by_role("button", name="▶ Preview").click()
                    page.get_by_text(CHANGED).wait_for(state="detached")
                    # The new result, computed (a new gap is a new fingerprint: no cache).
                    page.get_by_text(" — computed in ").first.wait_for()
                    _idle(page)
                    t2 = time.perf_counter()
                    runs.append({"edit_ms": round((t1 - t0) * 1000),
                                 "preview_ms": round((t2 - t1) * 1000),
                                 "total_ms": round((t2 - t0) * 1000)})
            finally:
                browser.close()
    return {"what": "clicks_daily, step 'sessions': edit 'gap' (Enter), then ▶ Preview",
            "runs": runs, **{f"median_{k}": statistics.median(r[k] for r in runs)
                             for k in ("edit_ms", "preview_ms", "total_ms")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    print(json.dumps(measure(a.repeat)))


if __name__ == "__main__":
    main()
