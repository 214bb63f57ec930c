"""`iceprobe check` against real coturn (issue 18 items 1 and 2): a fleet file with a
healthy target and a 401 target gives exit 1, the JUnit failure type
turn-credentials-rejected, GitHub workflow commands and step summary, a valid JSON
document, and no secret (password, REST secret, derived password) in any output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from iceprobe.credentials import rest_credentials
from tests.lab.netns import LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn
from tests.lab.test_interrupt_lab import CHANNEL_OPEN, QUOTA_TIMER, STOP_BOUND, Watched
from tests.schema import validated

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]
SECRET = "lab-fleet-Rest-Secret-77"
WRONG_PASSWORD = "wrong-Pw-fleet-19"


def fleet_file(tmp_path: Path, healthy: Coturn, rest: Coturn) -> Path:
    (tmp_path / "rest.secret").write_text(SECRET + "\n")
    path = tmp_path / "fleet.toml"
    path.write_text(f"""\
[modules.turn_udp]
checks = ["binding", "allocate"]
timeout = "4s"

[modules.turn_relay]
checks = ["allocate", "relay"]
timeout = "10s"

[auth.good]
username = "{LAB_USER}"
password_env = "FLEET_TURN_PASSWORD"

[auth.bad]
username = "{LAB_USER}"
password_env = "FLEET_WRONG_PASSWORD"

[auth.rest]
secret_file = "rest.secret"

[[targets]]
name = "healthy"
url = "{healthy.url('turn')}"
module = "turn_udp"
auth = "good"
labels = {{ region = "lab" }}

[[targets]]
name = "rejected"
url = "{healthy.url('turn')}"
module = "turn_udp"
auth = "bad"

[[targets]]
name = "rest"
url = "{rest.url('turn')}"
module = "turn_relay"
auth = "rest"
""")
    return path


def run_check(*args: str, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "iceprobe", "check", *args], capture_output=True, text=True,
        timeout=90, env={**os.environ, "FLEET_TURN_PASSWORD": LAB_PASSWORD,
                         "FLEET_WRONG_PASSWORD": WRONG_PASSWORD, "NO_COLOR": "1",
                         "COLUMNS": "120", **(env or {})})


def secrets_now() -> list[str]:
    """Every secret the run used: the passwords, the REST secret, and the REST passwords
    derived around now (the run mints its own with the same formula)."""
    now = time.time()
    derived = {rest_credentials(SECRET, "iceprobe", 3600, ":", now + delta).password
               for delta in range(-120, 121)}
    return [LAB_PASSWORD, WRONG_PASSWORD, SECRET, *derived]


def assert_no_secret(*texts: str) -> None:
    secrets = secrets_now()
    for text in texts:
        for secret in secrets:
            assert secret not in text


@pytest.fixture
def fleet(lab: LabNetwork, coturn: StartCoturn, tmp_path: Path) -> Path:
    healthy = coturn()
    rest = coturn("--use-auth-secret", f"--static-auth-secret={SECRET}")
    return fleet_file(tmp_path, healthy, rest)


def test_junit_fails_the_401_target_with_its_verdict_and_passes_the_others(
        lab: LabNetwork, fleet: Path, tmp_path: Path) -> None:
    from junitparser import Error, Failure, JUnitXml

    out = tmp_path / "report.xml"
    done = run_check("-c", str(fleet), "--format", "junit", "-o", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    text = out.read_text()
    assert_no_secret(text, done.stdout, done.stderr)
    cases = {(c.classname, c.name): c for suite in JUnitXml.fromfile(str(out))
             for c in suite}
    assert set(cases) == {("healthy", "binding"), ("healthy", "allocate"),
                          ("rejected", "binding"), ("rejected", "allocate"),
                          ("rest", "allocate"), ("rest", "relay")}
    for key in (("healthy", "binding"), ("healthy", "allocate"), ("rest", "allocate"),
                ("rest", "relay"), ("rejected", "binding")):
        assert cases[key].is_passed, (key, text)
    [failure] = cases[("rejected", "allocate")].result
    assert isinstance(failure, Failure) and not isinstance(failure, Error)
    assert failure.type == "turn-credentials-rejected"
    assert "\n" not in (failure.message or "")
    assert "401" in (cases[("rejected", "allocate")].system_out or "")
    # The evidence is redacted: no lab address in it.
    root = ET.fromstring(text)
    outs = "".join(e.text or "" for e in root.iter("system-out"))
    assert "candidate relay udp" in outs
    assert lab.ipv4 not in text and f"{LAB_USER}" not in outs


def test_github_format_prints_an_error_command_and_appends_the_summary(
        fleet: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    done = run_check("-c", str(fleet), "--format", "github",
                     env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1, done.stdout
    assert errors[0].startswith("::error title=iceprobe%3A rejected allocate::FAIL ")
    assert "401 Unauthenticated [turn-credentials-rejected]%0A" in errors[0]
    assert "\n" not in errors[0]
    text = summary.read_text()
    assert text.startswith("earlier step\n### iceprobe check: FAIL")
    assert "| rejected | allocate | ❌ failure | turn-credentials-rejected |" in text
    assert_no_secret(done.stdout, done.stderr, text)


def test_json_and_table_agree_with_the_exit_code(fleet: Path) -> None:
    done = run_check("-c", str(fleet), "--format", "json")
    assert done.returncode == 1, done.stderr
    document = validated(done.stdout, "check")
    assert (document["status"], document["ok"]) == ("fail", False)
    status = {t["name"]: t["status"] for t in document["targets"]}
    assert status == {"healthy": "pass", "rejected": "fail", "rest": "pass"}
    rest = next(t for t in document["targets"] if t["name"] == "rest")
    assert rest["report"]["relay"][0]["ok"] is True
    table = run_check("-c", str(fleet))
    assert table.returncode == 1
    assert "turn-credentials-rejected" in table.stdout
    assert table.stdout.rstrip().splitlines()[-1].startswith("FAIL  2 of 3 targets ok")
    assert_no_secret(done.stdout, done.stderr, table.stdout, table.stderr)


def test_only_the_named_targets_are_probed_and_pass(fleet: Path) -> None:
    done = run_check("-c", str(fleet), "--target", "healthy", "--target", "rest",
                     "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    document = validated(done.stdout, "check")
    assert [t["name"] for t in document["targets"]] == ["healthy", "rest"]
    assert document["ok"] is True


def test_a_bad_fleet_file_is_one_line_exit_2_and_nothing_probed(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path) -> None:
    server = coturn()
    path = fleet_file(tmp_path, server, server)
    path.write_text(path.read_text().replace('timeout = "4s"', 'timout = "4s"'))
    done = run_check("-c", str(path), "--format", "junit")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (f"iceprobe: error: {path}:3: modules.turn_udp.timout: unknown key "
                           "(did you mean 'timeout'?)\n")
    assert "Allocate" not in server.log() and "allocate" not in server.log().lower(), (
        "nothing may be probed")
    done = run_check("-c", str(fleet_file(tmp_path, server, server)), "--target", "helthy")
    assert done.returncode == 2
    assert "did you mean 'healthy'?" in done.stderr


def _relay_fleet(tmp_path: Path, server: Coturn) -> Path:
    path = tmp_path / "relay.toml"
    path.write_text(f"""\
