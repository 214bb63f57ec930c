"""Putting verdicts in order: which are causes and which are their consequences, what each
consequence follows from, which verdicts say the same thing about different servers, and
the order a reader needs (the causes first).

Pure code, run by `evaluate` on what the rules said.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from ..model import Role, Severity, Verdict

#: Verdicts that follow from others: what the causes mean for calls.
CONSEQUENCES = frozenset({
    "only-host-candidates", "no-relay-candidates", "ice-failed", "ice-policy-mismatch",
    "transport-matrix",
})
#: The answer the user asked for leads the report when it is good news (--matrix: which
#: ways out work); bad news follows its causes like any consequence.
_LEADS = frozenset({"transport-matrix"})

_SEVERITY_RANK = {Severity.FAIL: 0, Severity.WARN: 1, Severity.INFO: 2, Severity.OK: 3}
_ROLE_RANK = {Role.CAUSE: 0, Role.CONSEQUENCE: 1, Role.FINDING: 2}


def role_of(verdict: Verdict) -> Role:
    """A finding when nothing is wrong (ok, info); otherwise a consequence by its id, or a
    cause."""
    if verdict.severity not in (Severity.WARN, Severity.FAIL):
        return Role.FINDING
    return Role.CONSEQUENCE if verdict.id in CONSEQUENCES else Role.CAUSE


def actionable(verdict: Verdict) -> bool:
    """Something is wrong: a warn or fail, or one that --ignore lowered."""
    return verdict.ignored or verdict.severity in (Severity.WARN, Severity.FAIL)


def arrange(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """Give each verdict its key, its group and (for consequences) its causes, and sort them:
    the answer asked for, then what is wrong (causes before consequences, worst first),
    then the findings. Verdicts must already have their role."""
    keyed = _with_keys(verdicts)
    linked = [_link(v, keyed) if v.role is Role.CONSEQUENCE else v for v in keyed]
    grouped = [dataclasses.replace(v, group=v.group or _group_key(v)) for v in linked]
    return sorted(grouped, key=_order)


def _order(verdict: Verdict) -> tuple[int, int, int, int]:
    return (0 if verdict.id in _LEADS and verdict.severity is Severity.OK else 1,
            0 if actionable(verdict) else 1,
            _ROLE_RANK[verdict.role],
            _SEVERITY_RANK[verdict.severity])


def _with_keys(verdicts: Sequence[Verdict]) -> list[Verdict]:
    seen: dict[str, int] = {}
    keyed = []
    for verdict in verdicts:
        key = verdict.id + (f"@{verdict.urls[0]}" if len(verdict.urls) == 1 else "")
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key}#{seen[key]}"
        keyed.append(dataclasses.replace(verdict, key=key))
    return keyed


def _link(consequence: Verdict, verdicts: Sequence[Verdict]) -> Verdict:
    """A consequence follows from the causes about its servers (all causes when it names
    none); with no cause at all, from the other consequences that are wrong."""
    causes = [v for v in verdicts if v.role is Role.CAUSE and actionable(v)]
    mine = set(consequence.urls)
    related = [v for v in causes if mine & set(v.urls)] if mine else causes
    if not related and not mine:
        related = [v for v in verdicts if v.role is Role.CONSEQUENCE and actionable(v)
                   and v is not consequence and v.id != consequence.id]
    return dataclasses.replace(consequence, caused_by=tuple(v.key for v in related))


def _group_key(verdict: Verdict) -> str:
    """Verdicts that say the same (same id, severity, detail and hint) about different
    servers share a group when their rule gave them a group title; otherwise each is its
    own group."""
    if not verdict.group_title:
        return verdict.key
    shape = "\0".join((verdict.severity.value, verdict.group_title, verdict.detail,
                       verdict.hint, ",".join(verdict.caused_by)))
    return f"{verdict.id}:{hashlib.sha1(shape.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class VerdictGroup:
    """Verdicts shown as one: the same finding about several servers (or one verdict)."""

    members: tuple[Verdict, ...]
    #: For a consequence: the titles of the groups it follows from.
    causes: tuple[str, ...] = ()

    @property
    def first(self) -> Verdict:
        return self.members[0]

    @property
    def title(self) -> str:
        if len(self.members) == 1 or not self.first.group_title:
            return self.first.title
        return self.first.group_title.replace("{n}", str(len(self.members)))

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(u for v in self.members for u in v.urls))


def group_verdicts(verdicts: Sequence[Verdict]) -> tuple[VerdictGroup, ...]:
    """The verdicts of a report as a reader sees them: one entry per group, in the order of
    the first member, each consequence with the titles of its causes' groups."""
    members: dict[str, list[Verdict]] = {}
    for number, verdict in enumerate(verdicts):
        # A verdict made by hand (no key, no group) is a group of its own.
        members.setdefault(verdict.group or verdict.key or f"#{number}", []).append(verdict)
    plain = {key: VerdictGroup(tuple(found)) for key, found in members.items()}
    group_of = {v.key: plain[key] for key, found in members.items() for v in found if v.key}
    groups = []
    for group in plain.values():
        causes = tuple(dict.fromkeys(
            group_of[key].title for v in group.members for key in v.caused_by
            if key in group_of))
        groups.append(dataclasses.replace(group, causes=causes))
    return tuple(groups)


__all__ = ["CONSEQUENCES", "VerdictGroup", "actionable", "arrange", "group_verdicts",
           "role_of"]
