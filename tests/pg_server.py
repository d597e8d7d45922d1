"""A throwaway PostgreSQL server for the tests and the benchmark (Debian's ``postgresql``).

``initdb`` in a temp folder and ``postgres`` on a free 127.0.0.1 port, run as the ``postgres``
OS user when this process is root (PostgreSQL refuses to run as root). No package cluster is
needed. Missing binaries raise with what to install: the tests fail, they never skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def pg_bin_dir() -> Path:
    """The folder of ``initdb`` and ``postgres`` (the newest Debian version installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/"
                       "initdb): install them with 'apt-get install -y postgresql' "
                       "(scripts/test.sh does).")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    folder: Path
    port: int
    bin: Path
    process: subprocess.Popen[bytes]
    user: str = "postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}:secret-pw@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: smart shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def start_server() -> PgServer:
    """Start a fresh cluster; call ``.stop()`` when done. The password is 'secret-pw'."""
    bindir = pg_bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="dockyard-pg-"))
    data = folder / "data"
    pwfile = folder / "pw"
    pwfile.write_text("secret-pw\n")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", user,
                                 "--pwfile", str(pwfile), "--auth", "scram-sha-256",
                                 "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True)
    port = _free_port()
    proc = subprocess.Popen(
        _as_postgres([str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                      "-h", "127.0.0.1", "-k", str(folder), "-c", "fsync=off",
                      "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = PgServer(folder, port, bindir, proc, user)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            server.stop()
            raise RuntimeError(f"PostgreSQL exited at start (code {proc.returncode}).")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
            if subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                              capture_output=True).returncode == 0:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("PostgreSQL did not start within 30 s.")
