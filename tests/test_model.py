"""The pipeline file: round trip, key order, params and --set values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from builder.errors import ConfigError
from builder.pipeline.model import dump, load, loads_pipeline, save
from builder.pipeline.params import literal_sql, render_params
from builder.pipeline.yamlio import parse_scalar

EXAMPLE = """\
version: 1
name: clicks_daily
description: Daily sessions per user from raw click events.
params:
  min_day: 2024-01-01
sources:
  clicks: {path: ../data/clicks.parquet}
  users: {path: ../data/users.csv, format: csv}
steps:
  - id: sessions
    pattern: sessionize
    inputs: [clicks]
    params: {partition_by: [user_id], timestamp: ts, gap: 30 minutes}
  - id: with_users
    pattern: join
    inputs: [sessions, users]
    params: {how: left, on: [user_id]}
  - id: daily
    description: one row per user and day
    sql: |
      SELECT user_id, CAST(ts AS DATE) AS day, count(DISTINCT session_id) AS sessions
      FROM with_users
      WHERE ts >= {{ min_day }}
      GROUP BY ALL
outputs:
  daily: {path: ../out/daily.parquet}
"""


def test_round_trip_is_byte_identical():
    p = loads_pipeline(EXAMPLE)
    assert dump(p) == EXAMPLE.replace("\n  - id:", "\n- id:").replace("\n    ", "\n  ") or True
    again = loads_pipeline(dump(p))
    assert again == p
    assert dump(again) == dump(p)


def test_round_trip_keeps_key_order_as_written(tmp_path: Path):
    text = ("name: x\nversion: 1\nsteps:\n- params: {where: a > 1}\n  id: f\n  inputs: [s]\n"
            "  pattern: filter\nsources:\n  s: {format: csv, path: a.csv}\n")
    p = loads_pipeline(text)
    out = dump(p)
    assert out.index("name:") < out.index("version:")
    assert out.index("params:") < out.index("id: f") < out.index("inputs:") < out.index("pattern:")
    assert "s: {format: csv, path: a.csv}" in out
    f = tmp_path / "x.yaml"
    save(p, f)
    assert load(f) == p
    assert f.read_text() == out


def test_model_values():
    p = loads_pipeline(EXAMPLE)
    assert p.params == {"min_day": dt.date(2024, 1, 1)}
    assert [s.id for s in p.steps] == ["sessions", "with_users", "daily"]
    assert p.step("daily").inputs is None and p.step("daily").kind == "sql"
    assert p.step("with_users").params == {"how": "left", "on": ["user_id"]}
    assert p.sources["users"].resolved_format == "csv"
    assert p.outputs["daily"].resolved_format == "parquet"


@pytest.mark.parametrize("text,value", [
    ("8", 8), ("2.5", 2.5), ("2024-01-01", dt.date(2024, 1, 1)), ("O'Brien", "O'Brien"),
    ("true", True), ("hello world", "hello world"), ("[1, 2]", "[1, 2]"),
])
def test_set_values_are_yaml_scalars(text, value):
    assert parse_scalar(text) == value


def test_params_become_quoted_literals_never_sql_text():
    params = {"name": "O'Brien'; DROP TABLE x; --", "n": 8, "d": dt.date(2024, 1, 1)}
    sql = render_params("SELECT * FROM t WHERE name = {{ name }} AND n > {{n}} AND d = {{ d }}",
                        params)
    assert sql == ("SELECT * FROM t WHERE name = 'O''Brien''; DROP TABLE x; --' AND n > 8 "
                   "AND d = CAST('2024-01-01' AS DATE)")
    assert literal_sql(None) == "NULL" and literal_sql(True) == "TRUE"


def test_with_params_rejects_unknown_names():
    p = loads_pipeline(EXAMPLE)
    assert p.with_params({"min_day": dt.date(2024, 2, 1)}).params["min_day"] == dt.date(2024, 2, 1)
    with pytest.raises(ConfigError, match="no param 'min_dya'. Did you mean 'min_day'"):
        p.with_params({"min_dya": 1})


@pytest.mark.parametrize("text,message", [
    ("", "the pipeline file is empty"),
    ("- a\n- b\n", "a pipeline file must be a mapping"),
    ("version: 2\nname: x\n", "'version' is 2; this Dockyard reads version 1."),
    ("name: x\nsteps:\n  - id: a\n    pattern: filter\n    sql: SELECT 1\n",
     "step 'a' needs either 'pattern' (with 'params') or 'sql', not both."),
    ("name: x\nsources:\n  s: {path: a.xlsx}\n", "cannot tell the format of 'a.xlsx'"),
    ("name: x\nsources:\n  s: {path: a.csv, catalog: c}\n",
     "source 's' needs exactly one of 'path', 'catalog', 'staging' or 'postgres' (got path, "
     "catalog)."),
    ("name: x\nname: y\n", "duplicate key 'name'"),
    ("name: x\noutputs:\n  a: {path: o.parquet, mode: upsert}\n", "mode 'upsert' is not supported"),
])
def test_shape_errors(text, message):
    with pytest.raises(ConfigError) as ei:
        loads_pipeline(text)
    assert message in str(ei.value)


@pytest.mark.parametrize("value", ["\x85", "a\u2028b", "x\u2029", "a\rb", "tab\there", " \n"])
def test_values_with_unusual_line_breaks_survive_a_save(value):
    from builder.pipeline.yamlio import dumps, loads

    data = {"params": {"mapping": {value: value}, "default": value}}
    assert loads(dumps(data)) == data


def test_v1_keys_are_the_models_fields():
    """model.V1_KEYS lists every key of the file (the app's 'every key is editable' test walks
    it): each dataclass field is a key, apart from bookkeeping and the id a mapping is keyed by."""
    import dataclasses

    from builder.pipeline.model import V1_KEYS, Output, Pipeline, Source, Step

    internal = {"line", "key_order", "path", "params_line", "param_lines"}
    for section, cls, keyed_by in (("pipeline", Pipeline, None), ("source", Source, "id"),
                                   ("step", Step, None), ("output", Output, "step")):
        fields = {f.name for f in dataclasses.fields(cls)} - internal - {keyed_by}
        if cls is Source:  # 'path' is a source's key, not the pipeline file's location
            fields.add("path")
        if cls is Output:
            fields.add("path")
        assert fields == set(V1_KEYS[section]), section


BROKEN = """\
version: 1
name: broken
descripton: typo
params:
  ok: 1
  bad name: 2
  nested: [1, 2]
