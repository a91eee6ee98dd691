"""Correct programs report nothing; their racy twins are reported, precisely.

The traces are written by hand as the instrumentation records them (schema.py's Op
docstring): hand-off primitives as ``send``/``recv`` on their object, threads as
``fork``/``begin``/``end``/``join``, locks as ``acquire``/``release``.
"""

from __future__ import annotations

import pytest

from tests.traces import frame
from tracelens.analyze.hb import (
    data_race,
    deadlock,
    inconsistent_locking,
    lock_order_inversion,
    tables,
)

ALL = (data_race, inconsistent_locking, lock_order_inversion, deadlock)


def findings(steps, analyses=ALL):
    ev = frame(steps)
    t = tables(ev, cache=False)
    return {a.__name__: a(t, ev).to_dicts() for a in analyses}


def assert_clean(steps):
    got = findings(steps)
    assert all(not v for v in got.values()), {
        k: [f["explanation"] for f in v] for k, v in got.items()
    }


def start(*units):
    out = []
    for u in units:
        out += [("t0", "fork", u), (u, "begin", u)]
    return out


def stop(*units):
    out = []
    for u in units:
        out += [(u, "end", u), ("t0", "join", u)]
    return out


def article(locked: bool, n: int = 10):
    """10 threads do ``model["weight"] += 0.1`` (with or without the lock); main prints."""
    steps = [("t0", "write", "weight", {"line": 3})]
    units = [f"t{i}" for i in range(1, n + 1)]
    steps += start(*units)
    # Interleave: everybody reads, then everybody writes (the worst case), or with the
    # lock, one critical section at a time with others trying meanwhile.
    if locked:
        for i, u in enumerate(units):
            steps.append((u, "acquire", "L", {"line": 8}))
            if i + 1 < n:
                steps.append((units[i + 1], "acquire_try", "L", {"line": 8}))
            steps += [(u, "read", "weight", {"line": 9}), (u, "write", "weight", {"line": 9})]
            steps.append((u, "release", "L", {"line": 8}))
    else:
        steps += [(u, "read", "weight", {"line": 9}) for u in units]
        steps += [(u, "write", "weight", {"line": 9}) for u in units]
    steps += stop(*units)
    steps.append(("t0", "read", "weight", {"line": 14}))
    return steps


def test_article_locked_fix_is_clean():
    """The article's program with the lock around += reports nothing."""
    assert_clean(article(locked=True))


@pytest.fixture
def article_bug():
    """The data races and lock-set violations of the article's unlocked program."""
    return findings(article(locked=False), (data_race, inconsistent_locking))


def test_article_bug_is_a_race_and_a_lockset_violation(article_bug):
    """The unlocked += is an error-level race between two writes at line 9, with no sync."""
    got = article_bug
    (race,) = [f for f in got["data_race"] if f["events"][1]["op"] == "write"][:1]
    assert race["var"] == "weight"
    assert race["severity"] == "error"
    assert [s["line"] for s in race["sites"]] == [9, 9]
    assert "previous" in race["explanation"] and "no synchronisation" in race["explanation"]


def test_article_bug_lockset_violation_is_a_warning(article_bug):
    """The unlocked += is also a lock-set violation, of severity warning."""
    got = article_bug
    assert got["inconsistent_locking"][0]["severity"] == "warning"


def test_producer_consumer_queue():
    """Items written before a queue put and read after the matching get are not a race."""
    assert_clean(
        [
            *start("t1", "t2"),
            ("t1", "write", "item"),
            ("t1", "send", "q", {"msg": 1}),
            ("t1", "write", "item2"),
            ("t1", "send", "q", {"msg": 2}),
            ("t2", "recv", "q", {"msg": 1}),
            ("t2", "read", "item"),
            ("t2", "write", "item"),
            ("t2", "recv", "q", {"msg": 2}),
            ("t2", "read", "item2"),
            *stop("t1", "t2"),
            ("t0", "read", "item"),
        ]
    )


def test_queue_messages_are_matched():
    """The consumer got message 1: the write before message 2 is not ordered with it."""
    got = findings(
        [
            *start("t1", "t2"),
            ("t1", "send", "q", {"msg": 1}),
            ("t1", "write", "item"),
            ("t1", "send", "q", {"msg": 2}),
            ("t2", "recv", "q", {"msg": 1}),
            ("t2", "read", "item"),
        ],
        (data_race,),
    )
    assert [f["var"] for f in got["data_race"]] == ["item"]


