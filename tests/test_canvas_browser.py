"""The canvas in a real browser: click a box to inspect it (and it stays inspected through a
preview), add a step after a box, draw an edge to add an input (saved in the YAML), and a
refused edge says why in one line and disappears.

Needs Debian's Chromium at /usr/bin/chromium, like tests/test_browser.py (whose app server
fixture this reuses).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, _settle, pytestmark, server

__all__ = ["pytestmark", "server"]  # the fixture and the skip marks are used by pytest

FRAME = "iframe[title*='streamlit_flow']:visible"


def _box(page, node: str):
    return page.frame_locator(FRAME).locator(f".react-flow__node[data-id='{node}']")


def _drag(page, start, end) -> None:
    """Press on one handle, move to the other in small steps, release (as a user draws)."""
    page.wait_for_timeout(1500)  # the canvas redraws after the last change: let it settle
    _settle(page)
    a, b = start.bounding_box(), end.bounding_box()
    assert a and b
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.wait_for_timeout(200)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=15)
    page.mouse.up()


def _inspected(page, node: str) -> None:
    """Wait until the inspector's Id field shows ``node`` (a rerun may briefly show two)."""
    page.wait_for_function(
        "n => [...document.querySelectorAll(\"input[aria-label='Id']\")].some(e => e.value === n)"
        " && document.querySelectorAll(\"input[aria-label='Id']\").length === 1", arg=node,
        timeout=180_000)


def _steps(path: Path) -> dict[str, dict]:
    return {s["id"]: s for s in yaml.safe_load(path.read_text())["steps"]}


def test_canvas_select_add_after_and_draw_edges(server):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=180_000)  # a loaded 2-core machine is slow

    url, folder = server
    shutil.copy(ROOT / "saved_pipelines" / "daily_revenue.yaml", folder)
    saved = folder / "daily_revenue.yaml"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1900})
            page.set_default_timeout(180_000)  # a loaded 2-core machine is slow
            page.goto(url)
            page.get_by_text("daily_revenue —").wait_for()
            page.get_by_role("button", name="Open").last.click()
            _settle(page)
            # Click a box: the inspector shows that step.
            _box(page, "paid_orders").click()
            _settle(page)
            _inspected(page, "paid_orders")
            # A preview recolors its box; the canvas redraws and reports while the page is
            # drawn: the inspected node and its preview must stay (not jump to the last node).
            page.get_by_role("button", name="▶ Preview").click()
            _settle(page)
            expect(page.get_by_text("1,212 rows", exact=True)).to_be_visible()
            page.wait_for_timeout(2000)
            _settle(page)
            _inspected(page, "paid_orders")
            expect(page.get_by_text("1,212 rows", exact=True)).to_be_visible()
            # Add a block after a box: select 'orders', then the palette's union reads it.
            _box(page, "orders").click()
            _settle(page)
            _inspected(page, "orders")
            page.get_by_text("Combine", exact=True).click()
            page.get_by_role("button", name="+ union").click()
            _settle(page)
            _box(page, "union_1").wait_for()
            _inspected(page, "union_1")
            # Draw an edge: paid_orders' output handle onto union_1's input handle.
            _drag(page, _box(page, "paid_orders").locator(".react-flow__handle.source"),
                  _box(page, "union_1").locator(".react-flow__handle.target"))
            _settle(page)
            expect(page.get_by_text("Canvas: 'union_1' now reads 'paid_orders'.")).to_be_visible()
            # An edge the pattern has no room for: refused in one line, and not drawn.
            _drag(page, _box(page, "users").locator(".react-flow__handle.source"),
                  _box(page, "order_lines").locator(".react-flow__handle.target"))
            _settle(page)
            expect(page.get_by_text("step 'order_lines' (select) takes 1 input and already "
                                    "reads 'paid_orders': remove an input first.")).to_be_visible()
            expect(page.frame_locator(FRAME).locator(
                "[data-testid^='rf__edge-st-flow-edge_users-order_lines']")).to_have_count(0)
            # Save: the YAML has the new step and the drawn input.
            page.get_by_role("button", name="Save", exact=True).click()
            _settle(page)
            expect(page.get_by_text("✓ saved")).to_be_visible()
            steps = _steps(saved)
            assert steps["union_1"]["inputs"] == ["orders", "paid_orders"]
            assert steps["order_lines"]["inputs"] == ["paid_orders"]
        finally:
            browser.close()
