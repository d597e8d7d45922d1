"""``dockyard run`` with the DuckDB engine's ``pipeline_steps`` option passed explicitly.

``python -m bench.dockyard_pipelined FILE``: load, validate and type the pipeline as the CLI
does, then run it with single-consumer steps as views, so DuckDB runs each chain as one query.
Kept as a control: it is now the CLI default, so it should match ``dockyard run``.
"""

from __future__ import annotations

import sys

from builder.compiler import plan
from builder.engines import get_engine
from builder.model import load


def main() -> None:
    p = plan(load(sys.argv[1]))
    p.raise_for_errors()
    engine = get_engine("duckdb", pipeline_steps=True)
    try:
        result = engine.run(p)
    finally:
        engine.close()
    for o in result.outputs:
        print(f"wrote {o.output}: {o.rows:,} rows -> {o.target}")


if __name__ == "__main__":
    main()
