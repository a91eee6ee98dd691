"""The Parquet cache gives what load gives, and notices changed files."""

from __future__ import annotations

from polars.testing import assert_frame_equal

from tests.traces import TraceBuilder, write_trace
from tracelens.analyze import load
from tracelens.analyze.cache import load_cached


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