def test_event_handoff():
    """A write before Event.set and a read after the wait returns are not a race."""
    assert_clean(
        [
            *start("t1", "t2"),
            ("t1", "write", "config"),
            ("t1", "send", "ev", {"kind": "event"}),
            ("t2", "wait", "ev", {"kind": "event"}),
            ("t2", "recv", "ev", {"kind": "event"}),
            ("t2", "read", "config"),
            *stop("t1", "t2"),
        ]
    )


BARRIER_UNITS = ("t1", "t2", "t3")


@pytest.fixture
def barrier_phases():
    """Three threads write their slot, pass a barrier, then read every slot (not yet stopped)."""
    units = BARRIER_UNITS
    steps = start(*units)
    steps += [(u, "write", f"slot_{u}") for u in units]
    steps += [(u, "send", "barrier", {"kind": "barrier"}) for u in units]
    steps += [(u, "recv", "barrier", {"kind": "barrier"}) for u in units]
    steps += [(u, "read", f"slot_{v}") for u in units for v in units]
    return steps


def test_barrier_phases(barrier_phases):
    """Writes before a barrier and reads after it are ordered: nothing is reported."""
    assert_clean([*barrier_phases, *stop(*BARRIER_UNITS)])


def test_barrier_phases_racy_twin(barrier_phases):
    """A write after the barrier with no second barrier races with the others' reads."""
    steps, units = barrier_phases, BARRIER_UNITS
    # a write in phase 2 without a second barrier races with the others' reads
    racy = findings([*steps, ("t1", "write", "slot_t1"), *stop(*units)], (data_race,))
    assert {f["var"] for f in racy["data_race"]} == {"slot_t1"}


def test_condition_variable():
    """Accesses under a condition's lock, ordered by notify and wait, are not reported."""
    # with cond: (its own lock) ... producer appends and notifies; consumer waits (the
    # wait releases and re-acquires the lock) then pops; a second consumer round
    # finds an item without waiting.
    c = {"kind": "condition"}
    lk = {"kind": "rlock", "internal": True}
    assert_clean(
        [
            *start("t1", "t2"),
            ("t2", "acquire", "C", lk),
            ("t2", "read", "items"),
            ("t2", "release", "C", lk),
            ("t2", "wait", "cond", c),
            ("t1", "acquire", "C", lk),
            ("t1", "write", "items"),
            ("t1", "send", "cond", c),
            ("t1", "release", "C", lk),
            ("t2", "recv", "cond", c),
            ("t2", "acquire", "C", lk),
            ("t2", "read", "items"),
            ("t2", "write", "items"),
            ("t2", "release", "C", lk),
            ("t1", "acquire", "C", lk),
            ("t1", "write", "items"),
            ("t1", "send", "cond", c),
            ("t1", "release", "C", lk),
            ("t2", "acquire", "C", lk),
            ("t2", "read", "items"),
            ("t2", "write", "items"),
            ("t2", "release", "C", lk),
            *stop("t1", "t2"),
        ]
    )


def test_thread_pool_result():
    """Submitting a task and reading its future's result order the accesses on both sides."""
    f = {"kind": "future"}
    assert_clean(
        [
            ("t0", "write", "args"),
            ("t0", "fork", "t1"),
            ("t1", "begin", "t1"),
            ("t0", "send", "pool", {"msg": 7, "kind": "queue"}),  # submit
            ("t0", "write", "args2"),
            ("t1", "recv", "pool", {"msg": 7, "kind": "queue"}),  # the task starts
            ("t1", "read", "args"),
            ("t1", "write", "result"),
            ("t1", "send", "fut7", f),  # set_result
            ("t0", "wait", "fut7", f),
            ("t0", "recv", "fut7", f),  # result()
            ("t0", "read", "result"),
            ("t0", "write", "result"),
        ]
    )


def test_rlock_reentry():
    """Writes under a re-entered RLock, with a nested lock inside, are not reported."""
    r = {"kind": "rlock"}
    # Only the outermost acquire and the last release are recorded.
    assert_clean(
        [
            *start("t1", "t2"),
            ("t1", "acquire", "R", r),
            ("t1", "write", "x"),
            ("t1", "acquire", "M"),
            ("t1", "release", "M"),
            ("t1", "write", "x"),
            ("t1", "release", "R", r),
            ("t2", "acquire", "R", r),
            ("t2", "write", "x"),
            ("t2", "release", "R", r),
            *stop("t1", "t2"),
        ]
    )


def test_semaphore_as_mutex():
    """A semaphore used as a mutex orders the read-modify-writes it guards."""
    sem = {"kind": "semaphore"}
    assert_clean(
        [
            *start("t1", "t2"),
            ("t1", "recv", "sem", sem),
            ("t1", "read", "x"),
            ("t1", "write", "x"),
            ("t1", "send", "sem", sem),
            ("t2", "recv", "sem", sem),
            ("t2", "read", "x"),
            ("t2", "write", "x"),
            ("t2", "send", "sem", sem),
            *stop("t1", "t2"),
        ]
    )


