"""Run each pipeline variant as its own process; wall time, peak memory, checksums.

Variants of a pipeline: ``dockyard`` (``dockyard run`` on the pipeline file; its plan comes from
the run cache after the warm-up run), ``dockyard_nocache`` (``dockyard run --no-cache``: planned
afresh every time), ``floor`` (the hand-written DuckDB SQL script, :mod:`bench.floor`),
``pandas`` (:mod:`bench.pandas_impl`) and ``dbt`` (dbt-duckdb models, :mod:`bench.dbt_project`,
when a dbt executable is found). Each
writes the same result as a parquet file; the checksum of that file (row count plus a hash of
every row, floats rounded to 4 decimals, dates as timestamps) shows they agree.
"""

from __future__ import annotations

import compileall
import os
import re
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

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PIPELINES = {"a": "pipeline_a.yaml", "b": "pipeline_b.yaml"}
OUTPUT_STEP = {"a": "checked", "b": "priced"}
COLUMNS = {
    "a": ["user_id", "country", "day", "events", "sessions", "events_7d", "sessions_7d"],
    "b": ["order_id", "user_id", "product_id", "ordered_at", "quantity", "amount", "category",
          "unit_price", "list_value"],
}
VARIANTS = ("floor", "dockyard", "dockyard_nocache", "pandas", "dbt")


@dataclass
class Measure:
    """One process: wall seconds, peak RSS (MiB), exit code, the end of its stderr."""

    seconds: float
    peak_mib: float
    returncode: int
    stderr: str = ""
    spill_mib: float | None = None
    work_s: float | None = None  # "done in N s" printed by dockyard run / the floor
    cached: bool = False  # dockyard run took its plan from the run cache


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
    def work_s(self) -> float | None:
        """Median time inside the engine (dockyard) or the script's statements (floor)."""
        good = [r.work_s for r in self.runs if r.returncode == 0 and r.work_s is not None]
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
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
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
        out.seek(0)
        stdout = out.read().decode(errors="replace")
        done = _DONE_RE.findall(stdout)
    return Measure(seconds=seconds, peak_mib=usage.ru_maxrss / 1024, returncode=proc.returncode,
                   stderr=tail if proc.returncode else "",
                   spill_mib=spill[0] / 2**20 if watch_dir is not None else None,
                   work_s=float(done[-1]) if done else None,
                   cached=bool(_CACHED_RE.search(stdout)))


_DONE_RE = re.compile(r"^done in ([0-9.]+)s$", re.M)
_CACHED_RE = re.compile(r"^plan: unchanged since the last run", re.M)


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

def prepare_pipeline(name: str, data: Path) -> Path:
    """Copy pipeline ``name`` next to ``data`` (its source paths are relative); its path."""
    target = data / PIPELINES[name]
    target.write_text((BENCH_DIR / "pipelines" / PIPELINES[name]).read_text())
    return target


# ---- variants ----------------------------------------------------------------------------

def variant_command(pipeline: str, variant: str, data: Path, work: Path,
                    dbt: str | None, memory_limit: str | None = None) -> tuple[list[str], Path]:
    """The command of one variant and the parquet file it writes."""
    out = data / "out" / f"{variant}_{pipeline}.parquet"
    py = sys.executable
    if variant in ("dockyard", "dockyard_nocache"):
        # dockyard: as users run it (the warm-up run stores the plan in the run cache);
        # dockyard_nocache: planning the pipeline afresh in every run.
        yaml_path = data / PIPELINES[pipeline]
        cmd = [py, "-m", "builder.cli", "run", str(yaml_path)]
        if variant == "dockyard_nocache":
            cmd.append("--no-cache")
        if memory_limit:
            cmd += ["--memory-limit", memory_limit]
        return cmd, data / "out" / f"dockyard_{pipeline}.parquet"
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
    return env


def byte_compile() -> None:
    """Compile Dockyard's and the benchmark's modules to bytecode once, as ``pip install``
    does for an installed package. A checkout imported with PYTHONDONTWRITEBYTECODE set (as
    on the test machines) would otherwise compile ~30 modules from source in every process,
    ~0.1 s that no installed copy pays."""
    for folder in ("builder", "patterns", "bench"):
        compileall.compile_dir(str(ROOT / folder), quiet=1, workers=1)


def run_pipelines(data: Path, repeat: int, warmup: bool, dbt: str | None,
                  variants: tuple[str, ...] = VARIANTS, pipelines: tuple[str, ...] = ("a", "b"),
                  log: Callable[[str], None] = print) -> list[VariantResult]:
    """Run every variant of every pipeline ``repeat`` times, interleaved (round-robin)."""
    results: list[VariantResult] = []
    env = _env()
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-") as tmp:
        work = Path(tmp)
        for p in pipelines:
            prepare_pipeline(p, data)
            todo: list[tuple[VariantResult, list[str], Path]] = []
            for v in variants:
                res = VariantResult(p, v)
                results.append(res)
                if v == "dbt" and dbt is None:
                    res.note = "not installed"
                    continue
                cmd, out = variant_command(p, v, data, work, dbt)
                todo.append((res, cmd, out))
            rounds = ([-1] if warmup else []) + list(range(repeat))
            if not warmup:
                # Without a warm-up, one untimed run stores the plan in the run cache, so
                # the timed 'dockyard' runs are the ones users get from the second run on.
                for res, cmd, _out in todo:
                    if res.variant == "dockyard":
                        run_process(cmd, cwd=ROOT, env=env)
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
