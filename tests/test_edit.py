"""Model edits the app offers: add, rename (with every reference), reorder, delete, save names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.errors import ConfigError
from builder.pipeline import edit, model
from builder.pipeline.model import dump, load, loads_pipeline
from builder.plan import wiring
from builder.plan.compiler import plan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "saved_pipelines" / "daily_revenue.yaml"


@pytest.fixture
def example(tmp_path: Path):
    """The shipped example, copied with its data so edits and saves stay in tmp_path."""
    shutil.copytree(ROOT / "saved_pipelines" / "data", tmp_path / "data")
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)
    return load(tmp_path / EXAMPLE.name)


def test_rename_step_updates_inputs_sql_and_outputs(example):
    edit.rename_node(example, "order_lines", "lines")
    assert example.step_ids() == ["paid_orders", "lines", "revenue_by_country"]
    sql = example.step("revenue_by_country").sql
    assert "FROM lines o" in sql and "order_lines" not in sql
    # Formatting of the rest of the SQL is the user's: untouched.
    assert sql.replace("FROM lines o", "FROM order_lines o") == load(EXAMPLE).steps[2].sql
    edit.rename_node(example, "revenue_by_country", "revenue")
    assert list(example.outputs) == ["revenue"] and example.outputs["revenue"].step == "revenue"
    assert not plan(example).errors


def test_rename_source_keeps_order_and_updates_pattern_inputs(example):
    edit.rename_node(example, "orders", "all_orders")
    assert list(example.sources) == ["all_orders", "users"]
    assert example.sources["all_orders"].id == "all_orders"
    assert example.step("paid_orders").inputs == ["all_orders"]
    assert not plan(example).errors


def test_rename_round_trips_through_yaml(example):
    edit.rename_node(example, "users", "customers")
    again = loads_pipeline(dump(example), path=example.path)
    assert again == example


def test_rename_refuses_bad_or_taken_ids(example):
    with pytest.raises(ConfigError, match="already used"):
        edit.rename_node(example, "order_lines", "users")
    with pytest.raises(ConfigError, match="not a valid id"):
        edit.rename_node(example, "order_lines", "1lines")


def test_rename_table_in_sql_keeps_quotes_params_and_columns():
    sql = 'SELECT a.x, "a".y, a FROM "a" WHERE d >= {{ min_day }} -- a note\n'
    out = edit.rename_table_in_sql(sql, "a", "b")
    assert out == 'SELECT b.x, "b".y, a FROM "b" WHERE d >= {{ min_day }} -- a note\n'
    # A CTE of the same name shadows the node: nothing to rename.
    cte = "WITH a AS (SELECT 1) SELECT * FROM a"
    assert edit.rename_table_in_sql(cte, "a", "b") == cte
    # Unparseable SQL is left alone (validation reports it).
    assert edit.rename_table_in_sql("SELEC * FROM a", "a", "b") == "SELEC * FROM a"


def test_delete_used_node_names_its_users(example):
    with pytest.raises(ConfigError) as e:
        edit.delete_node(example, "order_lines")
    assert "step 'revenue_by_country' reads it" in str(e.value)
    with pytest.raises(ConfigError, match="'paid_orders'"):
        edit.delete_node(example, "orders")
    edit.delete_node(example, "revenue_by_country")
    assert "revenue_by_country" not in example.outputs
    edit.delete_node(example, "order_lines")
    assert example.step_ids() == ["paid_orders"]


def test_move_step_and_input_candidates(example):
    edit.move_step(example, "revenue_by_country", -5)
    assert example.step_ids()[0] == "revenue_by_country"
    edit.move_step(example, "revenue_by_country", 1)
    assert example.step_ids()[1] == "revenue_by_country"
    assert not plan(example).errors  # file order is cosmetic: the graph decides run order
    assert edit.input_candidates(example, "paid_orders") == ["orders", "users"]
    assert "revenue_by_country" not in edit.input_candidates(example, "order_lines")


def test_add_steps_and_outputs(example):
    st = edit.add_pattern_step(example, "filter", ["revenue_by_country"],
                               params={"where": "revenue > 10"})
    assert st.id == "filter_1"
    assert edit.add_pattern_step(example, "filter", ["filter_1"]).id == "filter_2"
    sql = edit.add_sql_step(example, edit.default_sql("filter_1"))
    assert sql.id == "sql_1" and edit.reads(example, sql) == ["filter_1"]
    edit.set_output(example, sql.id, "../out/x.parquet")
    assert example.outputs[sql.id].path == "../out/x.parquet"
    edit.set_output(example, sql.id, "")
    assert sql.id not in example.outputs
    with pytest.raises(ConfigError, match="format"):
        edit.set_output(example, sql.id, "out/x.xlsx")
    with pytest.raises(ConfigError, match="not a source or step"):
        edit.add_pattern_step(example, "filter", ["nope"])


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "a.b", "x" * 81, "/etc/x"])
def test_pipeline_file_refuses_escaping_names(tmp_path, name):
    with pytest.raises(ConfigError):
        edit.pipeline_file(tmp_path, name)


def test_pipeline_file_and_new_pipeline(tmp_path):
    assert edit.pipeline_file(tmp_path, "daily-2.yaml") == tmp_path / "daily-2.yaml"
    p = edit.new_pipeline("mine", tmp_path)
    assert p.path == tmp_path / "mine.yaml" and p.base_dir == tmp_path
    edit.add_source(p, "orders", "data/orders.parquet")
    assert dump(p).startswith("version: 1\nname: mine\nsources:")
    copy = edit.duplicate(p, "mine_copy", tmp_path)
    assert copy.name == "mine_copy" and p.name == "mine" and copy.sources == p.sources


def test_outputs_switch_between_file_and_staging_table(example):
    p = example
    step = p.steps[-1].id
    edit.set_staging_output(p, step, "daily_table")
    edit.update_output(p, step, mode="merge", primary_key=["country", "day"], history="scd2",
                       owner="team@example.com", columns={"day": "The day."})
    out = p.outputs[step]
    assert (out.staging, out.path, out.mode, out.history) == ("daily_table", None, "merge", "scd2")
    with pytest.raises(ConfigError, match="mode 'upsert' is not supported. Valid values: "
                       "replace, append, merge"):
        edit.update_output(p, step, mode="upsert")
    # Back to a file: the table settings go, the documentation stays; the file loads again.
    edit.set_output(p, step, edit.default_output_path(p, step))
    out = p.outputs[step]
    assert (out.staging, out.mode, out.primary_key, out.history) == (None, "replace", [], None)
    assert out.path == f"../out/{p.name}/{step}.parquet" and out.owner == "team@example.com"
    with pytest.raises(ConfigError, match="'history' is for staging tables"):
        edit.update_output(p, step, history="scd2")
    assert loads_pipeline(dump(p)).outputs[step] == out


def test_params_are_typed_and_guarded(example):
    p = example
    assert edit.param_value("2024-02-01").isoformat() == "2024-02-01"
    with pytest.raises(ConfigError, match="a param value must be a single value"):
        edit.param_value("[1, 2]", "days")
    users = edit.param_users(p, "min_day")
    assert users, "the example uses {{ min_day }}"
    with pytest.raises(ConfigError, match=f"cannot delete param 'min_day': '{users[0]}'"):
        edit.delete_param(p, "min_day")
    with pytest.raises(ConfigError, match="cannot rename param 'min_day'"):
        edit.set_param(p, "start_day", p.params["min_day"], old="min_day")
    edit.set_param(p, "salt", {"env": "DOCKYARD_SALT"})
    edit.set_param(p, "pepper", "x", old="salt")
    assert p.params["pepper"] == "x" and "salt" not in p.params
    edit.delete_param(p, "pepper")
    assert "pepper" not in p.params


COMMENTED = """\
# Revenue for the finance dashboard. Owner: finance@example.com
version: 1
name: commented
params:
  min_day: 2024-01-01  # the first day with clean data
