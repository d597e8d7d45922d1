"""Running the whole pipeline from the app, and the command a scheduler runs.

The run goes through :func:`builder.api.run` (the CLI's code path) with a progress callback that
moves one progress bar per step; the summary lists rows and time per step and the files written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from builder import api
from builder.compiler import Plan
from builder.engines.base import RunResult, StepStat
from builder.errors import PipelineError
from builder.model import Pipeline
from builder.schedule import schedule
from builder.ui import state
from builder.ui.messages import one_line, problem_text


@dataclass
class RunSummary:
    ok: bool
    seconds: float
    result: RunResult | None = None
    errors: list[str] = field(default_factory=list)


def _run(p: Pipeline, plan: Plan) -> RunSummary:
    needed = [n for n in plan.needed_for(list(p.outputs)) if n not in plan.sources]
    bars = {n: st.progress(0, text=f"{n}: waiting") for n in needed}
    started: dict[str, float] = {}

    def progress(event: str, node: str, stat: StepStat | None) -> None:
        bar = bars.get(node)
        if bar is None:
            return
        if event == "start":
            started[node] = time.perf_counter()
            bar.progress(30, text=f"{node}: running ...")
        elif event == "done" and stat is not None:
            rows = "-" if stat.rows is None else f"{stat.rows:,}"
            bar.progress(100, text=f"{node}: {rows} rows in {stat.seconds:.2f}s")

    t0 = time.perf_counter()
    try:
        result = api.run(p, progress=progress)
    except PipelineError as e:
        return RunSummary(False, time.perf_counter() - t0,
                          errors=[problem_text(x) for x in e.problems[:8]])
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        return RunSummary(False, time.perf_counter() - t0, errors=[one_line(e)])
    return RunSummary(True, time.perf_counter() - t0, result)


def draw(p: Pipeline, plan: Plan) -> None:
    """The Run tab: run button, progress, summary, scheduling commands."""
    if not p.outputs:
        st.info("Nothing to run yet: choose a step and tick 'Write this step to a file' "
                "to give the pipeline an output.")
    else:
        st.markdown("Outputs: " + ", ".join(f"`{o}` → `{out.path or out.staging}`"
                                             for o, out in p.outputs.items()))
    blocked = bool(plan.errors)
    if blocked:
        st.warning(f"Fix the {len(plan.errors)} problem(s) first: the run validates like the "
                   "CLI does.")
    if st.button("▶ Run pipeline", key="dy_run_btn", type="primary",
                 disabled=blocked or not p.outputs):
        st.session_state[state.RUN] = _run(p, plan)
    summary: RunSummary | None = st.session_state.get(state.RUN)
    if summary is not None:
        show_summary(summary)
    st.divider()
    st.markdown("**Scheduled runs**")
    if p.path is None or state.never_saved():
        st.caption("Save the pipeline to get the command a scheduler runs.")
        return
    if state.is_dirty(p):
        st.warning("The command runs the saved file: you have unsaved changes.")
    plan = schedule(p.path)
    st.caption(f"From the project folder `{plan.root}`:")
    st.code(plan.command, language="bash")
    st.caption(f"Every day at 06:00 with cron (crontab -e); the output goes to `{plan.log}`:")
    st.code(plan.cron, language="bash")


def show_summary(summary: RunSummary) -> None:
    if not summary.ok:
        st.error("The run failed:")
        for e in summary.errors:
            st.error(e)
        return
    r = summary.result
    assert r is not None
    st.success(f"Run finished in {summary.seconds:.2f}s.")
    st.dataframe(pd.DataFrame([{"step": s.node, "rows": s.rows, "seconds": round(s.seconds, 3),
                                "status": s.status} for s in r.steps]),
                 hide_index=True, width="stretch")
    for o in r.outputs:
        st.markdown(f"Wrote **{o.output}**: {o.rows:,} rows → `{o.target}`")
    for c in r.checks:
        if c.failed_rows:
            st.warning(f"step '{c.step}': check '{c.check}' failed on {c.failed_rows} rows "
                       f"({c.on_fail}).")
