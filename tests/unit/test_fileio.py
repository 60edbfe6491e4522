"""Atomic writes keep the old file whole when the write fails half-way."""

from __future__ import annotations

import os

import pytest

from perfsuite.fileio import atomic_write_text


def test_replaces_content(tmp_path):
    path = tmp_path / "deep" / "f.json"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["f.json"]


def test_failed_rename_keeps_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    atomic_write_text(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_file_digest_is_sha256_and_follows_edits(tmp_path):
    import hashlib
    import os

    from perfsuite.fileio import file_digest

    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n")
    assert file_digest(path) == hashlib.sha256(b"a,b\n").hexdigest()
    path.write_bytes(b"a,b,c\n")
    os.utime(path, ns=(1, 2))  # a different mtime, as any real edit has
    assert file_digest(path) == hashlib.sha256(b"a,b,c\n").hexdigest()
