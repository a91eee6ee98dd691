"""Suppression rules, and the analyze()/stats() API the CLI and renderers rely on."""

from __future__ import annotations

import pytest

from tests.traces import TraceBuilder
from tracelens.analyze import (
    ANALYSES,
    Report,
    Suppression,
    SuppressionError,
    analyze,
    find_pyproject_suppressions,
    load,
    load_suppressions,
    stats,
)
from tracelens.analyze.findings import EventRef, Finding, Site


def finding(kind="lost_update", var="stats.hits", file="/src/app/stats.py", line=28, func="bump"):
    e = EventRef("local read", 0, 0, 1, "t1", "w", "read", var, None, file, line, func)
    return Finding(kind, "error", var, ("w",), (Site(file, line, func),), 1, (e,), "x")


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        (Suppression(kind="lost_update", reason="r"), True),
        (Suppression(kind="data_race", reason="r"), False),
        (Suppression(var="stats.*", reason="r"), True),
        (Suppression(var="model*", reason="r"), False),
        (Suppression(site="app/stats.py:28", reason="r"), True),  # end of an absolute path
        (Suppression(site="app/stats.py:*", reason="r"), True),
        (Suppression(site="*/stats.py:29", reason="r"), False),
        (Suppression(site="/src/app/stats.py:28", reason="r"), True),
        (Suppression(site="bump", reason="r"), True),  # a function name
        (Suppression(site="pp/stats.py:28", reason="r"), False),  # not a whole path part
        (Suppression(kind="lost_update", var="other", reason="r"), False),  # all must match
    ],
)
def test_rule_matching(rule, matches):
    """A rule matches a finding only when every field it names (kind, var, site) matches."""
    assert rule.matches(finding()) is matches


def test_suppression_file_with_suppress_tables(tmp_path):
    """Each [[suppress]] table of a suppression file becomes one rule, in file order."""
    f = tmp_path / "tracelens.toml"
    f.write_text(
        '[[suppress]]\nkind = "lost_update"\nvar = "stats.*"\nreason = "approximate"\n'
        '[[suppress]]\nsite = "app/cache.py:*"\nreason = "benign lazy init"\n'
    )
    rules = load_suppressions(f)
    assert [(r.kind, r.var, r.site, r.reason) for r in rules] == [
        ("lost_update", "stats.*", None, "approximate"),
        (None, None, "app/cache.py:*", "benign lazy init"),
    ]


def test_pyproject_table_found_from_a_subdirectory(tmp_path):
    """The [tool.tracelens] rules of a pyproject.toml above the start directory are found."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.tracelens]\n'
        'suppress = [{kind = "lost_update", var = "hits", reason = "counter"}]\n'
    )
    sub = tmp_path / "src" / "pkg"
    sub.mkdir(parents=True)
    [rule] = find_pyproject_suppressions(sub)
    assert (rule.kind, rule.var, rule.reason) == ("lost_update", "hits", "counter")


def test_pyproject_without_tracelens_table_has_no_rules(tmp_path):
    """A pyproject.toml without a [tool.tracelens] table gives no rules."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_pyproject_suppressions(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[suppress]\n", "is not valid TOML"),
        ('[[suppress]]\nkind = "lost_update"\n', "rule 1 needs a reason"),
        ('[[suppress]]\nreason = "x"\n', "must name a kind, var or site"),
        ('[[suppress]]\nkind = "lost_updates"\nreason = "x"\n', "unknown kind 'lost_updates'"),
        ('[[suppress]]\nvars = "x"\nreason = "x"\n', "unknown key 'vars'"),
        ('[[suppress]]\nvar = 3\nreason = "x"\n', "var must be a string"),
        ('suppress = "x"\n', "must be a list of tables"),
    ],
)
def test_bad_suppression_files_have_one_line_messages(tmp_path, text, message):
    """Each kind of bad suppression file raises SuppressionError with a one-line message."""
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(SuppressionError, match=message) as err:
        load_suppressions(f)
    assert "\n" not in str(err.value)


def test_missing_suppression_file(tmp_path):
    """A missing suppression file raises SuppressionError saying there is no such file."""
    with pytest.raises(SuppressionError, match="no such file"):
        load_suppressions(tmp_path / "nope.toml")


def lost_update_trace(tmp_path):
    b = TraceBuilder()
    b.read("t1", "hits")
    b.write("t2", "hits")
    b.write("t1", "hits")
    b.acquire("t1", "L")
    b.release("t1", "L")
    return load(b.write_to(tmp_path / "t.jsonl"))


