"""The JSON report: the stable machine-readable schema (``docs/report-format.md``).

This is a contract read by tools outside this repository: add fields, never rename
or remove them, and bump ``FORMAT_VERSION`` when the meaning of a field changes.
``REPORT_SCHEMA`` is the JSON Schema of the output; the documentation shows the same
schema and a test keeps the two equal.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Final

from tracelens.report._common import (
    TOOL_NAME,
    RenderOptions,
    ReportLike,
    json_document,
    ordered,
    rule_dict,
    skipped_lines,
    summary_int,
    suppressed_by_rule,
    tool_version,
    unused_suppressions,
)
from tracelens.report.baseline import stable_fingerprints

#: Version of the report's JSON layout.
FORMAT_VERSION: Final = 2

#: The summary fields every report has (integers; 0 when unknown).
SUMMARY_INTS: Final = (
    "events",
    "variables",
    "units",
    "sync_objects",
    "files",
    "lines",
    "app_lines",
    "malformed",
    "skipped",
    "time_span_ns",
)

_SITE = {
    "type": "object",
    "required": ["file", "line", "func"],
    "properties": {
        "file": {"type": "string"},
        "line": {"type": "integer"},
        "func": {"type": "string"},
    },
}
_EVENT = {
    "type": "object",
    "required": [
        "role",
        "seq",
        "ts",
        "pid",
        "unit",
        "unit_name",
        "op",
        "target",
        "value",
        "file",
        "line",
        "func",
        "locks",
    ],
    "properties": {
        "role": {"type": "string"},
        "seq": {"type": "integer"},
        "ts": {"type": "integer"},
        "pid": {"type": "integer"},
        "unit": {"type": "string"},
        "unit_name": {"type": "string"},
        "op": {"type": "string"},
        "target": {"type": "string"},
        "value": {"type": ["string", "null"]},
        "file": {"type": "string"},
        "line": {"type": "integer"},
        "func": {"type": "string"},
        "locks": {"type": "array", "items": {"type": "string"}},
        "lock_count": {"type": "integer"},
        "stack": {"type": "array", "items": {"$ref": "#/$defs/site"}},
        "created_at": {"type": "array", "items": {"$ref": "#/$defs/site"}},
        "created_by": {"type": "string"},
        "submitted_at": {"type": "array", "items": {"$ref": "#/$defs/site"}},
        "submitted_by": {"type": "string"},
    },
}
_RULE = {
    "type": "object",
    "required": ["kind", "var", "site", "reason"],
    "properties": {
        "kind": {"type": "string"},
        "var": {"type": "string"},
        "site": {"type": "string"},
        "reason": {"type": "string"},
        "source": {"type": "string"},
    },
}
_FINDING = {
    "type": "object",
    "required": [
        "kind",
        "severity",
        "var",
        "units",
        "sites",
        "count",
        "events",
        "worst",
        "explanation",
        "fingerprint",
    ],
    "properties": {
        "kind": {"type": "string"},
        "severity": {"enum": ["error", "warning", "note"]},
        "var": {"type": "string"},
        "units": {"type": "array", "items": {"type": "string"}},
        "sites": {"type": "array", "items": {"$ref": "#/$defs/site"}},
        "count": {"type": "integer", "minimum": 1},
        "events": {"type": "array", "items": {"$ref": "#/$defs/event"}},
        "worst": {"type": "array", "items": {"$ref": "#/$defs/event"}},
        "explanation": {"type": "string"},
        "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "stable_fingerprint": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "vars": {"type": "array", "items": {"type": "string"}, "maxItems": 100},
        "var_count": {"type": "integer", "minimum": 1},
        "group": {"type": "string"},
        "lost_writes": {"type": "integer", "minimum": 0},
        "var_writes": {"type": "integer", "minimum": 0},
        "extra": {"type": "object"},
    },
}

#: JSON Schema (draft 2020-12) of the report.
REPORT_SCHEMA: Final[dict[str, Any]] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "tracelens report",
    "type": "object",
    "required": ["format_version", "tool", "summary", "findings", "suppressed"],
    "properties": {
        "format_version": {"const": FORMAT_VERSION},
        "tool": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"const": "tracelens"}, "version": {"type": "string"}},
        },
        "summary": {
            "type": "object",
            "required": [
                *SUMMARY_INTS,
                "findings",
                "findings_by_kind",
                "findings_by_severity",
                "suppressed",
                "suppressed_by_rule",
            ],
            "properties": {
                **{k: {"type": "integer", "minimum": 0} for k in SUMMARY_INTS},
                "findings": {"type": "integer", "minimum": 0},
                "findings_by_kind": {
                    "type": "object",
                    "additionalProperties": {"type": "integer"},
                },
                "findings_by_severity": {
                    "type": "object",
                    "required": ["error", "warning", "note"],
                    "additionalProperties": {"type": "integer"},
                },
                "suppressed": {"type": "integer", "minimum": 0},
                "unused_suppressions": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
                "suppressed_by_rule": {
                    "type": "array",
                    "items": {
                        "allOf": [{"$ref": "#/$defs/rule"}],
                        "required": ["count"],
                        "properties": {"count": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
        "findings": {"type": "array", "items": {"$ref": "#/$defs/finding"}},
        "suppressed": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["finding", "rule"],
                "properties": {
                    "finding": {"$ref": "#/$defs/finding"},
                    "rule": {"$ref": "#/$defs/rule"},
                },
            },
        },
    },
    "$defs": {"site": _SITE, "event": _EVENT, "finding": _FINDING, "rule": _RULE},
}


def to_dict(report: ReportLike, options: RenderOptions | None = None) -> dict[str, Any]:
    """The report as the JSON object of ``docs/report-format.md``.

    Args:
        report: The analysis report.
        options: ``root``: the project root the stable fingerprints are taken against
            (default: the working directory).

    Returns:
        A dict of JSON types only.
    """
    findings = ordered(report.findings)
    root = ((options.root if options else None) or Path.cwd()).resolve()
    summary: dict[str, Any] = {
        k: v for k, v in report.summary.items() if k not in ("findings", "suppressed")
    }
    for key in SUMMARY_INTS:
        summary[key] = summary_int(report.summary, key)
    summary["skipped"] = skipped_lines(report.summary)
    summary["findings"] = len(findings)
    summary["findings_by_kind"] = dict(sorted(Counter(f.kind for f in findings).items()))
    by_sev = Counter(f.severity for f in findings)
    summary["findings_by_severity"] = {s: by_sev.get(s, 0) for s in ("error", "warning", "note")}
    summary["suppressed"] = len(report.suppressed)
    summary["suppressed_by_rule"] = [{**rule, "count": n} for rule, n in suppressed_by_rule(report)]
    summary["unused_suppressions"] = [rule_dict(r) for r in unused_suppressions(report)]
    return {
        "format_version": FORMAT_VERSION,
        "tool": {"name": TOOL_NAME, "version": tool_version()},
        "summary": summary,
        "findings": [
            _finding(f, fp)
            for f, fp in zip(findings, stable_fingerprints(findings, root), strict=True)
        ],
        "suppressed": [
            {"finding": f.to_dict(), "rule": rule_dict(rule)} for f, rule in report.suppressed
        ],
    }


def _finding(f: Any, fingerprint: str) -> dict[str, Any]:
    d: dict[str, Any] = f.to_dict()
    d["stable_fingerprint"] = fingerprint
    return d


def render(report: ReportLike, options: RenderOptions | None = None) -> str:
    """Render the report as JSON (indented, keys in a stable order, UTF-8 text).

    Args:
        report: The analysis report.
        options: Unused; accepted so that every renderer is called alike.

    Returns:
        The JSON document, ending with a newline.
    """
    return json_document(to_dict(report, options))