def test_initialise_before_start():
    """Writes before the threads start and after they are joined are not races with their reads."""
    assert_clean(
        [
            ("t0", "write", "config"),
            ("t0", "write", "table"),
            *start("t1", "t2"),
            ("t1", "read", "config"),
            ("t2", "read", "config"),
            ("t2", "read", "table"),
            ("t1", "read", "table"),
            *stop("t1", "t2"),
            ("t0", "write", "config"),
        ]
    )


@pytest.fixture
def unlocked_writes_around_a_lock_handoff():
    """t1 writes x then takes and drops L; t2 takes and drops L, then writes x."""
    steps = [
        *start("t1", "t2"),
        ("t1", "write", "x", {"line": 20}),
        ("t1", "acquire", "L"),
        ("t1", "release", "L"),
        ("t2", "acquire", "L"),
        ("t2", "release", "L"),
        ("t2", "write", "x", {"line": 30}),
    ]
    return findings(steps, (data_race, inconsistent_locking))


def test_lock_hides_race_from_data_race(unlocked_writes_around_a_lock_handoff):
    """Writes ordered only by an unrelated lock hand-off are no data race."""
    assert unlocked_writes_around_a_lock_handoff["data_race"] == []


def test_lock_does_not_hide_race_from_lockset(unlocked_writes_around_a_lock_handoff):
    """The same writes, made without a lock, are one lock-set violation between the two sites."""
    got = unlocked_writes_around_a_lock_handoff
    (f,) = got["inconsistent_locking"]
    assert [s["line"] for s in f["sites"]] == [20, 30]
    assert f["events"][0]["locks"] == [] and f["units"] == ["T1", "T2"]


def test_lockset_reports_the_locks_each_site_held():
    """A lock-set violation lists, and explains, the different lock each write held."""
    steps = [
        *start("t1", "t2"),
        ("t1", "acquire", "A"),
        ("t1", "write", "x", {"line": 20}),
        ("t1", "release", "A"),
        ("t2", "acquire", "B"),
        ("t2", "write", "x", {"line": 30}),
        ("t2", "release", "B"),
    ]
    (f,) = findings(steps, (inconsistent_locking,))["inconsistent_locking"]
    assert [e["locks"] for e in f["events"]] == [["A"], ["B"]]
    assert "holding A" in f["explanation"] and "holding B" in f["explanation"]


def test_asyncio_read_modify_write_across_await():
    """Two tasks' read-await-write of a counter race, explained as by task, on that counter only."""
    # Tasks a1, a2 (one thread): each reads the counter, awaits, writes it back.
    steps = [
        ("a0", "fork", "a1", {"kind": "task"}),
        ("a0", "fork", "a2", {"kind": "task"}),
        ("a1", "read", "hits", {"line": 5}),
        ("a2", "read", "hits", {"line": 5}),
        ("a1", "write", "hits", {"line": 7}),
        ("a2", "write", "hits", {"line": 7}),
        ("a0", "join", "a1", {"kind": "task"}),
        ("a0", "join", "a2", {"kind": "task"}),
        ("a0", "read", "hits", {"line": 9}),
    ]
    got = findings(steps, (data_race,))["data_race"]
    assert got and all("by task" in f["explanation"] for f in got)
    assert {f["var"] for f in got} == {"hits"}


def test_asyncio_lock_makes_it_clean():
    """An asyncio.Lock around each task's read-modify-write makes the program clean."""
    al = {"kind": "lock"}  # asyncio.Lock: a hand-off primitive (release sends, acquire receives)
    steps = [("a0", "fork", "a1", {"kind": "task"}), ("a0", "fork", "a2", {"kind": "task"})]
    for a in ("a1", "a2"):
        steps += [
            (a, "recv", "alock", al),
            (a, "read", "hits"),
            (a, "write", "hits"),
            (a, "send", "alock", al),
        ]
    steps += [("a0", "join", "a1"), ("a0", "join", "a2"), ("a0", "read", "hits")]
    assert_clean(steps)


def test_atomic_regions_are_not_synchronisation():
    """Writes in atomic regions of the same name still race."""
    steps = [
        *start("t1", "t2"),
        ("t1", "atomic_begin", "tx"),
        ("t1", "write", "x"),
        ("t1", "atomic_end", "tx"),
        ("t2", "atomic_begin", "tx"),
        ("t2", "write", "x"),
        ("t2", "atomic_end", "tx"),
    ]
    assert findings(steps, (data_race,))["data_race"]


