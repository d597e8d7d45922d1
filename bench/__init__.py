"""Dockyard's benchmark: ``python -m bench run`` (see the README's "Benchmark" section).

Layout: :mod:`bench.data` makes the data, :mod:`bench.harness` runs each pipeline variant as its
own process (:mod:`bench.floor` for the hand-written DuckDB SQL, :mod:`bench.pandas_impl`,
:mod:`bench.dbt_project`, and ``dockyard run``), :mod:`bench.interactive` times previews and
planning, :mod:`bench.report` checks the targets and writes ``BENCHMARKS.md``.
"""
