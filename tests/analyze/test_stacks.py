"""Call stacks from the trace to the findings: each access's stack, each unit's creation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import tracelens
from tests.helpers import record_racy_workers
from tracelens.analyze import analyze, load
from tracelens.analyze import columns as c
from tracelens.analyze.findings import Finding, Site
from tracelens.analyze.stacks import MAX_FRAMES, chain, frame_table
from tracelens.report import json_, text
from tracelens.report._common import RenderOptions


def _racy(path: Path, **options: object) -> list[Finding]:
    record_racy_workers(path, times=200, **options)
    return analyze(load(path), only=["data_race"]).findings


def _func(sites: tuple[Site, ...]) -> list[str]:
    return [s.func for s in sites]


def test_a_race_shows_each_accesses_call_stack_and_where_its_thread_was_created(
    tmp_path: Path,
) -> None:
    """Both accesses carry their stacks (site first, then callers), and their units the
    stack of the start() that created them, by the main thread."""
    (f,) = _racy(tmp_path / "t.jsonl")
    for e in f.events:
        assert _func(e.stack) == ["bump", "work"]
        assert e.stack[0] == e.site
        assert _func(e.created_at)[:2] == ["start_workers", "record_racy_workers"]
        assert e.created_by == "thread MainThread"


def test_stack_depth_bounds_the_stacks_and_zero_records_none(tmp_path: Path) -> None:
    """With stack_depth=1 a stack is the site alone; with 0 there are none, and the creation
    is still the site of the start() call."""
    (one,) = _racy(tmp_path / "one.jsonl", stack_depth=1)
    assert all(_func(e.stack) == ["bump"] for e in one.events)
    assert all(_func(e.created_at) == ["start_workers"] for e in one.events)
    (none,) = _racy(tmp_path / "none.jsonl", stack_depth=0)
    assert all(e.stack == () for e in none.events)
    assert all(_func(e.created_at) == ["start_workers"] for e in none.events)
    assert b'"event":"stack"' not in (tmp_path / "none.jsonl").read_bytes()


def test_each_frame_is_defined_once_per_process(tmp_path: Path) -> None:
    """A trace holds one definition per (pid, id), and every event's stack is defined."""
    _racy(tmp_path / "t.jsonl")
    lines = [orjson.loads(x) for x in (tmp_path / "t.jsonl").read_bytes().splitlines()]
    defs = [(d["pid"], d["id"]) for d in lines if d["event"] == "stack"]
    assert len(defs) == len(set(defs))
    used = {(d["pid"], d["stack"]) for d in lines if "stack" in d and d["event"] != "stack"}
    assert used and used <= set(defs)


def test_a_task_shows_where_it_was_created(tmp_path: Path) -> None:
    """An asyncio task's units carry the stack of the create_task call, by the main thread's
    task or thread that made it."""
    path = tmp_path / "t.jsonl"
    tracelens.configure(path)
    d = tracelens.watch({"n": 0}, "d")

    async def bump() -> None:
        v = d["n"]
        await asyncio.sleep(0)
        d["n"] = v + 1

    def spawn() -> list[asyncio.Task[None]]:
        return [asyncio.get_running_loop().create_task(bump()) for _ in range(2)]

    async def main() -> None:
        await asyncio.gather(*spawn())

    asyncio.run(main())
    tracelens.shutdown()
    findings = analyze(load(path), only=["data_race"]).findings
    assert findings
    for e in findings[0].events:
        assert "spawn" in _func(e.created_at)[:2]  # 3.11's list comprehension: a frame
        assert e.created_by.startswith("task ")


def test_a_trace_without_stacks_still_gives_creation_sites(tmp_path: Path) -> None:
    """A version 1 trace (no stack lines) loads with an empty stack table; its findings have
    no stacks and take their units' creation from the fork's call site."""
    lines = [
        {"tl": 1, "event": "fork", "seq": 1, "pid": 7, "unit": "t0", "obj": "t1",
         "kind": "thread", "file": "/p/app.py", "line": 3, "func": "main"},
        {"tl": 1, "event": "write", "seq": 2, "pid": 7, "unit": "t1", "var": "x",
         "file": "/p/app.py", "line": 9, "func": "w"},
        {"tl": 1, "event": "write", "seq": 3, "pid": 7, "unit": "t0", "var": "x",
         "file": "/p/app.py", "line": 4, "func": "main"},
    ]  # fmt: skip
    path = tmp_path / "v1.jsonl"
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    trace = load(path)
    assert trace.stacks.height == 0
    (f,) = analyze(trace, only=["data_race"]).findings
    child = next(e for e in f.events if e.unit == "t1")
    assert child.stack == () and child.created_at == (Site("/p/app.py", 3, "main"),)
    main = next(e for e in f.events if e.unit == "t0")
    assert main.created_at == () and main.created_by == ""


def test_the_reports_show_the_stacks(tmp_path: Path) -> None:
    """The text report prints the frames as ThreadSanitizer does and where each thread was
    created; the JSON report has them as sites and still validates."""
    path = tmp_path / "t.jsonl"
    _racy(path)
    report = analyze(load(path), only=["data_race"])
    out = text.render(report, RenderOptions(root=Path(__file__).parents[1], width=200))
    assert "#0 bump helpers.py:" in out and "#1 work helpers.py:" in out
    assert "created by thread MainThread at:" in out
    assert "#0 start_workers helpers.py:" in out
    doc = orjson.loads(json_.render(report))
    event = doc["findings"][0]["events"][0]
    assert [s["func"] for s in event["stack"]] == ["bump", "work"]
    assert event["created_by"] == "thread MainThread"
    import jsonschema

    jsonschema.validate(doc, json_.REPORT_SCHEMA)


_ids = st.integers(1, 6)


@settings(deadline=None)  # (no timing in a test: the machine is shared)
@given(st.dictionaries(_ids, st.one_of(st.none(), _ids)), _ids)
def test_a_chain_follows_parents_and_ends_on_a_missing_or_repeated_frame(
    parents: dict[int, int | None], start: int
) -> None:
    """``chain`` lists the frames from the innermost by their parents, each once, stopping
    where the table has no frame: what a plain walk with a visited set gives."""
    stacks = pl.DataFrame(
        {
            c.PID: [1] * len(parents),
            c.STACK_ID: list(parents),
            c.STACK_PARENT: list(parents.values()),
            c.FILE: [f"f{i}" for i in parents],
            c.LINE: list(parents),
            c.FUNC: ["g"] * len(parents),
        },
        schema=c.STACK_SCHEMA,
    )
    expected, seen, fid = [], set(), start
    while fid is not None and fid in parents and fid not in seen:
        seen.add(fid)
        expected.append(Site(f"f{fid}", fid, "g"))
        fid = parents[fid]
    got = chain(frame_table(stacks), 1, start)
    assert list(got) == expected and len(got) <= MAX_FRAMES
