"""Rules about TLS (stuns:/turns:): each certificate problem gets its own verdict, and a run
with verification switched off says so."""

from __future__ import annotations

from ..model import Cause, ErrorEvent, Scheme, Severity, Transport, Verdict
from .evidence import Evidence, failure_severity, sentence

#: problem -> (verdict id, title, hint)
TLS_VERDICTS = {
    "certificate-untrusted": (
        "tls-certificate-untrusted", "TLS certificate not trusted",
        "The certificate is self-signed or its issuer is unknown. Install a certificate "
        "from a public CA with the full chain (coturn: cert= with the chain file); for a "
        "private CA, pass it with --ca-file."),
    "hostname-mismatch": (
        "tls-hostname-mismatch", "TLS certificate does not match the host name",
        "The certificate's names (subjectAltName) do not include the host in the URL: use "
        "a URL with a name the certificate covers, or reissue the certificate with it."),
    "certificate-expired": (
        "tls-certificate-expired", "TLS certificate expired",
        "Renew the certificate and reload the server (check the renewal job); clients "
        "reject it until then."),
}


def _is_specific(event: ErrorEvent) -> bool:
    return event.cause is Cause.TLS and event.problem in TLS_VERDICTS


def tls_certificates(evidence: Evidence) -> list[Verdict]:
    verdicts = []
    for result in evidence.results:
        by_problem: dict[str, list[ErrorEvent]] = {}
        for event in result.errors:
            if _is_specific(event) and event.problem is not None:
                by_problem.setdefault(event.problem, []).append(event)
        for problem, events in by_problem.items():
            verdict_id, title, hint = TLS_VERDICTS[problem]
            texts = "; ".join(dict.fromkeys(e.error_text for e in events))
            severity = Severity.WARN if result.ok else failure_severity(evidence, result)
            verdicts.append(Verdict(
                id=verdict_id, severity=severity, title=f"{result.server.url}: {title}",
                detail=f"{sentence(texts)} Browsers refuse this server too.", hint=hint,
                urls=(result.server.url,), group_title=f"{{n}} servers: {title}"))
    return verdicts


def tls_verification_disabled(evidence: Evidence) -> list[Verdict]:
    tls = tuple(r.server.url for r in evidence.results if r.server.transport is Transport.TLS)
    if not evidence.insecure or not tls:
        return []
    return [Verdict(
        id="tls-verification-disabled", severity=Severity.WARN,
        title="TLS certificates were not verified (--insecure)",
        detail="Results for these servers say nothing about their certificates; browsers "
               "always verify them.",
        hint="Run without --insecure (add --ca-file for a private CA) to check the "
             "certificates as browsers will.", urls=tls)]


def stuns_ignored(evidence: Evidence) -> list[Verdict]:
    """Browsers do not speak STUN over TLS. Chromium 156 (measured in the parity suite,
    docs/chrome.md) takes `stuns:host:port` for `stun:host:port` over UDP, 3478 when no port
    is given: what iceprobe learned over TLS is not what a browser gets."""
    urls = tuple(r.server.url for r in evidence.results if r.server.scheme is Scheme.STUNS)
    if not urls or evidence.recording is not None:
        return []
    return [Verdict(
        id="stuns-not-tls-in-browsers", severity=Severity.WARN,
        title="Browsers do not use stuns: over TLS",
        detail="Chrome sends a plain STUN Binding over UDP for a stuns: URL (to its port, or "
               "3478 when it names none, not 5349) and reports the result under stun:. "
               "iceprobe probed over TLS: that srflx was mapped over TCP and says nothing "
               "about the UDP mapping a browser gets, and a server that speaks STUN only over "
               "TLS gives a browser nothing.",
        hint="For browsers, configure the server as stun:host:port (UDP), and probe it that "
             "way: iceprobe gather --stun stun:host:port.", urls=urls)]
