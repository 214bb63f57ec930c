"""The -v trace and the realm and username in the report (issue 15, item 11): each
transaction line names its transport, local and server address, method, class and transaction
id, a response whether it carried REALM and NONCE; TCP connects and TLS handshakes are traced;
no password, REST secret or key ever appears. A 401 report names the realm and username."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lab.certs import make_ca, make_server_cert
from tests.lab.netns import LAB_NAME, LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_REALM, LAB_USER, Coturn

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]
REST_SECRET = "trace-rest-Secret-77"

ADDRESS = r"(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:]+\]):(?:\d+|\?)"
ROUTE = rf"(udp|tcp|tls) ({ADDRESS}) -> ({ADDRESS})"
LINE = re.compile(rf"^\s*\d+\.\d ms  {ROUTE} (.*)$")
REQUEST = re.compile(r"^> (\S+) request tid=([0-9a-f]{24})")
RESPONSE = re.compile(r"^< (\S+) (success response|error response \d{3} '[^']*') "
                      r"tid=([0-9a-f]{24}) (no REALM|REALM '[^']*') "
                      r"(no NONCE|NONCE \S+ \(\d+ bytes\))")


def gather(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iceprobe", "gather", "-v", "--json", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})


def traced(stderr: str) -> list[tuple[str, str, str, str]]:
    """(transport, local, server, event) of each gatherer trace line."""
    found = []
    for line in stderr.splitlines():
        match = LINE.match(line)
        if match:
            found.append((match.group(1), match.group(2), match.group(3), match.group(4)))
    return found


def integrity_key(user: str, password: str) -> bytes:
    return hashlib.md5(f"{user}:{LAB_REALM}:{password}".encode()).digest()


def assert_no_secret(text: str, *secrets: str | bytes) -> None:
    for secret in secrets:
        if isinstance(secret, bytes):
            assert secret.hex() not in text and base64.b64encode(secret).decode() not in text
        else:
            assert secret not in text


@pytest.fixture
def tls_server(lab: LabNetwork, coturn: StartCoturn, tmp_path: Path) -> tuple[Coturn, str]:
    ca, ca_key, ca_cert = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, "server", ca_key, ca_cert, [LAB_NAME], [lab.ipv4])
    return coturn(tls=(str(cert.cert), str(cert.key))), str(ca.cert)


def test_trace_names_transport_addresses_method_and_transaction_over_udp_tcp_and_tls(
        lab: LabNetwork, tls_server: tuple[Coturn, str]) -> None:
    server, ca = tls_server
    urls = {"udp": server.url("turn"), "tcp": server.url("turn", query="?transport=tcp"),
            "tls": server.url("turns", host=LAB_NAME)}
    done = gather(*(arg for url in urls.values() for arg in ("--turn", url)),
                  "-u", LAB_USER, "-p", LAB_PASSWORD, "--ca-file", ca)
    assert done.returncode == 0, done.stderr
    lines = traced(done.stderr)
    for transport in urls:
        mine = [line for line in lines if line[0] == transport]
        requests = [REQUEST.match(event) for *_, event in mine]
        responses = [RESPONSE.match(event) for *_, event in mine]
        sent = {m.group(2): m.group(1) for m in requests if m}
        answered = {m.group(3): m for m in responses if m}
        # The challenge: the first Allocate is answered 401 with REALM and NONCE; the
        # second carries the credentials and succeeds; the Refresh releases.
        assert "Allocate" in sent.values() and "Refresh(0)" in sent.values(), mine
        challenge = [m for m in answered.values() if "error response 401" in m.group(2)]
        assert challenge and challenge[0].group(4) == f"REALM '{LAB_REALM}'", mine
        assert challenge[0].group(5).startswith("NONCE ")
        assert any(m.group(2) == "success response" for m in answered.values())
        assert set(answered) <= set(sent), "every response's tid is a request's"
        # Every transaction line carries the local port and the server's address:port.
        for _, local, remote, event in mine:
            if event.startswith(("> ", "< ")):
                assert not local.endswith(":?"), event
                assert remote == f"{lab.ipv4}:{server.port + (1 if transport == 'tls' else 0)}"
        authenticated = [e for *_, e in mine if "USERNAME" in e]
        assert authenticated and all(f"USERNAME '{LAB_USER}' REALM '{LAB_REALM}'" in e
                                     for e in authenticated)
    events = [(transport, event) for transport, _, _, event in lines]
    for transport in ("tcp", "tls"):
        assert (transport, "TCP connect") in events
        assert any(t == transport and e.startswith("TCP connected in ") for t, e in events)
    assert ("tls", f"TLS handshake start (server name {LAB_NAME})") in events
    assert any(t == "tls" and e.startswith("TLS handshake done in ") and "TLSv1" in e
               for t, e in events)
    assert_no_secret(done.stdout + done.stderr, LAB_PASSWORD,
                     integrity_key(LAB_USER, LAB_PASSWORD))


def test_trace_shows_tcp_and_tls_failures(lab: LabNetwork, coturn: StartCoturn,
                                          tls_server: tuple[Coturn, str]) -> None:
    server, _ = tls_server  # no --ca-file: its certificate is untrusted
    plain = coturn()
    done = gather("--turn", server.url("turns", host=LAB_NAME), "--turn",
                  f"turn:{lab.ipv4}:{plain.port + 40}?transport=tcp",  # nothing listens
                  "-u", LAB_USER, "-p", LAB_PASSWORD)
    events = [(transport, event) for transport, _, _, event in traced(done.stderr)]
    assert any(t == "tls" and e.startswith("TLS handshake failed: TLS certificate of")
               for t, e in events), done.stderr
    assert any(t == "tcp" and e.startswith("TCP connect failed:") and "refused" in e
               for t, e in events), done.stderr


def test_rest_credentials_never_reach_the_trace(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn("--use-auth-secret", f"--static-auth-secret={REST_SECRET}")
    done = gather("--turn", server.url("turn"), "--turn-secret", REST_SECRET,
                  "--turn-user", "trace-user")
    assert done.returncode == 0, done.stderr
    username = json.loads(done.stdout)["username"]
    assert re.fullmatch(r"\d{10}:trace-user", username)
    assert f"USERNAME '{username}'" in done.stderr  # who it spoke as: not a secret
    password = base64.b64encode(hmac.new(REST_SECRET.encode(), username.encode(),
                                         hashlib.sha1).digest()).decode()
    assert_no_secret(done.stdout + done.stderr, REST_SECRET, password,
                     integrity_key(username, password))


def test_a_401_report_names_the_realm_and_the_username(lab: LabNetwork,
                                                       coturn: StartCoturn) -> None:
    server = coturn()
    done = subprocess.run([sys.executable, "-m", "iceprobe", "gather", "--turn",
                           server.url("turn"), "-u", "bob", "-p", "wrong", "--json"],
                          capture_output=True, text=True, timeout=60)
    document = json.loads(done.stdout)
    assert [e["error_code"] for e in document["errors"]] == [401]
    assert document["username"] == "bob"
    realms = {s["url"]: s["realm"] for s in document["servers"]}
    # The TURN server challenged with its realm; as a STUN server it never asked.
    assert realms == {server.url("turn"): LAB_REALM, server.url("stun"): None}


def test_redact_replaces_the_username_and_keeps_a_rest_expiry(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn("--use-auth-secret", f"--static-auth-secret={REST_SECRET}")
    done = subprocess.run([sys.executable, "-m", "iceprobe", "gather", "--turn",
                           server.url("turn"), "--turn-secret", "not-the-secret",
                           "--turn-user", "customer-4711", "--redact", "--json"],
                          capture_output=True, text=True, timeout=60)
    document = json.loads(done.stdout)
    assert re.fullmatch(r"\d{10}:user-1", document["username"]), document["username"]
    assert "customer-4711" not in done.stdout
    assert [s["realm"] for s in document["servers"] if s["scheme"] == "turn"] == [LAB_REALM]
