"""`iceprobe exporter` and `iceprobe check` against a real `turns:` coturn whose certificate,
signed by a lab CA the module trusts with `ca_file`, expires at a moment the test chose:
probe_tls_cert_expiry_timestamp_seconds is that notAfter as a unix timestamp, and check
passes against the same server (issue 18)."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lab.certs import make_ca, make_server_cert
from tests.lab.netns import LAB_NAME, LabNetwork
from tests.lab.prometheus import Exporter, probe, sample
from tests.lab.servers import LAB_PASSWORD, LAB_USER, Coturn

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]


def tls_fleet(tmp_path: Path, server: Coturn, ca: Path) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(textwrap.dedent(f"""\
        [modules.turn_tls]
        checks = ["allocate"]
        timeout = "5s"
        ca_file = "{ca.name}"

        [auth.good]
        username = "{LAB_USER}"
        password_env = "TURN_PASSWORD"

        [[targets]]
        name = "tls"
        url = "{server.url("turns", host=LAB_NAME)}"
        module = "turn_tls"
        auth = "good"
        """))
    return path


def test_turns_certificate_expiry_is_its_not_after_and_check_passes(
        lab: LabNetwork, coturn: StartCoturn, tmp_path: Path,
        exporters: Callable[[Path], Exporter]) -> None:
    # A notAfter of its own (whole seconds, as X.509 stores it), unlike the CA's.
    not_after = (datetime.datetime.now(datetime.timezone.utc)
                 + datetime.timedelta(days=37, hours=5)).replace(microsecond=0)
    ca, ca_key, ca_cert = make_ca(tmp_path)
    cert = make_server_cert(tmp_path, "server", ca_key, ca_cert, [LAB_NAME], [lab.ipv4],
                            not_after=not_after)
    server = coturn(tls=(str(cert.cert), str(cert.key)))
    config = tls_fleet(tmp_path, server, ca.cert)

    exporter = exporters(config)
    status, body = probe(exporter, "target=tls")
    assert status == 200, body
    assert sample(body, "probe_success") == 1.0, body
    assert sample(body, "probe_tls_cert_expiry_timestamp_seconds") == not_after.timestamp(), (
        body)
    assert sample(body, 'probe_ice_phase_duration_seconds{phase="tls"}') is not None, body

    done = subprocess.run(
        [sys.executable, "-m", "iceprobe", "check", "-c", str(config)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "TURN_PASSWORD": LAB_PASSWORD})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "PASS" in done.stdout, done.stdout
    assert LAB_PASSWORD not in done.stdout + done.stderr
