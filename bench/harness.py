"""Run each pipeline variant as its own process; wall time, peak memory, checksums.

Variants of a pipeline: ``dockyard`` (``dockyard run`` on the pipeline file), ``dockyard_views``
(the same with the engine's ``pipeline_steps`` option, :mod:`bench.dockyard_pipelined`), ``floor`` (the
hand-written DuckDB SQL script, :mod:`bench.floor`), ``pandas`` (:mod:`bench.pandas_impl`) and
``dbt`` (dbt-duckdb models, :mod:`bench.dbt_project`, when a dbt executable is found). Each
writes the same result as a parquet file; the checksum of that file (row count plus a hash of
every row, floats rounded to 4 decimals, dates as timestamps) shows they agree.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from bench import dbt_project
from builder import yamlio

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PIPELINES = {"a": "pipeline_a.yaml", "b": "pipeline_b.yaml"}
OUTPUT_STEP = {"a": "checked", "b": "priced"}
COLUMNS = {
    "a": ["user_id", "country", "day", "events", "sessions", "events_7d", "sessions_7d"],
    "b": ["order_id", "user_id", "product_id", "ordered_at", "quantity", "amount", "category",
          "unit_price", "list_value"],
}
VARIANTS = ("floor", "dockyard", "dockyard_views", "pandas", "dbt")
VARIANT_NOTES = {"dockyard_views": "engine option pipeline_steps=True, which the CLI now uses by default"}


@dataclass
class Measure:
    """One process: wall seconds, peak RSS (MiB), exit code, the end of its stderr."""

    seconds: float
    peak_mib: float
    returncode: int
    stderr: str = ""
    spill_mib: float | None = None


@dataclass
class VariantResult:
    pipeline: str
    variant: str
    runs: list[Measure] = field(default_factory=list)
    rows: int | None = None
    checksum: str | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.returncode == 0 for r in self.runs)

    @property
    def median_s(self) -> float | None:
        good = [r.seconds for r in self.runs if r.returncode == 0]
        return statistics.median(good) if good else None

    @property
    def peak_mib(self) -> float | None:
        good = [r.peak_mib for r in self.runs if r.returncode == 0]
        return statistics.median(good) if good else None

    def to_json(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "variant": self.variant, "ok": self.ok,
                "median_s": self.median_s, "peak_mib": self.peak_mib, "rows": self.rows,
                "checksum": self.checksum, "note": self.note,
                "runs": [vars(r) for r in self.runs]}


def run_process(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
                watch_dir: Callable[[int], Path] | None = None) -> Measure:
    """Run ``cmd``; its wall time and peak RSS (``wait4``: this child and its children).

    ``watch_dir(pid)`` names a folder whose size is polled while the process runs (DuckDB's
    spill folder), reported as ``spill_mib``.
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        spill = [0]
        stop = threading.Event()
        if watch_dir is not None:
            folder = watch_dir(proc.pid)

            def poll() -> None:
                while not stop.wait(0.5):
                    spill[0] = max(spill[0], _dir_bytes(folder))

            threading.Thread(target=poll, daemon=True).start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        stop.set()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-2000:]
    return Measure(seconds=seconds, peak_mib=usage.ru_maxrss / 1024, returncode=proc.returncode,
                   stderr=tail if proc.returncode else "",
                   spill_mib=spill[0] / 2**20 if watch_dir is not None else None)


