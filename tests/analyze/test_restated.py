"""analyze() states each race once: a lock-set finding is dropped where a data race says it."""

from __future__ import annotations

from tests.strategies import TraceBuilder
from tracelens.analyze import analyze, load


def test_unlocked_race_is_reported_as_data_race_only(tmp_path):
    """Two unlocked, unordered writes: data_race, and no inconsistent_locking for the same sites."""
    b = TraceBuilder()
    b.write("t1", "x")
    b.write("t2", "x")
    report = analyze(load(b.write_to(tmp_path / "t.jsonl")), only=["predictive"])

    assert [f.kind for f in report.findings] == ["data_race"]


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
        "sites": [{"file": "a.py", "line": n, "func": "f"} for n in lines],
        "count": 1,
    }


def test_restated_rows_are_matched_on_variable_and_sites_in_either_order():
    import polars as pl

    from tracelens.analyze import _drop_restated
    from tracelens.analyze.findings import FINDING_SCHEMA

    rows = pl.DataFrame(
        [
            _row("data_race", "x", 1, 2),
            _row("inconsistent_locking", "x", 2, 1),  # the same race: dropped
            _row("inconsistent_locking", "y", 1, 2),  # another variable: kept
            _row("inconsistent_locking", "x", 1, 3),  # other sites: kept
        ],
        schema=FINDING_SCHEMA,
    )
    kept = _drop_restated(rows).select("kind", "var").rows()

    il = "inconsistent_locking"
    assert kept == [("data_race", "x"), (il, "y"), (il, "x")]
