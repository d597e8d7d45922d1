"""DuckDB's function-resolution errors become one line with a suggestion, never its list of
every overload (~50 lines for '+')."""

from __future__ import annotations

import duckdb
import pytest

from builder.errors import engine_message, function_error

CASES = [
    ("SELECT lenght(s) FROM t", "function 'lenght' does not exist. Did you mean 'length'?"),
    ("SELECT * FROM read_csvx('x.csv')",
     "table function 'read_csvx' does not exist. Did you mean 'read_csv'?"),
    ("SELECT ts - 1 FROM t", "operator '-' does not take (TIMESTAMP, INTEGER). It takes "
     "(TIMESTAMP, TIMESTAMP), (TIMESTAMP, INTERVAL), (INTEGER, INTEGER). Add or subtract an "
     "INTERVAL, e.g. ts + INTERVAL 1 DAY."),
    ("SELECT sum(s) FROM t", "function 'sum' does not take (VARCHAR). It takes (DECIMAL), "
     "(BOOLEAN), (INTEGER). Cast argument 1, e.g. CAST(x AS DOUBLE)."),
    ("SELECT date_diff('day', ts, 1) FROM t", "function 'date_diff' does not take (VARCHAR, "
     "TIMESTAMP, INTEGER). It takes (VARCHAR, TIMESTAMP, TIMESTAMP), (VARCHAR, DATE, DATE), "
     "(VARCHAR, TIME, TIME). Cast argument 3, e.g. CAST(x AS TIMESTAMP)."),
    ("SELECT substr(s) FROM t", "function 'substr' does not take 1 argument (VARCHAR). It "
     "takes (VARCHAR, BIGINT, BIGINT), (VARCHAR, BIGINT)."),
    ("SELECT d + i FROM t WHERE s = 1", None),  # a conversion error: not about functions
]


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("CREATE TABLE t (ts TIMESTAMP, s VARCHAR, i INTEGER, d DECIMAL(18, 3))")
    c.execute("INSERT INTO t VALUES ('2024-01-01', 'a', 1, 1.5)")
    yield c
    c.close()


@pytest.mark.parametrize(("sql", "expected"), CASES)
def test_function_errors_are_one_line_with_a_suggestion(con, sql, expected):
    with pytest.raises(duckdb.Error) as e:
        con.sql(sql).fetchall()
    fn = function_error(str(e.value))
    if expected is None:
        assert fn is None
        return
    assert fn is not None and fn.message == expected
    assert engine_message(e.value) == expected
