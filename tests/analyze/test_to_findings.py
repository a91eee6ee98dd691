"""to_findings: a findings frame and the same rows as dicts give the same Findings."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tracelens.analyze import ANALYSES, load
from tracelens.analyze.findings import FINDING_SCHEMA, to_findings
from tracelens.analyze.run import analysis

SAMPLES = sorted((Path(__file__).parents[2] / "sample_logs").glob("*.jsonl.gz"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name.split(".")[0])
def test_frame_and_rows_give_the_same_findings(path):
    """Every analysis's rows of a sample give the same Findings as a frame and as dicts."""
    events = load(path).events
    rows = pl.concat(
        [part for name in ANALYSES for part in analysis(name)(events)], how="diagonal_relaxed"
    )

    assert to_findings(rows) == to_findings(rows.iter_rows(named=True))


def _event(**kw):
    base = dict.fromkeys(FINDING_SCHEMA["events"].inner.to_schema(), None)  # type: ignore[union-attr]
    return {**base, "seq": 1, **kw}


def test_missing_fields_get_the_same_defaults_both_ways():
    """A frame and its dicts default null fields alike: unit name to unit, empty worst to events."""
    rows = pl.DataFrame(
        [
            {
                "kind": "data_race",
                "severity": "error",
                "var": "x",
                "units": ["t1", None],
                "sites": [{"file": None, "line": None, "func": "f"}],
                "count": 2,
                "events": [_event(unit="t1"), _event(role="r", locks=["L"], value="3")],
                "worst": [],
                "explanation": "e",
            },
            {
                "kind": "deadlock",
                "severity": "error",
                "var": "L",
                "units": None,
                "sites": [],
                "count": 1,
                "events": [],
                "worst": None,
                "explanation": "d",
            },
        ],
        schema=FINDING_SCHEMA,
    )
    fast = to_findings(rows)

    assert fast == to_findings(rows.iter_rows(named=True))
    assert fast[0].events[0].unit_name == "t1" and fast[0].events[1].locks == ("L",)
    assert fast[0].worst == fast[0].events and fast[1].events == ()


@pytest.mark.parametrize("n", [0, 1, 7])
def test_with_lists_equals_concat_list(n):
    """with_lists builds what pl.concat_list builds, also from nulls and list fields."""
    from tracelens.analyze.findings import with_lists

    frame = pl.DataFrame(
        {
            "a": [i if i % 3 else None for i in range(n)],
            "b": [f"s{i}" for i in range(n)],
            "l": [[f"L{i}"] * (i % 2) for i in range(n)],
        },
        schema={"a": pl.Int64, "b": pl.String, "l": pl.List(pl.String)},
    )
    x = pl.struct(pl.col("a"), pl.col("l"))
    y = pl.struct((pl.col("a") * 2).alias("a"), pl.lit([], dtype=pl.List(pl.String)).alias("l"))
    z = pl.struct(pl.lit(None, dtype=pl.Int64).alias("a"), pl.col("l"))

    got = with_lists(frame, {"s": [x, y, z], "t": [pl.col("b"), pl.col("b") + "!"]})
    want = frame.with_columns(
        pl.concat_list(x, y, z).alias("s"), pl.concat_list("b", pl.col("b") + "!").alias("t")
    )

    assert got.equals(want)


def _one_event_finding(**event):
    return {
        "kind": "lock_order_inversion",
        "severity": "error",
        "var": "A -> B -> A",
        "units": ["t1"],
        "sites": [],
        "count": 1,
        "events": [_event(unit="t1", **event)],
        "worst": [],
        "explanation": "e",
    }


def test_an_event_lists_at_most_max_listed_locks_and_counts_them_all():
    """25 held locks: the event lists the first MAX_LISTED_LOCKS, ``lock_count`` says 25."""
    from tracelens.analyze.findings import MAX_LISTED_LOCKS

    held = [f"L{i:02}" for i in range(25)]
    rows = pl.DataFrame([_one_event_finding(locks=held)], schema=FINDING_SCHEMA)
    (e,) = to_findings(rows)[0].events
    assert e.locks == tuple(held[:MAX_LISTED_LOCKS])
    assert e.lock_count == 25 and e.more_locks == 25 - MAX_LISTED_LOCKS
    assert e.to_dict()["lock_count"] == 25


def test_an_analysis_that_lists_fewer_locks_gives_their_count():
    """An event whose frame lists 2 locks but says 30 held keeps ``lock_count`` 30."""
    rows = pl.DataFrame(
        [_one_event_finding(locks=["A", "B"], lock_count=30)], schema=FINDING_SCHEMA
    )
    (e,) = to_findings(rows)[0].events
    assert e.locks == ("A", "B") and e.more_locks == 28


def test_an_event_with_few_locks_writes_no_lock_count():
    """3 held locks: all listed, and the JSON event has no ``lock_count`` (reports as before)."""
    rows = pl.DataFrame([_one_event_finding(locks=["A", "B", "C"])], schema=FINDING_SCHEMA)
    (e,) = to_findings(rows)[0].events
    assert e.locks == ("A", "B", "C") and e.lock_count == 0
    assert "lock_count" not in e.to_dict()
