"""Previewing a node: first rows, row count, schema and a per-column profile.

The session's :class:`~builder.engines.preview.Previewer` computes (or finds cached) results; this module
only decides what to draw. What is *rendered* is capped (``MAX_ROWS`` rows, ``MAX_COLS``
columns) so a 200k-row or very wide result never freezes the browser; what is *computed* is the
whole result, so the row count and profile are exact (or marked approximate in sample mode).

A preview runs in a worker thread while the page waits for it with a Cancel button: clicking it
reruns the page, which calls :meth:`Previewer.interrupt`, and the worker reports the cancellation.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import streamlit as st

from builder.engines.base import PreviewResult
from builder.engines.preview import DEFAULT_SAMPLE_ROWS, Previewer, SampleSpec, source_bytes
from builder.errors import PipelineError
from builder.plan.compiler import Plan
from builder.ui import state
from builder.ui.messages import one_line, problem_text

MAX_ROWS = 200
MAX_COLS = 50
JOB = "dy_preview_job"
# Above this much source data upstream of a node, previews start in sample mode (1M click events
# are ~13 MB of Parquet and a full cold preview of pipeline A takes ~1.6 s; 10M, ~130 MB, 18 s).
SAMPLE_ABOVE_BYTES = 32 * 1024 * 1024
# The app's previews run here, one at a time per session; a session that starts another waits
# for its own (the page does), so a few workers serve many sessions.
_WORKERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dockyard-preview")


@dataclass
class Shown:
    """The last preview: what was asked for and what came back."""

    node: str
    fingerprint: str
    sample: SampleSpec | None
    result: PreviewResult
    profile: pd.DataFrame | None = None


@dataclass
class Job:
    """A preview computing in a worker thread (``future``: its result and profile)."""

    node: str
    fingerprint: str
    sample: SampleSpec | None
    future: Future[tuple[PreviewResult, pd.DataFrame | None]] | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def done(self) -> bool:
        return self.future is not None and self.future.done()


def _work(job: Job, pv: Previewer, plan: Plan) -> tuple[PreviewResult, pd.DataFrame | None]:
    result = pv.preview(plan, job.node, limit=MAX_ROWS, sample=job.sample)
    return result, pv.profile(plan, job.node, sample=job.sample)


def fingerprint(pv: Previewer, plan: Plan, node: str, sample: SampleSpec | None) -> str | None:
    try:
        return pv.fingerprints(plan, node, sample)[node]
    except Exception:  # noqa: BLE001 - a node that does not compile has no fingerprint
        return None


def start(plan: Plan, node: str, sample: SampleSpec | None) -> None:
    pv = state.previewer()
    job = Job(node=node, fingerprint=fingerprint(pv, plan, node, sample) or "", sample=sample)
    st.session_state[JOB] = job
    job.future = _WORKERS.submit(_work, job, pv, plan)


def cancel() -> None:
    """Button callback: stop the running preview's query."""
    job: Job | None = st.session_state.get(JOB)
    if job is not None and not job.done:
        state.previewer().interrupt()


def wait(plan: Plan) -> None:
    """Wait for a running preview, showing a spinner and a Cancel button."""
    job: Job | None = st.session_state.get(JOB)
    if job is None:
        return
    if not job.done:
        slot = st.empty()
        slot.button("Cancel preview", key="dy_cancel_preview", on_click=cancel)
        note = st.empty()
        with st.spinner(f"Computing '{job.node}' ..."):
            while job.future is not None and not job.future.done():
                wait_for([job.future], timeout=0.2)
                # Touching the page lets Streamlit rerun at once when Cancel is clicked.
                note.caption(f"running for {time.perf_counter() - job.started:.1f}s")
        note.empty()
        slot.empty()
    st.session_state.pop(JOB, None)
    assert job.future is not None
    e = job.future.exception()
    if e is not None:
        if isinstance(e, PipelineError):
            for p in e.problems[:5]:
                state.flash("error", problem_text(p))
        else:
            state.flash("error", one_line(e))
    else:
        result, profile = job.future.result()
        st.session_state[state.PREVIEW] = Shown(job.node, job.fingerprint, job.sample,
                                                result, profile)
        # A sampled preview computed the steps above the node in one query; give them their
        # own cached tables now, while the user reads the result (an edit then recomputes
        # only what changed).
        _WORKERS.submit(state.previewer().settle)
    # Draw the page again so the DAG and the node list show the newly cached results.
    st.rerun()