def test_processes_do_not_share_memory():
    """Writes of the same variable name in two processes are neither a race nor a violation."""
    steps = [
        ("t0", "write", "x", {"pid": 1}),
        ("t1", "write", "x", {"pid": 2}),
    ]
    assert findings(steps, (data_race, inconsistent_locking)) == {
        "data_race": [],
        "inconsistent_locking": [],
    }


# --- lock order ----------------------------------------------------------------------------


def nested(u, a, b, line):
    return [
        (u, "acquire", a, {"line": line}),
        (u, "acquire", b, {"line": line + 1}),
        (u, "release", b),
        (u, "release", a),
    ]


def test_lock_order_inversion_with_both_edges_sites():
    """Nesting A, B and B, A in two threads is one error naming the cycle, units and four sites."""
    steps = [*start("t1", "t2"), *nested("t1", "A", "B", 10), *nested("t2", "B", "A", 20)]
    (f,) = findings(steps, (lock_order_inversion,))["lock_order_inversion"]
    assert f["var"] == "A -> B -> A"
    assert [s["line"] for s in f["sites"]] == [10, 11, 20, 21]
    assert f["units"] == ["T1", "T2"] and f["severity"] == "error"


def test_three_lock_cycle():
    """Three threads nesting A-B, B-C and C-A are one inversion naming the three-lock cycle."""
    steps = [*nested("t1", "A", "B", 10), *nested("t2", "B", "C", 20), *nested("t3", "C", "A", 30)]
    (f,) = findings(steps, (lock_order_inversion,))["lock_order_inversion"]
    assert f["var"] == "A -> B -> C -> A"


@pytest.mark.parametrize(
    "steps",
    [
        # a common gate lock G
        [
            ("t1", "acquire", "G"),
            *nested("t1", "A", "B", 10),
            ("t1", "release", "G"),
            ("t2", "acquire", "G"),
            *nested("t2", "B", "A", 20),
            ("t2", "release", "G"),
        ],
        # both edges from one unit
        [*nested("t1", "A", "B", 10), *nested("t1", "B", "A", 20)],
        # same order everywhere
        [*nested("t1", "A", "B", 10), *nested("t2", "A", "B", 20)],
    ],
    ids=["gate-lock", "one-unit", "consistent"],
)
def test_no_lock_order_inversion(steps):
    """Opposite nestings under a gate lock or in one thread, or one order, are no inversion."""
    assert findings(steps, (lock_order_inversion,))["lock_order_inversion"] == []


# --- deadlock ------------------------------------------------------------------------------


def test_deadlock_two_threads():
    """Two threads each holding a lock, blocked on the other's, are one deadlock with its roles."""
    steps = [
        *start("t1", "t2"),
        ("t1", "acquire", "A", {"line": 10}),
        ("t2", "acquire", "B", {"line": 20}),
        ("t1", "acquire_try", "B", {"line": 11}),
        ("t2", "acquire_try", "A", {"line": 21}),
        ("t0", "wait", "t1"),
    ]
    rows = findings(steps, (deadlock,))["deadlock"]
    got = [r for r in rows if r["kind"] == "deadlock"]
    assert len(got) == 1
    f = got[0]
    assert set(f["units"]) == {"T1", "T2"}
    assert sorted(s["line"] for s in f["sites"]) == [10, 11, 20, 21]
    roles = [e["role"] for e in f["events"]]
    assert roles == ["holds A", "blocks on B", "holds B", "blocks on A"]


def test_a_deadlock_of_lock_waits_comes_with_its_lock_order_inversion():
    """The two threads' deadlock gives the inversion A -> B -> A too (its acquires never ran)."""
    steps = [
        *start("t1", "t2"),
        ("t1", "acquire", "A", {"line": 10}),
        ("t2", "acquire", "B", {"line": 20}),
        ("t1", "acquire_try", "B", {"line": 11}),
        ("t2", "acquire_try", "A", {"line": 21}),
        ("t0", "wait", "t1"),
    ]
    rows = findings(steps, (deadlock,))["deadlock"]
    assert [(r["kind"], r["var"]) for r in rows if r["kind"] != "deadlock"] == [
        ("lock_order_inversion", "A -> B -> A")
    ]


def test_join_cycle():
    """Joining a thread that blocks on a lock the joiner holds is a deadlock of the two."""
    steps = [
        ("t0", "fork", "t1"),
        ("t0", "acquire", "L", {"line": 5}),
        ("t1", "acquire_try", "L", {"line": 8}),
        ("t0", "wait", "t1", {"line": 6}),
    ]
    (f,) = findings(steps, (deadlock,))["deadlock"]
    assert f["units"] == ["T0", "T1"]
    assert "waits for t1" in f["explanation"]


