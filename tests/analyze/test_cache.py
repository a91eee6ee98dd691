"""The trace cache gives what load gives, notices changed files and survives damage."""

from __future__ import annotations

import errno
import json
import os

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from tests.traces import TraceBuilder, write_trace
from tracelens.analyze import cache, load
from tracelens.analyze.cache import CACHE_DIR_NAME, NO_CACHE_ENV, cache_enabled, load_cached
from tracelens.cli import app


def trace_file(tmp_path, n=3):
    b = TraceBuilder()
    for i in range(n):
        b.read("t1", "x", i)
        b.write("t2", "x", i + 1)
    return write_trace(tmp_path / "t.jsonl", b.events)


def test_second_load_comes_from_the_cache(tmp_path):
    """A second load of an unchanged file does not read the file again."""
    path = trace_file(tmp_path)
    load_cached(path, cache_dir=tmp_path / "c")
    calls = []
    load_cached(path, cache_dir=tmp_path / "c", progress=lambda *a: calls.append(a))
    assert calls == []  # not read again


def test_first_and_cached_loads_equal_load(tmp_path):
    """The first load and the cached second load give load's events, and the second its stats."""
    path = trace_file(tmp_path)
    first = load_cached(path, cache_dir=tmp_path / "c")
    second = load_cached(path, cache_dir=tmp_path / "c")
    expected = load(path)
    assert_frame_equal(expected.events.collect(), first.events.collect())
    assert_frame_equal(expected.events.collect(), second.events.collect())
    assert second.stats == expected.stats


def test_a_changed_file_is_read_again(tmp_path):
    """A file rewritten after it was cached is read again, with its new events."""
    path = trace_file(tmp_path)
    load_cached(path, cache_dir=tmp_path / "c")
    trace_file(tmp_path, n=5)
    assert load_cached(path, cache_dir=tmp_path / "c").stats.events == 10


def test_an_unwritable_cache_place_still_loads(tmp_path):
    """When a file stands where the cache directory should be, the trace still loads."""
    path = trace_file(tmp_path)
    blocker = tmp_path / "c"
    blocker.write_text("a file where the cache directory should be")
    assert load_cached(path, cache_dir=blocker).stats.events == 6


def _entries(where):
    return sorted(p.name for p in where.iterdir() if not p.name.startswith("."))


def test_an_entry_is_a_data_file_and_its_stats(tmp_path):
    """An entry is one Parquet file and one JSON file, with no temporary file left."""
    path = trace_file(tmp_path)
    load_cached(path, cache_dir=tmp_path / "c")
    names = _entries(tmp_path / "c")
    assert [n.rsplit(".", 1)[1] for n in names] == ["json", "parquet"]
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".tmp-")]


def test_the_default_cache_lives_next_to_the_trace(tmp_path):
    """Without cache_dir the entry goes to .tracelens-cache beside the first file."""
    path = trace_file(tmp_path)
    load_cached(path)
    assert len(_entries(tmp_path / CACHE_DIR_NAME)) == 2


def test_a_changed_size_replaces_the_old_entry(tmp_path):
    """A file that grew is read again and its old entry is removed."""
    path = trace_file(tmp_path)
    load_cached(path, cache_dir=tmp_path / "c")
    before = _entries(tmp_path / "c")
    trace_file(tmp_path, n=4)
    assert load_cached(path, cache_dir=tmp_path / "c").stats.events == 8
    after = _entries(tmp_path / "c")
    assert len(after) == 2 and not set(before) & set(after)


def test_a_changed_mtime_alone_is_read_again(tmp_path):
    """Same size, new content, new mtime_ns: the file is parsed again."""
    path = trace_file(tmp_path)
    load_cached(path, cache_dir=tmp_path / "c")
    st = path.stat()
    path.write_bytes(path.read_bytes().replace(b'"t1"', b'"t3"'))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000))
    assert path.stat().st_size == st.st_size
    units = load_cached(path, cache_dir=tmp_path / "c").events.collect()["unit"]
    assert "t3" in units.to_list()


def test_a_replaced_file_with_the_same_size_and_mtime_is_read_again(tmp_path):
    """A file swapped for another inode (same size and mtime) is parsed again."""
    path = trace_file(tmp_path)
    load_cached(path, cache_dir=tmp_path / "c")
    st = path.stat()
    other = tmp_path / "other.jsonl"
    other.write_bytes(path.read_bytes().replace(b'"t1"', b'"t3"'))
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)
    assert path.stat().st_ino != st.st_ino
    units = load_cached(path, cache_dir=tmp_path / "c").events.collect()["unit"]
    assert "t3" in units.to_list()


