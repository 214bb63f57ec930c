"""TURN and STUN over TLS against coturn with certificates made for the test."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lab.certs import make_ca, make_server_cert
from tests.lab.netns import LAB_NAME, LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn
from tests.schema import validated

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]


def gather_json(*args: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run([sys.executable, "-m", "iceprobe", "gather", "-u", LAB_USER, "-p",
                           LAB_PASSWORD, "--timeout", "3", "--json", *args],
                          capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr
    document: dict[str, object] = validated(done.stdout, "gather")
    return done.returncode, document


def tls_server(coturn: StartCoturn, lab: LabNetwork, tmp_path: Path, *, names: list[str],
               expired: bool = False) -> tuple[Coturn, Path]:
    ca, ca_key, ca_cert = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, "server", ca_key, ca_cert, names, [lab.ipv4],
                            expired=expired)
    return coturn(tls=(str(cert.cert), str(cert.key))), ca.cert


def verdicts(document: dict[str, object]) -> dict[str, str]:
    entries = document["verdicts"]
    assert isinstance(entries, list)
    return {v["id"]: v["severity"] for v in entries}


def errors(document: dict[str, object]) -> list[dict[str, object]]:
    entries = document["errors"]
    assert isinstance(entries, list)
    return entries


def test_turns_with_trusted_ca_file_gives_relay(lab: LabNetwork, coturn: StartCoturn,
                                                tmp_path: Path) -> None:
    server, ca = tls_server(coturn, lab, tmp_path, names=[LAB_NAME])
    code, document = gather_json("--turn", server.url("turns", host=LAB_NAME),
                                 "--ca-file", str(ca))
    assert code == 0, document
    assert errors(document) == []


def test_untrusted_certificate_is_its_own_verdict(lab: LabNetwork, coturn: StartCoturn,
                                                  tmp_path: Path) -> None:
    server, _ = tls_server(coturn, lab, tmp_path, names=[LAB_NAME])
    code, document = gather_json("--turn", server.url("turns", host=LAB_NAME))
    assert code == 1
    [event] = errors(document)
    assert (event["error_code"], event["cause"], event["problem"]) == (
        701, "tls", "certificate-untrusted")
    found = verdicts(document)
    assert found["tls-certificate-untrusted"] == "fail"
    assert "server-unreachable" not in found


def test_name_mismatch_is_its_own_verdict(lab: LabNetwork, coturn: StartCoturn,
                                          tmp_path: Path) -> None:
    server, ca = tls_server(coturn, lab, tmp_path, names=["other.lab.test"])
    code, document = gather_json("--turn", server.url("turns", host=LAB_NAME),
                                 "--ca-file", str(ca))
    assert code == 1
    [event] = errors(document)
    assert event["problem"] == "hostname-mismatch"
    assert verdicts(document)["tls-hostname-mismatch"] == "fail"


def test_expired_certificate_is_its_own_verdict(lab: LabNetwork, coturn: StartCoturn,
                                                tmp_path: Path) -> None:
    server, ca = tls_server(coturn, lab, tmp_path, names=[LAB_NAME], expired=True)
    code, document = gather_json("--turn", server.url("turns", host=LAB_NAME),
                                 "--ca-file", str(ca))
    assert code == 1
    [event] = errors(document)
    assert event["problem"] == "certificate-expired"
    assert verdicts(document)["tls-certificate-expired"] == "fail"


def test_insecure_skips_verification_and_says_so(lab: LabNetwork, coturn: StartCoturn,
                                                 tmp_path: Path) -> None:
    server, _ = tls_server(coturn, lab, tmp_path, names=["other.lab.test"])
    code, document = gather_json("--turn", server.url("turns", host=LAB_NAME), "--insecure")
    assert code == 0, document
    assert verdicts(document)["tls-verification-disabled"] == "warn"


def test_stuns_over_tls_gives_srflx(lab: LabNetwork, coturn: StartCoturn,
                                    tmp_path: Path) -> None:
    server, ca = tls_server(coturn, lab, tmp_path, names=[LAB_NAME])
    code, document = gather_json("--stun", server.url("stuns", host=LAB_NAME),
                                 "--ca-file", str(ca))
    assert code == 0, document
    candidates = document["candidates"]
    assert isinstance(candidates, list)
    assert "srflx" in {c["type"] for c in candidates}


def test_transport_matrix_shows_which_ways_out_work(lab: LabNetwork, coturn: StartCoturn,
                                                    tmp_path: Path) -> None:
    server, ca = tls_server(coturn, lab, tmp_path, names=[LAB_NAME])
    tls_port = server.port + 1
    code, document = gather_json("--matrix", "--turn", f"turn:{LAB_NAME}", "--ca-file",
                                 str(ca), "--port", str(server.port), "--port", str(tls_port),
                                 "--timeout", "2")
    assert code == 0, document
    matrix = document["matrix"]
    assert isinstance(matrix, list)
    assert len(matrix) == 3 * 5  # udp, tcp, tls x 3478, 443, 5349 and the two extra ports
    cell = {(c["transport"], c["port"]): c for c in matrix}
    assert cell[("udp", server.port)]["ok"] and cell[("tcp", server.port)]["ok"]
    assert cell[("tls", tls_port)]["ok"]
    assert not cell[("udp", 3478)]["ok"]
    assert cell[("udp", 3478)]["result"] == "701 unreachable"
    [verdict] = [v for v in document["verdicts"] if v["id"] == "transport-matrix"]  # type: ignore[attr-defined]
    assert verdict["severity"] == "ok"
    assert f"udp/{server.port}" in verdict["title"] and f"tls/{tls_port}" in verdict["title"]


@pytest.mark.parametrize("layout, works, fails", [
    ("--no-udp", "tcp", ("udp", "701 unreachable")),
    ("--no-tcp", "udp", ("tcp", "701 refused")),
])
def test_matrix_reports_a_single_transport_listener(lab: LabNetwork, coturn: StartCoturn,
                                                    layout: str, works: str,
                                                    fails: tuple[str, str]) -> None:
    server = coturn(layout)
    code, document = gather_json("--matrix", "--turn", f"turn:{lab.ipv4}", "--port",
                                 str(server.port), "--timeout", "2")
    assert code == 0, document
    matrix = document["matrix"]
    assert isinstance(matrix, list)
    cell = {(c["transport"], c["port"]): c for c in matrix}
    assert cell[(works, server.port)]["ok"]
    assert cell[(fails[0], server.port)]["result"] == fails[1]


def test_tls_handshake_that_never_completes_is_a_handshake_failure(
        lab: LabNetwork) -> None:
    """A server that accepts the connection and never answers the ClientHello (our own
    listener: coturn's plain TCP port sometimes resets instead, which is another case)."""
    listener = socket.create_server((lab.ipv4, 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def accept_and_stall() -> None:
        connection, _ = listener.accept()
        held.append(connection)  # kept open, never written to

    thread = threading.Thread(target=accept_and_stall, daemon=True)
    thread.start()
    try:
        code, document = gather_json("--turn", f"turns:{lab.ipv4}:{port}", "--timeout", "1")
    finally:
        thread.join(timeout=5)
        for connection in held:
            connection.close()
        listener.close()
    assert code == 1
    [event] = errors(document)
    assert (event["error_code"], event["cause"], event["problem"]) == (701, "tls", "handshake")
    assert "timed out" in str(event["error_text"])
    assert verdicts(document)["server-unreachable"] == "fail"


def test_tls_to_a_server_speaking_another_protocol_is_a_handshake_failure(
        lab: LabNetwork) -> None:
    listener = socket.create_server((lab.ipv4, 0))
    port = listener.getsockname()[1]

    def answer_like_http() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer_like_http, daemon=True)
    thread.start()
    try:
        code, document = gather_json("--turn", f"turns:{lab.ipv4}:{port}")
    finally:
        thread.join(timeout=5)
        listener.close()
    assert code == 1
    [event] = errors(document)
    assert (event["cause"], event["problem"]) == ("tls", "handshake")
    assert "TLS handshake" in str(event["error_text"]) and "failed" in str(event["error_text"])


def test_turns_at_a_plain_tcp_port_is_named_not_tls_without_waiting_for_the_budget(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    """Issue 16 item 9: coturn never answers a ClientHello on its plain port, so a turns:
    URL at it used to wait the whole budget for a handshake timeout. A plain STUN Binding
    over TCP to the same port, sent while the handshake is pending, answers at once."""
    server = coturn()
    started = time.monotonic()
    code, document = gather_json("--turn", f"turns:{server.ip}:{server.port}", "--timeout",
                                 "10")
    elapsed = time.monotonic() - started
    assert code == 1
    [event] = errors(document)
    assert (event["error_code"], event["cause"], event["problem"]) == (701, "tls", "not-tls")
    assert "speaks plain STUN/TURN over TCP, not TLS" in str(event["error_text"])
    entries = document["verdicts"]
    assert isinstance(entries, list)
    [verdict] = [v for v in entries if v["id"] == "server-unreachable"]
    assert "speaks plain TURN over TCP, not TLS" in verdict["hint"]
    assert verdict["confidence"] == "certain"
    # The side probe starts after 0.5 s and answers in milliseconds: well within the 10 s.
    assert elapsed < 5.0, f"took {elapsed:.1f} s with --timeout 10"
