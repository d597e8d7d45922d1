"""Atomic file writes: a reader sees the old content or the new, never half a file.

Every file Dockyard writes (pipeline saves, exports, docs, catalog files, the run cache,
sample data, outputs) goes through here: the content goes to a temporary file in the target's
folder (same file system, so the rename cannot copy), is flushed and synced to disk, then
``os.replace`` puts it in place (atomic on POSIX and Windows) and the folder is synced so the
rename itself survives a crash. A failure at any point removes the temporary file and leaves
the old one untouched.

Portable: only ``os.fsync`` and ``os.replace`` (no ``fdatasync``, which macOS lacks, and no
``fcntl``); a folder cannot be opened for syncing on Windows, so that step is skipped there.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_bytes", "atomic_text", "replace", "sync_dir", "temp_path", "write_bytes", "write_text"]

TMP_SUFFIX = ".tmp"


def temp_path(target: str | os.PathLike[str]) -> Path:
    """A fresh hidden name beside ``target`` for writing its next content,
    ``.<name>.<pid>-<random>.tmp``: the process id lets a later writer tell a dead writer's
    leftovers from a live one's."""
    final = Path(target)
    return final.parent / f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}"


def sync_dir(folder: str | os.PathLike[str]) -> None:
    """Sync a folder's entries (a rename into it) to disk; a no-op where folders cannot be
    opened (Windows) or synced (some network file systems)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Put the finished file ``tmp`` in place of ``target``: sync ``tmp``, rename it over
    ``target``, sync the folder. For writers that produce the temporary file themselves (DuckDB's
    COPY, Spark's folder of part files); on an error ``tmp`` is left for the caller to remove.

    A folder ``tmp`` has each of its files synced; ``target`` must then be absent or an empty
    folder (no system renames a folder over a full one: move it aside first).
    """
    if os.path.isdir(tmp):
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                _sync_file(os.path.join(root, name))
            sync_dir(root)
    else:
        _sync_file(tmp)
    os.replace(tmp, target)
    sync_dir(Path(target).parent)


def _sync_file(path: str | os.PathLike[str]) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextmanager
def atomic_text(target: str | os.PathLike[str], *, encoding: str = "utf-8",
                newline: str | None = None) -> Iterator[IO[str]]:
    """A text file to write ``target``'s new content into; it replaces ``target`` when the
    ``with`` block ends without an error (see the module's docstring), and is removed otherwise.

    The folder is created if missing. A new file gets the usual permissions (0o666 less the
    umask); a replaced one keeps its own.
    """
    with _atomic(target, "w", encoding, newline) as f:
        yield f


@contextmanager
def atomic_bytes(target: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """As :func:`atomic_text`, for bytes."""
    with _atomic(target, "wb", None, None) as f:
        yield f


@contextmanager
def _atomic(target: str | os.PathLike[str], mode: str, encoding: str | None,
            newline: str | None) -> Iterator[IO[Any]]:
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(final)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        try:
            os.chmod(tmp, os.stat(final).st_mode & 0o7777)
        except OSError:
            pass  # a new file (or one we cannot read): the umask's permissions
        f = os.fdopen(fd, mode, encoding=encoding, newline=newline)
        fd = -1  # closed with f from here on
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    sync_dir(final.parent)


def write_text(target: str | os.PathLike[str], text: str, *, encoding: str = "utf-8",
               newline: str | None = None) -> None:
    """Replace ``target``'s content with ``text`` atomically (see :func:`atomic_text`)."""
    with atomic_text(target, encoding=encoding, newline=newline) as f:
        f.write(text)


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``target``'s content with ``data`` atomically (see :func:`atomic_text`)."""
    with atomic_bytes(target) as f:
        f.write(data)
