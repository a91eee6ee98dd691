"""``reproduce.select``: a finding named by its number, fingerprint or group id."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tracelens.analyze import Finding, Site
from tracelens.exceptions import UsageError
from tracelens.reproduce import select


def _finding(kind: str, line: int, group: str) -> Finding:
    return Finding(
        kind=kind,
        severity="error",
        var="x",
        units=("a", "b"),
        sites=(Site("app.py", line, "f"),),
        count=1,
        events=(),
        explanation="",
        group=group,
    )


RACE = _finding("data_race", 1, "aaaa11112222")
LOST = replace(RACE, kind="lost_update")
OTHER = _finding("hang", 2, "eeee55556666")
FINDINGS = [OTHER, RACE, LOST]


def test_a_number_is_the_report_position() -> None:
    """``2`` is the second finding of the report."""
    assert select(FINDINGS, "2") == (2, RACE)


def test_a_fingerprint_names_its_finding() -> None:
    """A whole fingerprint, or a unique prefix of it, names its finding."""
    assert select(FINDINGS, LOST.fingerprint)[1] is LOST
    assert select(FINDINGS, LOST.fingerprint[:8])[1] is LOST


def test_a_group_id_names_its_first_finding() -> None:
    """A group id names the first finding of the group."""
    assert select(FINDINGS, "aaaa11112222")[1] is RACE
    assert select(FINDINGS, "eeee55556666")[1] is OTHER


@pytest.mark.parametrize("wanted", ["0", "4", "99", "abcdef99", "zz"])
def test_no_such_finding_is_a_usage_error(wanted: str) -> None:
    """A number out of range or an id no finding has is a usage error."""
    with pytest.raises(UsageError):
        select(FINDINGS, wanted)
