"""Showing problems and errors: one line each, next to what they belong to, never a traceback."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import streamlit as st

from builder.errors import PipelineError, Problem
from builder.ui import state

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("dockyard.ui")


def problem_text(p: Problem) -> str:
    """A problem without the file location (the app shows the step it belongs to instead)."""
    msg = p.message
    if p.sql_line is not None and "line " not in msg:
        msg = f"{msg} (SQL line {p.sql_line}, column {p.sql_col or 1})"
    return msg


def show_problems(problems: Iterable[Problem], limit: int = 8) -> None:
    """Errors in red, warnings in yellow; the tail folded into '... and N more'.

    Drawn in one container that is there even when empty (see :func:`messages`)."""
    items = list(problems)
    with st.container():
        for p in items[:limit]:
            (st.warning if p.severity == "warning" else st.error)(problem_text(p))
        if len(items) > limit:
            st.caption(f"... and {len(items) - limit} more")


def messages(notes: Iterable[tuple[str, str]]) -> None:
    """Messages as (level, text), in one container that is drawn even when there are none.

    Why: the browser tells elements apart by their place on the page. A message that comes or
    goes before other elements would move every element after it to a new place, and the
    browser would draw them all as new: the canvas reloads its frame, an open dropdown closes,
    and on a slow machine the old copies linger beside the new ones (stale duplicates). One
    container keeps everything after it in its place."""
    with st.container():
        for level, text in notes:
            getattr(st, level)(text)


def one_line(e: BaseException) -> str:
    """An unexpected exception as one line for the user (the traceback goes to the log)."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"Something went wrong ({type(e).__name__}): {text}" if text else \
        f"Something went wrong ({type(e).__name__})."


def report(e: BaseException) -> None:
    """Queue an error for display: a PipelineError's problems, or one line for anything else."""
    if isinstance(e, PipelineError):
        for p in e.problems[:8]:
            state.flash("warning" if p.severity == "warning" else "error", problem_text(p))
        if len(e.problems) > 8:
            state.flash("error", f"... and {len(e.problems) - 8} more")
    else:
        log.exception("unexpected error in the app")
        state.flash("error", one_line(e))


def action(fn: F) -> F:
    """Wrap a widget callback so failures become messages on the next rerun."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - shown to the user, one line
            report(e)
            return None

    return wrapper  # type: ignore[return-value]
