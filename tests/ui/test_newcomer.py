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
    widget(app, "checkbox", ":out_on:filter_1").check().run()
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
