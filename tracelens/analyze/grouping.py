"""One finding per bug: the analyses' findings grouped by kind and racing code sites.

The analyses report a finding per (kind, variable, sites in interleaving order). A
person wants one entry per bug, as ThreadSanitizer prints each racing pair of stacks
once. ``group_findings`` merges, per kind, the findings whose *set* of code sites is
the same, whatever the order the sites came in (A then B and B then A are one race)
and whatever variable they touched (``counters[0]`` ... ``counters[9]`` raced at the
same two lines are one bug): the group keeps every variable, sums the occurrences,
and keeps the first instance and the widest one.

It then links what one bug shows under several kinds: a ``lost_update`` (or
``atomicity_violation``), which is what a race did in this run, shares its ``group``
id with the ``data_race`` and ``inconsistent_locking`` findings on a variable it
touched whose sites are among its own. Every other finding's ``group`` is its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable

from tracelens.analyze.findings import Finding, Site, severity_rank, site_key, window_ns

__all__ = ["group_findings"]

#: Kinds that describe what a race did in the run: the races under them share their group.
_EFFECTS = ("lost_update", "atomicity_violation")
#: Kinds a lost update or an atomicity violation is the effect of.
_CAUSES = ("data_race", "inconsistent_locking")


def _group_id(kind: str, sites: tuple[Site, ...]) -> str:
    key = "\x1f".join([kind, *(f"{s.file}:{s.line}:{s.func}" for s in sites)])
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _first_seq(f: Finding) -> tuple[int, int]:
    return (f.events[0].pid, f.events[0].seq) if f.events else (0, 0)


def _merge(members: list[Finding]) -> Finding:
    """One finding for findings of one kind on the same set of sites."""
    members.sort(key=_first_seq)
    first = members[0]
    widest = max(members, key=lambda f: window_ns(f.worst))
    variables: list[str] = []
    units: list[str] = []
    writes: dict[str, int] = {}
    for f in members:
        writes[f.var] = max(writes.get(f.var, 0), f.var_writes)
        for v in f.variables:
            if v not in variables:
                variables.append(v)
        units += [u for u in f.units if u not in units]
    return dataclasses.replace(
        first,
        severity=min((f.severity for f in members), key=severity_rank),
        units=tuple(units),
        count=sum(f.count for f in members),
        worst=widest.worst or widest.events,
        vars=tuple(variables),
        lost_writes=sum(f.lost_writes for f in members),
        var_writes=sum(writes.values()),
    )


def group_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Merge findings of a kind on the same set of sites, then link causes to effects.

    Args:
        findings: Findings as the analyses give them (per variable, sites ordered).

    Returns:
        One finding per (kind, set of sites), in the order each group first appeared,
        each with ``vars`` (every variable, the first one being ``var``) and ``group``.
    """
    groups: dict[tuple[str, tuple[Site, ...]], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.kind, site_key(f.sites)), []).append(f)
    merged = {key: _merge(members) for key, members in groups.items()}
    group_of = {key: _group_id(*key) for key in merged}
    # the first effect that covers a cause takes it: lost updates first, then by their
    # first event (the analyses' row order is not deterministic)
    effects = sorted(
        ((key, f) for key, f in merged.items() if key[0] in _EFFECTS),
        key=lambda kf: (
            _EFFECTS.index(kf[0][0]),
            _first_seq(kf[1]),
            [(s.file, s.line, s.func) for s in kf[0][1]],
        ),
    )
    for key, f in merged.items():
        if key[0] not in _CAUSES:
            continue
        for effect_key, effect in effects:
            if set(key[1]) <= set(effect_key[1]) and set(f.variables) & set(effect.variables):
                group_of[key] = group_of[effect_key]
                break
    return [dataclasses.replace(f, group=group_of[key]) for key, f in merged.items()]
