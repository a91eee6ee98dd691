"""Renderers on hand-made reports: content, escaping of trace strings, schemas."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from tests.report import factories
from tests.report.factories import EVIL, FakeReport
from tracelens.report import FORMATS, RENDERERS, RenderOptions, html, json_, markdown, sarif, text

ROOT = RenderOptions(root=Path("/repo"))
DATA = Path(__file__).resolve().parents[1] / "data"
DOCS = Path(__file__).resolve().parents[2] / "docs"


# --- every format -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_an_empty_report(fmt: str, empty_report: FakeReport) -> None:
    """Every format renders a report without findings to non-empty output."""
    assert RENDERERS[fmt](empty_report, ROOT)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_a_trace_without_shared_state_says_so_and_how_to_record_it(fmt: str) -> None:
    """A report on events with no variable says no shared state was recorded, and how."""
    summary = {**factories.SUMMARY, "variables": 0}
    out = RENDERERS[fmt](FakeReport(findings=[], summary=summary), ROOT)
    assert "no shared state was recorded" in out
    assert "--instrument" in out


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_a_trace_with_shared_state_does_not_say_it_has_none(fmt: str, empty_report) -> None:
    """A clean report on a trace with variables does not claim none were recorded."""
    assert "no shared state was recorded" not in RENDERERS[fmt](empty_report, ROOT)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_names_each_finding_kind(fmt: str, report: FakeReport) -> None:
    """Every format's output names both finding kinds of the report."""
    out = RENDERERS[fmt](report, ROOT)
    assert "lost_update" in out and "atomicity_violation" in out


# --- text ---------------------------------------------------------------------------


def test_text_starts_with_the_summary_line(report: FakeReport) -> None:
    """The text report's first line counts errors, warnings and events."""
    first = text.render(report, ROOT).splitlines()[0]
    assert first.startswith("tracelens: 1 error, 1 warning in 1,234 events")


def test_text_draws_the_interleaving_as_numbered_steps(report: FakeReport) -> None:
    """The text report shows a finding's events as numbered steps with value and site."""
    out = text.render(report, ROOT)
    assert "1. Thread-1 reads model['weight'] = 1.0 at app.py:12" in out
    assert "2. Thread-2 writes model['weight'] = 1.1 at app.py:13" in out
    assert "3. Thread-1 writes model['weight'] = 1.1 at app.py:13" in out


def test_text_groups_findings_by_variable_worst_first(report: FakeReport) -> None:
    """The text report groups findings by variable, the one with an error first."""
    out = text.render(report, ROOT)
    assert out.index("model['weight']  (1 finding)") < out.index("cache  (1 finding)")


def test_text_counts_suppressed_findings_by_rule(report: FakeReport) -> None:
    """The text report counts suppressed findings under their rule and reason."""
    out = text.render(report, ROOT)
    assert "1 by atomicity_violation legacy_* (known, tracked in #12)" in out


def test_text_shows_trace_strings_literally_not_as_rich_markup(evil_report: FakeReport) -> None:
    """Rich markup in a trace string is printed literally in the text report."""
    out = text.render(evil_report, RenderOptions(width=400))
    assert "[bold red]x[/bold red]" in out


def test_text_with_color_does_not_style_trace_markup(evil_report: FakeReport) -> None:
    """With color on, rich markup in a trace string is still printed literally."""
    out = text.render(evil_report, RenderOptions(width=400, color=True))
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert "[bold red]x[/bold red]" in plain


def test_text_escapes_terminal_control_characters() -> None:
    """Terminal escape sequences in a trace string are printed escaped, not sent raw."""
    rep = FakeReport([factories.lost_update("x\x1b[2Jy")])
    out = text.render(rep, RenderOptions(width=400, color=True))
    assert "\x1b[2J" not in out and "x\\x1b[2Jy" in out


def test_text_is_plain_without_color(report: FakeReport) -> None:
    """Without color the text report has no ANSI escape codes."""
    assert "\x1b[" not in text.render(report, ROOT)


