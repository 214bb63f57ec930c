"""Gathering against real coturn and our own responders, inside the lab network."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from iceprobe.gather import GatherOptions, gather
from iceprobe.model import (
    CandidateType,
    Cause,
    Confidence,
    Credentials,
    GatherReport,
    Requirement,
    Severity,
)
from iceprobe.rules import Evidence, evaluate
from iceprobe.urls import parse_server_url
from tests.lab.netns import DUAL_STACK_NAME, MISSING_NAME, LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn, SilentServer, free_port
from tests.schema import validated

pytestmark = pytest.mark.lab

GOOD = Credentials(LAB_USER, LAB_PASSWORD)
StartCoturn = Callable[..., Coturn]


def probe(*urls: str, credentials: Credentials | None = GOOD,
          timeout: float = 5.0) -> GatherReport:
    specs = [parse_server_url(u) for u in urls]
    return asyncio.run(gather(specs, GatherOptions(timeout=timeout, credentials=credentials)))


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str
    seconds: float

    def json(self) -> Any:
        return validated(self.stdout, "gather")


def run_cli(*args: str) -> CliRun:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "iceprobe", *args], capture_output=True,
                          text=True, timeout=60)
    return CliRun(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


def types_by_url(report: GatherReport) -> dict[str | None, set[str]]:
    found: dict[str | None, set[str]] = {}
    for candidate in report.candidates:
        found.setdefault(candidate.url, set()).add(candidate.type.value)
    return found


def test_healthy_stun_and_turn_give_srflx_and_relay(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn()
    stun, turn = server.url("stun"), server.url("turn")
    report = probe(stun, turn)

    assert report.errors == ()
    found = types_by_url(report)
    assert found[None] == {"host"}
    assert found[stun] == {"srflx"}
    # The TURN server's srflx comes from probing it as a STUN server, under its stun: URL,
    # as a browser gets it; here that URL is the named STUN server's, probed once.
    assert found[turn] == {"relay"}
    assert [r.server.url for r in report.results] == [stun, turn]
    relay = next(c for c in report.candidates if c.type is CandidateType.RELAY)
    assert relay.address == lab.ipv4
    assert relay.related_address == lab.ipv4  # the mapped address: no NAT in the lab
    hosts = {c.address for c in report.candidates if c.type is CandidateType.HOST}
    assert hosts == {lab.ipv4, lab.ipv6}
    verdicts = evaluate(Evidence(report.host_candidates, report.results))
    # No NAT in the lab: the srflx equals the host address, which is worth an info.
    assert [v.id for v in verdicts] == ["no-nat", "all-candidates-gathered"]


def test_cli_healthy_exit_0_and_json_report(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn()
    run = run_cli("gather", "--stun", server.url("stun"), "--turn", server.url("turn"),
                  "-u", LAB_USER, "-p", LAB_PASSWORD, "--json")
    assert run.code == 0, run.stderr
    document = run.json()
    assert document["ok"] is True
    assert [s["status"] for s in document["servers"]] == ["ok", "ok"]
    assert [s["addresses"] for s in document["servers"]] == [[lab.ipv4], [lab.ipv4]]
    assert {c["type"] for c in document["candidates"]} == {"host", "srflx", "relay"}
    assert document["errors"] == []
    assert LAB_PASSWORD not in run.stdout + run.stderr
    # coturn names itself (SOFTWARE) on every response; it challenged, so it is no open relay.
    assert all(s["software"].startswith("Coturn-4.6") for s in document["servers"])
    assert [s["unauthenticated_allocation"] for s in document["servers"]] == [False, False]


def test_wrong_password_is_401_unauthorized_with_no_relay(lab: LabNetwork,
                                                          coturn: StartCoturn) -> None:
    server = coturn()
    turn = server.url("turn")
    report = probe(turn, credentials=Credentials(LAB_USER, "wrong-password"))

    [event] = report.errors
    assert (event.error_code, event.cause) == (401, Cause.RESPONSE)
    assert event.error_text == "Unauthorized"  # coturn's reason phrase, NUL padding stripped
    assert (event.address, event.server_address, event.server_port) == (
        lab.ipv4, lab.ipv4, server.port)
    assert event.port is not None
    assert event.after_challenge is True  # the rejected Allocate carried the credentials
    verdicts = {v.id: v for v in evaluate(Evidence(report.host_candidates, report.results))}
    assert verdicts["turn-credentials-rejected"].severity is Severity.FAIL
    assert verdicts["turn-credentials-rejected"].confidence is Confidence.CERTAIN
    assert "credential" in verdicts["turn-credentials-rejected"].hint
    assert verdicts["no-relay-candidates"].severity is Severity.FAIL


def test_cli_wrong_password_exits_1_and_never_prints_it(lab: LabNetwork,
                                                       coturn: StartCoturn) -> None:
    server = coturn()
    wrong = "wrong-Pa55word-xyz"
    for extra in ((), ("--json",), ("--verbose",)):
        run = run_cli("gather", "--turn", server.url("turn"), "-u", LAB_USER, "-p", wrong,
                      *extra)
        assert run.code == 1, run.stderr
        assert "401" in run.stdout
        assert wrong not in run.stdout + run.stderr


def test_closed_udp_port_is_701_unreachable_without_waiting(lab: LabNetwork) -> None:
    port = free_port()
    url = f"stun:{lab.ipv4}:{port}"
    start = time.monotonic()
    report = probe(url, timeout=10)
    elapsed = time.monotonic() - start

    [event] = report.errors
    assert (event.error_code, event.cause) == (701, Cause.UNREACHABLE)
    assert "ICMP" in event.error_text
    # The ICMP error ends the probe: it does not wait for the 10 s budget.
    assert elapsed < 5
    [verdict] = [v for v in evaluate(Evidence(report.host_candidates, report.results))
                 if v.id == "server-unreachable"]
    assert verdict.severity is Severity.FAIL and verdict.urls == (url,)


def test_unresolvable_name_is_701_dns(lab: LabNetwork) -> None:
    url = f"turn:{MISSING_NAME}:3478"
    report = probe(url)

    # The TURN URL, and the same server as a STUN server (TURN as STUN, as browsers do);
    # errors are in the order they happened, and both lookups fail within a millisecond.
    assert sorted(e.url for e in report.errors) == sorted([url, f"stun:{MISSING_NAME}:3478"])
    for event in report.errors:
        assert (event.error_code, event.cause) == (701, Cause.DNS)
        assert event.error_text == (f"DNS lookup for {MISSING_NAME} failed: "
                                    "Name or service not known")
        assert event.server_address is None


def test_silent_server_times_out_within_budget(lab: LabNetwork,
                                               silent_server: SilentServer) -> None:
    url = f"stun:{lab.ipv4}:{silent_server.port}"
    run = run_cli("gather", "--stun", url, "--timeout", "1", "--json")

    assert run.code == 1
    [event] = run.json()["errors"]
    assert (event["error_code"], event["cause"]) == (701, "timeout")
    # Retransmitted on the browser-like schedule: sends at 0, 0.25 and 0.75 s.
    assert "within 1.0 s (3 sends)" in event["error_text"]
    assert run.json()["duration_ms"] < 1000 + 300


def test_two_servers_one_dead_require_each_fails_naming_it(lab: LabNetwork,
                                                           coturn: StartCoturn) -> None:
    server = coturn()
    dead = f"stun:{lab.ipv4}:{free_port()}"
    run = run_cli("gather", "--stun", server.url("stun"), "--stun", dead, "--json")

    assert run.code == 1
    document = run.json()
    failing = [v for v in document["verdicts"] if v["severity"] == "fail"]
    assert [v["urls"] for v in failing] == [[dead]]
    assert {s["url"]: s["status"] for s in document["servers"]} == {
        server.url("stun"): "ok", dead: "failed"}


def test_two_servers_one_dead_require_any_warns(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn()
    dead = f"stun:{lab.ipv4}:{free_port()}"
    run = run_cli("gather", "--stun", server.url("stun"), "--stun", dead,
                  "--require", "any", "--json")

    assert run.code == 0, run.stdout
    document = run.json()
    assert document["ok"] is True
    [warning] = [v for v in document["verdicts"] if v["severity"] == "warn"]
    assert warning["id"] == "server-unreachable" and warning["urls"] == [dead]


def test_aaaa_reached_only_over_ipv4_is_a_harmless_701(lab: LabNetwork,
                                                       coturn: StartCoturn) -> None:
    server = coturn()  # listens on the IPv4 address only
    url = f"stun:{DUAL_STACK_NAME}:{server.port}"
    report = probe(url)

    assert report.results[0].addresses == (lab.ipv6, lab.ipv4)  # AAAA first, as browsers
    [event] = report.errors
    assert (event.error_code, event.cause) == (701, Cause.UNREACHABLE)
    assert (event.address, event.server_address) == (lab.ipv6, lab.ipv6)
    [srflx] = [c for c in report.candidates if c.type is CandidateType.SRFLX]
    assert srflx.related_address == lab.ipv4
    verdicts = evaluate(Evidence(report.host_candidates, report.results))
    [unreachable] = [v for v in verdicts if v.id == "server-unreachable"]
    assert unreachable.severity is Severity.INFO
    assert "harmless" in unreachable.detail
    assert not any(v.severity is Severity.FAIL for v in verdicts)


def test_turn_over_tcp_gives_relay(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn()
    url = server.url("turn", query="?transport=tcp")
    report = probe(url)

    assert report.errors == ()
    assert types_by_url(report)[url] == {"relay"}


def test_closed_tcp_port_is_701_refused(lab: LabNetwork) -> None:
    url = f"turn:{lab.ipv4}:{free_port()}?transport=tcp"
    report = probe(url)

    [event] = report.errors
    assert (event.error_code, event.cause) == (701, Cause.REFUSED)


def test_allocations_are_released_so_quota_of_one_never_runs_out(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn("--user-quota=1")
    url = server.url("turn")
    for attempt in range(3):
        if attempt:
            time.sleep(1.3)  # coturn frees a released allocation on its 1 s timer
        report = probe(url)
        assert report.errors == (), f"probe {attempt + 1}: {report.errors}"
        assert types_by_url(report)[url] == {"relay"}
        assert types_by_url(report)[url.replace("turn:", "stun:")] == {"srflx"}


def test_credential_file_is_read_and_never_printed(lab: LabNetwork, coturn: StartCoturn,
                                                  tmp_path: Path) -> None:
    server = coturn()
    password_file = tmp_path / "password"
    password_file.write_text(LAB_PASSWORD + "\n")
    run = run_cli("gather", "--turn", server.url("turn"), "-u", LAB_USER,
                  "--credential-file", str(password_file), "--verbose")
    assert run.code == 0, run.stdout
    assert LAB_PASSWORD not in run.stdout + run.stderr


def test_verbose_traces_transactions_to_stderr_only(lab: LabNetwork,
                                                    coturn: StartCoturn) -> None:
    server = coturn()
    run = run_cli("gather", "--turn", server.url("turn"), "-u", LAB_USER, "-p", LAB_PASSWORD,
                  "--json", "--verbose")
    assert run.code == 0
    validated(run.stdout, "gather")  # stdout stays one JSON document
    assert "Allocate request" in run.stderr
    assert "released" in run.stderr
    assert LAB_PASSWORD not in run.stdout + run.stderr


@pytest.mark.parametrize("require", [Requirement.EACH, Requirement.ANY])
def test_stun_and_turn_on_a_dead_host_fail_in_both_modes(lab: LabNetwork,
                                                         require: Requirement) -> None:
    port = free_port()
    report = probe(f"stun:{lab.ipv4}:{port}", f"turn:{lab.ipv4}:{port}")
    verdicts = evaluate(Evidence(report.host_candidates, report.results, require))
    ids = {v.id for v in verdicts if v.severity is Severity.FAIL}
    assert {"only-host-candidates", "no-relay-candidates", "server-unreachable"} <= ids


def test_ctrl_c_exits_130_without_traceback(lab: LabNetwork,
                                            silent_server: SilentServer) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "iceprobe", "gather", "--stun",
         f"stun:{lab.ipv4}:{silent_server.port}", "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    silent_server.sock.settimeout(20)
    silent_server.sock.recv(2048)  # the probe is under way: interrupt it mid-transaction
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 130
    # One line on stderr; the results so far (none here) on stdout, marked as interrupted
    # (tests/lab/test_interrupt_lab.py has the rest).
    assert err.strip() == "iceprobe: interrupted (SIGINT): the results so far are shown"
    assert "INTERRUPTED (results so far)" in out and "Traceback" not in out


def test_ignore_turns_a_failure_into_info_and_exit_0(lab: LabNetwork) -> None:
    dead = f"stun:{lab.ipv4}:{free_port()}"
    run = run_cli("gather", "--stun", dead, "--json", "--ignore", "server-unreachable",
                  "--ignore", "only-host-candidates")
    assert run.code == 0, run.stdout
    ignored = {v["id"]: v["severity"] for v in run.json()["verdicts"]}
    assert ignored == {"server-unreachable": "info", "only-host-candidates": "info"}


def test_udp_silent_while_tcp_works_is_udp_blocked(lab: LabNetwork, coturn: StartCoturn,
                                                  silent_server: SilentServer) -> None:
    server = coturn()
    udp = f"turn:{lab.ipv4}:{silent_server.port}"  # a firewall that drops UDP
    tcp = server.url("turn", query="?transport=tcp")
    report = probe(udp, tcp, timeout=1)
    verdicts = {v.id: v for v in evaluate(Evidence(report.host_candidates, report.results))}
    assert verdicts["udp-blocked"].severity is Severity.WARN
    # The silent UDP port, as TURN and as STUN; TCP worked.
    assert verdicts["udp-blocked"].urls == (udp, udp.replace("turn:", "stun:"))


@pytest.mark.parametrize("mode", ["--redact", "--redact=all"])
def test_redacted_report_leaks_no_lab_address(lab: LabNetwork, coturn: StartCoturn,
                                              mode: str) -> None:
    server = coturn()
    url = server.url("turn", host="turn.lab.test")
    for extra in ((), ("--json",)):
        run = run_cli("gather", "--stun", f"stun:{DUAL_STACK_NAME}:{server.port}",
                      "--turn", url, "-u", LAB_USER, "-p", LAB_PASSWORD, mode, *extra)
        assert run.code == 0, run.stdout
        if extra:
            validated(run.stdout, "gather")  # a redacted document keeps its schema
        for address in (lab.ipv4, lab.ipv6):
            assert address not in run.stdout
        assert "host-1" in run.stdout
        assert ("turn.lab.test" in run.stdout) == (mode == "--redact")


def test_turn_as_stun_can_be_turned_off_and_never_applies_to_tcp(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    server = coturn()
    udp, tcp = server.url("turn"), server.url("turn", query="?transport=tcp")
    both = probe(udp, tcp)
    assert [(r.server.url, r.implied_by) for r in both.results] == [
        (udp, None), (tcp, None), (server.url("stun"), udp)]  # TCP is not used as STUN
    assert types_by_url(both)[server.url("stun")] == {"srflx"}
    specs = [parse_server_url(udp)]
    off = asyncio.run(gather(specs, GatherOptions(timeout=5, credentials=GOOD,
                                                  turn_as_stun=False)))
    # Off: one server, and the allocation's mapped address stands for its srflx (whose
    # base, the TURN probe's socket, is listed as a host candidate with that URL).
    assert [r.server.url for r in off.results] == [udp]
    assert types_by_url(off)[udp] == {"relay", "srflx", "host"}
    run = run_cli("gather", "--turn", udp, "-u", LAB_USER, "-p", LAB_PASSWORD,
                  "--no-turn-as-stun", "--json")
    assert [s["url"] for s in run.json()["servers"]] == [udp]
