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
from builder.engines.base import RunResult, StepStat
from builder.errors import PipelineError
from builder.pipeline.model import Pipeline
from builder.pipeline.schedule import schedule
from builder.plan.compiler import Plan
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
            if stat.rows is not None:
                bar.progress(100, text=f"{node}: {stat.rows:,} rows in {stat.seconds:.2f}s")
            elif node in p.outputs:
                bar.progress(60, text=f"{node}: streamed (runs while its output is written)")
            else:
                bar.progress(100, text=f"{node}: a view (runs inside the steps that read it)")
        elif event == "write":
            bar.progress(80, text=f"{node}: writing its output ...")

    t0 = time.perf_counter()
    try:
        result = api.run(p, progress=progress)
    except PipelineError as e:
        return RunSummary(False, time.perf_counter() - t0,
                          errors=[problem_text(x) for x in e.problems[:8]])
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        return RunSummary(False, time.perf_counter() - t0, errors=[one_line(e)])
    for row in step_rows(result):
        bar = bars.get(str(row["step"]))
        if bar is not None and row["how"] == "streamed":
            bar.progress(100, text=f"{row['step']}: {row['rows']} rows, streamed into its "
                         "output")
    return RunSummary(True, time.perf_counter() - t0, result)


def step_rows(result: RunResult) -> list[dict[str, object]]:
    """The summary table: one row per step, with the rows it produced.

    A step whose query runs while its output file is written (streamed: it is never held as a
    table) has no row count of its own; its output's count is shown. A step kept as a view is
    computed inside the steps that read it, so it has no count.
    """
    written = {o.output: o for o in result.outputs}
    out: list[dict[str, object]] = []
    for s in result.steps:
        seconds = s.seconds
        if s.rows is not None:
            rows, how = f"{s.rows:,}", "table"
        elif s.node in written:
            # Its time is the write's: that is when its query ran.
            rows, how = f"{written[s.node].rows:,}", "streamed"
            seconds += written[s.node].seconds
        else:
            rows, how = "", "view"
        out.append({"step": s.node, "rows": rows, "how": how, "seconds": round(seconds, 3),
                    "status": s.status})
    return out


def draw(p: Pipeline, plan: Plan) -> None:
    """The Run tab: run button, progress, summary, scheduling commands."""
    if not p.outputs:
        st.info("Nothing to run yet: choose a step and, under 'Write this step to', pick a "
                "file or a staging table to give the pipeline an output.")
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
    sched = schedule(p.path)
    st.caption(f"From the project folder `{sched.root}`:")
    st.code(sched.command, language="bash")
    st.caption(f"Every day at 06:00 with cron (crontab -e); the output goes to `{sched.log}`:")
    st.code(sched.cron, language="bash")


def show_summary(summary: RunSummary) -> None:
    if not summary.ok:
        st.error("The run failed:")
        for e in summary.errors:
            st.error(e)
        return
    r = summary.result
    assert r is not None
    st.success(f"Run finished in {summary.seconds:.2f}s.")
    st.dataframe(pd.DataFrame(step_rows(r)), hide_index=True, width="stretch",
                 column_config={"how": st.column_config.TextColumn(
                     "how", help="table: computed once and kept; streamed: computed while its "
                     "output is written; view: computed inside the steps that read it")})
    for o in r.outputs:
        st.markdown(f"Wrote **{o.output}**: {o.rows:,} rows → `{o.target}`")
    for c in r.checks:
        if c.failed_rows:
            st.warning(f"step '{c.step}': check '{c.check}' failed on {c.failed_rows} rows "
                       f"({c.on_fail}).")