def _dir_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def checksum(path: Path, columns: list[str]) -> tuple[int, str]:
    """Row count and an order-independent hash of a result file's ``columns``."""
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    rel = f"read_parquet('{path}')"
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                             f"{rel})").fetchall())
    missing = [c for c in columns if c not in types]
    if missing:
        con.close()
        return -1, f"missing columns {missing}"
    parts = []
    for c in columns:
        t = types[c].upper()
        q = '"' + c.replace('"', '""') + '"'
        if t.startswith(("DATE", "TIMESTAMP")):
            e = f"CAST(CAST({q} AS TIMESTAMP) AS VARCHAR)"
        elif t in ("VARCHAR",):
            e = q
        else:  # numbers: integers and doubles compare by value
            e = f"CAST(round(CAST({q} AS DOUBLE), 4) AS VARCHAR)"
        parts.append(f"coalesce({e}, '<null>')")
    row = "concat_ws('|', " + ", ".join(parts) + ")"
    n, h = con.execute(f"SELECT count(*), sum(hash({row}))::HUGEINT % 1000000007 "
                       f"FROM {rel}").fetchone()  # type: ignore[misc]
    con.close()
    return int(n), f"{int(n)}:{int(h or 0)}"


# ---- preparing the Dockyard pipelines ----------------------------------------------------

def _scd2_params() -> dict[str, Any] | None:
    """Params for the scd2 pattern if it is registered, else None (SQL stand-in is used)."""
    from patterns import PATTERNS

    if "scd2" not in PATTERNS:
        return None
    return {"keys": ["product_id"], "tracked": ["name", "category", "price"],
            "snapshot_time": "snapshot_date", "invalidate_hard_deletes": True}


SCD2_SQL = """\
WITH changed AS (
    SELECT *,
           CASE WHEN lag(price) OVER w IS NOT DISTINCT FROM price
                 AND lag(name) OVER w IS NOT DISTINCT FROM name
                 AND lag(category) OVER w IS NOT DISTINCT FROM category
                 AND lag(snapshot_date) OVER w = snapshot_date - 1
                THEN 0 ELSE 1 END AS is_new
    FROM product_snapshots
    WINDOW w AS (PARTITION BY product_id ORDER BY snapshot_date)
), marked AS (
    SELECT *, sum(is_new) OVER (PARTITION BY product_id ORDER BY snapshot_date) AS version
    FROM changed
), runs AS (
    SELECT product_id, version, any_value(name) AS name, any_value(category) AS category,
           any_value(price) AS price, min(snapshot_date) AS valid_from,
           max(snapshot_date) AS last_seen
    FROM marked GROUP BY product_id, version
)
SELECT product_id, name, category, price, valid_from,
       coalesce(lead(valid_from) OVER (PARTITION BY product_id ORDER BY valid_from),
                CASE WHEN last_seen < (SELECT max(snapshot_date) FROM product_snapshots)
                     THEN last_seen + 1 END) AS valid_to
FROM runs
"""


def prepare_pipeline(name: str, data: Path) -> tuple[Path, str]:
    """Copy pipeline ``name`` next to ``data``; returns its path and a note on stand-ins."""
    doc = yamlio.loads((BENCH_DIR / "pipelines" / PIPELINES[name]).read_text())
    note = ""
    if name == "b":
        params = _scd2_params()
        step = next(s for s in doc["steps"] if s["id"] == "versions")
        if params is None:
            for k in ("pattern", "params", "inputs"):
                step.pop(k, None)
            step["sql"] = SCD2_SQL
            note = "scd2 pattern not registered: its step is a SQL step (same logic)"
        else:
            step["params"] = params
    target = data / PIPELINES[name]
    target.write_text(yamlio.dumps(doc))
    return target, note


# ---- variants ----------------------------------------------------------------------------