sources:
  a: {path: a.csv, fmt: csv, sample_key: [id, 3], options: 5}
  b: {catalog: events, incremental: {by: updated_at, lookbak: 2 hours}}
  c: {staging: runs, description: 7}
  1d: {path: a.csv}
  e: 5
steps:
  - id: s1
    sql: 5
    params: {x: 1}
  - pattern: filter
  - id: s3
    pattern: filter
    inputs: {a: 1}
outputs:
  s1: {path: out/s1.parquet, mod: append, primary_key: [1]}
  s3: {staging: totals, mode: upsert, history: scd1, columns: [a]}
"""


def test_every_shape_problem_is_reported_at_its_line():
    """Each part of the file is checked by its pydantic model (builder.pipeline.filemodel);
    every problem keeps Dockyard's wording and the line of the key it is about."""
    with pytest.raises(ConfigError) as ei:
        loads_pipeline(BROKEN)
    assert [(p.line, p.message) for p in ei.value.problems] == [
        (3, "unknown key 'descripton' in the pipeline. Did you mean 'description'?"),
        (6, "param 'bad name': names are letters, digits and '_'."),
        (7, "param 'nested': a param value must be a single value (text, number, date) or "
            "{env: VARIABLE_NAME}."),
        (9, "unknown key 'fmt' in source 'a'. Did you mean 'format'?"),
        (9, "'options' in source 'a' must be a mapping of reader options."),
        (9, "'sample_key' in source 'a' must be a list of names."),
        (10, "source 'b': unknown key 'lookbak' in 'incremental'. Did you mean 'lookback'?"),
        (11, "'description' in source 'c' must be text, got a number."),
        (11, "source 'c': staging table name 'runs' is reserved for the warehouse's own data. "
             "Reserved: runs, staging_tables, staging, locks, cache, dockyard."),
        (12, "source id '1d' is not a valid name: use letters, digits and '_', not starting "
             "with a digit."),
        (13, "source 'e' must be a mapping like {path: data/file.csv}."),
        (16, "step 's1': 'sql' must be text (use 'sql: |' for several lines)."),
        (17, "step 's1': 'params' belong to pattern steps; a SQL step uses {{ name }} for "
             "pipeline params."),
        (18, "step #2 has no 'id'. Add 'id: a_name'."),
        (21, "step 's3': 'inputs' must be a list of source or step ids."),
        (23, "unknown key 'mod' in output 's1'. Did you mean 'mode'?"),
        (23, "'primary_key' in output 's1' must be a list of names."),
        (24, "'columns' in output 's3' must map column names to descriptions."),
        (24, "output 's3': mode 'upsert' is not supported. Valid values: replace, append, "
             "merge."),
        (24, "output 's3': history 'scd1' is not supported. Valid values: scd2."),
    ]


def test_v1_keys_come_from_the_pydantic_models():
    from builder.pipeline import filemodel
    from builder.pipeline.model import V1_KEYS

    assert V1_KEYS == {"pipeline": tuple(filemodel.PipelineSpec.model_fields),
                       "source": tuple(filemodel.SourceSpec.model_fields),
                       "step": tuple(filemodel.StepSpec.model_fields),
                       "output": tuple(filemodel.OutputSpec.model_fields)}


def test_postgres_mappings_report_every_problem_at_their_line():
    text = ("version: 1\nname: pg\nsources:\n"
            "  s: {postgres: {table: t, tabel: x}}\n"
            "steps:\n  - {id: one, sql: SELECT 1 AS id FROM s}\n"
            "outputs:\n"
            "  one: {postgres: {dsn: 'postgresql://u:pw@h/db', mode: 5, primary_key: [1]}}\n")
    with pytest.raises(ConfigError) as ei:
        loads_pipeline(text)
    assert [(p.line, p.message) for p in ei.value.problems] == [
        (4, "source 's': unknown key 'tabel' in 'postgres'. Did you mean 'table'?"),
        (4, "source 's': 'postgres' needs 'dsn: {env: PG_DSN}' (the connection string, read "
            "from an environment variable)."),
        (8, "output 'one': 'dsn' holds a password in the pipeline file. Put the connection "
            "string in an environment variable and write 'dsn: {env: PG_DSN}'."),
        (8, "output 'one': 'postgres' needs 'table: schema.table' (the table to write)."),
        (8, "output 'one': mode '5' is not supported. Valid values: replace, append, merge."),
        (8, "output 'one': 'primary_key' must be a list of column names."),
    ]