def draw(plan: Plan, node: str, ok: bool) -> None:
    """Preview controls and the last preview of ``node``."""
    pv = state.previewer()
    c1, c2, c3 = st.columns([1, 2, 2])
    big = source_bytes(plan, node) > SAMPLE_ABOVE_BYTES
    # Big inputs start in sample mode; the choice is kept separately for big and small ones,
    # so turning it off for one big pipeline does not turn it on for small ones.
    sample_on = c2.toggle("Sample mode (approximate)", key="dy_sample_big" if big else "dy_sample",
                          value=big,
                          help=f"Read at most {DEFAULT_SAMPLE_ROWS:,} rows per source; sources "
                          "with a 'sample_key' keep whole keys so joins and sessions stay intact. "
                          "Each source's sample is made once per version of its files and kept. "
                          + ("On by default: the sources of this step hold more than "
                             f"{SAMPLE_ABOVE_BYTES // 2**20} MB; turn it off for exact results."
                             if big else ""))
    rows = c3.number_input("Rows per source in sample mode", min_value=100,
                           max_value=10_000_000, value=DEFAULT_SAMPLE_ROWS, step=10_000,
                           key="dy_sample_rows", disabled=not sample_on)
    sample = SampleSpec(rows=int(rows)) if sample_on else None
    if c1.button("▶ Preview", key="dy_preview_btn", type="primary", disabled=not ok,
                 help=None if ok else "Fix the problems above first."):
        start(plan, node, sample)
    wait(plan)
    shown: Shown | None = st.session_state.get(state.PREVIEW)
    if shown is None or shown.node != node:
        st.caption("Not previewed yet. Nothing is written by a preview.")
        return
    current = fingerprint(pv, plan, node, sample)
    fresh = current == shown.fingerprint
    if not fresh:
        st.warning("This step changed since this preview: preview again to see the new result.")
    render(shown, plan if fresh else None)


def render(shown: Shown, plan: Plan | None) -> None:
    """Rows (capped), row count, schema, profile and a histogram of one column."""
    r = shown.result
    count = "?" if r.row_count is None else f"{r.row_count:,}"
    note = " (approximate: sample mode)" if r.approximate else ""
    how = "from cache" if r.cached else f"computed in {r.seconds:.2f}s"
    st.markdown(f"**{count} rows**, {len(r.columns)} columns{note} — {how}")
    df = r.rows
    if df.shape[1] > MAX_COLS:
        st.caption(f"Showing the first {MAX_COLS} of {df.shape[1]} columns.")
        df = df.iloc[:, :MAX_COLS]
    if len(df) > MAX_ROWS:
        df = df.head(MAX_ROWS)
    if r.row_count is not None and r.row_count > len(df):
        st.caption(f"Showing the first {len(df):,} rows.")
    tab_rows, tab_schema, tab_profile = st.tabs(["Rows", "Schema", "Profile"])
    with tab_rows:
        st.dataframe(_displayable(df), hide_index=True, width="stretch", height=320)
    with tab_schema:
        st.dataframe(pd.DataFrame(r.columns, columns=["column", "type"]), hide_index=True,
                     width="stretch")
    with tab_profile:
        if shown.profile is not None:
            prof = shown.profile
            if len(prof) > MAX_COLS:
                st.caption(f"Profile of the first {MAX_COLS} of {len(prof)} columns.")
                prof = prof.head(MAX_COLS)
            st.dataframe(_displayable(prof), hide_index=True, width="stretch")
        names = [c for c, _ in r.columns]
        if names:
            column = st.selectbox("Histogram of", names, key="dy_hist_col")
            if plan is not None:
                _histogram(shown, plan, column)


def _histogram(shown: Shown, p: Plan, column: str) -> None:
    try:
        h = state.previewer().histogram(p, shown.node, column, sample=shown.sample)
    except Exception as e:  # noqa: BLE001 - the step may have changed since; say so in a line
        st.caption(one_line(e))
        return
    if h.empty:
        st.caption("No values.")
        return
    label = "bin" if "bin" in h.columns else "value"
    st.bar_chart(h.set_index(label)["n"])


def _displayable(df: pd.DataFrame) -> pd.DataFrame:
    """Values the browser table can show (nested and binary values as text)."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            sample: Any = next((v for v in out[c] if v is not None), None)
            if isinstance(sample, (dict, list, tuple, bytes, set)):
                out[c] = out[c].map(lambda v: None if v is None else str(v))
    return out
