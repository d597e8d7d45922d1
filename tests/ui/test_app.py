"""The app driven through Streamlit's AppTest: what a user clicks, what the CLI then reads."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from builder.pipeline.model import dump, load
from builder.pipeline.schedule import schedule
from builder.plan.compiler import plan
from tests.ui.conftest import errors, open_example, param_widget, widget


def pipeline(at: AppTest):
    return at.session_state["dy_pipeline"]


def test_welcome_lists_examples_and_opens_one(app: AppTest):
    assert any("daily_revenue" in m.value for m in app.markdown)
    open_example(app)
    assert app.title[0].value == "daily_revenue"
    assert not errors(app)
    inspect = app.selectbox(key="dy_selected")
    assert inspect.options == [
        "orders", "users", "paid_orders", "order_lines", "revenue_by_country"]
    assert any("✓ saved" in c.value for c in app.caption)
    # The model in the session is the pipeline the CLI loads from that file.
    assert pipeline(app) == load(Path(pipeline(app).path))


def test_add_and_edit_pattern_step(app: AppTest):
    open_example(app)
    app.button(key="dy_add_filter").click().run()
    p = pipeline(app)
    step = p.steps[-1]
    assert (step.id, step.pattern, step.inputs) == ("filter_1", "filter", ["revenue_by_country"])
    assert app.selectbox(key="dy_selected").value == "filter_1"
    assert any("param 'where' is required" in e for e in errors(app))
    param_widget(app, "text_area", "filter_1", "where").input("revenue > 1000").run()
    assert not errors(app)
    assert pipeline(app).step("filter_1").params == {"where": "revenue > 1000"}
    # A column picker is filled from the input's propagated schema.
    app.button(key="dy_add_select").click().run()
    cols = param_widget(app, "multiselect", "select_1", "columns")
    assert cols.options[:2] == ["country", "day"]
    assert "Input columns: country (VARCHAR), day (DATE)" in cols.help
    cols.select("country").select("revenue").run()
    assert pipeline(app).step("select_1").params == {"columns": ["country", "revenue"]}
    assert pipeline(app).step("select_1").inputs == ["filter_1"]
    assert any("● unsaved changes" in c.value for c in app.caption)


def test_sql_step_errors_are_shown_next_to_it(app: AppTest):
    open_example(app)
    app.button(key="dy_add_sql").click().run()
    sid = pipeline(app).steps[-1].id
    assert pipeline(app).step(sid).sql == "SELECT *\nFROM revenue_by_country"
    editor = widget(app, "text_area", f":sql:{sid}")
    editor.input("SELECT country, sum(revenu) AS r\nFROM revenue_by_country\nGROUP BY 1").run()
    msgs = errors(app)
    assert any("column 'revenu' not found" in m and "Did you mean 'revenue'?" in m
               for m in msgs), msgs
    widget(app, "text_area", f":sql:{sid}").input("SELECT country,\nFROM revenue_by_country "
                                                 "WHERE").run()
    msgs = errors(app)
    assert msgs and any("line" in m.lower() for m in msgs), msgs
    # an unknown function or wrong argument types: one line, located, under a caret
    widget(app, "text_area", f":sql:{sid}").input("SELECT country,\n  cont(*) AS n\n"
                                                 "FROM revenue_by_country GROUP BY 1").run()
    assert errors(app) == ["function 'cont' does not exist. "
                           "Did you mean 'count'? (SQL line 2, column 3)"], errors(app)
    assert "  cont(*) AS n\n  ^" in [c.value for c in app.code]
    widget(app, "text_area", f":sql:{sid}").input("SELECT * FROM revenue_by_countri").run()
    assert any("Did you mean 'revenue_by_country'?" in m for m in errors(app))
    assert not app.exception
    widget(app, "text_area", f":sql:{sid}").input(
        "SELECT country, sum(revenue) AS r FROM revenue_by_country GROUP BY 1").run()
    assert not errors(app)
    assert any(s.value.startswith("Valid: 2 columns") for s in app.success)


def test_preview_uses_cached_upstream_results(app: AppTest):
    open_example(app)
    app.button(key="dy_preview_btn").click().run()
    assert not errors(app)
    assert any(m.value.startswith("**180 rows**, 4 columns") for m in app.markdown)
    pv = app.session_state["dy_previewer"]
    assert set(pv.computed) >= {"orders", "paid_orders", "order_lines", "revenue_by_country"}
    # Edit the last step: only it is computed again.
    app.button(key="dy_add_filter").click().run()
    param_widget(app, "text_area", "filter_1", "where").input("revenue > 1000").run()
    before = len(pv.computed)
    app.button(key="dy_preview_btn").click().run()
    assert pv.computed[before:] == ["filter_1"]
    assert any("rows**" in m.value for m in app.markdown)
    assert any(c.value.startswith("✓ previewed (cached)") for c in app.caption)
    assert set(pv.cached_nodes(plan(pipeline(app)))) >= {"revenue_by_country", "filter_1"}


def test_delete_used_step_says_which(app: AppTest):
    open_example(app)
    app.selectbox(key="dy_selected").select("order_lines").run()
    widget(app, "button", ":del:order_lines").click().run()
    assert any("step 'revenue_by_country' reads it" in e for e in errors(app))
    assert "order_lines" in pipeline(app).step_ids()


def test_rename_updates_dependents(app: AppTest):
    open_example(app)
    app.selectbox(key="dy_selected").select("order_lines").run()
    widget(app, "text_input", ":rename:order_lines").input("lines").run()
    widget(app, "button", ":rename_btn:order_lines").click().run()
    p = pipeline(app)
    assert "FROM lines o" in p.step("revenue_by_country").sql
    assert app.selectbox(key="dy_selected").value == "lines"
    assert not errors(app)


def test_new_pipeline_save_and_reload(app: AppTest, pipelines_dir: Path):
    app.text_input(key="dy_new_name").input("paid").run()
    app.button(key="dy_new_btn").click().run()
    assert pipeline(app).steps == [] and app.title[0].value == "paid"
    app.selectbox(key="dy_src_file").select("data/orders.parquet").run()
    app.button(key="dy_src_add_file").click().run()
    assert pipeline(app).sources["orders"].path == "data/orders.parquet"
    app.button(key="dy_add_filter").click().run()
    param_widget(app, "text_area", "filter_1", "where").input("status = 'paid'").run()
    widget(app, "radio", ":out_kind:filter_1").set_value("file").run()
    assert pipeline(app).outputs["filter_1"].path == "../out/paid/filter_1.parquet"
    # A name escaping the folder is refused and nothing is written.
    app.text_input(key="dy_save_name").input("../evil").run()
    app.button(key="dy_save_btn").click().run()
    assert any("not a valid pipeline name" in e for e in errors(app))
    assert not (pipelines_dir.parent / "evil.yaml").exists()
    app.text_input(key="dy_save_name").input("paid").run()
    app.button(key="dy_save_btn").click().run()
    saved = pipelines_dir / "paid.yaml"
    assert saved.exists() and not errors(app)
    assert any("✓ saved" in c.value for c in app.caption)
    # The file is exactly what the CLI reads.
    from_disk = load(saved)
    assert from_disk == pipeline(app)
    assert saved.read_text() == dump(from_disk) == dump(pipeline(app))
    assert any("dockyard run" in c.value for c in app.code)
    # Reopen it from the list: same model, nothing unsaved.
    app.selectbox(key="dy_open_choice").select("paid").run()
    app.button(key="dy_open_btn").click().run()
    assert pipeline(app) == from_disk
    assert any("✓ saved" in c.value for c in app.caption)


def test_saving_over_another_pipeline_needs_confirmation(app: AppTest, pipelines_dir: Path):
    open_example(app)
    before = (pipelines_dir / "daily_revenue.yaml").read_text()
    app.text_input(key="dy_new_name").input("other").run()
    app.button(key="dy_new_btn").click().run()
    app.text_input(key="dy_save_name").input("daily_revenue").run()
    app.button(key="dy_save_btn").click().run()
    assert any("already exists" in e for e in errors(app))
    assert (pipelines_dir / "daily_revenue.yaml").read_text() == before


def test_save_refuses_to_overwrite_a_file_changed_on_disk(app: AppTest, pipelines_dir: Path):
    open_example(app)
    path = pipelines_dir / "daily_revenue.yaml"
    # Someone else (another tab, a git pull) changes the file after we opened it.
    theirs = path.read_text().replace("Paid revenue", "Their revenue")
    path.write_text(theirs)
    pipeline(app).description = "Our revenue"
    app.button(key="dy_save_btn").click().run()
    assert any("changed on disk since it was opened" in e for e in errors(app))
    assert path.read_text() == theirs  # nothing lost
    # Confirming replaces it with our version.
    app.checkbox(key="dy_overwrite").check().run()
    app.button(key="dy_save_btn").click().run()
    assert not errors(app)
    assert load(path).description == "Our revenue"
    # Our own saves in a row are not conflicts.
    pipeline(app).description = "Ours again"
    app.button(key="dy_save_btn").click().run()
    assert not errors(app) and load(path).description == "Ours again"


def test_run_from_the_app(app: AppTest, pipelines_dir: Path):
    open_example(app)
    app.button(key="dy_run_btn").click().run()
    assert not errors(app), errors(app)
    assert any(s.value.startswith("Run finished") for s in app.success)
    assert (pipelines_dir.parent / "out" / "revenue_by_country.parquet").exists()
    codes = [c.value for c in app.code]
    assert any(c.startswith("dockyard run ") and c.endswith("daily_revenue.yaml") for c in codes)
    # the line shown is the one tests/test_schedule.py runs with sh -c
    assert schedule(pipelines_dir / "daily_revenue.yaml").cron in codes


def test_unloadable_pipeline_is_one_line_error(app: AppTest, pipelines_dir: Path):
    (pipelines_dir / "broken.yaml").write_text("version: 1\nname: x\nsteps: [\n")
    app.run()
    app.button(key="dy_open_broken").click().run()
    assert not app.exception
    assert any("invalid YAML" in e for e in errors(app))


def test_sample_mode_preview_is_marked_approximate_and_profiled(app: AppTest):
    open_example(app)
    app.toggle(key="dy_sample").set_value(True).run()
    app.number_input(key="dy_sample_rows").set_value(500).run()
    app.button(key="dy_preview_btn").click().run()
    assert not errors(app)
    assert any("(approximate: sample mode)" in m.value for m in app.markdown)
    assert app.selectbox(key="dy_hist_col").options == ["country", "day", "orders", "revenue"]
    assert not app.exception


def test_catalog_page_browses_tables_and_starts_a_pipeline(tmp_path: Path, monkeypatch):
    import shutil

    from tests.ui.conftest import ROOT, TIMEOUT

    project = tmp_path / "proj"
    shutil.copytree(ROOT / "catalog", project / "catalog")
    shutil.copytree(ROOT / "saved_pipelines" / "data", project / "saved_pipelines" / "data")
    for name in ("sessions_staging", "user_activity"):
        shutil.copy(ROOT / "saved_pipelines" / f"{name}.yaml", project / "saved_pipelines")
    monkeypatch.setenv("DOCKYARD_PIPELINES_DIR", str(project / "saved_pipelines"))
    monkeypatch.delenv("DOCKYARD_WAREHOUSE", raising=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    # First start published the staging table the user_activity example reads.
    assert (project / "warehouse" / "staging" / "sessions.parquet").exists()
    at.radio(key="dy_page").set_value("Catalog").run()
    assert not at.exception and not errors(at)
    names = at.dataframe[0].value["name"].tolist()
    assert names == ["clicks", "orders", "users", "sessions", "user_activity"]
    at.text_input(key="dy_cat_search").set_value("email").run()
    assert at.dataframe[0].value["name"].tolist() == ["users", "user_activity"]
    at.selectbox(key="dy_cat_pick").set_value("catalog:users").run()
    assert not errors(at)
    schema = at.dataframe[1].value
    assert schema.set_index("column").loc["email", "doc"].startswith("Contact address")
    assert any("masked email (hash)" in m.value for m in at.markdown)
    sample = at.dataframe[2].value
    assert len(sample) == 20 and sample["email"].str.len().eq(64).all()  # hashed on read
    at.button(key="dy_cat_new").click().run()
    assert not at.exception
    p = pipeline(at)
    assert p.name == "from_users" and p.sources["users"].catalog == "users"
    # The sidebar adds another catalog table to the new pipeline.
    assert not errors(at) and at.session_state["dy_page"] == "Builder"  # the editor opens
    at.radio(key="dy_src_how").set_value("Catalog").run()
    tables = at.selectbox(key="dy_src_table")
    assert "catalog:orders" in tables.options and "staging:sessions" in tables.options
    tables.set_value("catalog:orders").run()
    at.button(key="dy_src_add_table").click().run()
    assert not at.exception and not errors(at)
    assert pipeline(at).sources["orders"].catalog == "orders"
