"""Every renderer shows the stacks of a finding's accesses and where their units were
created, and names files in explanations as it names the sites (relative to the root)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import orjson
import pytest

from tests.helpers import record_pool_race, record_racy_workers
from tracelens.analyze import Report, analyze, load
from tracelens.report import html, json_, markdown, sarif, text
from tracelens.report._common import RenderOptions, explanation_text
from tracelens.tui.widgets.finding_detail import finding_text

HERE = Path(__file__).resolve()
SARIF_SCHEMA = HERE.parents[1] / "data" / "sarif-schema-2.1.0.json"
#: Where the racy program's functions are (its stacks' frames).
HELPERS = str(HERE.parents[1] / "helpers.py")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    path = record_racy_workers(tmp_path_factory.mktemp("stacks") / "t.jsonl")
    return analyze(load(path), only=["data_race"])


OPTIONS = RenderOptions(root=HERE.parents[1], width=240)  # tests/: helpers.py


def test_text_shows_both_stacks_and_where_each_thread_was_created(report: Report) -> None:
    """The text report lists each access's frames and each thread's creation, relative."""
    out = text.render(report, OPTIONS)
    assert "#0 bump helpers.py:" in out
    assert "#1 work helpers.py:" in out
    assert "Thread w0 created by thread MainThread at:" in out
    assert "#0 start_workers helpers.py:" in out
    assert HELPERS not in out  # explanations too: relative, as the sites


def test_markdown_shows_the_stacks_in_an_escaped_block(report: Report) -> None:
    """Markdown puts the stacks in a <pre> block, relative to the root."""
    out = markdown.render(report, OPTIONS)
    block = out[out.index("<pre>") : out.index("</pre>")]
    assert "#1 work helpers.py:" in block
    assert "created by thread MainThread at:" in block
    assert HELPERS not in out


def test_html_shows_the_stacks_as_frame_lists(report: Report) -> None:
    """HTML lists the frames of each stack, numbered from 0."""
    out = html.render(report, OPTIONS)
    assert '<ol class="frames" start="0">' in out
    assert "work <code>helpers.py:" in out
    assert "created by thread MainThread at:" in out


def test_sarif_gives_each_result_its_stacks(report: Report) -> None:
    """Each SARIF result has stacks (accesses, then creations) and still validates."""
    doc = sarif.to_dict(report, OPTIONS)
    jsonschema.validate(doc, json.loads(SARIF_SCHEMA.read_text()))
    result = doc["runs"][0]["results"][0]
    messages = [s["message"]["text"] for s in result["stacks"]]
    assert any(m.endswith("created by thread MainThread at:") for m in messages)
    frames = result["stacks"][0]["frames"]
    names = [f["location"]["logicalLocations"][0]["name"] for f in frames]
    assert names[:2] == ["bump", "work"]


def test_the_tui_finding_pane_says_where_each_thread_was_created(report: Report) -> None:
    """The TUI's finding preview shows the frames and "Thread ... created by ... at:"."""
    shown = finding_text(report.findings[0], report.findings).plain
    assert "created by thread MainThread at:" in shown
    assert "#1 work" in shown


@pytest.fixture(scope="module")
def pool_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    path = record_pool_race(tmp_path_factory.mktemp("pool") / "t.jsonl")
    return analyze(load(path), only=["data_race"])


def _rendered(report: Report) -> dict[str, str]:
    """The report in every renderer and the TUI's finding pane, as text."""
    sarif_doc = sarif.to_dict(report, OPTIONS)
    return {
        "text": text.render(report, OPTIONS),
        "markdown": markdown.render(report, OPTIONS),
        "html": html.render(report, OPTIONS),
        "sarif": json.dumps(sarif_doc),
        "tui": finding_text(report.findings[0], report.findings).plain,
    }


#: Its workers are numbered by how many pools the process made before.
JOB = re.compile(r"Job on thread ThreadPoolExecutor-\d+_\d+ submitted by thread MainThread at:")


def test_every_renderer_says_where_a_thread_pool_job_was_submitted(pool_report: Report) -> None:
    """Text, Markdown, HTML, SARIF and the TUI show each job's submit stack next to its
    worker's creation stack."""
    for name, out in _rendered(pool_report).items():
        assert len(JOB.findall(out)) >= 2, name  # one per job
        assert "submit_one" in out and "submit_other" in out, name
        assert "created by thread MainThread at:" in out, name


def test_the_json_report_gives_each_job_event_its_submit_stack(pool_report: Report) -> None:
    """A job's event has submitted_at (the submit's frames) and submitted_by; it validates."""
    doc = orjson.loads(json_.render(pool_report))
    jsonschema.validate(doc, json_.REPORT_SCHEMA)
    events = doc["findings"][0]["events"]
    assert {e["submitted_at"][0]["func"] for e in events} == {"submit_one", "submit_other"}
    assert {e["submitted_by"] for e in events} == {"thread MainThread"}


def test_a_plain_thread_race_shows_no_job(report: Report) -> None:
    """Threads started by hand: no renderer mentions a submitted job, the JSON lists none."""
    for name, out in _rendered(report).items():
        assert "submitted" not in out, name
    doc = orjson.loads(json_.render(report))
    assert all(e["submitted_at"] == [] for e in doc["findings"][0]["events"])


def test_an_explanation_names_its_files_relative_to_the_root(tmp_path: Path) -> None:
    """A lost update's and a race's sentences name files as the sites do: relative to the
    root, absolute outside it."""
    app = str(tmp_path / "pkg" / "app.py")
    lines = [
        {"tl": 1, "event": "read", "seq": 1, "pid": 7, "unit": "t1", "var": "x", "value": 0,
         "file": app, "line": 5, "func": "f"},
        {"tl": 1, "event": "write", "seq": 2, "pid": 7, "unit": "t2", "var": "x", "value": 1,
         "file": app, "line": 6, "func": "g"},
        {"tl": 1, "event": "write", "seq": 3, "pid": 7, "unit": "t1", "var": "x", "value": 1,
         "file": app, "line": 7, "func": "f"},
    ]  # fmt: skip
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    found = analyze(load(path)).findings
    assert {f.kind for f in found} >= {"lost_update", "data_race"}
    for f in found:
        assert app in f.explanation  # as recorded: the JSON report's text
        assert app not in explanation_text(f, tmp_path)
        assert "pkg/app.py:" in explanation_text(f, tmp_path)
        assert app in explanation_text(f, tmp_path / "elsewhere")
    out = text.render(Report(findings=found, summary={}), RenderOptions(root=tmp_path))
    assert app not in out
