"""Adding sources: a data file in the project folder, a path, an uploaded CSV/Parquet file, a
catalog or staging table, or a PostgreSQL table or query (its connection string is read from an
environment variable, never typed into the app).

Uploads are written into the project (``<pipelines folder>/data/uploads/``) and become ordinary
file sources with a path relative to the pipeline file, so the saved YAML runs from the CLI too.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import streamlit as st

from builder import fsio
from builder.errors import ConfigError
from builder.pipeline import edit
from builder.pipeline.model import Pipeline, infer_format
from builder.ui import state
from builder.ui.messages import action

UPLOAD_TYPES = ["csv", "parquet"]
DATA_SUFFIXES = (".csv", ".parquet", ".json", ".jsonl", ".ndjson", ".tsv")


def data_files(folder: Path) -> list[Path]:
    """Data files under ``folder/data`` (sample data and earlier uploads), sorted."""
    root = folder / "data"
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in
                  DATA_SUFFIXES and not p.name.startswith("."))


def relative_to_pipeline(p: Pipeline, file: Path) -> str:
    """A source path as the YAML should hold it: relative to the pipeline file's folder."""
    return Path(os.path.relpath(file.resolve(), p.base_dir.resolve())).as_posix()


def save_upload(folder: Path, name: str, data: bytes) -> Path:
    """Write an uploaded file into ``folder/data/uploads`` (never outside it); returns its path.

    The same name with other content gets a short content hash appended instead of
    overwriting a file an existing pipeline may read.
    """
    stem, suffix = os.path.splitext(os.path.basename(name))
    suffix = suffix.lower()
    if suffix.lstrip(".") not in UPLOAD_TYPES:
        raise ConfigError(f"'{name}' is not a CSV or Parquet file.")
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", stem).strip("_") or "upload"
    target_dir = folder / state.UPLOADS
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{safe}{suffix}"
    if target.exists() and target.read_bytes() != data:
        target = target_dir / f"{safe}_{hashlib.sha256(data).hexdigest()[:8]}{suffix}"
    if not target.exists():
        fsio.write_bytes(target, data)
    return target


def _source_id(p: Pipeline, path: str) -> str:
    return edit.unique_id(p, Path(path).name.split(".")[0])


@action
def _add_path(path_key: str, id_key: str) -> None:
    p = state.pipeline()
    assert p is not None
    path = str(st.session_state.get(path_key) or "").strip()
    sid = str(st.session_state.get(id_key) or "").strip() or _source_id(p, path)
    if infer_format(path) is None:
        raise ConfigError(f"cannot tell the format of '{path}': use a .csv, .parquet or .json "
                          "file.")
    src = edit.add_source(p, sid, path)
    state.select(src.id)
    state.flash("success", f"Added source '{src.id}' ({path}).")


@action
def _add_file(choice_key: str, id_key: str) -> None:
    p = state.pipeline()
    assert p is not None
    choice = st.session_state.get(choice_key)
    if not choice:
        raise ConfigError("choose a data file first.")
    path = relative_to_pipeline(p, state.pipelines_dir() / choice)
    sid = str(st.session_state.get(id_key) or "").strip() or _source_id(p, path)
    src = edit.add_source(p, sid, path)
    state.select(src.id)
    state.flash("success", f"Added source '{src.id}' ({path}).")


@action
def _add_upload(upload_key: str, id_key: str) -> None:
    p = state.pipeline()
    assert p is not None
    up = st.session_state.get(upload_key)
    if up is None:
        raise ConfigError("choose a CSV or Parquet file to upload first.")
    target = save_upload(state.pipelines_dir(), up.name, up.getvalue())
    path = relative_to_pipeline(p, target)
    sid = str(st.session_state.get(id_key) or "").strip() or _source_id(p, path)
    src = edit.add_source(p, sid, path)
    state.select(src.id)
    state.flash("success", f"Uploaded to '{path}' and added source '{src.id}'.")


