"""Each race is stated once: a lock-set finding is left out where a data race says it."""

from __future__ import annotations

from tests.traces import TraceBuilder
from tracelens.analyze import analyze, load


def _two_unlocked_writes(tmp_path, only):
    """Kinds found in two unlocked, unordered writes of x by two threads."""
    b = TraceBuilder()
    b.write("t1", "x")
    b.write("t2", "x")
    report = analyze(load(b.write_to(tmp_path / "t.jsonl")), only=only)
    return [f.kind for f in report.findings]


def test_unlocked_race_is_reported_as_data_race_only(tmp_path):
    """Two unlocked, unordered writes: data_race, and no inconsistent_locking for the same sites."""
    assert _two_unlocked_writes(tmp_path, ["predictive"]) == ["data_race"]


def test_race_hidden_by_incidental_lock_order_is_still_reported(tmp_path):
    """A release/acquire of an unrelated lock orders the writes: only the lock-set finding shows."""
    b = TraceBuilder()
    b.write("t1", "x")
    b.acquire("t1", "L")
    b.release("t1", "L")
    b.acquire("t2", "L")
    b.release("t2", "L")
    b.write("t2", "x")
    report = analyze(load(b.write_to(tmp_path / "t.jsonl")), only=["predictive"])

    assert [f.kind for f in report.findings] == ["inconsistent_locking"]


def _row(kind, var, *lines):
    from tracelens.analyze.findings import FINDING_SCHEMA

    return {
        **dict.fromkeys(FINDING_SCHEMA),
        "kind": kind,
        "var": var,
        "sites": [{"file": "app.py", "line": n, "func": "f"} for n in lines],
        "count": 1,
    }


def _lockset_sites(tmp_path, reported):
    """Lock-set findings (variable, sites) of two unordered unlocked writes on x and on y."""
    import polars as pl

    from tracelens.analyze.findings import FINDING_SCHEMA
    from tracelens.analyze.hb import inconsistent_locking, tables

    b = TraceBuilder()
    for var in ("x", "y"):
        b.write("t1", var, line=1)
        b.write("t2", var, line=2)
    events = load(b.write_to(tmp_path / "t.jsonl")).events
    rows = pl.DataFrame(reported, schema=FINDING_SCHEMA)
    found = inconsistent_locking(tables(events, cache=False), events, reported=rows)
    return sorted(
        (var, tuple(site["line"] for site in sites))
        for var, sites in found.select("var", "sites").iter_rows()
    )


def test_lockset_leaves_out_a_pair_of_sites_reported_in_either_order(tmp_path):
    """A data race on x stated as (2, 1) covers the lock-set finding on x at (1, 2)."""
    assert _lockset_sites(tmp_path, [_row("data_race", "x", 2, 1)]) == [("y", (1, 2))]


def test_lockset_keeps_pairs_on_other_variables_and_sites(tmp_path):
    """Rows on another variable, or on other sites of the same one, leave the finding."""
    reported = [_row("data_race", "z", 1, 2), _row("data_race", "x", 1, 3)]

    assert _lockset_sites(tmp_path, reported) == [("x", (1, 2)), ("y", (1, 2))]


def test_only_inconsistent_locking_still_shows_what_a_data_race_would_state(tmp_path):
    """Asked for the lock-set kind alone, the unlocked unordered writes show as one."""
    assert _two_unlocked_writes(tmp_path, ["inconsistent_locking"]) == ["inconsistent_locking"]
