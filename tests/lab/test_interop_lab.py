"""The core scenarios against servers other than coturn: pion/turn 2.1.0, node-turn 0.0.6
and the npm `stun` 2.1.0 server (tests/lab/interop.py), each inside the test's namespace.

Tests without a mark pin what iceprobe already gets right against these servers. The
`xfail(strict=True)` ones assert the right behaviour for what issue 16 lists as wrong: they
fail today, and turn into an XPASS (a failure, being strict) once the item is fixed, so the
mark must then go. docs/interop.md records what each server does differently.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.certs import make_ca, make_server_cert
from tests.lab.interop import InteropServer
from tests.lab.netns import LAB_NAME, LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER

pytestmark = pytest.mark.lab

Start = Callable[..., InteropServer]
CREDENTIALS = ("-u", LAB_USER, "-p", LAB_PASSWORD)
REST_SECRET = "interop-rest-Secret-7"
PION_SECRET = "interop-pion-Secret-9"
#: A short relay check: 5 echoes, 0.3 s of bulk each way, the least budget that allows it.
RELAY_QUICK = ("--count", "5", "--duration", "0.3", "--timeout", "6")


def iceprobe(command: str, *args: str) -> tuple[int, dict[str, Any], float]:
    """Run `iceprobe COMMAND ... --json`: exit status, JSON document, wall time."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "iceprobe", command, *args, "--json"],
                          capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout, f"exit {done.returncode}, no JSON on stdout: {done.stderr}"
    assert LAB_PASSWORD not in done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout), elapsed


def gather(*args: str) -> tuple[int, dict[str, Any]]:
    code, document, _ = iceprobe("gather", "--timeout", "2", *args)
    return code, document


def candidates(document: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [c for c in document["candidates"] if c["type"] == kind]


def verdicts(document: dict[str, Any]) -> dict[str, str]:
    return {v["id"]: v["severity"] for v in document["verdicts"]}


def report_text(document: dict[str, Any]) -> str:
    """Everything the verdicts tell the user, lower-cased."""
    return " ".join(f"{v['title']} {v['detail']} {v['hint']}"
                    for v in document["verdicts"]).lower()


def tls_files(lab: LabNetwork, tmp_path: Path) -> tuple[tuple[str, str], Path]:
    ca, ca_key, ca_cert = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, "server", ca_key, ca_cert, [LAB_NAME], [lab.ipv4])
    return (str(cert.cert), str(cert.key)), ca.cert


def pion_rest_credentials(secret: str, ttl: int = 3600) -> tuple[str, str]:
    """pion's own REST format (NewLongTermAuthHandler): the username is a bare expiry."""
    username = str(int(time.time()) + ttl)
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


# --- pion/turn -------------------------------------------------------------------------

@pytest.mark.parametrize("kind, transport", [("turn", "udp"), ("turn", "tcp"),
                                             ("turns", "tls")])
def test_pion_gives_a_relay_over_udp_tcp_and_tls(lab: LabNetwork, pion: Start, tmp_path: Path,
                                                 kind: str, transport: str) -> None:
    tls, ca = tls_files(lab, tmp_path)
    server = pion(tls=tls)
    code, document = gather("--turn", server.url(kind, transport), *CREDENTIALS,
                            "--ca-file", str(ca), "--no-turn-as-stun")
    assert code == 0, document
    assert document["errors"] == []
    [relay] = candidates(document, "relay")
    assert relay["relay_protocol"] == transport
    first, last = server.relay_ports
    assert relay["address"] == lab.ipv4 and first <= relay["port"] <= last


@pytest.mark.parametrize("username", [LAB_USER, "nobody"])
def test_pion_refuses_bad_credentials_with_a_bare_400_and_no_relay(
        lab: LabNetwork, pion: Start, username: str) -> None:
    server = pion()
    code, document = gather("--turn", server.url(), "-u", username, "-p", "not-the-password")
    assert code == 1
    assert candidates(document, "relay") == []
    assert [e["error_code"] for e in document["errors"]] == [400]