def test_another_cache_version_is_not_read(tmp_path, monkeypatch):
    """An entry written by another cache version is not used."""
    path = trace_file(tmp_path)
    load_cached(path, cache_dir=tmp_path / "c")
    monkeypatch.setattr(cache, "_CACHE_VERSION", 99)
    calls = []
    load_cached(path, cache_dir=tmp_path / "c", progress=lambda *a: calls.append(a))
    assert calls  # read again


def test_another_trace_format_version_is_not_read(tmp_path, monkeypatch):
    """An entry written for another trace format version is not used."""
    path = trace_file(tmp_path)
    load_cached(path, cache_dir=tmp_path / "c")
    monkeypatch.setattr(cache.s, "FORMAT_VERSION", cache.s.FORMAT_VERSION + 1)
    calls = []
    load_cached(path, cache_dir=tmp_path / "c", progress=lambda *a: calls.append(a))
    assert calls


@pytest.mark.parametrize("damage", ["truncate", "garbage", "meta", "empty"])
def test_a_damaged_entry_falls_back_to_the_trace(tmp_path, capsys, damage):
    """A truncated, garbled or mismatched entry gives load's result and one stderr line."""
    path = trace_file(tmp_path)
    load_cached(path, cache_dir=tmp_path / "c")
    data = next((tmp_path / "c").glob("*.parquet"))
    meta = data.with_suffix(".json")
    if damage == "truncate":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif damage == "garbage":
        data.write_bytes(b"\0" * data.stat().st_size)
    elif damage == "meta":
        meta.write_text("{not json")
    else:
        data.write_bytes(b"")
    trace = load_cached(path, cache_dir=tmp_path / "c")
    assert_frame_equal(load(path).events.collect(), trace.events.collect())
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "damaged cache entry" in err[0]
    capsys.readouterr()
    load_cached(path, cache_dir=tmp_path / "c")  # rewritten: quiet again
    assert capsys.readouterr().err == ""


def test_an_entry_with_other_rows_is_not_used(tmp_path, capsys):
    """A data file whose row count is not the stats' is ignored (never a wrong result)."""
    path = trace_file(tmp_path)
    load_cached(path, cache_dir=tmp_path / "c")
    data = next((tmp_path / "c").glob("*.parquet"))
    meta = data.with_suffix(".json")
    small = pl.read_parquet(data).head(2)
    small.write_parquet(data, compression="lz4", statistics=False)
    info = json.loads(meta.read_text())
    info["data_bytes"] = data.stat().st_size
    meta.write_text(json.dumps(info))
    assert load_cached(path, cache_dir=tmp_path / "c").stats.events == 6
    assert load_cached(path, cache_dir=tmp_path / "c").events.collect().height == 6
    assert "damaged cache entry" in capsys.readouterr().err


def test_a_full_disk_still_loads_quietly(tmp_path, monkeypatch, capsys):
    """When writing the entry fails (no space left), the load works and leaves no file."""
    path = trace_file(tmp_path)

    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", no_space)
    assert load_cached(path, cache_dir=tmp_path / "c").stats.events == 6
    assert list((tmp_path / "c").iterdir()) == []
    assert capsys.readouterr().err == ""


def test_cache_enabled_follows_the_environment(monkeypatch):
    """TRACELENS_NO_CACHE=1 turns the cache off; unset, empty or 0 leaves it on."""
    monkeypatch.delenv(NO_CACHE_ENV, raising=False)
    assert cache_enabled() and not cache_enabled(False)
    for value, on in [("1", False), ("yes", False), ("0", True), ("", True)]:
        monkeypatch.setenv(NO_CACHE_ENV, value)
        assert cache_enabled() is on


def test_report_uses_the_cache_by_default(tmp_path, monkeypatch):
    """``tracelens report`` writes an entry next to the trace; --no-cache and the env var do not."""
    monkeypatch.delenv(NO_CACHE_ENV, raising=False)
    path = trace_file(tmp_path)
    runner = CliRunner()
    args = ["report", str(path), "--format", "json", "--fail-on", "never"]
    res = runner.invoke(app, [*args, "--no-cache"])
    assert res.exit_code == 0 and not (tmp_path / CACHE_DIR_NAME).exists()
    monkeypatch.setenv(NO_CACHE_ENV, "1")
    assert runner.invoke(app, args).exit_code == 0
    assert not (tmp_path / CACHE_DIR_NAME).exists()
    monkeypatch.delenv(NO_CACHE_ENV)
    first = runner.invoke(app, args)
    assert (tmp_path / CACHE_DIR_NAME).is_dir()
    second = runner.invoke(app, args)
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout == res.stdout