def test_analyze_applies_suppressions_and_counts_them(tmp_path):
    """A suppressed finding moves from findings to suppressed, and the summary counts it there."""
    rule = Suppression(kind="lost_update", var="hits", reason="approximate counter")
    report = analyze(lost_update_trace(tmp_path), only=["windows"], suppressions=[rule])
    assert isinstance(report, Report)
    assert report.findings == []
    assert [(f.var, r) for f, r in report.suppressed] == [("hits", rule)]
    assert report.summary["suppressed"] == 1
    assert report.summary["findings"] == 0


def test_analyze_summary(tmp_path):
    """The summary gives the trace's sizes, findings by kind and severity, time span and files."""
    report = analyze(lost_update_trace(tmp_path), only=["windows"])
    summary = report.summary
    assert {k: summary[k] for k in ("events", "variables", "units", "sync_objects")} == {
        "events": 5,
        "variables": 1,
        "units": 2,
        "sync_objects": 1,
    }
    assert summary["findings_by_kind"] == {"lost_update": 1}
    assert summary["findings_by_severity"] == {"error": 1, "warning": 0, "note": 0}
    assert (summary["first_ts"], summary["last_ts"], summary["time_span_ns"]) == (1000, 1400, 400)
    assert (summary["files"], summary["skipped"]) == (1, 0)
    assert report.stats.events == 5


def test_only_by_kind(tmp_path):
    """only=[kind] keeps the findings of that kind and none of another."""
    trace = lost_update_trace(tmp_path)
    assert [f.kind for f in analyze(trace, only=["lost_update"]).findings] == ["lost_update"]
    assert analyze(trace, only=["atomicity_violation"]).findings == []


def test_only_by_analysis_name(tmp_path):
    """only=[analysis name] runs that analysis and gives its findings."""
    trace = lost_update_trace(tmp_path)
    assert len(analyze(trace, only=["windows"]).findings) == 1


def test_only_an_unknown_name_is_an_error(tmp_path):
    """only= with a name that is neither an analysis nor a kind raises ValueError naming it."""
    trace = lost_update_trace(tmp_path)
    with pytest.raises(ValueError, match="unknown analysis or kind 'nope'"):
        analyze(trace, only=["nope"])


def test_every_registered_analysis_yields_frames_of_the_finding_schema(tmp_path):
    """Each analysis yields collected frames of ``FINDING_SCHEMA``, then optional columns only."""
    import polars as pl

    from tracelens.analyze.findings import FINDING_SCHEMA, OPTIONAL_FINDING_COLUMNS
    from tracelens.analyze.run import analysis

    events = lost_update_trace(tmp_path).events
    for name in ANALYSES:
        parts = list(analysis(name)(events))
        assert parts
        for out in parts:
            assert isinstance(out, pl.DataFrame)
            head = dict(list(out.schema.items())[: len(FINDING_SCHEMA)])
            rest = dict(list(out.schema.items())[len(FINDING_SCHEMA) :])
            assert head == dict(FINDING_SCHEMA)
            assert rest.items() <= dict(OPTIONAL_FINDING_COLUMNS).items()


def test_stats(tmp_path):
    """stats() gives the trace's event, process and malformed-line counts."""
    numbers = stats(lost_update_trace(tmp_path))
    assert (numbers["events"], numbers["processes"], numbers["malformed"]) == (5, 1, 0)


@pytest.mark.parametrize(
    ("pattern", "var", "matches"),
    [
        ("model_params['weight']", "model_params['weight']", True),  # [ is not a class
        ("model_params['weight']", "model_params['w']", False),
        ("counters[*]", "counters[7]", True),
        ("counters[*]", "counters", False),
        ("a?c", "abc", False),  # ? is plain
        ("a?c", "a?c", True),
        ("*", "anything at all", True),
    ],
)
def test_a_var_pattern_has_star_as_its_only_wildcard(pattern, var, matches):
    """A var pattern matches the printed name itself, with * the only wildcard."""
    assert Suppression(var=pattern, reason="r").matches(finding(var=var)) is matches


def test_a_rule_that_matches_nothing_is_reported_as_unused(tmp_path):
    """Of two rules, the one matching no finding is listed in unused_suppressions."""
    used = Suppression(kind="lost_update", var="hits", reason="approximate counter")
    stale = Suppression(var="gone", reason="fixed long ago")
    report = analyze(lost_update_trace(tmp_path), only=["windows"], suppressions=[used, stale])
    assert report.unused_suppressions == [stale]