@action
def _add_table(choice_key: str, id_key: str) -> None:
    p = state.pipeline()
    assert p is not None
    choice = st.session_state.get(choice_key)
    if not choice:
        raise ConfigError("choose a catalog table first.")
    kind, name = str(choice).split(":", 1)
    sid = str(st.session_state.get(id_key) or "").strip() or edit.unique_id(p, name)
    src = edit.add_table_source(p, sid, kind, name)
    state.select(src.id)
    state.flash("success", f"Added source '{src.id}' ({kind} table '{name}').")


@action
def _add_postgres(id_key: str) -> None:
    p = state.pipeline()
    assert p is not None
    table = str(st.session_state.get("dy_src_pg_table") or "").strip()
    query = str(st.session_state.get("dy_src_pg_query") or "").strip()
    base = table.rsplit(".", 1)[-1] if table else "query"
    sid = str(st.session_state.get(id_key) or "").strip() or edit.unique_id(
        p, re.sub(r"[^A-Za-z0-9_]", "_", base) or "query")
    src = edit.add_postgres_source(p, sid, str(st.session_state.get("dy_src_pg_env") or ""),
                                   table=table, query=query)
    state.select(src.id)
    state.flash("success", f"Added source '{src.id}' (PostgreSQL {'table ' + repr(table) if table else 'query'}).")


def table_choices() -> list[str]:
    """'catalog:NAME' and 'staging:NAME' for every table the project's catalog knows."""
    from builder.pipeline.project import find_project
    from builder.warehouse.browse import entries

    project = find_project(state.pipelines_dir() / "x.yaml")
    return [f"{e['kind']}:{e['name']}" for e in entries(project)]


def draw(p: Pipeline) -> None:
    """The 'Add a source' controls (in the sidebar)."""
    folder = state.pipelines_dir()
    how = st.radio("From", ["Data folder", "Catalog", "Upload", "Path", "PostgreSQL"],
                   key="dy_src_how", horizontal=True)
    st.text_input("Source id (optional)", key="dy_src_id", placeholder="from the file name")
    if how == "Catalog":
        tables = table_choices()
        if not tables:
            st.caption("The catalog is empty: add catalog/*.yaml files or publish a staging "
                       "table.")
            return
        st.selectbox("Table", tables, key="dy_src_table",
                     help="Catalog entries apply their casts, dedupe, masking and checks on "
                     "read; staging tables are published by other pipelines.")
        st.button("Add source", key="dy_src_add_table", on_click=_add_table,
                  args=("dy_src_table", "dy_src_id"))
    elif how == "Data folder":
        files = [f.relative_to(folder).as_posix() for f in data_files(folder)]
        if not files:
            st.caption(f"No data files in '{folder / 'data'}'.")
            return
        st.selectbox("File", files, key="dy_src_file")
        st.button("Add source", key="dy_src_add_file", on_click=_add_file,
                  args=("dy_src_file", "dy_src_id"))
    elif how == "PostgreSQL":
        st.text_input("Environment variable with the connection string", key="dy_src_pg_env",
                      value="PG_DSN", help="e.g. export PG_DSN=postgresql://user:password@host"
                      ":5432/db before starting the app. The pipeline file names the variable, "
                      "never the password.")
        st.text_input("Table (schema.table)", key="dy_src_pg_table",
                      placeholder="public.orders")
        st.text_area("... or a query", key="dy_src_pg_query", height=70,
                     placeholder="SELECT * FROM public.orders WHERE ...",
                     help="Runs in PostgreSQL; give either a table or a query.")
        st.button("Add source", key="dy_src_add_pg", on_click=_add_postgres,
                  args=("dy_src_id",))
    elif how == "Upload":
        st.file_uploader("CSV or Parquet file", type=UPLOAD_TYPES, key="dy_src_upload")
        st.caption(f"Saved into '{state.UPLOADS.as_posix()}/' next to your pipelines.")
        st.button("Upload and add", key="dy_src_add_upload", on_click=_add_upload,
                  args=("dy_src_upload", "dy_src_id"))
    else:
        st.text_input("Path (relative to the pipeline file)", key="dy_src_path",
                      placeholder="data/orders.parquet")
        st.button("Add source", key="dy_src_add_path", on_click=_add_path,
                  args=("dy_src_path", "dy_src_id"))
