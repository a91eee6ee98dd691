"""Golden tests of lost_update and atomicity_violation on small hand-written traces."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tracegen import generate
from tests.traces import TraceBuilder, write_trace
from tracelens.analyze import analyze, load
from tracelens.analyze.findings import Finding, Site


def run(b: TraceBuilder, tmp_path: Path) -> list[Finding]:
    return analyze(load(b.write_to(tmp_path / "t.jsonl")), only=["windows"]).findings


def brief(findings: list[Finding]) -> list[tuple[str, str, int, tuple[str, ...]]]:
    """(kind, var, count, roles of the first instance) per finding."""
    return [(f.kind, f.var, f.count, tuple(e.role for e in f.events)) for f in findings]


def test_lost_update_read_remote_write_local_write(tmp_path):
    """Read, remote write, local write is one lost update with its units, sites, events and text."""
    b = TraceBuilder()
    b.read("t1", "x", 1, line=10, func="bump")
    b.write("t2", "x", 2, line=11, func="bump")
    b.write("t1", "x", 2, line=11, func="bump")
    [f] = run(b, tmp_path)
    assert (f.kind, f.severity, f.var, f.count) == ("lost_update", "error", "x", 1)
    assert f.units == ("worker-1", "worker-2")
    expected_sites = (
        Site("app.py", 10, "bump"),
        Site("app.py", 11, "bump"),
        Site("app.py", 11, "bump"),
    )
    assert expected_sites == f.sites
    expected_events = [
        ("local read", 0, "worker-1", "read", "1"),
        ("remote write", 1, "worker-2", "write", "2"),
        ("local write", 2, "worker-1", "write", "2"),
    ]
    assert expected_events == [(e.role, e.seq, e.unit_name, e.op, e.value) for e in f.events]
    expected = (
        "worker-2 wrote x at app.py:11 (bump) between worker-1's read at app.py:10 (bump) "
        "and its write at app.py:11 (bump), so worker-1's write, computed from the stale "
        "read, overwrote that update."
    )
    assert expected == f.explanation


def test_correctly_locked_counter_gives_no_lost_update(tmp_path):
    """Increments that each hold the same lock give no lost update."""
    b = TraceBuilder()
    for _ in range(3):
        for u in ("t1", "t2"):
            b.acquire(u, "L")
            b.read(u, "x")
            b.write(u, "x")
            b.release(u, "L")
    assert run(b, tmp_path) == []


def test_write_remote_write_read_across_two_lock_holds_is_not_reported(tmp_path):
    """Accesses in separate holds of the same lock are not one window, so nothing is reported."""
    # Two separate, correctly locked increments: the 69,000 false alarms of the issue.
    b = TraceBuilder()
    b.acquire("t1", "L")
    b.read("t1", "x")
    b.write("t1", "x")
    b.release("t1", "L")
    b.acquire("t2", "L")
    b.read("t2", "x")
    b.write("t2", "x")
    b.release("t2", "L")
    b.acquire("t1", "L")
    b.read("t1", "x")
    b.write("t1", "x")
    b.release("t1", "L")
    assert run(b, tmp_path) == []


def test_two_reads_in_one_lock_hold_with_a_remote_write_between(tmp_path):
    """A remote write between two reads in one lock hold is an atomicity violation."""
    b = TraceBuilder()
    b.acquire("t1", "L")
    b.read("t1", "x")
    b.write("t2", "x")  # t2 does not take the lock
    b.read("t1", "x")
    b.release("t1", "L")
    expected = [("atomicity_violation", "x", 1, ("local read", "remote write", "local read"))]
    assert expected == brief(run(b, tmp_path))


def test_two_reads_outside_any_scope_are_not_reported(tmp_path):
    """A remote write between two unscoped reads is not reported."""
    b = TraceBuilder()
    b.read("t1", "x")
    b.write("t2", "x")
    b.read("t1", "x")
    assert run(b, tmp_path) == []


def test_remote_read_between_two_writes_in_an_atomic_region(tmp_path):
    """A remote read between two writes in an atomic region is an atomicity violation."""
    b = TraceBuilder()
    b.atomic_begin("t1", "transfer")
    b.write("t1", "x")
    b.read("t2", "x")
    b.write("t1", "x")
    b.atomic_end("t1", "transfer")
    expected = [("atomicity_violation", "x", 1, ("local write", "remote read", "local write"))]
    assert expected == brief(run(b, tmp_path))


@pytest.fixture
def write_read_back() -> TraceBuilder:
    """t1 writes x and reads it back in an atomic region; t2 writes x in between."""
    b = TraceBuilder()
    b.atomic_begin("t1")
    b.write("t1", "x")
    b.write("t2", "x")
    b.read("t1", "x")
    b.atomic_end("t1")
    return b


def test_remote_write_between_write_and_read_back_in_an_atomic_region(tmp_path, write_read_back):
    """A remote write between a write and its read-back in an atomic region is a violation."""
    expected = [("atomicity_violation", "x", 1, ("local write", "remote write", "local read"))]
    assert expected == brief(run(write_read_back, tmp_path))


def test_remote_write_between_write_and_read_back_is_a_warning(tmp_path, write_read_back):
    """The write, remote write, read-back atomicity violation has severity warning."""
    assert run(write_read_back, tmp_path)[0].severity == "warning"


def test_accesses_in_two_separate_atomic_regions_are_not_one_window(tmp_path):
    """A write and a read in two separate atomic regions are not one atomic window."""
    b = TraceBuilder()
    b.atomic_begin("t1")
    b.write("t1", "x")
    b.atomic_end("t1")
    b.write("t2", "x")
    b.atomic_begin("t1")
    b.read("t1", "x")
    b.atomic_end("t1")
    assert run(b, tmp_path) == []


def test_an_internal_lock_does_not_make_code_atomic(tmp_path):
    """An internal lock is no scope: a remote write between two reads under it is not reported."""
    b = TraceBuilder()
    b.acquire("t1", "Condition-lock", internal=True)
    b.read("t1", "x")
    b.write("t2", "x")
    b.read("t1", "x")
    b.release("t1", "Condition-lock", internal=True)
    assert run(b, tmp_path) == []


def test_remote_read_inside_a_read_modify_write_is_serializable(tmp_path):
    """A remote read inside a read-modify-write is serializable and not reported."""
    b = TraceBuilder()
    b.read("t1", "x")
    b.read("t2", "x")
    b.write("t1", "x")
    assert run(b, tmp_path) == []


def test_repeated_interleaving_is_one_finding_with_count_and_widest_instance(tmp_path):
    """A repeated interleaving is one finding with its count, first instance and widest instance."""
    b = TraceBuilder()
    for gap in (0, 5, 1):
        b.read("t1", "x", line=1)
        for _ in range(gap):
            b.read("t3", "y")
        b.write("t2", "x", line=2)
        b.write("t1", "x", line=2)
    [f] = run(b, tmp_path)
    assert f.count == 3
    assert [e.seq for e in f.events] == [0, 1, 2]
    widest_read = 3  # the second round starts at seq 3 and spans 5 extra events
    assert widest_read == f.worst[0].seq
    assert f.units == ("worker-1", "worker-2")


def test_different_remote_sites_are_different_findings(tmp_path):
    """The same window with remote writes at two different lines is two findings."""
    b = TraceBuilder()
    b.read("t1", "x", line=1)
    b.write("t2", "x", line=20)
    b.write("t1", "x", line=2)
    b.read("t1", "x", line=1)
    b.write("t2", "x", line=30)
    b.write("t1", "x", line=2)
    lines = sorted(f.sites[1].line for f in run(b, tmp_path))
    assert lines == [20, 30]


def test_processes_share_no_memory(tmp_path):
    """A write in another process does not break a window of the same variable name."""
    # Same variable name in two processes: no remote write between t1's read and write.
    a = TraceBuilder(pid=1)
    a.read("t1", "x")
    a.write("t1", "x")
    other = TraceBuilder(pid=2)
    other.write("t1", "x")
    events = [a.events[0], other.events[0], a.events[1]]
    for seq, e in enumerate(events):
        e["seq"] = seq  # interleaved sequence numbers, as two recorders could write them
    trace = load(write_trace(tmp_path / "t.jsonl", events))
    assert analyze(trace, only=["windows"]).findings == []


def test_lost_update_in_a_second_process_names_qualified_units(tmp_path):
    """A lost update in the second of two processes names its units qualified by that pid."""
    a = TraceBuilder(pid=1)
    a.read("t1", "x")
    a.write("t1", "x")
    bb = TraceBuilder(pid=2)
    bb.read("t1", "x")
    bb.write("t2", "x")
    bb.write("t1", "x")
    trace = load(write_trace(tmp_path / "t.jsonl", a.events + bb.events))
    [f] = analyze(trace, only=["windows"]).findings
    assert [e.unit for e in f.events] == ["2/t1", "2/t2", "2/t1"]
    assert {2} == {e.pid for e in f.events}


def test_synthetic_trace_flags_exactly_the_injected_racy_variables(tmp_path):
    """A generated trace has lost updates, and findings only on the injected racy variables."""
    info = generate(tmp_path / "g.jsonl", n_events=30_000, threads=6, variables=200, seed=3)
    report = analyze(load(tmp_path / "g.jsonl"), only=["windows"])
    lost = {f.var for f in report.findings if f.kind == "lost_update"}
    assert lost <= set(info.racy_vars)
    assert lost  # 30k events with 6 threads always interleave some racy update
    assert [f for f in report.findings if f.var not in info.racy_vars] == []


@pytest.mark.parametrize("sample", ["article_racy", "article_locked"])
def test_article_samples(sample):
    """The article's racy sample has one lost update on model['weight'] and the locked one none."""
    root = Path(__file__).resolve().parents[2] / "sample_logs"
    report = analyze(load(root / f"{sample}.jsonl.gz"), only=["windows"])
    kinds = {(f.kind, f.var) for f in report.findings}
    expected = {("lost_update", "model['weight']")} if sample == "article_racy" else set()
    assert expected == kinds


