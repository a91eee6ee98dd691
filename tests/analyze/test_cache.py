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


def test_second_load_comes_from_the_cache_and_equals_load(tmp_path):
    path = trace_file(tmp_path)
    first = load_cached(path, cache_dir=tmp_path / "c")
    calls = []
    second = load_cached(path, cache_dir=tmp_path / "c", progress=lambda *a: calls.append(a))
    assert calls == []  # not read again
    expected = load(path)
    assert_frame_equal(expected.events.collect(), first.events.collect())
    assert_frame_equal(expected.events.collect(), second.events.collect())
    assert second.stats == expected.stats


def test_a_changed_file_is_read_again(tmp_path):
    path = trace_file(tmp_path)
    load_cached(path, cache_dir=tmp_path / "c")
    trace_file(tmp_path, n=5)
    assert load_cached(path, cache_dir=tmp_path / "c").stats.events == 10


def test_an_unwritable_cache_place_still_loads(tmp_path):
    path = trace_file(tmp_path)
    blocker = tmp_path / "c"
    blocker.write_text("a file where the cache directory should be")
    assert load_cached(path, cache_dir=blocker).stats.events == 6