def test_self_deadlock():
    """A thread blocking on a lock it holds is a deadlock of that thread alone."""
    steps = [("t1", "acquire", "L"), ("t1", "acquire_try", "L")]
    (f,) = findings(steps, (deadlock,))["deadlock"]
    assert f["units"] == ["T1"]


def test_no_deadlock_when_the_acquire_went_through():
    """A blocked acquire that later went through, or that failed, is no deadlock."""
    steps = [
        ("t1", "acquire", "A"),
        ("t2", "acquire_try", "A"),
        ("t1", "release", "A"),
        ("t2", "acquire", "A"),
        ("t2", "release", "A"),
        ("t3", "acquire", "B"),
        ("t4", "acquire_try", "B"),
        ("t4", "acquire_fail", "B"),
    ]
    assert findings(steps, (deadlock,))["deadlock"] == []


def _foreign_release(released_by: str):
    """t1 takes L and writes x; ``released_by`` releases L; t3 takes L and writes x."""
    return [
        *start("t1", "t2", "t3"),
        ("t1", "acquire", "L"),
        ("t1", "write", "x"),
        (released_by, "release", "L"),
        ("t3", "acquire", "L"),
        ("t3", "write", "x"),
        ("t3", "release", "L"),
        *stop("t1", "t2", "t3"),
    ]


def test_a_lock_released_by_another_thread_does_not_order_the_holders():
    """Writes under a lock that a third thread released in between are a data race: the
    acquirer's write was never released to the next holder."""
    races = findings(_foreign_release("t2"), (data_race,))["data_race"]
    assert [f["var"] for f in races] == ["x"]


def test_a_lock_released_by_its_holder_orders_the_holders():
    """The same writes, with the lock released by the thread that took it: no race."""
    assert findings(_foreign_release("t1"), (data_race,))["data_race"] == []


def _request_after_a_joined_one(late_write: bool):
    """t1 writes x and is joined; then main starts t2, which writes x unlocked; with
    ``late_write``, t1 writes x once more after its join (an odd trace: nothing orders
    that write before t2's)."""
    steps = [*start("t1"), ("t1", "write", "x", {"line": 5}), *stop("t1")]
    if late_write:
        steps.append(("t1", "write", "x", {"line": 6}))
    steps += [*start("t2"), ("t2", "write", "x", {"line": 7}), *stop("t2")]
    return steps


def test_a_unit_joined_before_the_next_request_starts_is_ordered_before_it():
    """A thread per request, each joined before the next starts: no lock-set finding."""
    got = findings(_request_after_a_joined_one(late_write=False), (inconsistent_locking,))
    assert got["inconsistent_locking"] == []


def test_an_access_after_the_join_is_not_ordered_before_the_next_request():
    """The racy twin: a write after the unit's join still conflicts with the next one."""
    got = findings(_request_after_a_joined_one(late_write=True), (inconsistent_locking,))
    assert [(f["var"], [s["line"] for s in f["sites"]]) for f in got["inconsistent_locking"]] == [
        ("x", [6, 7])
    ]


def _deadlock_after(first: int, second: int) -> list[tuple]:
    """t1 nests A, B and t2 nests B, A once each (lines ``first``, ``first + 10``), then
    both block in the opposite order (lines ``second``, ``second + 10``)."""
    return [
        *start("t1", "t2"),
        *nested("t1", "A", "B", first),
        *nested("t2", "B", "A", first + 10),
        ("t1", "acquire", "A", {"line": second}),
        ("t2", "acquire", "B", {"line": second + 10}),
        ("t1", "acquire_try", "B", {"line": second + 1}),
        ("t2", "acquire_try", "A", {"line": second + 11}),
        ("t0", "wait", "t1"),
    ]


@pytest.mark.parametrize(("first", "second"), [(10, 10), (10, 50)], ids=["same", "other"])
def test_a_deadlock_the_lock_order_analysis_saw_coming_is_one_inversion(tmp_path, first, second):
    """When the nestings also succeeded earlier (at the deadlock's lines or others), the
    cycle is one lock_order_inversion beside the deadlock, not one from each analysis."""
    from tests.traces import write_steps
    from tracelens.analyze import analyze, load

    path = write_steps(_deadlock_after(first, second), tmp_path / "t.jsonl")
    report = analyze(load(path))
    kinds = sorted((f.kind, f.var) for f in report.findings)
    assert kinds == [("deadlock", "B, A"), ("lock_order_inversion", "A -> B -> A")]