# --- json ---------------------------------------------------------------------------


def test_json_validates_against_the_report_schema(report: FakeReport) -> None:
    """The JSON report validates against REPORT_SCHEMA."""
    doc = json.loads(json_.render(report))
    jsonschema.Draft202012Validator(json_.REPORT_SCHEMA).validate(doc)


def test_json_findings_are_finding_to_dict(report: FakeReport) -> None:
    """A JSON finding is the Finding's to_dict() plus its stable fingerprint, worst first."""
    from tracelens.report.baseline import stable_fingerprint

    doc = json.loads(json_.render(report, ROOT))
    expected = factories.lost_update().to_dict()
    expected["stable_fingerprint"] = stable_fingerprint(factories.lost_update(), Path("/repo"))
    assert doc["findings"][0] == expected


def test_json_summary_has_the_contract_fields(report: FakeReport) -> None:
    """The JSON summary carries the report summary's contract fields and values."""
    summary = json.loads(json_.render(report))["summary"]
    assert {k: summary[k] for k in ("events", "variables", "units", "files", "skipped")} == {
        "events": 1234,
        "variables": 3,
        "units": 4,
        "files": 1,
        "skipped": 66,
    }


def test_json_counts_suppressed_findings_by_rule(report: FakeReport) -> None:
    """The JSON summary lists each suppression rule with its fields and count."""
    doc = json.loads(json_.render(report))
    assert doc["summary"]["suppressed_by_rule"] == [
        {
            "kind": "atomicity_violation",
            "var": "legacy_*",
            "site": "",
            "reason": "known, tracked in #12",
            "source": "",
            "count": 1,
        }
    ]


def test_json_names_the_tool_and_format_version(report: FakeReport) -> None:
    """The JSON report names the tool and its format version 2."""
    doc = json.loads(json_.render(report))
    assert doc["tool"]["name"] == "tracelens" and doc["format_version"] == 2


def test_json_schema_in_the_docs_is_the_one_the_code_uses() -> None:
    """The schema block in docs/report-format.md equals REPORT_SCHEMA."""
    doc = (DOCS / "report-format.md").read_text()
    block = re.search(r"<!-- schema -->\s*```json\n(.*?)```", doc, re.S)
    assert block is not None
    assert json.loads(block.group(1)) == json_.REPORT_SCHEMA


# --- markdown -----------------------------------------------------------------------


