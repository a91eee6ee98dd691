"""Call stacks from the trace to the findings: each access's stack, each unit's creation."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import orjson
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import tracelens
from tests.helpers import record_pool_race, record_racy_workers
from tracelens.analyze import analyze, load
from tracelens.analyze import columns as c
from tracelens.analyze.findings import Finding, Site
from tracelens.analyze.stacks import MAX_FRAMES, Job, chain, executor_jobs, frame_table, job_of
from tracelens.report import json_, text
from tracelens.report._common import RenderOptions
from tracelens.testing import read_events, read_stacks, stack_frames


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


@settings(deadline=None)  # no timing in a test: the machine is shared and slow
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


def test_a_thread_pool_jobs_accesses_say_where_each_job_was_submitted(tmp_path: Path) -> None:
    """An access inside an executor job carries the stack of the submit() that queued that
    job, by the main thread, besides its worker's creation (the pool's first submits)."""
    path = record_pool_race(tmp_path / "t.jsonl")
    (f,) = analyze(load(path), only=["data_race"]).findings
    submitters = set()
    for e in f.events:
        assert "warm_up" in _func(e.created_at)
        assert e.submitted_by == "thread MainThread"
        submitters.add(_func(e.submitted_at)[0])
    assert submitters == {"submit_one", "submit_other"}


def test_a_plain_thread_race_has_no_submit_stack(tmp_path: Path) -> None:
    """Threads started by hand run no executor job: their accesses have no submit stack."""
    (f,) = _racy(tmp_path / "t.jsonl")
    assert all(e.submitted_at == () and e.submitted_by == "" for e in f.events)


def _reference_submitters(path: Path) -> dict[tuple[int, int], tuple[str, ...]]:
    """(pid, seq) -> the functions of the submit stack of the job the event ran in, found
    event by event: a worker's recv of a future with a msg starts a job, its send of
    that future ends it; the submit is the send of that future with that msg."""
    events = read_events(path)
    stacks = read_stacks(path)
    submit = {
        (e["pid"], e["obj"], e["msg"]): tuple(f for _, _, f in stack_frames(stacks, e))
        for e in events
        if e["event"] == "send" and e.get("kind") == "future" and e.get("msg") is not None
    }
    current: dict[tuple[int, str], tuple[str, tuple[str, ...]]] = {}
    out: dict[tuple[int, int], tuple[str, ...]] = {}
    for e in events:
        key = (e["pid"], e["unit"])
        if e.get("kind") == "future" and e["event"] == "recv" and e.get("msg") is not None:
            current[key] = (e["obj"], submit.get((e["pid"], e["obj"], e["msg"]), ()))
        job = current.get(key)
        if job is not None:
            out[(e["pid"], e["seq"])] = job[1]
            if e["event"] == "send" and e["obj"] == job[0] and e.get("msg") is None:
                del current[key]
    return out


def test_executor_jobs_agree_with_the_event_by_event_reference(tmp_path: Path) -> None:
    """For every event of the trace, job_of over executor_jobs names the submit stack the
    per-event reference finds (and none outside a job)."""
    path = record_pool_race(tmp_path / "t.jsonl")
    trace = load(path)
    rows = trace.events.select(c.PID, c.SEQ, c.UNIT).collect().rows()
    jobs = executor_jobs(trace.events, {u for _, _, u in rows}, frame_table(trace.stacks))
    want = _reference_submitters(path)
    assert sum(1 for v in want.values() if v) > 100  # both jobs' accesses
    for pid, seq, unit in rows:
        got = job_of(jobs, unit, seq)[0]
        assert tuple(s.func for s in got) == want.get((pid, seq), ()), (pid, seq)


_jobs_st = st.lists(st.tuples(st.integers(1, 5), st.booleans()), max_size=6)


@settings(deadline=None)  # no timing in a test: the machine is shared and slow
@given(_jobs_st, st.integers(0, 40))
def test_job_of_finds_the_job_a_linear_scan_finds(
    lengths: list[tuple[int, bool]], seq: int
) -> None:
    """job_of's bisection over a unit's jobs (each from its start to its end, or to the end
    of the trace when it never ended) agrees with scanning them one by one."""
    jobs, at = [], 1
    for i, (length, ends) in enumerate(lengths):
        last = i == len(lengths) - 1
        end = at + length if ends or not last else None
        jobs.append(Job(at, end, (Site("app.py", i, f"submit{i}"),), "thread MainThread"))
        at += length + 2
    want = next(
        (j.submitted_at for j in jobs if j.start <= seq and (j.end is None or seq <= j.end)), ()
    )
    assert job_of({"t1": jobs}, "t1", seq)[0] == want
    assert job_of({"t1": jobs}, "t2", seq) == ((), "")


def test_a_run_in_executor_job_says_which_task_submitted_it(tmp_path: Path) -> None:
    """Jobs handed to the loop's default executor by a task: each access's job was
    submitted by that task, at its run_in_executor line."""
    path = tmp_path / "t.jsonl"
    tracelens.configure(path)
    d = tracelens.watch({"n": 0}, "d")
    both = threading.Barrier(2)

    def job() -> None:
        both.wait()
        for _ in range(20):
            d["n"] = d["n"] + 1

    async def hand_over() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(loop.run_in_executor(None, job), loop.run_in_executor(None, job))

    asyncio.run(hand_over())
    tracelens.shutdown()
    (f,) = analyze(load(path), only=["data_race"]).findings
    for e in f.events:
        assert e.submitted_by.startswith("task ")
        assert _func(e.submitted_at)[0] == "hand_over"