def test_pion_bare_400_after_challenge_is_read_as_probably_the_credentials(
        lab: LabNetwork, pion: Start) -> None:
    server = pion()
    code, document = gather("--turn", server.url(), "-u", LAB_USER, "-p", "not-the-password")
    assert code == 1
    assert "server-incompatible" not in verdicts(document)
    # pion sends no reason phrase: iceprobe must not invent "error 400".
    assert all("error 400" not in e["error_text"] for e in document["errors"])
    assert "credential" in report_text(document)
    [rejected] = [v for v in document["verdicts"] if v["id"] == "turn-credentials-rejected"]
    assert rejected["confidence"] == "likely" and "400 (no reason phrase)" in rejected["detail"]
    [error] = document["errors"]
    assert error["after_challenge"] is True and error["error_text"] == ""
    assert [s["software"] for s in document["servers"]] == [None, None]  # pion sends none


def test_pion_expired_rest_credentials_are_not_said_to_get_401(lab: LabNetwork,
                                                               pion: Start) -> None:
    server = pion(rest_secret=REST_SECRET)
    expiry = int(time.time()) - 7200
    username = f"{expiry}:{LAB_USER}"
    password = base64.b64encode(hmac.new(REST_SECRET.encode(), username.encode(),
                                         hashlib.sha1).digest()).decode()
    code, document = gather("--turn", server.url(), "-u", username, "-p", password)
    assert code == 1
    assert verdicts(document).get("turn-credentials-expired") == "fail"
    assert "answers 401" not in report_text(document)


def test_pion_accepts_coturn_format_rest_credentials(lab: LabNetwork, pion: Start) -> None:
    server = pion(rest_secret=REST_SECRET)
    code, document = gather("--turn", server.url(), "--turn-secret", REST_SECRET)
    assert code == 0, document
    assert len(candidates(document, "relay")) == 1
    code, document = gather("--turn", server.url(), "--turn-secret", "not-the-secret")
    assert code == 1
    assert candidates(document, "relay") == []


def test_pion_accepts_its_own_rest_format_given_as_plain_credentials(
        lab: LabNetwork, pion: Start) -> None:
    # The server side, with credentials made here; iceprobe makes them from --turn-secret
    # in the next test.
    server = pion(pion_secret=PION_SECRET)
    username, password = pion_rest_credentials(PION_SECRET)
    code, document = gather("--turn", server.url(), "-u", username, "-p", password)
    assert code == 0, document
    assert len(candidates(document, "relay")) == 1


def test_pion_own_rest_format_from_turn_secret(lab: LabNetwork, pion: Start) -> None:
    server = pion(pion_secret=PION_SECRET)
    code, document = gather("--turn", server.url(), "--turn-secret", PION_SECRET,
                            "--turn-user", "", "--separator", "")
    assert code == 0, document
    assert len(candidates(document, "relay")) == 1


def test_pion_ignores_requested_address_family_and_iceprobe_says_so(
        lab: LabNetwork, pion: Start) -> None:
    server = pion()
    code, document = gather("--turn", server.url(), *CREDENTIALS, "--relay-family", "ipv6")
    [relay] = candidates(document, "relay")
    assert ":" not in relay["address"]  # pion 2.1.0 gives IPv4 whatever is asked
    assert verdicts(document)["relay-family-ignored"] == "warn"
    assert code == 0


@pytest.mark.parametrize("kind, transport", [("turn", "udp"), ("turns", "tls")])
def test_data_flows_through_pion(lab: LabNetwork, pion: Start, tmp_path: Path, kind: str,
                                 transport: str) -> None:
    tls, ca = tls_files(lab, tmp_path)
    server = pion(tls=tls)
    code, document, _ = iceprobe("relay", "--webrtc", "--turn", server.url(kind, transport),
                                 *CREDENTIALS, "--ca-file", str(ca), *RELAY_QUICK)
    assert code == 0, document
    [check] = document["relay"]
    assert check["ok"] and check["pair"]["relay_protocol"] == transport
    assert check["echo"]["received"] == 5
    assert verdicts(document)["relay-data-path-ok"] == "ok"


