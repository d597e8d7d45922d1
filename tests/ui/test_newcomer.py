"""Issue 20: building 'dedupe clicks -> sessionize -> join users -> ...' from the palette as a
new user does; each test fails on the app before its fix."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.ui.conftest import errors, open_example, widget


def pipeline(at: AppTest):
    return at.session_state["dy_pipeline"]


def _new(at: AppTest, name: str, files: list[str]) -> None:
    at.text_input(key="dy_new_name").input(name).run()
    at.button(key="dy_new_btn").click().run()
    for f in files:
        at.selectbox(key="dy_src_file").select(f).run()
        at.button(key="dy_src_add_file").click().run()
    assert not at.exception


def test_join_takes_the_selected_step_and_a_source(app: AppTest):
    _new(app, "sessions", ["data/clicks.parquet", "data/users.csv"])
    app.selectbox(key="dy_selected").select("clicks").run()
    app.button(key="dy_add_dedupe").click().run()
    app.button(key="dy_add_sessionize").click().run()
    app.button(key="dy_add_join").click().run()
    assert pipeline(app).step("join_1").inputs == ["sessionize_1", "users"]
    left = widget(app, "selectbox", ":input_left:join_1")
    right = widget(app, "selectbox", ":input_right:join_1")
    assert (left.value, right.value) == ("sessionize_1", "users")
    # The other side offers sources first; what the left side already reads comes last.
    assert right.options == ["users", "clicks", "dedupe_1"]
    right.select("clicks").run()
    assert pipeline(app).step("join_1").inputs == ["sessionize_1", "clicks"]
    assert not any("takes 2 inputs" in e for e in errors(app))


def test_new_outputs_default_to_a_folder_per_pipeline(app: AppTest):
    _new(app, "first", ["data/orders.parquet"])
    app.button(key="dy_add_filter").click().run()
    widget(app, "radio", ":out_kind:filter_1").set_value("file").run()
    assert pipeline(app).outputs["filter_1"].path == "../out/first/filter_1.parquet"


def test_run_summary_shows_streamed_steps_with_their_output_rows(app: AppTest):
    open_example(app)
    app.button(key="dy_run_btn").click().run()
    assert not errors(app), errors(app)
    table = next(d.value for d in app.dataframe if "how" in d.value.columns)
    row = table.set_index("step").loc["revenue_by_country"]
    assert (row["how"], row["rows"]) == ("streamed", "180")
    assert "None" not in table["rows"].astype(str).tolist()
    assert all(r != "" for r, h in zip(table["rows"], table["how"]) if h != "view")


def test_semicolon_csv_with_decimal_commas_reads_right_with_reader_options(
        app: AppTest, pipelines_dir):
    from builder.plan.compiler import plan

    (pipelines_dir / "data" / "payments.csv").write_text(
        "id;name;amount\n1;anna;12,50\n2;bob;3,00\n3;carl;7,25\n4;dora;1000,75\n")
    _new(app, "payments", ["data/payments.csv"])
    widget(app, "text_input", ":src_opt:payments:delim").input(";").run()
    widget(app, "selectbox", ":src_opt:payments:decimal_separator").select(",").run()
    widget(app, "selectbox", ":src_opt:payments:header").select("yes").run()
    assert not errors(app), errors(app)
    p = pipeline(app)
    assert p.sources["payments"].options == {"delim": ";", "decimal_separator": ",",
                                             "header": True}
    cols = [(c.name, c.type) for c in plan(p).schema("payments")]
    assert cols == [("id", "BIGINT"), ("name", "VARCHAR"), ("amount", "DOUBLE")]
    # Column types are reader options too.
    widget(app, "text_area", ":src_opt:payments:types").input("amount: DECIMAL(10,2)").run()
    cols = [(c.name, c.type) for c in plan(pipeline(app)).schema("payments")]
    assert cols[-1] == ("amount", "DECIMAL(10,2)")


def test_params_are_added_edited_and_guarded(app: AppTest):
    open_example(app)
    p = pipeline(app)
    assert widget(app, "text_input", ":param_value:min_day").value == "2024-01-01"
    widget(app, "text_input", ":param_value:min_day").input("2024-01-15").run()
    assert str(p.params["min_day"]) == "2024-01-15"
    app.text_input(key="dy_param_new_name").input("salt").run()
    app.text_input(key="dy_param_new_value").input("{env: DOCKYARD_SALT}").run()
    app.button(key="dy_param_add").click().run()
    assert p.params["salt"] == {"env": "DOCKYARD_SALT"}
    # A param steps use cannot be deleted: the message names them.
    widget(app, "button", ":param_del:min_day").click().run()
    assert any("cannot delete param 'min_day'" in e and "'paid_orders'" in e
               for e in errors(app)), errors(app)
    widget(app, "button", ":param_del:salt").click().run()
    assert "salt" not in pipeline(app).params


def test_widget_labels_do_not_change_with_previews_or_schemas(app: AppTest):
    """The browser sends back the label it showed; a label that changes after a preview (or
    when an input's types change) reset the selection and lost the edit being made (see
    test_browser::test_edit_after_preview_is_kept, which drives a real browser)."""
    open_example(app)
    before = app.selectbox(key="dy_selected").options
    app.button(key="dy_preview_btn").click().run()
    assert app.selectbox(key="dy_selected").options == before == pipeline(app).node_ids()
    app.selectbox(key="dy_selected").select("order_lines").run()
    cols = widget(app, "multiselect", ":param:order_lines:columns")
    assert cols.value == ["order_id", "user_id", "ordered_at", "amount"]
    assert set(cols.options) >= set(cols.value)  # bare names: no type in the label
