"""Atomic writes (ganbench.atomic): all or nothing, no temp file left, killed writers' temps removed."""
from __future__ import annotations

import os
import stat
import time

import pytest

from ganbench.atomic import STALE_TEMP_S, atomic_path, atomic_write_text, is_stale_temp, remove_stale_temps


def test_a_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    out = tmp_path / "out.json"
    atomic_write_text(out, "one")
    atomic_write_text(out, "two")
    assert out.read_text() == "two" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path):
    out = tmp_path / "out.json"
    atomic_write_text(out, "old")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_without_overwrite_an_existing_file_is_kept(tmp_path):
    out = tmp_path / "out.json"
    atomic_write_text(out, "first", overwrite=False)
    with pytest.raises(FileExistsError):
        atomic_write_text(out, "second", overwrite=False)
    assert out.read_text() == "first" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_only_temps_of_writers_that_are_gone_are_removed(tmp_path):
    with atomic_path(tmp_path / "out.json") as live:
        assert not is_stale_temp(live)  # this process is writing it
        old = STALE_TEMP_S + 60
        os.utime(live, (time.time() - old, time.time() - old))
        assert is_stale_temp(live)  # abandoned: an hour old
        remove_stale_temps(tmp_path)
        assert not live.exists()
        live.write_text("x")  # the writer goes on
    assert (tmp_path / "out.json").read_text() == "x"