sources:
  # one file per day, written by the shop at midnight
  orders: {path: data/orders.parquet}
  users: {path: data/users.csv}
steps:
  # paid orders only: refunds are in another table
  - id: paid_orders
    pattern: filter
    inputs: [orders]
    params: {where: "status = 'paid'"}  # ask finance before changing
  - id: per_user
    sql: |
      SELECT user_id, sum(amount) AS total  -- SQL comments are text, kept anyway
      FROM paid_orders
      GROUP BY ALL
outputs:
  per_user: {path: ../out/per_user.parquet}  # the dashboard reads this file
"""


def _comments(text: str) -> list[str]:
    return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


def test_saving_an_edited_pipeline_keeps_the_files_comments(tmp_path):
    path = tmp_path / "commented.yaml"
    path.write_text(COMMENTED)
    p = load(path)
    edit.rename_node(p, "paid_orders", "paid")
    edit.add_sql_step(p, "SELECT count(*) AS n FROM per_user", "counted")
    p.params["min_day"] = "2024-02-01"
    model.save(p)
    text = path.read_text()
    assert _comments(text) == _comments(COMMENTED)
    # The file holds exactly the edited pipeline, and a save without changes changes nothing.
    assert dump(load(path)) == dump(p)
    assert load(path).step("per_user").sql.startswith("SELECT user_id, sum(amount)")
    model.save(load(path))
    assert path.read_text() == text


def test_deleted_node_takes_its_comments_with_it(tmp_path):
    path = tmp_path / "commented.yaml"
    path.write_text(COMMENTED)
    p = load(path)
    del p.outputs["per_user"]
    model.save(p)
    assert "# the dashboard reads this file" not in path.read_text()
    assert _comments(path.read_text()) == _comments(COMMENTED)[:-1]


@pytest.mark.parametrize("previous", [
    # refused by the bounded loader: ruamel never reads it, the canonical text is written
    "# c\na: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(5)),
    "# c\nversion: !!python/object/apply:os.system ['true']\n",
    # one node, two places (an alias): keeping it would change the other place as well
    "# c\nversion: 1\nname: x\nparams: &p {a: 1}\nsources:\n  s: {path: a.csv, options: *p}\n",
])
def test_comments_are_kept_only_from_a_file_the_loader_accepts_and_never_change_data(previous):
    from builder.pipeline.roundtrip import keep_comments

    p = loads_pipeline("version: 1\nname: x\nparams: {a: 2}\nsources:\n  s: {path: a.csv, "
                       "options: {a: 1}}\n")
    canonical = dump(p)
    merged = keep_comments(previous, canonical)
    assert loads_pipeline(merged) == p
    if "python/object" in previous or "&b" in previous:
        assert merged == canonical
def test_add_input_checks_arity_cycles_and_sql_steps(example):
    """Edges drawn on the canvas: accepted while the pattern has room, refused in one line."""
    u = edit.add_pattern_step(example, "union", ["orders"])
    wiring.add_input(example, u.id, "paid_orders")
    assert u.inputs == ["orders", "paid_orders"]
    assert dump(example).count("inputs: [orders, paid_orders]") == 1
    with pytest.raises(ConfigError, match=r"^step 'order_lines' \(select\) takes 1 input and "
                       r"already reads 'paid_orders': remove an input first\.$"):
        wiring.add_input(example, "order_lines", "users")
    with pytest.raises(ConfigError, match="already reads 'orders'"):
        wiring.add_input(example, u.id, "orders")
    with pytest.raises(ConfigError, match="cycle"):
        wiring.add_input(example, "paid_orders", u.id)
    with pytest.raises(ConfigError, match="SQL step: .* Write 'users' in its FROM or JOIN"):
        wiring.add_input(example, "revenue_by_country", "users")
    with pytest.raises(ConfigError, match="'users' is a source"):
        wiring.add_input(example, "users", "orders")
    with pytest.raises(ConfigError, match="not a source or step"):
        wiring.add_input(example, u.id, "nope")
    assert u.inputs == ["orders", "paid_orders"] and \
        example.step("order_lines").inputs == ["paid_orders"]


def test_remove_input(example):
    u = edit.add_pattern_step(example, "union", ["orders", "paid_orders"])
    wiring.remove_input(example, u.id, "orders")
    assert u.inputs == ["paid_orders"]
    with pytest.raises(ConfigError, match="does not read 'orders'"):
        wiring.remove_input(example, u.id, "orders")
    with pytest.raises(ConfigError, match="Remove 'users' from its SQL"):
        wiring.remove_input(example, "revenue_by_country", "users")
