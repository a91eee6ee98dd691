"""The catalogue of finding kinds and of the analyses that compute them.

Every place that needs to know what a finding kind is reads it here: the analyses
(severity), ``analyze()``'s planning (which analysis computes a kind), suppressions
(which kinds exist), and the renderers that explain a kind (Markdown, HTML and SARIF:
title, description, advice, SARIF level). Each kind's ``anchor`` is its heading in
``docs/findings.md`` (a test checks that it exists). Adding an analysis
is one module (with a ``run`` function, see ``tracelens.analyze.run``) plus its
rows below: one in ``ANALYSES`` and one in ``KINDS`` per kind it computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "ANALYSES",
    "ERROR",
    "KINDS",
    "NOTE",
    "SEVERITIES",
    "WARNING",
    "AnalysisInfo",
    "KindInfo",
    "kind_info",
    "kinds_of",
    "severity_rank",
]

ERROR: Final = "error"
WARNING: Final = "warning"
NOTE: Final = "note"
#: Severities from most to least severe.
SEVERITIES: Final = (ERROR, WARNING, NOTE)


def severity_rank(severity: str) -> int:
    """Rank a severity: 0 for error, 1 for warning, 2 for note, 3 for anything else."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


@dataclass(frozen=True, slots=True)
class AnalysisInfo:
    """An analysis: a name users pass to ``--only``, and the module that computes it.

    Attributes:
        name: ``windows``, ``predictive``.
        module: The module (under ``tracelens.analyze``) whose ``run`` computes it.
        summary: What it finds, in a few words.
    """

    name: str
    module: str
    summary: str


@dataclass(frozen=True, slots=True)
class KindInfo:
    """What a finding kind is, for the analyses and in words for people.

    Attributes:
        id: The kind, as findings and the JSON report name it (``lost_update``).
        analysis: The name of the analysis that computes it (``ANALYSES``).
        severity: Its severity (every finding of the kind has it).
        name: The kind in CamelCase (SARIF's rule name).
        short: One line: what happened.
        full: A few sentences: what it means.
        help: What to do about it.
        anchor: Its section in ``docs/findings.md``.
        locks_stated: Its events carry the lock set their unit held, also when empty
            (``analyze`` need not look them up).
    """

    id: str
    analysis: str
    severity: str
    name: str
    short: str
    full: str
    help: str
    anchor: str
    locks_stated: bool = False


#: The analyses, by name.
ANALYSES: Final[dict[str, AnalysisInfo]] = {
    a.name: a
    for a in (
        AnalysisInfo("windows", "windows", "read-modify-write windows seen interleaved"),
        AnalysisInfo("predictive", "hb", "happens-before, lock sets, lock order, deadlocks"),
    )
}

#: The finding kinds, by id, in the order reports list their rules.
KINDS: Final[dict[str, KindInfo]] = {
    k.id: k
    for k in (
        KindInfo(
            "lost_update",
            "windows",
            ERROR,
            "LostUpdate",
            "Lost update: a read-modify-write was interleaved by another write",
            "A unit read a shared variable and later wrote it back, and between the two "
            "another unit wrote the same variable. The local write was computed from a "
            "stale value, so the other unit's update was overwritten and lost.",
            "Make the read and the write one atomic step: hold one lock around both "
            "(`with lock: x += 1`), or hand the update to a single owner (a queue).",
            "lost_update-error--seen-in-this-run",
        ),
        KindInfo(
            "atomicity_violation",
            "windows",
            WARNING,
            "AtomicityViolation",
            "Atomicity violation: code meant to be atomic was interleaved",
            "Two accesses of one unit that were meant to be atomic (inside one "
            "`tracelens.atomic` region or one continuous lock hold) were interleaved "
            "by another unit's access to the same variable, so one of them saw or "
            "left an inconsistent value.",
            "Protect every access to the variable with the same lock, and keep the "
            "accesses that belong together inside one hold of it.",
            "atomicity_violation-warning--seen-in-this-run",
        ),
        KindInfo(
            "data_race",
            "predictive",
            ERROR,
            "DataRace",
            "Data race: unordered conflicting accesses",
            "Two units accessed the same variable, at least one of them writing, with "
            "no synchronisation ordering the two accesses.",
            "Order the accesses: protect the variable with a lock, or pass the value "
            "through a queue or another synchronisation object.",
            "data_race-error--predicted",
            locks_stated=True,
        ),
        KindInfo(
            "inconsistent_locking",
            "predictive",
            WARNING,
            "InconsistentLocking",
            "Inconsistent locking: a variable is accessed under different locks",
            "A variable is sometimes accessed while holding a lock and sometimes "
            "without it (or under a different lock), so the lock does not protect it.",
            "Pick one lock for the variable and hold it at every access.",
            "inconsistent_locking-warning--predicted",
            locks_stated=True,
        ),
        KindInfo(
            "lock_order_inversion",
            "predictive",
            ERROR,
            "LockOrderInversion",
            "Lock order inversion: locks are taken in conflicting orders",
            "Two units acquired the same locks in opposite orders. The run did not "
            "deadlock, but another interleaving can.",
            "Acquire locks in one global order everywhere, or merge them into one lock.",
            "lock_order_inversion-error--predicted",
        ),
        KindInfo(
            "deadlock",
            "predictive",
            ERROR,
            "Deadlock",
            "Deadlock: units waited for each other",
            "Units blocked waiting for locks or other objects held by each other, so "
            "none of them could proceed.",
            "Acquire locks in one global order, use timeouts, or restructure the "
            "waits so that no cycle can form.",
            "deadlock-error--seen-in-this-run",
        ),
        KindInfo(
            "hang",
            "predictive",
            ERROR,
            "Hang",
            "Hang: units waited for what nothing would signal",
            "At the end of the run every unit that had not ended was blocked, at least "
            "one of them on a condition, event, queue, semaphore or join that no running "
            "unit could signal any more: the program hung without a lock cycle.",
            "Make sure every wait has a signaller that runs (set the event, put the "
            "sentinel, notify under the condition's lock on every path, including errors), "
            "or wait with a timeout.",
            "hang-error--seen-in-this-run",
        ),
    )
}


def kinds_of(analysis: str) -> tuple[str, ...]:
    """The kinds an analysis computes, in catalogue order."""
    return tuple(k.id for k in KINDS.values() if k.analysis == analysis)


def kind_info(kind: str) -> KindInfo:
    """The catalogue entry of a kind; a kind not in it (from a newer report) gets a
    generic one."""
    info = KINDS.get(kind)
    if info is not None:
        return info
    words = kind.replace("_", " ")
    return KindInfo(
        kind,
        "",
        WARNING,
        "".join(w.capitalize() for w in kind.split("_")),
        words.capitalize(),
        f"tracelens reported a {words}.",
        "See the finding's explanation and interleaving.",
        "",
    )