def variant_command(pipeline: str, variant: str, data: Path, work: Path,
                    dbt: str | None, memory_limit: str | None = None) -> tuple[list[str], Path]:
    """The command of one variant and the parquet file it writes."""
    out = data / "out" / f"{variant}_{pipeline}.parquet"
    py = sys.executable
    if variant == "dockyard":
        yaml_path = data / PIPELINES[pipeline]
        cmd = [py, "-m", "builder.cli", "run", str(yaml_path)]
        if memory_limit:
            cmd += ["--memory-limit", memory_limit]
        return cmd, data / "out" / f"dockyard_{pipeline}.parquet"
    if variant == "dockyard_views":
        return ([py, "-m", "bench.dockyard_pipelined", str(data / PIPELINES[pipeline])],
                data / "out" / f"dockyard_{pipeline}.parquet")
    if variant == "floor":
        cmd = [py, "-m", "bench.floor", str(BENCH_DIR / "sql" / f"pipeline_{pipeline}.sql"),
               str(data), str(out)]
        if memory_limit:
            cmd += ["--memory-limit", memory_limit]
        return cmd, out
    if variant == "pandas":
        return [py, "-m", "bench.pandas_impl", pipeline, str(data), str(out)], out
    if variant == "dbt":
        assert dbt is not None
        project = work / f"dbt_{pipeline}"
        args = dbt_project.make_project(project, pipeline, data, out)
        return [dbt, *args], out
    raise ValueError(variant)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


def run_pipelines(data: Path, repeat: int, warmup: bool, dbt: str | None,
                  variants: tuple[str, ...] = VARIANTS, pipelines: tuple[str, ...] = ("a", "b"),
                  log: Callable[[str], None] = print) -> list[VariantResult]:
    """Run every variant of every pipeline ``repeat`` times, interleaved (round-robin)."""
    results: list[VariantResult] = []
    env = _env()
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-") as tmp:
        work = Path(tmp)
        for p in pipelines:
            _, note = prepare_pipeline(p, data)
            todo: list[tuple[VariantResult, list[str], Path]] = []
            for v in variants:
                res = VariantResult(p, v, note="; ".join(
                    x for x in (note if v.startswith("dockyard") else "",
                                VARIANT_NOTES.get(v, "")) if x))
                results.append(res)
                if v == "dbt" and dbt is None:
                    res.note = "not installed"
                    continue
                cmd, out = variant_command(p, v, data, work, dbt)
                todo.append((res, cmd, out))
            rounds = ([-1] if warmup else []) + list(range(repeat))
            for r in rounds:
                for res, cmd, out in todo:
                    if out.exists():
                        out.unlink()
                    m = run_process(cmd, cwd=ROOT, env=env)
                    label = "warm-up" if r < 0 else f"run {r + 1}/{repeat}"
                    log(f"  {p}/{res.variant:<8} {label}: {m.seconds:7.2f}s "
                        f"{m.peak_mib:7.0f} MiB" + ("" if m.returncode == 0 else
                                                    f"  FAILED ({m.returncode})"))
                    if r >= 0:
                        res.runs.append(m)
                    if m.returncode != 0:
                        log(m.stderr)
                    elif res.checksum is None:
                        res.rows, res.checksum = checksum(out, COLUMNS[p])
    return results


def run_scale(data: Path, memory_limit: str, log: Callable[[str], None] = print
              ) -> list[VariantResult]:
    """Pipeline A once at scale under a DuckDB memory limit: dockyard and the floor."""
    prepare_pipeline("a", data)
    env = _env()
    results = []
    spill_root = Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-") as tmp:
        for v in ("dockyard", "floor"):
            cmd, out = variant_command("a", v, data, Path(tmp), None, memory_limit=memory_limit)
            spill = Path(tmp) / "floor-spill"
            if v == "floor":
                cmd += ["--temp-directory", str(spill)]
            if out.exists():
                out.unlink()
            m = run_process(cmd, cwd=ROOT, env=env, watch_dir=(
                (lambda pid: spill_root / f"dockyard-spill-{pid}") if v == "dockyard"
                else (lambda pid, folder=spill: folder)))
            res = VariantResult("a", v, runs=[m], note=f"memory_limit={memory_limit}")
            if m.returncode == 0:
                res.rows, res.checksum = checksum(out, COLUMNS["a"])
            else:
                log(m.stderr)
            log(f"  scale a/{v}: {m.seconds:.1f}s, peak {m.peak_mib:.0f} MiB, spill "
                f"{m.spill_mib or 0:.0f} MiB, rc {m.returncode}")
            results.append(res)
            shutil.rmtree(spill, ignore_errors=True)
    return results
