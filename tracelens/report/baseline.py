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
from tracelens.report.sources import source_lines

__all__ = [
    "BASELINE_VERSION",
    "read_baseline",
    "stable_fingerprint",
    "stable_fingerprints",
    "without_known",
    "write_baseline",
]

BASELINE_VERSION: Final = 1


def _site_identity(site: Site, root: Path) -> str:
    rel = relative_path(site.file, root) or os.path.basename(site.file.replace("\\", "/"))
    found = source_lines(site.file, site.line, context=0, search=[root], roots=[root])
    where = f"L{site.line}"
    if isinstance(found, tuple):
        text = " ".join(found[2].split())
        if text:
            where = text
    return f"{rel}\x1e{site.func}\x1e{where}"


def stable_fingerprint(f: Finding, root: Path) -> str:
    """16 hex digits, the same for the same bug in the same code (see the module doc)."""
    return _fingerprint(f, root, {})


def stable_fingerprints(findings: Iterable[Finding], root: Path) -> list[str]:
    """``stable_fingerprint`` of each finding, each distinct site's source read once.

    Findings share their sites (4,706 findings of 21 variables: a few hundred sites),
    and each site's identity resolves and reads its file: once per site, not per use.
    """
    seen: dict[Site, str] = {}
    return [_fingerprint(f, root, seen) for f in findings]


def _fingerprint(f: Finding, root: Path, seen: dict[Site, str]) -> str:
    parts = set()
    for site in f.sites:
        identity = seen.get(site)
        if identity is None:
            identity = seen[site] = _site_identity(site, root)
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
