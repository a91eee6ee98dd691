"""The catalogue of finding kinds agrees with the analyses and the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracelens.analyze import kinds
from tracelens.analyze.run import analysis

FINDINGS_DOC = Path(__file__).resolve().parents[2] / "docs" / "findings.md"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_every_kind_names_a_heading_of_the_findings_doc():
    """Each kind's docs anchor is the anchor of a ``##`` heading in docs/findings.md."""
    headings = [
        line[3:] for line in FINDINGS_DOC.read_text().splitlines() if line.startswith("## ")
    ]
    anchors = {_anchor(h) for h in headings}
    assert {k.anchor for k in kinds.KINDS.values()} <= anchors


def test_every_kind_names_an_analysis_of_the_catalogue():
    """Each kind is computed by an analysis that the catalogue lists."""
    assert {k.analysis for k in kinds.KINDS.values()} <= set(kinds.ANALYSES)


@pytest.mark.parametrize("name", sorted(kinds.ANALYSES))
def test_every_analysis_has_a_run_function(name):
    """Each analysis of the catalogue resolves to a module's ``run`` function."""
    assert callable(analysis(name))


def test_an_unknown_kind_gets_a_generic_entry():
    """A kind not in the catalogue (a newer report's) gets a warning entry named after it."""
    info = kinds.kind_info("torn_read")
    assert (info.id, info.name, info.severity) == ("torn_read", "TornRead", kinds.WARNING)


def test_severities_rank_from_error_to_note_then_the_unknown():
    """Error ranks before warning before note, and an unknown severity after all three."""
    assert [kinds.severity_rank(s) for s in ("error", "warning", "note", "fatal")] == [0, 1, 2, 3]
