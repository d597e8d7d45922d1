"""Open, create, save, duplicate and download pipelines.

Pipelines live in one folder (``saved_pipelines/`` or $DOCKYARD_PIPELINES_DIR) as ``NAME.yaml``,
written by :func:`builder.pipeline.model.save` (atomic), so the CLI reads exactly what the app saved.
Names are checked by :func:`builder.pipeline.edit.pipeline_file`: nothing can be written outside the
folder, and saving over another existing pipeline needs an explicit confirmation.
"""

from __future__ import annotations

from pathlib import Path

import sqlglot
import streamlit as st

from builder import api
from builder.errors import ConfigError
from builder.pipeline import edit
from builder.pipeline.model import Pipeline, dump, loads_pipeline, save
from builder.pipeline.yamlio import read_text_file
from builder.ui import state
from builder.ui.messages import action, one_line, problem_text

DIALECTS = ["duckdb", "spark", "postgres", "snowflake", "bigquery", "trino", "databricks"]


def saved_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml"))


def display_path(path: Path) -> str:
    """A path relative to the project root when it is inside it (as the CLI would take it)."""
    try:
        return path.resolve().relative_to(state.ROOT.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


@action
def open_file(path: Path) -> None:
    text = read_text_file(path, "pipeline file")  # a FIFO or folder: one line, no hang
    p = loads_pipeline(text, path=path)
    state.set_pipeline(p, dump(p), text)
    state.flash("success", f"Opened '{display_path(path)}'.")


@action
def _open_selected() -> None:
    name = st.session_state.get("dy_open_choice")
    if not name:
        raise ConfigError("choose a pipeline to open.")
    open_file(edit.pipeline_file(state.pipelines_dir(), name))


@action
def _new() -> None:
    name = str(st.session_state.get("dy_new_name") or "").strip()
    path = edit.pipeline_file(state.pipelines_dir(), name)
    if path.exists():
        raise ConfigError(f"'{path.name}' already exists: open it, or choose another name.")
    state.set_pipeline(edit.new_pipeline(name, state.pipelines_dir()), None)
    state.flash("info", f"New pipeline '{name}'. Add a source from the sidebar to begin.")


@action
def _save() -> None:
    p = state.pipeline()
    assert p is not None
    name = str(st.session_state.get("dy_save_name") or "").strip()
    target = edit.pipeline_file(state.pipelines_dir(), name)
    same_file = p.path is not None and target.resolve() == Path(p.path).resolve()
    if target.exists() and not (same_file and not state.never_saved()) and \
            not st.session_state.get("dy_overwrite"):
        raise ConfigError(f"'{display_path(target)}' already exists. Tick 'Replace the existing "
                          "file' to save over it, or choose another name.")
    if not same_file:
        p.name = target.stem
    p.path = target
    # The file we opened may have been changed meanwhile (another tab, a git pull).
    expected = state.disk_text() if same_file else None
    # The comments of the file the pipeline was opened from are kept ("": a new pipeline).
    text = dump(p, state.disk_text() or "")
    save(p, target, expected=expected, force=bool(st.session_state.get("dy_overwrite")),
         text=text)
    state.mark_saved(p, text)
    st.session_state["dy_overwrite"] = False
    state.flash("success", f"Saved to '{display_path(target)}'. Run it with: "
                f"dockyard run {display_path(target)}")


@action
def _duplicate() -> None:
    p = state.pipeline()
    assert p is not None
    name = str(st.session_state.get("dy_dup_name") or "").strip()
    target = edit.pipeline_file(state.pipelines_dir(), name)
    if target.exists():
        raise ConfigError(f"'{display_path(target)}' already exists: choose another name.")
    copy = edit.duplicate(p, name, state.pipelines_dir())
    text = dump(copy, state.disk_text() or "")
    save(copy, target, text=text)
    state.set_pipeline(copy, dump(copy), text)
    state.flash("success", f"Duplicated to '{display_path(target)}' (now editing the copy).")


def open_panel() -> None:
    """Open a saved pipeline or start a new one."""
    files = saved_files(state.pipelines_dir())
    names = [f.stem for f in files]
    st.selectbox("Saved pipelines", names, key="dy_open_choice", index=None,
                 placeholder="choose a pipeline")
    st.button("Open", key="dy_open_btn", on_click=_open_selected)
    st.text_input("New pipeline name", key="dy_new_name", placeholder="my_pipeline")
    st.button("New pipeline", key="dy_new_btn", on_click=_new)


def save_panel(p: Pipeline) -> None:
    """Save (with a name), duplicate, download YAML and SQL."""
    if "dy_save_name" not in st.session_state or st.session_state.get("dy_save_for") != id(p):
        st.session_state["dy_save_name"] = p.path.stem if p.path else p.name
        st.session_state["dy_save_for"] = id(p)
    st.text_input("Save as", key="dy_save_name",
                  help="The file is saved_pipelines/NAME.yaml (letters, digits, '_' and '-').")
    st.checkbox("Replace the existing file", key="dy_overwrite")
    st.button("Save", key="dy_save_btn", on_click=_save, type="primary",
              width="stretch")
    with st.expander("Duplicate, download"):
        st.text_input("Copy name", key="dy_dup_name", placeholder=f"{p.name}_copy")
        st.button("Duplicate", key="dy_dup_btn", on_click=_duplicate)
        st.download_button("Download YAML", dump(p), file_name=f"{p.name}.yaml",
                           mime="application/x-yaml", key="dy_dl_yaml", on_click="ignore")
        download_sql(p)


def download_sql(p: Pipeline) -> None:
    """Compiled SQL of one step in a chosen dialect, as a download."""
    if not p.steps:
        st.caption("Add a step to download its SQL.")
        return
    steps = p.step_ids()
    step = st.selectbox("SQL of step", steps, index=len(steps) - 1, key="dy_dl_step")
    dialect = st.selectbox("Dialect", DIALECTS, key="dy_dl_dialect")
    if dialect not in sqlglot.Dialect.classes:
        st.caption(f"sqlglot has no dialect '{dialect}'.")
        return
    try:
        sql = api.compile_sql(p, step, dialect=dialect)
    except ConfigError as e:
        st.caption(problem_text(e.problems[0]))
        return
    except Exception as e:  # noqa: BLE001 - compile errors of any kind: one line
        problems = getattr(e, "problems", None)
        st.caption(problem_text(problems[0]) if problems else one_line(e))
        return
    st.download_button("Download SQL", sql, file_name=f"{p.name}.{step}.{dialect}.sql",
                       mime="text/x-sql", key="dy_dl_sql", on_click="ignore")
