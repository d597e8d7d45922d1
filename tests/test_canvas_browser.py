"""The canvas in a real browser: click a box to inspect it (and it stays inspected through a
preview), add a step after a box, draw an edge to add an input (saved in the YAML), a refused
edge says why in one line and disappears, and deleting an edge or a box from the canvas's
right-click menu edits the model (a box other steps read is refused in one line and stays).

Needs Debian's Chromium at /usr/bin/chromium, like tests/test_browser.py (whose app server
fixture this reuses).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, WAIT_MS, _settle, pytestmark, server

__all__ = ["pytestmark", "server"]  # the fixture and the skip marks are used by pytest

FRAME = "iframe[title*='streamlit_flow']:visible"


def _box(page, node: str):
    return page.frame_locator(FRAME).locator(f".react-flow__node[data-id='{node}']")


def _steady(page, handle) -> dict:
    """The element's box once it stops moving (the canvas fits its view after a redraw)."""
    last = None
    for _ in range(400):  # 100 s at most: then the test fails on what it does with the box
        handle.wait_for(state="visible")
        box = handle.bounding_box()
        if box is not None and box == last:
            break
        last = box
        page.wait_for_timeout(250)
    assert last is not None
    return last


def _drag(page, start, end) -> None:
    """Press on one handle, move to the other in small steps, release (as a user draws)."""
    _settle(page)
    a, b = _steady(page, start), _steady(page, end)
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=15)
    page.mouse.up()


def _menu(page, target, item: str) -> None:
    """Right-click ``target`` (a box, or an edge's path: at its middle) and choose ``item``."""
    _settle(page)
    if "react-flow__node" in (target.get_attribute("class") or ""):
        box = _steady(page, target)
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    else:
        _steady(page, target)
        frame = page.locator(FRAME).bounding_box()
        assert frame
        mid = target.evaluate(
            "p => { const l = p.getTotalLength(), pt = p.getPointAtLength(l / 2),"
            " m = p.getScreenCTM(); return {x: pt.x * m.a + m.e, y: pt.y * m.d + m.f}; }")
        x, y = frame["x"] + mid["x"], frame["y"] + mid["y"]
    page.mouse.click(x, y, button="right")
    page.frame_locator(FRAME).get_by_role("button", name=item).click()


def _edge(page, a: str, b: str):
    return page.frame_locator(FRAME).locator(
        f".react-flow__edge[data-testid='rf__edge-{a}->{b}'] path.react-flow__edge-path")


def _inspected(page, node: str) -> None:
    """Wait until the inspector's Id field shows ``node`` (a rerun may briefly show two)."""
    page.wait_for_function(
        "n => [...document.querySelectorAll(\"input[aria-label='Id']\")].some(e => e.value === n)"
        " && document.querySelectorAll(\"input[aria-label='Id']\").length === 1", arg=node,
        timeout=WAIT_MS)


def _steps(path: Path) -> dict[str, dict]:
    return {s["id"]: s for s in yaml.safe_load(path.read_text())["steps"]}


def test_canvas_select_add_after_and_draw_edges(server):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)

    url, folder = server
    shutil.copy(ROOT / "saved_pipelines" / "daily_revenue.yaml", folder)
    saved = folder / "daily_revenue.yaml"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1900})
            page.set_default_timeout(WAIT_MS)
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
            # Delete an edge from its menu: the step stops reading that input.
            _menu(page, _edge(page, "paid_orders", "union_1"), "Delete Edge")
            _settle(page)
            expect(page.get_by_text("Canvas: 'union_1' no longer reads 'paid_orders'.")
                   ).to_be_visible()
            expect(page.frame_locator(FRAME).locator(
                "[data-testid='rf__edge-paid_orders->union_1']")).to_have_count(0)
            # Delete a box other steps read: refused in one line, and the box is drawn again.
            _menu(page, _box(page, "paid_orders"), "Delete Node")
            _settle(page)
            expect(page.get_by_text("cannot delete 'paid_orders': step 'order_lines' reads it. "
                                    "Change their inputs first or delete them.")).to_be_visible()
            expect(_box(page, "paid_orders")).to_be_visible()
            # Delete a box nothing reads: gone from the canvas, the inspector and the YAML.
            _menu(page, _box(page, "union_1"), "Delete Node")
            _settle(page)
            expect(page.get_by_text("Canvas: deleted 'union_1'.")).to_be_visible()
            expect(_box(page, "union_1")).to_have_count(0)
            page.get_by_role("button", name="Save", exact=True).click()
            _settle(page)
            expect(page.get_by_text("✓ saved")).to_be_visible()
            steps = _steps(saved)
            assert "union_1" not in steps and steps["paid_orders"]["inputs"] == ["orders"]
        finally:
            browser.close()
