"""The newcomer task of issue 20, built from the palette, counting the user's interactions.

"dedupe clicks -> sessionize -> join users -> sessions per user per day -> publish, schedule",
as a new user does it in the app: a new pipeline, two sample files as sources, five pattern
steps added from the palette and filled in with their forms (no SQL typed), the last one
published as a staging table, saved, and the scheduler's line shown. The app is driven with
Streamlit's AppTest over a private copy of the sample data; every action is counted as the
interactions it takes in the browser:

* a click (a button, a box on the canvas, a palette category, a radio option, a tab): 1;
* a select box: 2 (open it, choose); a multiselect: 1 to open it and 1 per option chosen;
* a text field: 2 (click into it, type the value and press Enter);
* a row of a table (the aggregations): 1 to add the row and 2 per cell filled.

AppTest cannot type into a table (``st.data_editor``), so the one aggregation row is written
into the step's params as the table would, and counted as above. The script checks the result:
the pipeline validates, its last step previews, the saved YAML has the five steps and the
staging output, and the schedule line is shown.

Usage: ``python -m bench.newcomer``; prints JSON (the total and each action with its count).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class Counter:
    def __init__(self) -> None:
        self.actions: list[tuple[str, int]] = []

    def add(self, what: str, n: int) -> None:
        self.actions.append((what, n))

    @property
    def total(self) -> int:
        return sum(n for _, n in self.actions)


def _widget(at: Any, kind: str, suffix: str) -> Any:
    for w in getattr(at, kind):
        if w.key and w.key.endswith(suffix):
            return w
    raise SystemExit(f"no {kind} with a key ending {suffix!r}")


def _ok(at: Any) -> None:
    if at.exception:
        raise SystemExit(f"the app failed: {at.exception}")


def run() -> dict[str, Any]:
    from streamlit.testing.v1 import AppTest  # noqa: TID251 - this measures the app itself

    from builder.pipeline.model import load
    from builder.plan.compiler import plan

    c = Counter()
    with tempfile.TemporaryDirectory(prefix="dockyard-newcomer-") as tmp:
        folder = Path(tmp) / "pipelines"
        folder.mkdir()
        shutil.copytree(ROOT / "saved_pipelines" / "data", folder / "data")
        os.environ["DOCKYARD_PIPELINES_DIR"] = str(folder)
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        _ok(at)
        at.text_input(key="dy_new_name").input("sessions_daily").run()
        c.add("type the new pipeline's name", 2)
        at.button(key="dy_new_btn").click().run()
        c.add("New pipeline", 1)
        for f in ("data/clicks.parquet", "data/users.csv"):
            at.selectbox(key="dy_src_file").select(f).run()
            c.add(f"choose the file {f}", 2)
            at.button(key="dy_src_add_file").click().run()
            c.add("Add source", 1)
        _ok(at)
        at.selectbox(key="dy_selected").select("clicks").run()
        c.add("click the 'clicks' box on the canvas", 1)
        opened: set[str] = set()

        def add(pattern: str, category: str) -> str:
            if category not in opened:
                c.add(f"open the palette's '{category}'", 1)
                opened.add(category)
            at.button(key=f"dy_add_{pattern}").click().run()
            c.add(f"+ {pattern}", 1)
            _ok(at)
            return str(at.session_state["dy_selected"])

        dedupe = add("dedupe", "Aggregate & window")
        _widget(at, "multiselect", f":param:{dedupe}:keys").select("event_id").run()
        c.add("keys: event_id", 2)
        sess = add("sessionize", "Time")
        _widget(at, "multiselect", f":param:{sess}:partition_by").select("user_id").run()
        c.add("partition_by: user_id", 2)
        _widget(at, "selectbox", f":param:{sess}:timestamp").select("ts").run()
        c.add("timestamp: ts", 2)
        join = add("join", "Combine")
        p = at.session_state["dy_pipeline"]
        if p.step(join).inputs != [sess, "users"]:
            raise SystemExit(f"join reads {p.step(join).inputs}, expected [{sess!r}, 'users']")
        _widget(at, "multiselect", f":param:{join}:on").select("user_id").run()
        c.add("on: user_id", 2)
        day = add("time_bucket", "Time")
        _widget(at, "selectbox", f":param:{day}:column").select("ts").run()
        c.add("column: ts", 2)
        _widget(at, "text_input", f":param:{day}:interval").input("1 day").run()
        c.add("interval: 1 day", 2)
        _widget(at, "text_input", f":param:{day}:as").input("day").run()
        c.add("as: day", 2)
        agg = add("aggregate", "Aggregate & window")
        groups = _widget(at, "multiselect", f":param:{agg}:group_by")
        groups.select("user_id").select("day").run()
        c.add("group_by: user_id, day", 3)
        # The table starts from its ':base' rows (see builder.ui.forms._editor): give it the
        # row a user types, as the table would hand it to the form.
        import pandas as pd

        gen = at.session_state["dy_generation"] if "dy_generation" in at.session_state else 0
        base = next(b for b in (f"g{gen}:param:{agg}:aggregations:{cols}:base" for cols in
                                ("function,column,as", "function,column,as,separator"))
                    if b in at.session_state)
        columns = list(at.session_state[base].columns)
        row = {"function": "count_distinct", "column": "session_id", "as": "sessions"}
        at.session_state[base] = pd.DataFrame([row], columns=columns).astype(object)
        at.run()
        c.add("aggregations: add a row; function, column, as", 1 + 3 * 2)
        _widget(at, "radio", f":out_kind:{agg}").set_value("staging").run()
        c.add("Write this step to: A staging table", 1)
        _ok(at)
        errors = [e.value for e in at.error]
        the_plan = plan(at.session_state["dy_pipeline"])
        if the_plan.errors or errors:
            raise SystemExit(f"the pipeline is not valid: {the_plan.errors or errors}")
        at.button(key="dy_preview_btn").click().run()
        c.add("▶ Preview", 1)
        if not any(" rows**" in m.value for m in at.markdown):
            raise SystemExit("the last step did not preview")
        at.button(key="dy_save_btn").click().run()
        c.add("Save", 1)
        _ok(at)
        c.add("open the 'Run & schedule' tab", 1)
        cron = [x.value for x in at.code if "crontab" in x.value or "dockyard" in x.value]
        if not cron:
            raise SystemExit("no schedule line shown")
        c.add("copy the cron line", 1)
        saved = load(folder / "sessions_daily.yaml")
        out = saved.outputs[agg]
        if len(saved.steps) != 5 or not out.staging:
            raise SystemExit(f"unexpected file: {len(saved.steps)} steps, output {out}")
        pv = at.session_state["dy_previewer"] if "dy_previewer" in at.session_state else None
        if pv is not None:
            pv.close()
    return {"task": "dedupe clicks -> sessionize -> join users -> sessions per user per day "
                    "-> publish, schedule", "interactions": c.total, "sql_typed": 0,
            "actions": [{"what": w, "n": n} for w, n in c.actions]}


def main() -> None:
    print(json.dumps(run(), indent=1))


if __name__ == "__main__":
    main()
