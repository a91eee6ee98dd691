"""One finding per bug: grouping by kind and set of code sites, and the group links."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.traces import TraceBuilder
from tracelens.analyze import analyze, load
from tracelens.analyze.findings import EventRef, Finding, Site
from tracelens.analyze.grouping import group_findings

SITES = [Site("app.py", line, "f") for line in (1, 2, 3)]
KINDS = ["data_race", "lost_update", "inconsistent_locking", "lock_order_inversion"]


def _ref(seq: int, site: Site, ts: int) -> EventRef:
    return EventRef(
        role="r", seq=seq, ts=ts, pid=1, unit="t1", unit_name="t1", op="write",
        target="x", value=None, file=site.file, line=site.line, func=site.func,
    )  # fmt: skip


@st.composite
def raw_findings(draw: st.DrawFn) -> list[Finding]:
    n = draw(st.integers(0, 12))
    out = []
    for i in range(n):
        sites = tuple(draw(st.lists(st.sampled_from(SITES), min_size=1, max_size=3)))
        width = draw(st.integers(0, 50))
        events = tuple(_ref(10 * i + k, s, 1000 * (i + 1) + k * width) for k, s in enumerate(sites))
        out.append(
            Finding(
                kind=draw(st.sampled_from(KINDS)),
                severity=draw(st.sampled_from(["error", "warning"])),
                var=draw(st.sampled_from(["a", "b", "c"])),
                units=("t1",),
                sites=sites,
                count=draw(st.integers(1, 5)),
                events=events,
                explanation="",
                worst=events,
            )
        )
    return out


def _brute_groups(found: list[Finding]) -> list[list[Finding]]:
    """Partition by pairwise comparison: same kind and the same set of sites."""
    groups: list[list[Finding]] = []
    for f in found:
        for g in groups:
            if g[0].kind == f.kind and set(g[0].sites) == set(f.sites):
                g.append(f)
                break
        else:
            groups.append([f])
    return groups


@given(raw_findings())
def test_grouping_agrees_with_a_brute_force_partition(found: list[Finding]) -> None:
    """Each group is exactly one pairwise class: its kind, sites, count and variables."""
    grouped = group_findings(found)
    expected = {
        (g[0].kind, frozenset(g[0].sites)): (
            sum(f.count for f in g),
            sorted({f.var for f in g}),
        )
        for g in _brute_groups(found)
    }
    got = {(f.kind, frozenset(f.sites)): (f.count, sorted(f.variables)) for f in grouped}
    assert (len(grouped), got) == (len(expected), expected)


@given(raw_findings())
def test_findings_share_a_group_only_through_a_lost_update_covering_them(
    found: list[Finding],
) -> None:
    """A group of several findings has one lost update whose sites and variables cover the rest."""
    by_group: dict[str, list[Finding]] = {}
    for f in group_findings(found):
        by_group.setdefault(f.group, []).append(f)
    for members in by_group.values():
        if len(members) == 1:
            continue
        effects = [f for f in members if f.kind == "lost_update"]
        assert len(effects) == 1
        for cause in members:
            if cause is not effects[0]:
                assert cause.kind in ("data_race", "inconsistent_locking")
                assert set(cause.sites) <= set(effects[0].sites)
                assert set(cause.variables) & set(effects[0].variables)


@given(raw_findings(), st.randoms())
def test_grouping_does_not_depend_on_the_order_findings_come_in(
    found: list[Finding], rnd: Any
) -> None:
    """Shuffled input gives the same groups, group ids and links (analyses' row order varies)."""
    shuffled = list(found)
    rnd.shuffle(shuffled)

    def key(fs: list[Finding]) -> list[tuple[Any, ...]]:
        return sorted(
            (f.kind, f.group, f.count, [e.seq for e in f.events], sorted(f.variables)) for f in fs
        )

    assert key(group_findings(shuffled)) == key(group_findings(found))


@given(raw_findings())
def test_a_group_shows_its_first_and_its_widest_instance(found: list[Finding]) -> None:
    """The group's events are its earliest member's, its worst the widest window of any member."""
    for g in group_findings(found):
        members = [f for f in found if f.kind == g.kind and set(f.sites) == set(g.sites)]
        first = min(members, key=lambda f: f.events[0].seq)
        widest = max(members, key=lambda f: f.worst[-1].ts - f.worst[0].ts)
        assert g.events == first.events
        assert g.worst[-1].ts - g.worst[0].ts == widest.worst[-1].ts - widest.worst[0].ts


def _report(b: TraceBuilder, tmp_path: Path) -> list[Finding]:
    return analyze(load(b.write_to(tmp_path / "t.jsonl"))).findings


def test_one_race_on_ten_variables_at_the_same_two_lines_is_one_finding(tmp_path: Path) -> None:
    """Unlocked writes to counters[0..9] at lines 5 and 6 give one data race listing all ten."""
    b = TraceBuilder()
    for i in range(10):
        b.write("t1", f"counters[{i}]", line=5)
        b.write("t2", f"counters[{i}]", line=6)
    races = [f for f in _report(b, tmp_path) if f.kind == "data_race"]
    assert [(f.var_count, f.variables[0], f.variables[-1]) for f in races] == [
        (10, "counters[0]", "counters[9]")
    ]


def test_a_race_seen_in_both_orders_is_one_finding(tmp_path: Path) -> None:
    """Line 5 then 6 on x and line 6 then 5 on y are one data race with two occurrences."""
    b = TraceBuilder()
    b.write("t1", "x", line=5)
    b.write("t2", "x", line=6)
    b.write("t2", "y", line=6)
    b.write("t1", "y", line=5)
    races = [f for f in _report(b, tmp_path) if f.kind == "data_race"]
    assert [(f.count, set(f.variables)) for f in races] == [(2, {"x", "y"})]


def test_races_at_different_lines_stay_separate_findings(tmp_path: Path) -> None:
    """A race at lines 5/6 and another at lines 7/8 are two findings (the grouping's twin)."""
    b = TraceBuilder()
    b.write("t1", "x", line=5)
    b.write("t2", "x", line=6)
    b.write("t1", "y", line=7)
    b.write("t2", "y", line=8)
    races = [f for f in _report(b, tmp_path) if f.kind == "data_race"]
    assert sorted(f.var for f in races) == ["x", "y"]


def test_a_lost_update_and_its_data_race_share_a_group(tmp_path: Path) -> None:
    """Read, remote write, write: the lost update and both data races it shows share a group."""
    b = TraceBuilder()
    b.read("t1", "w", line=5)
    b.write("t2", "w", line=6)
    b.write("t1", "w", line=6)
    found = _report(b, tmp_path)
    lost = [f for f in found if f.kind == "lost_update"]
    linked = [f.kind for f in found if lost and f.group == lost[0].group]
    assert sorted(linked) == ["data_race", "data_race", "lost_update"]


def test_a_data_race_on_another_variable_keeps_its_own_group(tmp_path: Path) -> None:
    """A race at the lost update's lines but on another variable is not linked to it (the twin)."""
    b = TraceBuilder()
    b.read("t1", "w", line=5)
    b.write("t2", "w", line=6)
    b.write("t1", "w", line=6)
    b.write("t3", "other", line=5)
    b.write("t4", "other", line=7)
    found = _report(b, tmp_path)
    lost = next(f for f in found if f.kind == "lost_update")
    other = next(f for f in found if "other" in f.variables)
    assert other.group != lost.group