def test_relay_over_tls_to_pion_ends_without_waiting_for_the_budget(
        lab: LabNetwork, pion: Start, tmp_path: Path) -> None:
    """Issue 16 item 5: pion never closes the TLS connection after the release; the
    command used to wait the whole --timeout for it."""
    tls, ca = tls_files(lab, tmp_path)
    server = pion(tls=tls)
    code, document, elapsed = iceprobe("relay", "--webrtc",
                                       "--turn", server.url("turns"), *CREDENTIALS,
                                       "--ca-file", str(ca), "--count", "5", "--duration",
                                       "0.3", "--timeout", "20")
    assert code == 0, document
    [check] = document["relay"]
    took = check["duration_ms"] / 1000
    # Start-up, the allocation pre-check and the bounded close (0.5 s TLS grace) on top of
    # the check itself; waiting for pion's close would add the rest of the 20 s budget.
    assert elapsed < took + 3.0, f"relay took {elapsed:.1f} s for a {took:.1f} s check"
    # Both peers released their allocations over TLS before the connections were dropped.
    releases = [t for t in check["turn_requests"] if t["request"] == "Refresh(0)"]
    assert [t["outcome"] for t in releases] == ["success", "success"]
    # The whole run, as the document says, covers the check (issue 16 item 9).
    assert document["duration_ms"] >= check["duration_ms"]


def test_gather_over_tls_to_pion_ends_promptly(lab: LabNetwork, pion: Start,
                                               tmp_path: Path) -> None:
    tls, ca = tls_files(lab, tmp_path)
    server = pion(tls=tls)
    code, document, elapsed = iceprobe("gather", "--turn", server.url("turns"), *CREDENTIALS,
                                       "--ca-file", str(ca), "--timeout", "20")
    assert code == 0, document
    assert elapsed < document["duration_ms"] / 1000 + 2.0, f"gather took {elapsed:.1f} s"


