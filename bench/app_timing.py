"""Browser time from a param edit to the refreshed preview, in the real app (Playwright).

Starts ``streamlit run app.py`` on a private copy of the example pipelines, opens
``daily_revenue`` in Debian's Chromium, clicks the ``paid_orders`` box on the canvas, previews
it, then edits its ``where`` param (a new value each time), presses Ctrl+Enter and clicks
Preview, and times until the new row count is on the page. Prints JSON (median and every run).

    python -m bench.app_timing [--repeat 5]
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
FRAME = "iframe[title*='streamlit_flow']:visible"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(folder: Path, log: Any) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "DOCKYARD_PIPELINES_DIR": str(folder)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
         str(port), "--server.headless", "true", "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=log,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not start")


def _rows_text(page: Any) -> str:
    """The preview's headline ('N rows'), '' when none is shown."""
    return str(page.evaluate(
        "() => [...document.querySelectorAll('strong')].map(e => e.textContent)"
        ".find(t => / rows$/.test(t)) || ''"))


def measure(repeat: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="dockyard-app-timing-") as tmp:
        folder = Path(tmp) / "pipelines"
        shutil.copytree(ROOT / "saved_pipelines" / "data", folder / "data")
        shutil.copy(ROOT / "saved_pipelines" / "daily_revenue.yaml", folder)
        with open(Path(tmp) / "streamlit.log", "w") as log:
            proc, url = _serve(folder, log)
            try:
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    page = browser.new_page(viewport={"width": 1500, "height": 1900})
                    page.set_default_timeout(180_000)
                    page.goto(url)
                    page.get_by_text("daily_revenue —").wait_for()
                    page.get_by_role("button", name="Open").last.click()
                    page.frame_locator(FRAME).locator(
                        ".react-flow__node[data-id='paid_orders']").click()
                    where = page.get_by_role("textbox", name="where *")
                    where.wait_for()
                    page.get_by_role("button", name="▶ Preview").click()
                    page.wait_for_function("() => [...document.querySelectorAll('strong')]"
                                           ".some(e => / rows$/.test(e.textContent))")
                    times = []
                    for i in range(repeat):
                        before = _rows_text(page)
                        where.fill(f"status = 'paid' AND amount > {10 + 7 * i}")
                        t0 = time.perf_counter()
                        where.press("Control+Enter")
                        page.get_by_role("button", name="▶ Preview").click()
                        page.wait_for_function(
                            "b => { const t = [...document.querySelectorAll('strong')]"
                            ".map(e => e.textContent).find(t => / rows$/.test(t)) || '';"
                            " return t && t !== b && !document.body.innerText.includes("
                            "'changed since this preview'); }", arg=before)
                        times.append(time.perf_counter() - t0)
                    browser.close()
            finally:
                proc.terminate()
                proc.wait(timeout=20)
    return {"what": "param edit (Ctrl+Enter) + Preview click -> new row count on the page",
            "median_ms": round(statistics.median(times) * 1000),
            "runs_ms": [round(t * 1000) for t in times]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    print(json.dumps(measure(ap.parse_args().repeat)))


if __name__ == "__main__":
    main()
