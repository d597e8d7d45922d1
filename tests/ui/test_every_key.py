"""Issue 20: every key of the v1 pipeline file can be set from the app. A pipeline is built with
widgets only, saved, and its YAML must hold every key of builder.pipeline.model.V1_KEYS."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from builder.pipeline.model import V1_KEYS, load
from builder.pipeline.yamlio import loads
from tests.ui.conftest import ROOT, TIMEOUT, errors, widget


@pytest.fixture
def project_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    project = tmp_path / "proj"
    shutil.copytree(ROOT / "catalog", project / "catalog")
    shutil.copytree(ROOT / "saved_pipelines" / "data", project / "saved_pipelines" / "data")
    shutil.copy(ROOT / "saved_pipelines" / "sessions_staging.yaml", project / "saved_pipelines")
    monkeypatch.setenv("DOCKYARD_PIPELINES_DIR", str(project / "saved_pipelines"))
    monkeypatch.delenv("DOCKYARD_WAREHOUSE", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    yield at, project / "saved_pipelines"
    if "dy_previewer" in at.session_state:
        at.session_state["dy_previewer"].close()


def _p(at: AppTest):
    return at.session_state["dy_pipeline"]


def _inspect(at: AppTest, node: str) -> None:
    at.selectbox(key="dy_selected").select(node).run()


def _table_source(at: AppTest, choice: str, sid: str) -> None:
    at.radio(key="dy_src_how").set_value("Catalog").run()
    at.text_input(key="dy_src_id").input(sid).run()
    at.selectbox(key="dy_src_table").set_value(choice).run()
    at.button(key="dy_src_add_table").click().run()


def test_every_key_of_the_file_is_set_from_the_app(project_app):
    at, folder = project_app
    at.text_input(key="dy_new_name").input("every").run()
    at.button(key="dy_new_btn").click().run()
    # Pipeline: description and a param.
    widget(at, "text_input", ":pipeline_desc").input("All keys.").run()
    at.text_input(key="dy_param_new_name").input("min_day").run()
    at.text_input(key="dy_param_new_value").input("2024-01-01").run()
    at.button(key="dy_param_add").click().run()
    assert not errors(at), errors(at)
    # A CSV file source with format, reader options, sample key, description, path.
    at.selectbox(key="dy_src_file").select("data/users.csv").run()
    at.button(key="dy_src_add_file").click().run()
    widget(at, "selectbox", ":src_format:users").select("csv").run()
    widget(at, "text_input", ":src_opt:users:delim").input(",").run()
    widget(at, "multiselect", ":src_key:users").select("user_id").run()
    widget(at, "text_input", ":desc:users").input("Registered users.").run()
    widget(at, "text_input", ":src_path:users").input("./data/users.csv").run()
    # A catalog source asking for a raw PII column, and a staging source renamed.
    _table_source(at, "catalog:orders", "cat")
    widget(at, "text_input", ":src_table:cat").input("users").run()
    widget(at, "multiselect", ":src_pii:cat").select("email").run()
    widget(at, "selectbox", ":src_inc_by:cat").select("event_time").run()
    widget(at, "text_input", ":src_inc_lookback:cat").input("2 hours").run()
    _table_source(at, "staging:sessions", "sess")
    widget(at, "text_input", ":src_table:sess").input("sessions").run()
    # A PostgreSQL source (issue 23; no server here: the plan reports it, the file holds it).
    at.radio(key="dy_src_how").set_value("PostgreSQL").run()
    at.text_input(key="dy_src_id").input("pgsrc").run()
    at.text_input(key="dy_src_pg_table").input("public.orders").run()
    at.button(key="dy_src_add_pg").click().run()
    widget(at, "text_input", ":src_pg_env:pgsrc").input("ORDERS_DSN").run()
    # A pattern step: inputs, params, description, renamed; written to a file.
    _inspect(at, "users")
    at.button(key="dy_add_filter").click().run()
    widget(at, "multiselect", ":inputs:filter_1").unselect("users").select("cat").run()
    widget(at, "text_area", ":param:filter_1:where").input("signup_date >= {{ min_day }}").run()
    widget(at, "text_input", ":desc:filter_1").input("Recent users.").run()
    widget(at, "text_input", ":rename:filter_1").input("recent").run()
    widget(at, "button", ":rename_btn:filter_1").click().run()
    widget(at, "radio", ":out_kind:recent").set_value("file").run()
    widget(at, "text_input", ":out_path:recent").input("../out/every/recent.csv").run()
    widget(at, "selectbox", ":out_format:recent").select("csv").run()
    widget(at, "text_input", ":out_desc:recent").input("Users since min_day.").run()
    widget(at, "text_input", ":out_owner:recent").input("growth@example.com").run()
    widget(at, "text_area", ":out_columns:recent").input("user_id: The user.").run()
    # A SQL step published as a staging table with every staging setting.
    at.button(key="dy_add_sql").click().run()
    widget(at, "text_area", ":sql:sql_1").input("SELECT user_id, name FROM recent").run()
    widget(at, "radio", ":out_kind:sql_1").set_value("staging").run()
    widget(at, "text_input", ":out_staging:sql_1").input("recent_users").run()
    widget(at, "selectbox", ":out_mode:sql_1").select("merge").run()
    widget(at, "multiselect", ":out_pk:sql_1").select("user_id").run()
    widget(at, "selectbox", ":out_history:sql_1").select("scd2").run()
    # A SQL step written to a PostgreSQL table.
    at.button(key="dy_add_sql").click().run()
    widget(at, "text_area", ":sql:sql_2").input("SELECT user_id FROM recent").run()
    widget(at, "radio", ":out_kind:sql_2").set_value("postgres").run()
    widget(at, "text_input", ":out_pg_table:sql_2").input("public.recent").run()
    assert not at.exception
    at.text_input(key="dy_save_name").input("every").run()
    at.button(key="dy_save_btn").click().run()
    assert any("Saved to" in s.value for s in at.success), errors(at)

    data = loads((folder / "every.yaml").read_text())
    seen = {"pipeline": set(data), "source": set(), "step": set(), "output": set()}
    for spec in data["sources"].values():
        seen["source"] |= set(spec)
    for spec in data["steps"]:
        seen["step"] |= set(spec)
    for spec in data["outputs"].values():
        seen["output"] |= set(spec)
    # 'mode' is written once it is not the default; every section holds every key.
    assert {s: set(keys) - seen[s] for s, keys in V1_KEYS.items()} == {
        "pipeline": set(), "source": set(), "step": set(), "output": set()}
    p = load(folder / "every.yaml")
    assert p.params == {"min_day": __import__("datetime").date(2024, 1, 1)}
    assert p.sources["users"].options == {"delim": ","}
    assert p.sources["cat"].pii_access == ["email"] and p.sources["cat"].catalog == "users"
    assert p.sources["cat"].incremental == {"by": "event_time", "lookback": "2 hours"}
    assert p.step("recent").inputs == ["cat"]
    out = p.outputs["sql_1"]
    assert (out.staging, out.mode, out.primary_key, out.history) == (
        "recent_users", "merge", ["user_id"], "scd2")
    assert p.outputs["recent"].columns == {"user_id": "The user."}
    assert p.sources["pgsrc"].postgres == {"dsn": {"env": "ORDERS_DSN"}, "table": "public.orders"}
    assert p.outputs["sql_2"].postgres == {"dsn": {"env": "PG_DSN"}, "table": "public.recent"}
