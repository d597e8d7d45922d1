"""The commands a scheduler runs for a saved pipeline: a shell command and a cron line.

The cron line is meant to be pasted into ``crontab -e`` as it is, so it must work from cron's
bare environment: it changes to the project root (where relative paths in the command and the
log resolve), creates the log folder itself (``>>`` does not create folders, and a missing one
makes cron drop the run with only a mail nobody reads), and calls ``dockyard`` by absolute path
(cron's PATH is ``/usr/bin:/bin``).
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from builder.pipeline.project import find_project

DAILY = "0 6 * * *"
LOG_DIR = "logs"


@dataclass(frozen=True)
class Schedule:
    root: Path     # the project root, where the command runs
    command: str   # what to type in a shell at the project root
    cron: str      # a whole crontab line
    log: Path      # where the cron line appends the run's output

    @property
    def cron_command(self) -> str:
        """The cron line without its five time fields (what cron hands to ``sh -c``)."""
        return self.cron.split(None, 5)[5]


def schedule(pipeline_file: Path, when: str = DAILY, exe: str | None = None) -> Schedule:
    """The shell command and cron line that run ``pipeline_file`` as ``dockyard run`` does.

    Example: ``schedule(Path("saved_pipelines/daily.yaml")).cron`` is
    ``0 6 * * * cd /srv/proj && mkdir -p logs && /usr/bin/dockyard run
    saved_pipelines/daily.yaml >> logs/daily.log 2>&1``.
    """
    root = find_project(pipeline_file).root
    path = pipeline_file.resolve()
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:  # a pipeline kept outside its project: name it absolutely
        rel = str(path)
    exe = exe or shutil.which("dockyard") or "dockyard"
    log = Path(LOG_DIR) / f"{path.stem}.log"
    command = f"dockyard run {shlex.quote(rel)}"
    cron = (f"{when} cd {shlex.quote(str(root))} && mkdir -p {LOG_DIR} && "
            f"{shlex.quote(exe)} run {shlex.quote(rel)} >> {shlex.quote(log.as_posix())} 2>&1")
    return Schedule(root=root, command=command, cron=cron, log=root / log)
