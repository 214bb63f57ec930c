"""TURN REST API (ephemeral) credentials against coturn's use-auth-secret."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from iceprobe.credentials import rest_credentials
from tests.lab.netns import LabNetwork
from tests.lab.servers import Coturn
from tests.schema import validated

pytestmark = pytest.mark.lab

SECRET = "lab-rest-Secret-42"
StartCoturn = Callable[..., Coturn]


def rest_coturn(coturn: StartCoturn) -> Coturn:
    return coturn("--use-auth-secret", f"--static-auth-secret={SECRET}")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "iceprobe", "gather", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def verdict_ids(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {v["id"]: v["severity"] for v in validated(done.stdout, "gather")["verdicts"]}


def test_secret_makes_credentials_coturn_accepts(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = rest_coturn(coturn)
    done = run_cli("--turn", server.url("turn"), "--turn-secret", SECRET, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {c["type"] for c in validated(done.stdout, "gather")["candidates"]} >= {"relay"}


def test_secret_from_environment_and_file(lab: LabNetwork, coturn: StartCoturn,
                                          tmp_path: Path) -> None:
    server = rest_coturn(coturn)
    done = run_cli("--turn", server.url("turn"), "--json",
                   env={"ICEPROBE_TURN_SECRET": SECRET})
    assert done.returncode == 0, done.stdout
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    done = run_cli("--turn", server.url("turn"), "--turn-secret-file", str(secret_file),
                   "--json")
    assert done.returncode == 0, done.stdout


def test_wrong_secret_is_rejected_credentials(lab: LabNetwork, coturn: StartCoturn) -> None:
    server = rest_coturn(coturn)
    done = run_cli("--turn", server.url("turn"), "--turn-secret", "not-the-secret", "--json")
    assert done.returncode == 1
    found = verdict_ids(done)
    assert found["turn-credentials-rejected"] == "fail"
    assert "turn-credentials-expired" not in found


def test_expired_credentials_are_named_expired_not_just_401(lab: LabNetwork,
                                                            coturn: StartCoturn) -> None:
    server = rest_coturn(coturn)
    expired = rest_credentials(SECRET, "alice", 3600, ":", time.time() - 7200)
    done = run_cli("--turn", server.url("turn"), "-u", expired.username, "-p",
                   expired.password, "--json")
    assert done.returncode == 1
    document = validated(done.stdout, "gather")
    assert [e["error_code"] for e in document["errors"]] == [401]
    assert verdict_ids(done)["turn-credentials-expired"] == "fail"
    [verdict] = [v for v in document["verdicts"] if v["id"] == "turn-credentials-expired"]
    assert "1 hour ago" in verdict["detail"]


def test_secret_and_derived_password_never_printed(lab: LabNetwork,
                                                   coturn: StartCoturn) -> None:
    server = rest_coturn(coturn)
    modes: tuple[tuple[str, ...], ...] = (
        (), ("--json",), ("--verbose",), ("--verbose", "--json"), ("--redact=all",),
        ("--matrix", "--port", str(server.port), "--timeout", "1", "--verbose"))
    for extra in modes:
        for secret in (SECRET, "not-the-secret"):
            started = time.time()  # before the run: iceprobe derives within this window
            done = run_cli("--turn", server.url("turn"), "--turn-secret", secret, *extra)
            finished = time.time()
            output = done.stdout + done.stderr
            assert secret not in output
            # No password derived at any second of the run may appear either.
            for moment in range(int(started), int(finished) + 1):
                derived = rest_credentials(secret, "iceprobe", 3600, ":", moment).password
                assert derived not in output


def test_far_future_credentials_work_but_warn_about_clock_skew(
        lab: LabNetwork, coturn: StartCoturn) -> None:
    server = rest_coturn(coturn)
    skewed = rest_credentials(SECRET, "alice", 30 * 86400, ":", time.time())
    done = run_cli("--turn", server.url("turn"), "-u", skewed.username, "-p", skewed.password,
                   "--json")
    assert done.returncode == 0, done.stdout
    assert verdict_ids(done)["turn-credentials-far-future"] == "warn"
