"""Where a pipeline's project keeps its catalog, warehouse and pipelines.

A project is the nearest folder, from the pipeline file upwards, that holds a ``catalog/``
folder or a ``dockyard.yaml`` file; without either, the parent of the pipeline's folder (so
``saved_pipelines/x.yaml`` belongs to the repository root). The warehouse (staging tables and
runtime facts) defaults to ``<project>/warehouse/``; ``warehouse:`` in ``dockyard.yaml`` or the
``DOCKYARD_WAREHOUSE`` environment variable moves it (a folder path).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ConfigError

PROJECT_FILE = "dockyard.yaml"
WAREHOUSE_ENV = "DOCKYARD_WAREHOUSE"


@dataclass(frozen=True)
class Project:
    root: Path
    warehouse: Path
    pipelines: Path | None = None  # the folder of the pipeline it was found from


    @property
    def catalog_dir(self) -> Path:
        return self.root / "catalog"

    @property
    def pipelines_dir(self) -> Path:
        """Where saved pipelines live: the pipeline's own folder, else saved_pipelines/."""
        return self.pipelines or self.root / "saved_pipelines"

    @property
    def staging_dir(self) -> Path:
        return self.warehouse / "staging"

    def staging_table(self, name: str) -> Path:
        """The Parquet file of staging table ``name``."""
        return self.staging_dir / f"{name}.parquet"

    @property
    def database(self) -> Path:
        """The DuckDB file holding run history and the staging-table registry."""
        return self.warehouse / "dockyard.duckdb"


def find_project(start: Path | None) -> Project:
    """The project of a pipeline file (or of the working directory)."""
    here = (start.parent if start and start.suffix else start) or Path.cwd()
    here = here.resolve()
    root = None
    for folder in [here, *here.parents]:
        if (folder / "catalog").is_dir() or (folder / PROJECT_FILE).is_file():
            root = folder
            break
    if root is None:
        root = here.parent if here.name == "saved_pipelines" else here
    pipelines = here if here != root else None
    return Project(root=root, warehouse=_warehouse(root), pipelines=pipelines)


def _warehouse(root: Path) -> Path:
    env = os.environ.get(WAREHOUSE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    cfg = root / PROJECT_FILE
    if cfg.is_file():
        # Imported only here: YAML loads in ~30 ms, which a cached 'dockyard run' (no project
        # file, no pipeline parsing) would otherwise pay at start-up.
        from builder.pipeline.yamlio import loads, read_text_file

        data = loads(read_text_file(cfg, "project file"), file=str(cfg)) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{cfg}: expected a mapping with 'warehouse:'.")
        unknown = [k for k in data if k != "warehouse"]
        if unknown:
            raise ConfigError(f"{cfg}: unknown key '{unknown[0]}'. Valid keys: warehouse.")
        if data.get("warehouse"):
            return (root / str(data["warehouse"])).resolve()
    return root / "warehouse"
