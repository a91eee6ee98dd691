"""Baselines: the findings a project has accepted, so that CI fails only on new ones.

A baseline file lists *stable fingerprints*. A finding's stable fingerprint is the same
on every run of the same code, on any machine, and survives edits elsewhere in the
file, as GitHub's ``partialFingerprints`` are meant to: it hashes the kind and, for
each distinct code site, the file's path relative to the project root (its name alone
when outside it), the function and the text of the source line (whitespace
collapsed), not the line number. No sequence number, timestamp, pid, unit or memory
address goes in. When the source line cannot be read (the file is not under the root,
or not on this machine), the line number stands in for its text.

The file (``tracelens report --write-baseline FILE``) is JSON::

    {"tool": "tracelens", "baseline_version": 1, "fingerprints": ["0b4f...", ...]}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from tracelens.analyze.findings import Finding, Site
from tracelens.exceptions import UsageError
from tracelens.report._common import relative_path
from tracelens.report.sources import Candidate, lines_of, source_files

__all__ = [
    "BASELINE_VERSION",
    "read_baseline",
    "stable_fingerprint",
    "stable_fingerprints",
    "without_known",
    "write_baseline",
]

BASELINE_VERSION: Final = 1


def _site_identity(site: Site, root: Path, files: dict[str, list[Candidate]]) -> str:
    rel = relative_path(site.file, root) or os.path.basename(site.file.replace("\\", "/"))
    found: tuple[str, int, str] | str = "no call site recorded"
    if site.file and site.line:
        if site.file not in files:
            files[site.file] = source_files(site.file, search=[root], roots=[root])
        found = lines_of(files[site.file], site.line, context=0)
    where = f"L{site.line}"
    if isinstance(found, tuple):
        text = " ".join(found[2].split())
        if text:
            where = text
    return f"{rel}\x1e{site.func}\x1e{where}"


def stable_fingerprint(f: Finding, root: Path) -> str:
    """16 hex digits, the same for the same bug in the same code (see the module doc)."""
    return _fingerprint(f, root, {}, {})


def stable_fingerprints(findings: Iterable[Finding], root: Path) -> list[str]:
    """``stable_fingerprint`` of each finding, each site's identity and each file's
    checks done once.

    Findings share their sites and files (862 findings of a 1M-event STD trace: 1,640
    sites in one file), and finding a site's source line resolves, checks and reads
    its file: once per file and once per site, not once per use.
    """
    seen: dict[Site, str] = {}
    files: dict[str, list[Candidate]] = {}
    return [_fingerprint(f, root, seen, files) for f in findings]


def _fingerprint(
    f: Finding, root: Path, seen: dict[Site, str], files: dict[str, list[Candidate]]
) -> str:
    parts = set()
    for site in f.sites:
        identity = seen.get(site)
        if identity is None:
            identity = seen[site] = _site_identity(site, root, files)
        parts.add(identity)
    return hashlib.sha256("\x1f".join([f.kind, *sorted(parts)]).encode()).hexdigest()[:16]


_HEX16 = re.compile(r"[0-9a-f]{16}")


def read_baseline(path: str | os.PathLike[str]) -> frozenset[str]:
    """The fingerprints a baseline file accepts.

    Raises:
        UsageError: The file is missing or not a tracelens baseline.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
        raise UsageError(f"cannot read the baseline {os.fspath(path)}: {reason}") from None
    prints = doc.get("fingerprints") if isinstance(doc, dict) else None
    if not isinstance(prints, list) or not all(
        isinstance(p, str) and _HEX16.fullmatch(p) for p in prints
    ):
        raise UsageError(
            f"{os.fspath(path)} is not a tracelens baseline (a JSON object whose "
            '"fingerprints" are 16-hex-digit strings)'
        )
    return frozenset(prints)


def write_baseline(path: str | os.PathLike[str], findings: Iterable[Finding], root: Path) -> int:
    """Write the findings' stable fingerprints to ``path``; returns how many."""
    prints = sorted(set(stable_fingerprints(findings, root)))
    doc = {"tool": "tracelens", "baseline_version": BASELINE_VERSION, "fingerprints": prints}
    try:
        Path(path).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {os.fspath(path)}: {e.strerror or e}") from None
    return len(prints)


def without_known(report: Any, baseline: frozenset[str], root: Path) -> Any:
    """``report`` without the findings the baseline accepts; the summary counts them.

    ``summary["baseline_known"]`` is how many were left out, ``findings`` and the
    per-kind and per-severity counts cover the rest.
    """
    prints = stable_fingerprints(report.findings, root)
    new = [f for f, p in zip(report.findings, prints, strict=True) if p not in baseline]
    summary = dict(report.summary)
    summary["baseline_known"] = len(report.findings) - len(new)
    summary["findings"] = len(new)
    kinds: dict[str, int] = {}
    sev = dict.fromkeys(summary.get("findings_by_severity", {}), 0)
    for f in new:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
        sev[f.severity] = sev.get(f.severity, 0) + 1
    summary["findings_by_kind"] = dict(sorted(kinds.items()))
    summary["findings_by_severity"] = sev
    return dataclasses.replace(report, findings=new, summary=summary)