[modules.turn_relay]
checks = ["allocate", "relay"]
timeout = "20s"

[auth.good]
username = "{LAB_USER}"
password_env = "FLEET_TURN_PASSWORD"

[[targets]]
name = "relay"
url = "{server.url('turn')}"
module = "turn_relay"
auth = "good"
""")
    return path


def _whole_quota_is_free(server: Coturn) -> None:
    """`iceprobe relay` needs three allocations at once (its precheck's, then one per peer):
    with --user-quota=3 it passes only if nothing was left behind."""
    time.sleep(QUOTA_TIMER)
    again = subprocess.run([sys.executable, "-m", "iceprobe", "relay", "--turn",
                            server.url("turn"), "-u", LAB_USER, "-p", LAB_PASSWORD,
                            "--duration", "0.5", "--json"], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr


def test_check_releases_every_allocation_it_made(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = coturn("--user-quota=3")
    monkeypatch.setenv("FLEET_TURN_PASSWORD", LAB_PASSWORD)
    done = subprocess.run([sys.executable, "-m", "iceprobe", "check", "-c",
                           str(_relay_fleet(tmp_path, server))], capture_output=True,
                          text=True, timeout=90)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    _whole_quota_is_free(server)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_check_exits_with_its_code_and_frees_the_quota(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, signum: int, code: int) -> None:
    server = coturn("--user-quota=3")
    monkeypatch.setenv("FLEET_TURN_PASSWORD", LAB_PASSWORD)
    run = Watched("check", "-c", str(_relay_fleet(tmp_path, server)), "--format", "json")
    run.wait_for(CHANNEL_OPEN)
    out, err, took = run.stop(signum)
    assert run.process.returncode == code, out[-3000:] + err[-3000:]
    assert took < STOP_BOUND, f"stopped {took:.2f} s after the signal"
    assert "Traceback" not in err
    document = validated(out, "check")
    assert document["interrupted"] is True and document["status"] == "interrupted", out[-2000:]
    assert LAB_PASSWORD not in out + err
    _whole_quota_is_free(server)
