"""Suppressions: rules that silence known or accepted findings, each with a reason.

A rule matches a finding when every field it sets matches:

* ``kind``: the finding's kind, exactly (``lost_update``, ...).
* ``var``: a pattern for the finding's variable as reports print it (``stats.*``,
  ``model_params['weight']``): ``*`` matches any run of characters and is the only
  wildcard; everything else, ``[`` and ``?`` included, matches itself.
* ``site``: a pattern of the same kind against any of the finding's code sites, written
  ``file:line`` (``app/stats.py:*``) or a function name (``bump_*``). A pattern that
  does not start with ``/`` or ``*`` also matches at the end of a path, so
  ``app/stats.py:28`` matches a site recorded as ``/home/me/proj/app/stats.py:28``.

A rule that matches no finding is listed as unused in the report
(``Report.unused_suppressions``; the JSON summary's ``unused_suppressions``), as a
stale ``noqa`` is by linters.

Rules come from a TOML file of ``[[suppress]]`` tables (``--suppress FILE``) or from
``[tool.tracelens]`` in ``pyproject.toml``::

    [tool.tracelens]
    suppress = [
      { kind = "lost_update", var = "stats.hits", reason = "an approximate counter" },
    ]
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from tracelens.analyze.findings import Finding
from tracelens.analyze.kinds import KINDS
from tracelens.exceptions import SuppressionError

__all__ = [
    "KNOWN_KINDS",
    "Suppression",
    "SuppressionError",
    "apply_suppressions",
    "find_pyproject_suppressions",
    "load_suppressions",
    "parse_suppressions",
]

#: Finding kinds a rule may name (a typo in a kind would silently match nothing).
KNOWN_KINDS: Final = frozenset(KINDS)
_FIELDS: Final = ("kind", "var", "site", "reason")


@dataclass(frozen=True, slots=True)
class Suppression:
    """One suppression rule.

    Attributes:
        kind: The finding kind it silences, or ``None`` for any.
        var: Pattern (``*`` the only wildcard) for the variable, or ``None`` for any.
        site: Pattern (``*`` the only wildcard) for a code site (``file:line`` or function name),
            or ``None`` for any.
        reason: Why the finding is accepted (shown in reports).
        source: Where the rule was read (``file``, ``file#3`` for the third rule).
    """

    kind: str | None = None
    var: str | None = None
    site: str | None = None
    reason: str = ""
    source: str | None = None

    def matches(self, finding: Finding) -> bool:
        """Whether this rule silences ``finding``."""
        if self.kind is not None and finding.kind != self.kind:
            return False
        if self.var is not None and not glob_match(finding.var, self.var):
            return False
        if self.site is None:
            return True
        return any(_site_matches(self.site, s.file, s.line, s.func) for s in finding.sites)

    def __str__(self) -> str:
        parts = [self.kind or "*", self.var or "*"]
        if self.site:
            parts.append(f"at {self.site}")
        return " ".join(parts) + (f" ({self.reason})" if self.reason else "")


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(map(re.escape, pattern.split("*"))), re.S)


def glob_match(text: str, pattern: str) -> bool:
    """Whether ``text`` is ``pattern``, where ``*`` (any run of characters) is the only
    wildcard: ``model_params['weight']`` matches itself, ``[`` and ``?`` are plain."""
    return _glob(pattern).fullmatch(text) is not None


def _site_matches(pattern: str, file: str, line: int, func: str) -> bool:
    where = f"{file}:{line}"
    if glob_match(where, pattern) or glob_match(func, pattern):
        return True
    # Relative patterns match the end of a recorded (often absolute) path.
    if not pattern.startswith(("/", "*")):
        return glob_match(where.replace("\\", "/"), "*/" + pattern)
    return False


def apply_suppressions(
    findings: Iterable[Finding], rules: Sequence[Suppression]
) -> tuple[list[Finding], list[tuple[Finding, Suppression]]]:
    """Split findings into kept and suppressed (with the first rule that matched).

    Args:
        findings: The findings.
        rules: The rules, in priority order.

    Returns:
        ``(kept, suppressed)``.
    """
    kept: list[Finding] = []
    suppressed: list[tuple[Finding, Suppression]] = []
    for f in findings:
        rule = next((r for r in rules if r.matches(f)), None)
        if rule is None:
            kept.append(f)
        else:
            suppressed.append((f, rule))
    return kept, suppressed


def parse_suppressions(entries: Any, *, source: str) -> list[Suppression]:
    """Validate rule tables (from TOML) into ``Suppression`` objects.

    Args:
        entries: A list of tables with ``kind``, ``var``, ``site`` and ``reason``.
        source: The file, for messages and ``Suppression.source``.

    Returns:
        The rules.

    Raises:
        SuppressionError: Not a list of tables, an unknown key or kind, a value that
            is not a string, a rule without a reason or matching everything.
    """
    if not isinstance(entries, list):
        raise SuppressionError(f"{source}: 'suppress' must be a list of tables")
    out = []
    for i, e in enumerate(entries, 1):
        where = f"{source}: rule {i}"
        if not isinstance(e, dict):
            raise SuppressionError(f"{where} is not a table")
        unknown = sorted(set(e) - set(_FIELDS))
        if unknown:
            raise SuppressionError(
                f"{where} has unknown key {unknown[0]!r} (expected kind, var, site, reason)"
            )
        for k, v in e.items():
            if not isinstance(v, str):
                raise SuppressionError(f"{where}: {k} must be a string")
        if not e.get("reason", "").strip():
            raise SuppressionError(f"{where} needs a reason")
        if not any(e.get(k) for k in ("kind", "var", "site")):
            raise SuppressionError(f"{where} must name a kind, var or site")
        kind = e.get("kind") or None
        if kind is not None and kind not in KNOWN_KINDS:
            raise SuppressionError(
                f"{where}: unknown kind {kind!r} (one of {', '.join(sorted(KNOWN_KINDS))})"
            )
        out.append(
            Suppression(
                kind=kind,
                var=e.get("var") or None,
                site=e.get("site") or None,
                reason=e["reason"].strip(),
                source=f"{source}#{i}",
            )
        )
    return out


def load_suppressions(path: str | os.PathLike[str]) -> list[Suppression]:
    """Read rules from a TOML file: ``[[suppress]]`` tables, or a pyproject.toml.

    Args:
        path: A suppression file, or a ``pyproject.toml`` (its ``[tool.tracelens]``
            ``suppress`` list).

    Returns:
        The rules (empty for a pyproject.toml without ``[tool.tracelens]``).

    Raises:
        SuppressionError: The file is missing, unreadable, not TOML, or has a bad rule.
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuppressionError(f"cannot read {p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SuppressionError(f"cannot read {p}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise SuppressionError(f"{p} is not valid TOML: {e}") from None
    if "tool" in data and "suppress" not in data:
        tool = data["tool"].get("tracelens", {}) if isinstance(data["tool"], dict) else {}
        if not isinstance(tool, dict):
            raise SuppressionError(f"{p}: [tool.tracelens] must be a table")
        return parse_suppressions(tool.get("suppress", []), source=str(p))
    return parse_suppressions(data.get("suppress", []), source=str(p))


def find_pyproject_suppressions(start_dir: str | os.PathLike[str]) -> list[Suppression]:
    """Rules from the nearest ``pyproject.toml`` at or above ``start_dir``.

    Args:
        start_dir: Where to start looking (usually the working directory).

    Returns:
        Its ``[tool.tracelens]`` rules; empty when there is no pyproject.toml.

    Raises:
        SuppressionError: The nearest pyproject.toml is unreadable or has a bad rule.
    """
    d = Path(start_dir).resolve()
    for cand in (d, *d.parents):
        f = cand / "pyproject.toml"
        if f.is_file():
            return load_suppressions(f)
    return []