def _md_html(md: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(md)


def test_markdown_lists_findings_in_a_table(report: FakeReport) -> None:
    """The Markdown report has a table with a header row and one row per finding."""
    rows = [ln for ln in markdown.render(report, ROOT).splitlines() if ln.startswith("| ")]
    assert len(rows) == 3  # header + two findings


def test_markdown_trace_strings_cannot_inject_html(evil_report: FakeReport) -> None:
    """Trace strings cannot inject a script or img tag into the rendered Markdown."""
    rendered = _md_html(markdown.render(evil_report))
    assert "<script" not in rendered and "<img" not in rendered


def test_markdown_trace_strings_cannot_break_the_table(evil_report: FakeReport) -> None:
    """Pipes in trace strings do not add cells: a finding's row keeps its six cells."""
    rendered = _md_html(markdown.render(evil_report))
    row = rendered.split("<tbody>")[1].split("</tr>")[0]
    assert row.count("<td") == 6


def test_markdown_trace_strings_cannot_close_the_details_block(
    evil_report: FakeReport,
) -> None:
    """A </details> in a trace string does not close the report's details block."""
    rendered = _md_html(markdown.render(evil_report))
    assert rendered.count("</details>") == 1


def test_markdown_code_span_survives_backticks() -> None:
    """A code span whose text holds backticks renders that text unchanged."""
    rendered = _md_html(markdown.code("a``b`"))
    assert "<code>a``b`</code>" in rendered


def test_markdown_text_defuses_mentions() -> None:
    """An @mention in trace text no longer reads as an @mention."""
    assert "@octocat" not in markdown.text("@octocat")


# --- html ---------------------------------------------------------------------------


def test_html_escapes_a_script_tag_in_a_variable_name(evil_report: FakeReport) -> None:
    """A script tag in a variable name is HTML-escaped."""
    out = html.render(evil_report)
    assert "<script" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out


def test_html_escapes_a_tag_in_a_file_name(evil_report: FakeReport) -> None:
    """A tag in a file name does not reach the HTML unescaped."""
    assert "<img" not in html.render(evil_report)


def test_html_loads_nothing_from_the_network(report: FakeReport) -> None:
    """The HTML report has no network URL, stylesheet link, CSS import or script."""
    out = html.render(report)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", out)
    assert "<link" not in out and "@import" not in out and "<script" not in out


def test_html_draws_one_timeline_per_finding(report: FakeReport) -> None:
    """The HTML report draws one SVG timeline per finding."""
    out = html.render(report)
    assert out.count("<svg") == len(report.findings)


@pytest.mark.parametrize(
    ("mark", "count"),
    [('class="lane"', 2), ('class="window error"', 1), ("remote", 1), ('class="link"', 1)],
    ids=["lane per unit", "window", "remote mark", "link"],
)
def test_html_timeline_has_a_lane_per_unit_a_window_and_a_remote_mark(
    mark: str, count: int
) -> None:
    """A lost update's timeline has a lane per unit, one error window, one remote mark, one link."""
    svg = html.timeline_svg(factories.lost_update().events)
    assert svg.count(mark) == count


# --- sarif --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_schema() -> dict:
    return json.loads((DATA / "sarif-schema-2.1.0.json").read_text())


def test_sarif_validates_against_the_official_schema(
    report: FakeReport, sarif_schema: dict
) -> None:
    """The SARIF output validates against the official SARIF 2.1.0 schema."""
    doc = json.loads(sarif.render(report, ROOT))
    jsonschema.validators.validator_for(sarif_schema)(sarif_schema).validate(doc)


def test_sarif_evil_report_validates_against_the_official_schema(
    evil_report: FakeReport, sarif_schema: dict
) -> None:
    """SARIF of a report with markup in its strings still validates against the schema."""
    doc = json.loads(sarif.render(evil_report, ROOT))
    jsonschema.validators.validator_for(sarif_schema)(sarif_schema).validate(doc)


CONTROL_VAR = "x\x1b]0;title\x07\x1b[2J\u202ey"


def _strings(doc: object) -> list[str]:
    if isinstance(doc, dict):
        return [s for k, v in doc.items() for s in (k, *_strings(v))]
    if isinstance(doc, list):
        return [s for v in doc for s in _strings(v)]
    return [doc] if isinstance(doc, str) else []


def test_sarif_escapes_control_characters_of_the_trace(sarif_schema: dict) -> None:
    """No string of the SARIF log keeps an ESC, BEL or U+202E of the trace; it stays valid."""
    f = factories.lost_update(CONTROL_VAR)
    doc = json.loads(sarif.render(FakeReport(findings=[f], summary={}), ROOT))
    jsonschema.validators.validator_for(sarif_schema)(sarif_schema).validate(doc)
    strings = _strings(doc)
    assert not [s for s in strings if any(c in s for c in "\x1b\x07\u202e")]
    assert "x\\x1b]0;title\\x07\\x1b[2J\\u202ey" in doc["runs"][0]["results"][0]["message"]["text"]


@pytest.mark.parametrize(
    ("file", "uri"),
    [
        ("/repo/my app/%20#1?.py", "my%20app/%2520%231%3F.py"),
        ("/repo/caf\u00e9/\u5b57.py", "caf%C3%A9/%E5%AD%97.py"),
        ("/repo/a:b.py", "a%3Ab.py"),
    ],
)
def test_sarif_relative_uris_are_percent_encoded(file: str, uri: str) -> None:
    """Spaces, %, #, ?, : and non-ASCII in a path inside the root are percent-encoded."""
    f = factories.lost_update(file=file)
    doc = json.loads(sarif.render(FakeReport(findings=[f], summary={}), ROOT))
    loc = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": uri, "uriBaseId": "%SRCROOT%"}


def test_sarif_absolute_uris_are_percent_encoded() -> None:
    """A path outside the root is a file: URI with its special characters encoded."""
    f = factories.lost_update(file="/else where/#\u00e9?.py")
    doc = json.loads(sarif.render(FakeReport(findings=[f], summary={}), ROOT))
    loc = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "file:///else%20where/%23%C3%A9%3F.py"


@given(st.text(st.characters(exclude_categories=("Cs",))))
def test_sarif_uris_are_rfc3986_and_decode_to_the_path(path: str) -> None:
    """A URI path holds only unreserved characters, / and %XX, and decodes to the path."""
    uri = sarif.uri_path(path)
    assert re.fullmatch(r"(?:[A-Za-z0-9._~/-]|%[0-9A-F]{2})*", uri)
    assert unquote(uri) == path


def test_sarif_uri_of_an_undecodable_name_encodes_its_byte() -> None:
    """A surrogate-escaped byte of a file name is percent-encoded as that byte."""
    assert sarif.uri_path("caf\udce9.py") == "caf%E9.py"


def test_sarif_declares_a_rule_per_kind_with_descriptions(report: FakeReport) -> None:
    """The lost_update rule has short and full descriptions, help, and level error."""
    driver = json.loads(sarif.render(report, ROOT))["runs"][0]["tool"]["driver"]
    rule = next(r for r in driver["rules"] if r["id"] == "lost_update")
    assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
    assert rule["help"]["text"] and rule["defaultConfiguration"]["level"] == "error"


def test_sarif_result_is_at_the_first_site_relative_to_the_root(report: FakeReport) -> None:
    """A result is located at its first site, as a path relative to the source root."""
    result = json.loads(sarif.render(report, ROOT))["runs"][0]["results"][0]
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "app.py", "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == 12


def test_sarif_uses_an_absolute_uri_outside_the_root(report: FakeReport) -> None:
    """A site outside the source root is an absolute file URI."""
    result = json.loads(sarif.render(report, RenderOptions(root=Path("/else"))))
    loc = result["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "file:///repo/app.py"


def test_sarif_code_flow_has_a_thread_flow_per_unit_in_execution_order(
    report: FakeReport,
) -> None:
    """The code flow has one thread flow per unit, with the steps' execution order."""
    result = json.loads(sarif.render(report, ROOT))["runs"][0]["results"][0]
    flows = result["codeFlows"][0]["threadFlows"]
    orders = {f["id"]: [loc["executionOrder"] for loc in f["locations"]] for f in flows}
    assert orders == {"t1": [1, 3], "t2": [2]}


def test_sarif_fingerprint_is_the_findings(report: FakeReport) -> None:
    """A result's partial fingerprint is the finding's fingerprint."""
    result = json.loads(sarif.render(report, ROOT))["runs"][0]["results"][0]
    assert result["partialFingerprints"] == {
        sarif.FINGERPRINT_KEY: factories.lost_update().fingerprint
    }


def test_sarif_related_location_is_the_other_site(report: FakeReport) -> None:
    """A result's first related location is the remote write's site."""
    result = json.loads(sarif.render(report, ROOT))["runs"][0]["results"][0]
    related = result["relatedLocations"][0]["physicalLocation"]["region"]["startLine"]
    assert related == 13


def test_sarif_reports_suppressed_findings_as_suppressed(report: FakeReport) -> None:
    """A suppressed finding is a result with a suppression justified by the rule's reason."""
    results = json.loads(sarif.render(report, ROOT))["runs"][0]["results"]
    suppressed = [r for r in results if "suppressions" in r]
    assert len(suppressed) == 1
    assert suppressed[0]["suppressions"][0]["justification"] == "known, tracked in #12"


@pytest.mark.parametrize("render", [json_.render, sarif.render], ids=["json", "sarif"])
def test_evil_string_is_in_every_json_output_unchanged(render, evil_report: FakeReport) -> None:
    """A markup-laden variable name appears unchanged in the JSON and SARIF output."""
    assert EVIL in render(evil_report, ROOT)


# --- one bug, one entry ------------------------------------------------------------


def _bug_report() -> FakeReport:
    """A lost update and the data race behind it (one group), on ten variables."""
    import dataclasses

    lost = factories.lost_update()
    names = tuple(f"counters[{i}]" for i in range(10))
    race = dataclasses.replace(lost, kind="data_race", events=lost.events[1:], group="g1")
    return FakeReport(
        findings=[race, dataclasses.replace(lost, group="g1", vars=names[:1] + names[1:])],
        summary={"events": 10},
    )


def _shown(fmt: str, out: str) -> str:
    """What a reader sees: Markdown rendered to HTML, HTML entities decoded."""
    import html as html_lib

    return html_lib.unescape(_md_html(out) if fmt == "markdown" else out)


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_a_finding_on_many_variables_names_a_few_and_the_count(fmt: str) -> None:
    """Ten variables show as the first three, an ellipsis, the last and '(10 variables)'."""
    out = _shown(fmt, RENDERERS[fmt](_bug_report(), ROOT))
    assert "counters[0], counters[1], counters[2] \u2026 counters[9] (10 variables)" in out


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_a_lost_update_says_it_is_what_the_race_above_did(fmt: str) -> None:
    """The lost update of a group is labelled as the effect of the data race shown before it."""
    out = _shown(fmt, RENDERERS[fmt](_bug_report(), ROOT))
    said = "What the data race above did in this run (bug g1)."
    assert said in out and out.index("data_race") < out.index(said)


def test_a_finding_alone_in_its_group_has_no_bug_note(report: FakeReport) -> None:
    """Findings of distinct groups say nothing about other findings (the twin)."""
    assert "Bug " not in text.render(report, ROOT) and "did in this run" not in text.render(
        report, ROOT
    )


def test_the_text_report_gives_the_fix_advice() -> None:
    """Each text finding ends with the rule's fix advice, as Markdown and HTML give it."""
    out = text.render(_bug_report(), RenderOptions(root=Path("/repo"), width=400))
    assert "fix: Make the read and the write one atomic step" in out


def test_the_headline_counts_the_bugs_when_findings_share_one() -> None:
    """A lost update and its race are '2 errors (1 bug)' in the first line."""
    assert "2 errors (1 bug) in 10 events" in text.render(_bug_report(), ROOT).splitlines()[0]


def test_unused_suppressions_are_listed_in_text_and_json(report: FakeReport) -> None:
    """A rule that matched nothing appears under 'Unused suppressions' and in the JSON summary."""
    import dataclasses

    rule = factories.FakeRule(kind="data_race", var="gone", site="", reason="old")
    rep = dataclasses.replace(report, unused_suppressions=[rule])
    doc = json.loads(json_.render(rep))
    assert "Unused suppressions (1)" in text.render(rep, ROOT)
    assert [r["var"] for r in doc["summary"]["unused_suppressions"]] == ["gone"]
    jsonschema.validate(doc, json_.REPORT_SCHEMA)


SAMPLES = sorted((Path(__file__).parents[2] / "sample_logs").glob("*.jsonl.gz"))


@pytest.fixture(scope="module")
def sample_sarifs() -> list[dict]:
    from tracelens.analyze import analyze, load

    return [json.loads(sarif.render(analyze(load(p)), ROOT)) for p in SAMPLES]


def test_sarif_rules_default_to_the_level_their_results_have(sample_sarifs: list[dict]) -> None:
    """On every sample, each result's level is its rule's defaultConfiguration level."""
    pairs = set()
    for doc in sample_sarifs:
        run = doc["runs"][0]
        rules = run["tool"]["driver"]["rules"]
        for r in run["results"]:
            pairs.add((r["level"], rules[r["ruleIndex"]]["defaultConfiguration"]["level"]))
    assert pairs and all(a == b for a, b in pairs)


def test_sarif_rules_point_at_their_section_of_the_findings_docs(report: FakeReport) -> None:
    """Each rule's helpUri is docs/findings.md#<the kind's anchor>, a heading that exists."""
    from tracelens.analyze.kinds import KINDS

    rules = json.loads(sarif.render(report, ROOT))["runs"][0]["tool"]["driver"]["rules"]
    assert {r["id"]: r["helpUri"] for r in rules if r["id"] in KINDS} == {
        k: f"docs/findings.md#{info.anchor}" for k, info in KINDS.items()
    }


def test_sarif_gives_the_second_access_of_a_same_line_race_as_a_related_location(
    sample_sarifs: list[dict],
) -> None:
    """The article's race (both accesses at line 26) still has the other access related."""
    article = sample_sarifs[[p.name for p in SAMPLES].index("article_racy.jsonl.gz")]
    race = next(r for r in article["runs"][0]["results"] if r["ruleId"] == "data_race")
    related = race["relatedLocations"]
    assert [loc["physicalLocation"]["region"]["startLine"] for loc in related] == [26]


def test_sarif_of_every_sample_validates(sample_sarifs: list[dict], sarif_schema: dict) -> None:
    """The SARIF of each bundled sample is valid SARIF 2.1.0."""
    check = jsonschema.validators.validator_for(sarif_schema)(sarif_schema)
    for doc in sample_sarifs:
        check.validate(doc)


def _many_findings(n: int) -> FakeReport:
    """n lost updates at distinct lines (each its own finding)."""
    findings = [
        factories.lost_update(var=f"counters[{i}]", file=f"/repo/m{i}.py") for i in range(n)
    ]
    return FakeReport(findings=findings, summary={"events": 10 * n})


def test_markdown_of_thousands_of_findings_fits_one_github_comment() -> None:
    """3,000 findings render within 65,536 characters, as Markdown that parses to HTML."""
    out = markdown.render(_many_findings(3000), ROOT)
    assert len(out) <= 65_536
    rendered = _md_html(out)
    assert "<table>" in rendered and "not shown in detail" in rendered


def test_markdown_cap_builds_only_the_details_it_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the cap, the details of a finding past the cap are never built."""
    built = []
    real = markdown._finding

    def counting(*args: object, **kwargs: object) -> list[str]:
        built.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(markdown, "_finding", counting)
    out = markdown.render(_many_findings(300), ROOT)
    assert len(built) == out.count("<details>") + 1


def test_markdown_that_fits_is_not_cut() -> None:
    """A report under the cap keeps every finding's details and no note (the cap's twin)."""
    out = markdown.render(_many_findings(3), ROOT)
    assert out.count("<details>") == 3 and "not shown" not in out


def test_markdown_cap_can_be_lifted() -> None:
    """max_chars=None renders every finding's details however long the report."""
    out = markdown.render(_many_findings(300), RenderOptions(root=Path("/repo"), max_chars=None))
    assert out.count("<details>") == 300 and len(out) > 65_536


def test_text_quiet_prints_the_summary_line_only(report: FakeReport) -> None:
    """max_findings=0 (--quiet) leaves the headline alone."""
    out = text.render(report, RenderOptions(root=Path("/repo"), max_findings=0, width=400))
    assert out.strip().count("\n") == 0 and out.startswith("tracelens: ")


def test_text_max_findings_shows_the_worst_and_counts_the_rest() -> None:
    """max_findings=2 of 5 shows two findings and says 3 more are not shown."""
    out = text.render(
        _many_findings(5), RenderOptions(root=Path("/repo"), max_findings=2, width=300)
    )
    assert out.count("ERROR lost_update") == 2 and "3 more findings not shown" in out
