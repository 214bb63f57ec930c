"""Make a report safe to share: every IP address becomes a stable placeholder named by its
role (host-1, srflx-1, relay-1, server-1), in every field and inside every text; with
`hostnames=True`, server names too (name-1). The TURN username, which often carries a user id,
becomes user-1 (a REST username keeps its expiry: 1700000000:user-1), in its field and in
every text.

A pure transformation of the values: the same address always gets the same placeholder, so
the report still reads (which candidate came from which host address) without revealing it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re

from .model import (
    Candidate,
    ErrorEvent,
    ProbeResult,
    RelayCheck,
    ServerSpec,
    Source,
    Verdict,
)
from .render.report import Report

# Candidate IPs in free text: dotted quads (a ":port" may follow), and IPv6 runs of hex
# groups. Every match is confirmed with ipaddress before anything is replaced.
_IPV4_TEXT = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)")
_IPV6_TEXT = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,8}(?!\w)")


class Redactor:
    def __init__(self, hostnames: bool) -> None:
        self.hostnames = hostnames
        self.mapping: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        #: The username and its placeholder, replaced in texts as a whole word only (a
        #: short username must not eat into other words).
        self.user: tuple[re.Pattern[str], str] | None = None

    def username(self, value: str | None) -> str | None:
        if value is None:
            return None
        expiry = _REST_USERNAME.match(value)
        placeholder = f"{expiry.group(1)}user-1" if expiry else "user-1"
        self.user = (re.compile(rf"(?<!\w){re.escape(value)}(?!\w)"), placeholder)
        return placeholder

    def name(self, value: str, role: str) -> str:
        if value not in self.mapping:
            self.counts[role] = self.counts.get(role, 0) + 1
            self.mapping[value] = f"{role}-{self.counts[role]}"
        return self.mapping[value]

    def address(self, value: str | None, role: str) -> str | None:
        return None if value is None else self.name(value, role)

    def text(self, value: str) -> str:
        def replace(match: re.Match[str]) -> str:
            found = match.group(0)
            # Prose may run an address into a ':' ("from 2001:db8::1: …"): try the match
            # without its tail before giving up on it.
            for end in range(len(found), max(len(found) - 6, 0), -1):
                if _is_ip(found[:end]):
                    return self.name(found[:end], "ip") + found[end:]
            return found

        if self.user is not None:
            pattern, placeholder = self.user
            value = pattern.sub(placeholder, value)
        value = _IPV6_TEXT.sub(replace, _IPV4_TEXT.sub(replace, value))
        # Longest first, so that a name is never replaced inside a longer one.
        for original in sorted(self.mapping, key=len, reverse=True):
            if not _is_ip(original):
                value = value.replace(original, self.mapping[original])
        return value


#: A TURN REST API username: an expiry timestamp, a separator, the user part.
_REST_USERNAME = re.compile(r"^(\d{9,}\D)(.+)$")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def redact(report: Report, hostnames: bool = False) -> Report:
    """The same report with addresses (and, if asked, host names) replaced."""
    r = Redactor(hostnames)
    gathered = report.gather
    username = r.username(gathered.username)
    # Name the addresses by role first, in report order, so placeholders are stable.
    for c in gathered.host_candidates:
        r.name(c.address, "host")
    for result in gathered.results:
        if not _is_ip(result.server.host) and hostnames:
            r.name(result.server.host, "name")
        for address in (result.server.host, *result.addresses):
            if _is_ip(address):
                r.name(address, "server")
        for c in result.candidates:
            r.name(c.address, c.type.value)
    for check in report.relays:
        if check.pair is not None:
            r.name(check.pair.local, "relay")
            r.name(check.pair.remote, "relay")
    hosts = tuple(_candidate(r, c) for c in gathered.host_candidates)
    results = tuple(_result(r, res) for res in gathered.results)
    return dataclasses.replace(
        report, gather=dataclasses.replace(gathered, host_candidates=hosts, results=results,
                                           username=username),
        verdicts=tuple(_verdict(r, v) for v in report.verdicts),
        relays=tuple(_relay(r, c) for c in report.relays),
        source=None if report.source is None else _source(r, report.source))


def _source(r: Redactor, source: Source) -> Source:
    """The page a recording came from names the customer: kept with --redact (its IPs
    replaced), dropped with --redact=all."""
    page = source.page_url
    return dataclasses.replace(
        source, page_url=None if page is None else "(redacted)" if r.hostnames else r.text(page))


def _spec(r: Redactor, spec: ServerSpec) -> ServerSpec:
    host = r.mapping.get(spec.host, spec.host)
    return dataclasses.replace(spec, url=r.text(spec.url), host=host)


def _candidate(r: Redactor, c: Candidate) -> Candidate:
    return dataclasses.replace(
        c, address=r.name(c.address, c.type.value),
        related_address=r.address(c.related_address, "ip"),
        url=None if c.url is None else r.text(c.url))


def _event(r: Redactor, e: ErrorEvent) -> ErrorEvent:
    return dataclasses.replace(
        e, url=r.text(e.url), address=r.address(e.address, "ip"),
        server_address=r.address(e.server_address, "server"), error_text=r.text(e.error_text))


def _result(r: Redactor, result: ProbeResult) -> ProbeResult:
    return dataclasses.replace(
        result, server=_spec(r, result.server),
        candidates=tuple(_candidate(r, c) for c in result.candidates),
        errors=tuple(_event(r, e) for e in result.errors),
        addresses=tuple(r.name(a, "server") for a in result.addresses),
        implied_by=None if result.implied_by is None else r.text(result.implied_by),
        realm=None if result.realm is None else r.text(result.realm),
        unfinished=None if result.unfinished is None else r.text(result.unfinished))


def _relay(r: Redactor, check: RelayCheck) -> RelayCheck:
    pair = check.pair
    return dataclasses.replace(
        check, server=_spec(r, check.server),
        failure=None if check.failure is None else r.text(check.failure),
        errors=tuple(_event(r, e) for e in check.errors),
        pair=None if pair is None else dataclasses.replace(
            pair, local=r.name(pair.local, "relay"), remote=r.name(pair.remote, "relay")))


def _verdict(r: Redactor, v: Verdict) -> Verdict:
    # Keys and groups name the URL they are about: redacted like it, so links still match.
    return dataclasses.replace(v, title=r.text(v.title), detail=r.text(v.detail),
                               hint=r.text(v.hint), urls=tuple(r.text(u) for u in v.urls),
                               key=r.text(v.key), caused_by=tuple(r.text(k) for k in v.caused_by),
                               group=r.text(v.group), group_title=r.text(v.group_title))


__all__ = ["Redactor", "redact"]