def test_events_carry_the_locks_their_unit_held(tmp_path):
    """Each finding event lists the non-internal locks its unit held at that access."""
    b = TraceBuilder()
    b.acquire("t1", "L")
    b.acquire("t1", "M")
    b.read("t1", "x")
    b.release("t1", "M")
    b.acquire("t2", "K")
    b.acquire("t2", "Q", internal=True)  # internal locks are not listed
    b.write("t2", "x")
    b.read("t1", "x")
    b.release("t1", "L")
    [f] = run(b, tmp_path)
    assert [e.locks for e in f.events] == [("L", "M"), ("K",), ("L",)]


def test_events_outside_any_lock_hold_have_no_locks(tmp_path):
    """Accesses after the lock was released list no locks."""
    b = TraceBuilder()
    b.acquire("t1", "L")
    b.release("t1", "L")
    b.read("t1", "x")
    b.write("t2", "x")
    b.write("t1", "x")
    [f] = run(b, tmp_path)
    assert [e.locks for e in f.events] == [(), (), ()]


# --- the building blocks ----------------------------------------------------------------


def two_process_trace(tmp_path: Path) -> Path:
    a = TraceBuilder(pid=1)
    a.acquire("t1", "L")
    a.read("t1", "x", 1)
    a.write("t2", "x", 5)
    a.write("t1", "x", 2)
    a.release("t1", "L")
    a.read("t2", "y", 0)
    other = TraceBuilder(pid=2)
    other.write("t1", "x", 9)
    other.read("t1", "x", 9)
    write_trace(tmp_path / "a.jsonl", a.events)
    write_trace(tmp_path / "b.jsonl", other.events)
    return tmp_path / "*.jsonl"


