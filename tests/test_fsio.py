"""builder.fsio, the one atomic writer: readers see the old content or the new, a failed write
leaves the old file and no temporary file, permissions are kept; and the writers use it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from builder import fsio


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_text_and_bytes_and_creates_the_folder(tmp_path):
    target = tmp_path / "a" / "b" / "f.txt"
    fsio.write_text(target, "one\ntwo ünï\n")
    assert target.read_text(encoding="utf-8") == "one\ntwo ünï\n"
    fsio.write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with fsio.atomic_text(target) as f:
            f.write("half of the new")
            raise RuntimeError("disk on fire")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
    with pytest.raises(UnicodeEncodeError):  # an error inside the helper itself
        fsio.write_text(target, "\udcff")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_a_failed_sync_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    target.write_text("old", encoding="utf-8")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsio.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        fsio.write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_a_replaced_file_keeps_its_permissions_and_a_new_one_gets_the_umasks(tmp_path):
    new = tmp_path / "new.txt"
    fsio.write_text(new, "x")
    assert _mode(new) == 0o666 & ~_umask()
    kept = tmp_path / "kept.txt"
    kept.write_text("x", encoding="utf-8")
    kept.chmod(0o640)
    fsio.write_text(kept, "y")
    assert _mode(kept) == 0o640 and kept.read_text(encoding="utf-8") == "y"


def test_replace_puts_a_written_file_or_folder_in_place(tmp_path):
    target = tmp_path / "out.parquet"
    target.write_bytes(b"old")
    tmp = fsio.temp_path(target)
    assert tmp.parent == tmp_path and tmp.name.startswith(".out.parquet.")
    tmp.write_bytes(b"new")
    fsio.replace(tmp, target)
    assert target.read_bytes() == b"new" and not tmp.exists()
    folder = tmp_path / "parts"
    tmp_dir = fsio.temp_path(folder)
    (tmp_dir / "sub").mkdir(parents=True)
    (tmp_dir / "sub" / "part-0.parquet").write_bytes(b"p")
    fsio.replace(tmp_dir, folder)
    assert (folder / "sub" / "part-0.parquet").read_bytes() == b"p"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "parts"]


def test_saving_a_pipeline_keeps_the_files_permissions(tmp_path):
    """A save used to come back as a 0600 file (a temp file's mode): a pipeline shared with a
    group or a scheduler's user stopped being readable by them."""
    from builder.pipeline.model import load, save

    f = tmp_path / "p.yaml"
    f.write_text("version: 1\nname: perms\nsteps:\n  - id: a\n    sql: SELECT 1 AS x\n",
                 encoding="utf-8")
    f.chmod(0o644)
    save(load(f))
    assert _mode(f) == 0o644
    other = tmp_path / "copy.yaml"
    save(load(f), other)
    assert _mode(other) == 0o666 & ~_umask()
    assert load(other).name == "perms"


def test_a_run_cache_entry_that_cannot_be_written_leaves_no_temp_file(tmp_path, monkeypatch):
    """The run cache's entry goes through the same writer: a failed write leaves nothing."""
    from builder.cli.main import main
    from builder.runner import cache as runcache

    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: rc\nsteps:\n  - id: a\n    sql: SELECT 1 AS x\n"
        "outputs:\n  a: {path: out/a.csv}\n", encoding="utf-8")
    real_replace = os.replace

    def refuse(src: str, dst: str) -> None:
        if str(dst).endswith(".json"):
            raise OSError(30, "Read-only file system")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse)
    assert main(["run", str(tmp_path / "p.yaml")]) == 0
    entry = runcache.entry_path(tmp_path / "p.yaml")
    assert entry.parent.is_dir() and list(entry.parent.iterdir()) == []
    assert (tmp_path / "out" / "a.csv").read_text(encoding="utf-8") == "x\n1\n"
