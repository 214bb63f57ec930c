"""The rule engine: pure functions from gathered results to verdicts.

Nothing here touches the network, so the same rules judge candidates read from a browser dump
as well as gathered ones. Each rule returns zero or more `Verdict`s with a stable id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from ..constants import DEFAULT_RELAY_MAX_RTT_MS, DEFAULT_RELAY_MIN_BPS, DEFAULT_SLOW_MS
from ..model import Severity, Verdict
from .arrange import VerdictGroup, arrange, group_verdicts, role_of
from .behaviour import (
    mismatched_transaction_ids,
    not_a_turn_server,
    open_relay,
    relay_family_request_ignored,
)
from .evidence import Evidence, Rule
from .gathering import (
    all_candidates_gathered,
    no_host_candidates,
    no_relay_candidates,
    no_servers,
    only_host_candidates,
    server_unreachable,
    server_without_candidate,
    unfinished_probes,
)
from .network import (
    no_nat,
    relay_address_private,
    relay_family_ignored,
    slow_server,
    transport_matrix,
    turn_credentials_expiry,
    turn_credentials_missing,
    udp_blocked,
)
from .recording import (
    candidate_errors_unknown,
    dump_incomplete,
    ice_failed,
    ice_policy_mismatch,
    mdns_host_candidates,
)
from .relay import (
    relay_data_path,
    relay_lossy,
    relay_permission_denied,
    relay_slow,
)
from .relay_plane import relay_bandwidth_limited
from .responses import server_responses
from .tls import stuns_ignored, tls_certificates, tls_verification_disabled

RULES: tuple[Rule, ...] = (
    dump_incomplete,
    ice_failed,
    ice_policy_mismatch,
    turn_credentials_missing,
    turn_credentials_expiry,
    no_servers,
    no_host_candidates,
    only_host_candidates,
    no_relay_candidates,
    server_unreachable,
    server_responses,
    not_a_turn_server,
    mismatched_transaction_ids,
    relay_family_request_ignored,
    open_relay,
    tls_certificates,
    tls_verification_disabled,
    stuns_ignored,
    server_without_candidate,
    unfinished_probes,
    relay_address_private,
    udp_blocked,
    transport_matrix,
    relay_family_ignored,
    slow_server,
    no_nat,
    all_candidates_gathered,
    relay_permission_denied,
    relay_data_path,
    relay_slow,
    relay_lossy,
    relay_bandwidth_limited,
    mdns_host_candidates,
    candidate_errors_unknown,
)

#: Every verdict id the rules can produce; `--ignore` accepts only these.
VERDICT_IDS: tuple[str, ...] = (
    "all-candidates-gathered", "only-host-candidates", "no-relay-candidates",
    "server-unreachable", "server-error", "server-no-candidate", "srflx-from-another-server",
    "interrupted", "not-probed",
    "no-host-candidates",
    "no-servers", "turn-credentials-missing", "no-nat", "slow-server",
    "relay-address-private", "udp-blocked", "turn-credentials-rejected",
    "allocation-quota-reached", "server-at-capacity", "forbidden", "transport-not-supported",
    "allocation-mismatch", "alternate-server", "stale-nonce", "server-incompatible",
    "server-internal-error", "turn-credentials-expired", "turn-credentials-far-future",
    "tls-certificate-untrusted", "tls-hostname-mismatch", "tls-certificate-expired",
    "tls-verification-disabled", "transport-matrix", "address-family-not-supported",
    "relay-family-ignored", "relay-data-path-ok", "relay-data-path-broken",
    "relay-permission-denied", "relay-slow", "relay-lossy", "slow-turn",
    "mdns-host-candidates", "ice-failed", "ice-policy-mismatch", "dump-incomplete",
    "candidate-errors-unknown", "stuns-not-tls-in-browsers", "not-a-turn-server",
    "mismatched-transaction-ids", "relay-family-request-ignored", "open-relay",
    "relay-bandwidth-limited",
)

def evaluate(evidence: Evidence, ignore: Collection[str] = ()) -> list[Verdict]:
    """Every verdict the rules reach, in the order a reader needs: the causes first (worst
    first), then their consequences, each linked to its causes, then the findings
    (iceprobe.rules.arrange). Verdicts whose id is in `ignore` are kept but lowered to
    `info`, for CI users who accept a known condition; they keep their role."""
    rules = RULES
    if evidence.recording is not None and not evidence.recording.events:
        rules = (dump_incomplete,)  # nothing was recorded: nothing else can be judged
    verdicts = [dataclasses.replace(v, role=role_of(v)) for rule in rules for v in rule(evidence)]
    verdicts = [_ignored(v) if v.id in ignore and v.severity in (Severity.WARN, Severity.FAIL)
                else v for v in verdicts]
    return arrange(verdicts)


def _ignored(verdict: Verdict) -> Verdict:
    return dataclasses.replace(
        verdict, severity=Severity.INFO, ignored=True,
        detail=f"{verdict.detail} (ignored with --ignore {verdict.id}: was "
               f"{verdict.severity.value})")


__all__ = ["DEFAULT_RELAY_MAX_RTT_MS", "DEFAULT_RELAY_MIN_BPS", "DEFAULT_SLOW_MS", "RULES",
           "VERDICT_IDS", "Evidence", "Rule", "VerdictGroup", "evaluate", "group_verdicts"]