def test_accesses_number_each_timeline_consecutively_in_seq_order(tmp_path):
    """Accesses are numbered 0, 1, ... in (pid, var) timelines in seq order, with running counts."""
    from tracelens.analyze.windows import accesses

    acc = accesses(load(str(two_process_trace(tmp_path))).events).collect()
    assert acc["pos"].to_list() == list(range(acc.height))
    timelines = {
        (pid, var): group["seq"].to_list()
        for (pid, var), group in acc.group_by("pid", "var", maintain_order=True)
    }
    assert timelines == {(1, "x"): [1, 2, 3], (1, "y"): [5], (2, "x"): [0, 1]}
    for (pid, var), group in acc.group_by("pid", "var"):
        assert group["pos"].diff().drop_nulls().to_list() == [1] * (group.height - 1), (pid, var)
    assert set(acc["op"]) == {"read", "write"}
    assert acc.columns[:7] == ["pos", "pid", "var", "seq", "ts", "unit", "op"]
    last = acc.row(acc.height - 1, named=True)
    assert last["n_reads"] + last["n_writes"] == acc.height


def test_windows_and_lock_holds(tmp_path):
    """The two-process trace has one window, t1's locked read then write of x, and one hold of L."""
    from tracelens.analyze.windows import lock_holds, windows

    events = load(str(two_process_trace(tmp_path))).events
    w = windows(events).collect()
    assert w.select(
        "pid", "var", "unit", "first_seq", "first_op", "second_seq", "second_op"
    ).rows() == [
        (1, "x", "1/t1", 1, "read", 3, "write"),
    ]
    row = w.row(0, named=True)
    assert (row["remote_writes"], row["remote_reads"], row["locked"], row["atomic"]) == (
        1,
        0,
        True,
        False,
    )
    holds = lock_holds(events).collect()
    assert holds.select("unit", "key_name", "start", "end", "covers_until").rows() == [
        ("1/t1", "L", 0, 4, 4)
    ]


@st.composite
def _increments(draw):
    """Units each doing read-then-write increments of one counter, randomly interleaved."""
    n_units = draw(st.integers(2, 4))
    todo = {f"t{u}": draw(st.integers(1, 6)) * 2 for u in range(1, n_units + 1)}
    order = []
    while any(todo.values()):
        u = draw(st.sampled_from(sorted(k for k, v in todo.items() if v)))
        todo[u] -= 1
        order.append(u)
    return order  # each unit's steps alternate: read, write


@settings(max_examples=60, deadline=None)
@given(_increments())
def test_the_lost_writes_of_a_counter_are_the_increments_missing_from_its_final_value(
    tmp_path_factory, order
):
    """lost_writes = increments done - final value, for any interleaving of x += 1."""
    b = TraceBuilder()
    value, seen, step = 0, {}, {}
    for u in order:
        if step.get(u, 0) % 2 == 0:
            seen[u] = value
            b.read(u, "n", value, line=1)
        else:
            value = seen[u] + 1
            b.write(u, "n", value, line=2)
        step[u] = step.get(u, 0) + 1
    total = len(order) // 2
    found = run(b, tmp_path_factory.mktemp("t"))
    lost = [f.lost_writes for f in found if f.kind == "lost_update"]
    assert (sum(lost), sum(f.var_writes for f in found if f.kind == "lost_update") or total) == (
        total - value,
        total,
    )