def test_relay_fails_at_the_step_in_progress_when_pion_dies(lab: LabNetwork,
                                                            pion: Start) -> None:
    """Issue 16 item 9: killing the server during the check gave a PASS, then waited the
    whole budget."""
    server = pion()
    process = subprocess.Popen(
        [sys.executable, "-m", "iceprobe", "relay", "--webrtc", "--turn", server.url(),
         *CREDENTIALS, "--count", "5", "--duration", "10", "--timeout", "40", "--json", "-v"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        trace = []
        for line in process.stderr:
            trace.append(line)
            if "data channel open" in line:
                break
        assert any("data channel open" in line for line in trace), "".join(trace)
        time.sleep(0.5)  # into the bulk transfer (the 5 echoes take milliseconds)
        server.process.kill()
        killed = time.monotonic()
        out, err = process.communicate(timeout=60)
        after_kill = time.monotonic() - killed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in err
    assert process.returncode == 1, out
    document = json.loads(out)
    [check] = document["relay"]
    assert not check["ok"] and check["failed_step"] == "bulk"
    assert "went away during the bulk step" in check["failure"]
    assert any(e["problem"] == "server-lost" for e in check["errors"])
    broken = [v for v in document["verdicts"] if v["id"] == "relay-data-path-broken"]
    assert broken and "went away during the bulk step" in broken[0]["title"]
    # Each way's bulk transfer was to last 10 s: the check ends soon after the kill.
    assert after_kill < 3.0, f"ended {after_kill:.1f} s after the kill"


# --- node-turn -------------------------------------------------------------------------

def test_node_turn_gives_a_relay(lab: LabNetwork, node_turn: Start) -> None:
    server = node_turn()
    code, document = gather("--turn", server.url(), *CREDENTIALS)
    assert code == 0, document
    assert document["errors"] == []
    [relay] = candidates(document, "relay")
    first, last = server.relay_ports
    assert relay["address"] == lab.ipv4 and first <= relay["port"] <= last


@pytest.mark.parametrize("username", [LAB_USER, "nobody"])
def test_node_turn_bad_credentials_are_rejected_credentials(
        lab: LabNetwork, node_turn: Start, username: str) -> None:
    server = node_turn()
    code, document = gather("--turn", server.url(), "-u", username, "-p", "not-the-password")
    assert code == 1
    assert candidates(document, "relay") == []
    assert [(e["error_code"], e["error_text"]) for e in document["errors"]] == [
        (401, "Unauthorized")]
    assert verdicts(document)["turn-credentials-rejected"] == "fail"


def test_relay_through_node_turn_fails(lab: LabNetwork, node_turn: Start) -> None:
    # node-turn drops ChannelData from clients: no data can flow, and the check says so.
    server = node_turn()
    code, document, _ = iceprobe("relay", "--webrtc",
                                 "--turn", server.url(), *CREDENTIALS, *RELAY_QUICK)
    assert code == 1
    [check] = document["relay"]
    assert check["attempted"] and not check["ok"]
    assert verdicts(document)["relay-data-path-broken"] == "fail"


def test_relay_through_node_turn_names_the_server_behaviour(lab: LabNetwork,
                                                            node_turn: Start) -> None:
    """Issue 16 item 6: node-turn's ChannelBind success carries no MESSAGE-INTEGRITY, so
    aioice discards it and resends; the report used to blame a firewall, with no event."""
    server = node_turn()
    code, document, _ = iceprobe("relay", "--webrtc",
                                 "--turn", server.url(), *CREDENTIALS, *RELAY_QUICK)
    assert code == 1
    [check] = document["relay"]
    assert check["errors"] != []
    assert "firewall" not in report_text(document)
    binds = [t for t in check["turn_requests"] if t["request"] == "ChannelBind"]
    assert {t["peer"] for t in binds} == {"offerer", "answerer"}
    assert all(t["outcome"] == "discarded" and t["problem"] == "no-message-integrity"
               and t["answers"] >= 1 for t in binds), binds
    assert all("carried no MESSAGE-INTEGRITY" in e["error_text"]
               and e["problem"] == "ChannelBind" for e in check["errors"]), check["errors"]
    # aioice never got its channel, so nothing was ever sent through the relay.
    assert check["channel_data"]["sent"] == 0
    [broken] = [v for v in document["verdicts"] if v["id"] == "relay-data-path-broken"]
    assert "ChannelBind answers were discarded" in broken["title"]
    assert broken["confidence"] == "certain"


def test_relay_trace_shows_the_checks_turn_transactions(lab: LabNetwork,
                                                        node_turn: Start) -> None:
    server = node_turn()
    done = subprocess.run([sys.executable, "-m", "iceprobe", "relay", "--webrtc", "--turn",
                           server.url(), *CREDENTIALS, *RELAY_QUICK, "-v"],
                          capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr and LAB_PASSWORD not in done.stderr
    assert "turn > ChannelBind request" in done.stderr
    assert "ChannelBind success" in done.stderr
    assert "no MESSAGE-INTEGRITY, discarded by the client" in done.stderr
    assert "turn > Refresh(0) request" in done.stderr


def test_node_turn_dropping_an_ipv6_allocate_is_not_unreachable(lab: LabNetwork,
                                                                node_turn: Start) -> None:
    server = node_turn()
    code, document = gather("--turn", server.url(), *CREDENTIALS, "--relay-family", "ipv6")
    assert code == 1
    assert candidates(document, "relay") == []
    # The Binding to the same port succeeded in the same run.
    assert candidates(document, "srflx") != []
    assert "server-unreachable" not in verdicts(document)
    assert verdicts(document)["relay-family-request-ignored"] == "fail"


def test_node_turn_both_families_still_gives_the_ipv4_relay(lab: LabNetwork,
                                                            node_turn: Start) -> None:
    server = node_turn()
    code, document = gather("--turn", server.url(), *CREDENTIALS, "--relay-family", "both")
    [relay] = candidates(document, "relay")
    assert ":" not in relay["address"]
    assert code == 0


def test_node_turn_both_families_says_the_ipv6_allocate_was_ignored(
        lab: LabNetwork, node_turn: Start) -> None:
    server = node_turn()
    code, document = gather("--turn", server.url(), *CREDENTIALS, "--relay-family", "both")
    assert "server-unreachable" not in verdicts(document)
    assert "without a 440" not in report_text(document)
    assert "relay-family-ignored" not in verdicts(document)
    assert verdicts(document)["relay-family-request-ignored"] == "warn"
    assert code == 0  # the IPv4 relay works


# --- open relays (issue 16 item 8) -------------------------------------------------------

def test_open_node_turn_probed_with_no_auth_is_an_open_relay(lab: LabNetwork,
                                                           node_turn: Start) -> None:
    server = node_turn(users={})
    code, document = gather("--turn", server.url(), "--no-auth")
    assert code == 0, document
    assert len(candidates(document, "relay")) == 1
    assert verdicts(document)["open-relay"] == "warn"
    assert document["username"] is None
    [turn] = [s for s in document["servers"] if s["scheme"] == "turn"]
    assert turn["unauthenticated_allocation"] is True and turn["realm"] is None


def test_open_node_turn_is_an_open_relay_even_when_credentials_are_given(
        lab: LabNetwork, node_turn: Start) -> None:
    server = node_turn(users={})
    code, document = gather("--turn", server.url(), *CREDENTIALS)
    assert code == 0, document
    assert verdicts(document)["open-relay"] == "warn"


def test_no_auth_against_pion_says_it_requires_credentials(lab: LabNetwork,
                                                          pion: Start) -> None:
    server = pion()
    code, document = gather("--turn", server.url(), "--no-auth")
    assert code == 1
    assert candidates(document, "relay") == []
    assert verdicts(document)["turn-credentials-missing"] == "fail"
    assert "open-relay" not in verdicts(document)
    assert "requires credentials" in report_text(document)
    [error] = document["errors"]
    assert (error["error_code"], error["after_challenge"]) == (401, False)



# --- npm stun (STUN only) --------------------------------------------------------------

def test_npm_stun_server_gives_a_srflx(lab: LabNetwork, npm_stun: Start) -> None:
    server = npm_stun()
    code, document = gather("--stun", server.url("stun"))
    assert code == 0, document
    [srflx] = candidates(document, "srflx")
    assert srflx["address"] == lab.ipv4 and document["errors"] == []


def test_stun_only_server_behind_turn_url_gives_no_relay(lab: LabNetwork,
                                                         npm_stun: Start) -> None:
    server = npm_stun()
    code, document = gather("--turn", server.url(), *CREDENTIALS)
    assert code == 1
    assert candidates(document, "relay") == []
    assert verdicts(document)["no-relay-candidates"] == "fail"


def test_stun_only_server_behind_turn_url_is_named_not_a_turn_server(
        lab: LabNetwork, npm_stun: Start) -> None:
    server = npm_stun()
    code, document = gather("--turn", server.url(), *CREDENTIALS)
    assert code == 1
    assert all(e["cause"] != "malformed" for e in document["errors"])
    assert "not a turn server" in report_text(document)
    assert verdicts(document)["not-a-turn-server"] == "fail"
    [error] = document["errors"]
    assert (error["cause"], error["problem"]) == ("wrong-method", "binding-success")
    # The server names itself on its Binding success; the npm stun launcher sends this.
    assert "stun/v2.1.0" in (document["servers"][0]["software"] or "")


def test_server_with_mismatched_transaction_ids_is_not_unreachable(
        lab: LabNetwork, npm_stun: Start) -> None:
    server = npm_stun(mismatched_ids=True)
    code, document = gather("--stun", server.url("stun"))
    assert code == 1
    assert candidates(document, "srflx") == []
    assert "server-unreachable" not in verdicts(document)
    assert "transaction id" in report_text(document)
    assert verdicts(document)["mismatched-transaction-ids"] == "fail"
    assert "check udp" not in report_text(document)  # not a firewall: replies arrived
    [error] = document["errors"]
    assert error["problem"] == "mismatched-transaction-ids"
