"""Promises: no secret in any output (stdout, stderr, --output file), on `relay` and with
credentials from the environment; redaction end to end (relay, gather --matrix, analyze)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from iceprobe.credentials import rest_credentials
from tests.lab.netns import LAB_NAME, LabNetwork
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn
from tests.schema import validated

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]
SECRET = "lab-rest-Secret-77"


def run(*args: str, output: Path | None = None, env: dict[str, str] | None = None
        ) -> tuple[int, str]:
    """Run iceprobe; everything it wrote: stdout, stderr and the --output file."""
    extra = ("--output", str(output)) if output is not None else ()
    done = subprocess.run([sys.executable, "-m", "iceprobe", *args, *extra],
                          capture_output=True, text=True, timeout=90,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})
    written = output.read_text() if output is not None and output.exists() else ""
    text = done.stdout + done.stderr + written
    assert "Traceback" not in text
    return done.returncode, text


def derived_passwords(secret: str, since: float, until: float) -> Iterator[str]:
    """Every REST password iceprobe could have derived between two moments, second by
    second (with the default user, separator and TTL)."""
    for moment in range(int(since) - 1, int(until) + 2):
        yield rest_credentials(secret, "iceprobe", 3600, ":", moment).password


def assert_no_secret(text: str, secret: str, since: float, until: float) -> None:
    assert secret not in text
    for password in derived_passwords(secret, since, until):
        assert password not in text


@pytest.mark.parametrize("how", ["--turn-secret", "--turn-secret-file", "--verbose"])
def test_relay_never_prints_the_rest_secret_or_the_derived_password(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path, how: str) -> None:
    server = coturn("--use-auth-secret", f"--static-auth-secret={SECRET}")
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    given = (("--turn-secret-file", str(secret_file)) if how == "--turn-secret-file"
             else ("--turn-secret", SECRET))
    verbose = ("--verbose",) if how == "--verbose" else ()
    for as_json in ((), ("--json",)):
        started = time.time()
        code, text = run("relay", "--turn", server.url(), *given, *verbose, *as_json,
                         "--duration", "0.3", "--timeout", "7", output=tmp_path / "report")
        assert code == 0, text[-3000:]  # it logged in: the derived password was used
        assert_no_secret(text, SECRET, started, time.time())


def test_credentials_from_the_environment_log_in_and_are_never_printed(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path) -> None:
    server = coturn()
    env = {"ICEPROBE_USERNAME": LAB_USER, "ICEPROBE_CREDENTIAL": LAB_PASSWORD}
    code, text = run("gather", "--turn", server.url(), "--json", env=env)
    assert code == 0, text
    document = validated(text, "gather")
    assert "relay" in {c["type"] for c in document["candidates"]}
    assert LAB_PASSWORD not in text
    for args in (("gather", "--turn", server.url(), "--verbose"),
                 ("relay", "--turn", server.url(), "--verbose", "--duration", "0.3")):
        code, text = run(*args, env=env, output=tmp_path / "report")
        assert code == 0, text[-3000:]
        assert "relay" in text and LAB_PASSWORD not in text


def lab_addresses(lab: LabNetwork) -> tuple[str, ...]:
    return (lab.ipv4, lab.ipv6, "127.0.0.1")


@pytest.mark.parametrize("level", ["--redact", "--redact=all"])
def test_relay_redacted_shows_no_address(lab: LabNetwork, coturn: StartCoturn,
                                         level: str) -> None:
    server = coturn()
    for as_json in ((), ("--json",)):
        code, text = run("relay", "--turn", server.url("turn", host=LAB_NAME), "-u", LAB_USER,
                         "-p", LAB_PASSWORD, level, "--duration", "0.3", *as_json)
        assert code == 0, text[-3000:]
        for address in lab_addresses(lab):
            assert address not in text
        assert (LAB_NAME in text) is (level == "--redact")


@pytest.mark.parametrize("level", ["--redact", "--redact=all"])
def test_matrix_redacted_shows_no_address(lab: LabNetwork, coturn: StartCoturn,
                                          level: str) -> None:
    server = coturn()
    for as_json in ((), ("--json",)):
        code, text = run("gather", "--matrix", "--turn", f"turn:{LAB_NAME}", "--port",
                         str(server.port), "-u", LAB_USER, "-p", LAB_PASSWORD, "--timeout", "1",
                         level, *as_json)
        assert code in (0, 1), text[-3000:]
        assert "relay" in text
        for address in lab_addresses(lab):
            assert address not in text
        assert (LAB_NAME in text) is (level == "--redact")


@pytest.mark.parametrize("level", ["--redact", "--redact=all"])
def test_analyze_redacted_shows_no_address(lab: LabNetwork, coturn: StartCoturn,
                                           tmp_path: Path, level: str) -> None:
    server = coturn()
    saved = tmp_path / "report.json"
    code, text = run("gather", "--turn", server.url("turn", host=LAB_NAME), "-u", LAB_USER,
                     "-p", LAB_PASSWORD, "--json", output=saved)
    assert code == 0
    code, plain = run("analyze", str(saved))  # the control: unredacted, the addresses show
    assert code == 0 and lab.ipv4 in plain and LAB_NAME in plain
    for as_json in ((), ("--json",)):
        code, text = run("analyze", str(saved), level, *as_json)
        assert code == 0, text[-3000:]
        for address in lab_addresses(lab):
            assert address not in text
        assert (LAB_NAME in text) is (level == "--redact")
