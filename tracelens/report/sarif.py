"""The SARIF 2.1.0 report, for GitHub code scanning and other SARIF viewers.

One rule per finding kind, one result per finding at its first code site (the other
sites as related locations), the interleaving as a code flow with one thread flow
per unit whose locations carry a global ``executionOrder``, and the finding's
fingerprint as a partial fingerprint so that alerts keep their identity across runs.
Suppressed findings are reported with an external suppression and its reason.
Paths inside the root (the working directory by default) become relative URIs
against ``%SRCROOT%``; others become absolute ``file:`` URIs; both percent-encoded
(``uri_path``). Every text taken from the trace (messages, names, properties) has its
control characters escaped (``clean``), as in the text report.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import quote

from tracelens.analyze.findings import ERROR, NOTE, WARNING, EventRef, Finding, Site
from tracelens.report._common import (
    RULES,
    TOOL_NAME,
    TOOL_URI,
    RenderOptions,
    ReportLike,
    clean,
    distinct_sites,
    explanation_text,
    json_document,
    ordered,
    relative_path,
    rule_dict,
    rule_for,
    stack_sections,
    step_text,
    tool_version,
)

SARIF_VERSION: Final = "2.1.0"
SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT: Final = "%SRCROOT%"
#: Key of the partial fingerprint (versioned: bump it if ``Finding.fingerprint`` changes).
FINGERPRINT_KEY: Final = "tracelensFingerprint/v2"

_LEVEL = {ERROR: "error", WARNING: "warning", NOTE: "note"}

#: Where each rule's ``helpUri`` points: the project's findings docs (relative to the
#: repository root, as the SARIF consumer that shows the repository resolves it).
FINDINGS_DOCS: Final = "docs/findings.md"


def uri_path(path: str) -> str:
    """A ``/``-separated path percent-encoded as an RFC 3986 URI path.

    Every byte of its UTF-8 form but the unreserved characters (letters, digits,
    ``-._~``) and ``/`` is encoded: spaces, ``%``, ``#``, ``?``, ``:`` (a relative
    reference whose first segment holds one would read as a scheme), control and
    non-ASCII characters. A surrogate-escaped byte (an undecodable file name) is
    encoded as the byte it stands for.
    """
    try:
        data = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate from the trace itself
        data = path.encode("utf-8", "surrogatepass")
    return quote(data, safe="/")


def _artifact(file: str, root: Path | None) -> dict[str, str]:
    rel = relative_path(file, root)
    if rel is not None:
        return {"uri": uri_path(rel), "uriBaseId": SRCROOT}
    if PurePosixPath(file).is_absolute():
        return {"uri": "file://" + uri_path(file)}
    if Path(file).is_absolute():  # a Windows path
        return {"uri": Path(file).as_uri()}
    return {"uri": uri_path(file.replace("\\", "/"))}


def _location(
    site: Site | EventRef, root: Path | None, message: str | None = None, loc_id: int | None = None
) -> dict[str, Any]:
    loc: dict[str, Any] = {
        "physicalLocation": {
            "artifactLocation": _artifact(site.file, root),
            "region": {"startLine": max(int(site.line or 1), 1)},
        }
    }
    if site.func and site.func != "?":
        loc["logicalLocations"] = [{"name": clean(site.func), "kind": "function"}]
    if message:
        loc["message"] = {"text": clean(message)}
    if loc_id is not None:
        loc["id"] = loc_id
    return loc


def _rules(findings: list[Finding]) -> list[dict[str, Any]]:
    ids = list(RULES)
    ids += sorted({f.kind for f in findings} - set(ids))
    out = []
    for rid in ids:
        r = rule_for(rid)
        out.append(
            {
                "id": r.id,
                "name": r.name,
                "shortDescription": {"text": r.short},
                "fullDescription": {"text": r.full},
                "help": {"text": r.help, "markdown": r.help},
                "helpUri": f"{FINDINGS_DOCS}#{r.anchor}",
                "defaultConfiguration": {"level": _LEVEL.get(r.severity, "warning")},
                "properties": {"tags": ["concurrency", "race-condition"]},
            }
        )
    return out


def _code_flow(f: Finding, root: Path | None) -> dict[str, Any]:
    per_unit: dict[str, list[dict[str, Any]]] = {}
    names: dict[str, str] = {}
    for order, e in enumerate(f.events, 1):
        names.setdefault(e.unit, e.unit_name or e.unit)
        per_unit.setdefault(e.unit, []).append(
            {
                "location": _location(e, root, f"{step_text(e, root)} ({e.role})"),
                "executionOrder": order,
                "importance": "essential",
            }
        )
    return {
        "message": {"text": clean(explanation_text(f, root) or rule_for(f.kind).short)},
        "threadFlows": [
            {"id": clean(unit), "message": {"text": clean(names[unit])}, "locations": locs}
            for unit, locs in per_unit.items()
        ],
    }


def _result(f: Finding, rule_index: dict[str, int], root: Path | None) -> dict[str, Any]:
    sites = distinct_sites(f)
    message = f"{explanation_text(f, root) or rule_for(f.kind).short} ({f.count:,} occurrence" + (
        "s)" if f.count != 1 else ")"
    )
    result: dict[str, Any] = {
        "ruleId": f.kind,
        "ruleIndex": rule_index[f.kind],
        "level": _LEVEL.get(f.severity, "warning"),
        "message": {"text": clean(message)},
        "locations": [_location(sites[0], root)] if sites else [],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": {"var": clean(f.var), "units": [clean(u) for u in f.units], "count": f.count},
    }
    if len(sites) > 1:
        result["relatedLocations"] = [
            _location(s, root, f"other access of {f.var} in {s.func}", i)
            for i, s in enumerate(sites[1:], 1)
        ]
    elif len(f.events) > 1:  # both accesses at one line: the second is still its own place
        e = f.events[1]
        result["relatedLocations"] = [
            _location(e, root, f"other access of {f.var}: {step_text(e, root)} ({e.role})", 1)
        ]
    if f.events:
        result["codeFlows"] = [_code_flow(f, root)]
    stacks = [
        {
            "message": {"text": clean(heading)},
            "frames": [{"location": _location(s, root)} for s in frames],
        }
        for heading, frames in stack_sections(f, root)
    ]
    if stacks:
        result["stacks"] = stacks
    return result


def to_dict(report: ReportLike, options: RenderOptions | None = None) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log object.

    Args:
        report: The analysis report.
        options: ``root``: the directory that relative URIs are resolved against.

    Returns:
        The SARIF log as JSON types.
    """
    options = options or RenderOptions()
    root = options.root
    findings = ordered(report.findings)
    rules = _rules(findings + [f for f, _ in report.suppressed])
    rule_index = {r["id"]: i for i, r in enumerate(rules)}
    results = [_result(f, rule_index, root) for f in findings]
    for f, rule in report.suppressed:
        r = _result(f, rule_index, root)
        d = {k: clean(v) for k, v in rule_dict(rule).items()}
        r["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": d["reason"] or "suppressed by a tracelens rule",
                "properties": {"rule": d},
            }
        ]
        results.append(r)
    base = (root or Path.cwd()).resolve()
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": tool_version(),
                        "semanticVersion": tool_version(),
                        "informationUri": TOOL_URI,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": base.as_uri() + "/"}},
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def render(report: ReportLike, options: RenderOptions | None = None) -> str:
    """Render the report as a SARIF 2.1.0 JSON document.

    Args:
        report: The analysis report.
        options: ``root``: the directory that relative URIs are resolved against.

    Returns:
        The JSON document, ending with a newline.
    """
    return json_document(to_dict(report, options))
