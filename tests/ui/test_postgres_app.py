"""Issue 23: 'Add a source' offers PostgreSQL; an output can be a PostgreSQL table."""

from __future__ import annotations

import pytest

from builder.engines.duckdb import DuckDBEngine
from builder.plan.compiler import plan
from builder.plan.runspec import RunSpec
from tests.ui.conftest import errors, widget

pytestmark = pytest.mark.postgres


def test_add_a_postgres_source_and_write_a_postgres_table(app, pg):
    pg.execute("CREATE TABLE shop.orders (id int PRIMARY KEY, amount numeric(8,2))")
    pg.execute("INSERT INTO shop.orders VALUES (1, 2.50), (2, 4.00)")
    at = app
    at.text_input(key="dy_new_name").input("pg").run()
    at.button(key="dy_new_btn").click().run()
    at.radio(key="dy_src_how").set_value("PostgreSQL").run()
    at.text_input(key="dy_src_pg_table").input("shop.orders").run()
    at.button(key="dy_src_add_pg").click().run()
    assert not at.exception and not errors(at), errors(at)
    p = at.session_state["dy_pipeline"]
    assert p.sources["orders"].postgres == {"dsn": {"env": "PG_DSN"}, "table": "shop.orders"}
    # The inspector edits the table; a name that is not there is reported next to it.
    widget(at, "text_input", ":src_pg:orders:table").input("shop.ordrs").run()
    assert any("table 'shop.ordrs' not found in PostgreSQL. Did you mean 'shop.orders'?" in e
               for e in errors(at)), errors(at)
    widget(at, "text_input", ":src_pg:orders:table").input("shop.orders").run()
    at.button(key="dy_add_sql").click().run()
    widget(at, "text_area", ":sql:sql_1").input("SELECT id, amount * 2 AS doubled FROM orders"
                                                ).run()
    widget(at, "radio", ":out_kind:sql_1").set_value("postgres").run()
    widget(at, "text_input", ":out_pg_table:sql_1").input("shop.doubled").run()
    widget(at, "selectbox", ":out_pg_mode:sql_1").select("merge").run()
    assert any("mode 'merge' needs 'primary_key'" in e for e in errors(at)), errors(at)
    widget(at, "selectbox", ":out_pg_mode:sql_1").select("replace").run()
    widget(at, "multiselect", ":out_pg_pk:sql_1").select("id").run()
    widget(at, "selectbox", ":out_pg_mode:sql_1").select("merge").run()
    assert not at.exception and not errors(at), errors(at)
    p = at.session_state["dy_pipeline"]
    assert p.outputs["sql_1"].postgres == {"dsn": {"env": "PG_DSN"}, "table": "shop.doubled",
                                           "mode": "merge", "primary_key": ["id"]}
    DuckDBEngine().run(RunSpec.from_plan(plan(p)))
    pg.execute("SELECT id, doubled::float8 FROM shop.doubled ORDER BY id")
    assert [tuple(r) for r in pg.fetchall()] == [(1, 5.0), (2, 8.0)]
