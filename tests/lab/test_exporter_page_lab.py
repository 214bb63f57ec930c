"""The exporter's `/` history page (docs/exporter.md) against a real exporter, coturn and a
scripted STUN server whose error text is markup. Target names are restricted (letters,
digits, `_ . : @ -`), but labels, the fleet file's path and a server's error text are free
text: none of it reaches the page unescaped; the page has its CSP and no script; a failure
stays on the page after more healthy probes than the recent list holds."""

from __future__ import annotations

import textwrap
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aioice import stun
from prometheus_client.parser import text_string_to_metric_families

from iceprobe.exporter.history import RECENT
from tests.lab.netns import LabNetwork
from tests.lab.prometheus import Exporter, probe, sample
from tests.lab.responder import ScriptedResponder, error_response
from tests.lab.servers import Coturn

pytestmark = pytest.mark.lab

StartCoturn = Callable[..., Coturn]
HEALTHY = "healthy@lab:eu-1.a_b"
HOSTILE = "hostile"
#: A directory name (no slash) that would open an element with an event handler.
DIRECTORY = """<img src=x onerror="alert('path')">"""
LABEL = """"><script>alert('label')</script>"""
REASON = """<script>alert("reason")</script>"""


@pytest.fixture
def hostile_stun(lab: LabNetwork) -> Iterator[ScriptedResponder]:
    def script(request: stun.Message, peer: tuple[str, int]) -> bytes:
        return error_response(request, 400, REASON)

    responder = ScriptedResponder(lab.ipv4, script)
    yield responder
    responder.close()


def toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def page_fleet(tmp_path: Path, server: Coturn, hostile: ScriptedResponder) -> Path:
    (tmp_path / DIRECTORY).mkdir(exist_ok=True)
    path = tmp_path / DIRECTORY / "fleet.toml"
    path.write_text(textwrap.dedent(f"""\
        [modules.stun]
        checks = ["binding"]
        timeout = "3s"

        [[targets]]
        name = "{HEALTHY}"
        url = "stun:{server.ip}:{server.port}"
        module = "stun"
        labels = {{ region = {toml_string(LABEL)} }}

        [[targets]]
        name = "{HOSTILE}"
        url = "stun:{hostile.ip}:{hostile.port}"
        module = "stun"
        """))
    return path


class Elements(HTMLParser):
    """The element and attribute names of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.add(tag)
        self.attributes.update(name for name, _ in attrs)

    @classmethod
    def of(cls, page: str) -> Elements:
        parser = cls()
        parser.feed(page)
        parser.close()
        return parser


def get(exporter: Exporter, path: str) -> tuple[str, dict[str, str]]:
    with urllib.request.urlopen(exporter.base + path, timeout=10) as response:
        return response.read().decode(), dict(response.headers.items())


def target(name: str) -> str:
    return "target=" + urllib.parse.quote(name, safe="")


def test_free_text_never_reaches_the_page_unescaped_and_the_page_runs_no_script(
        lab: LabNetwork, coturn: StartCoturn, hostile_stun: ScriptedResponder,
        tmp_path: Path, exporters: Callable[[Path], Exporter]) -> None:
    exporter = exporters(page_fleet(tmp_path, coturn(), hostile_stun))
    status, failed = probe(exporter, target(HOSTILE))
    assert status == 200 and sample(failed, "probe_success") == 0.0, failed
    status, healthy = probe(exporter, target(HEALTHY))
    assert status == 200 and sample(healthy, "probe_success") == 1.0, healthy
    # The label's value comes back whole through the exposition's escaping.
    [info] = [f for f in text_string_to_metric_families(healthy)
              if f.name == "probe_target_info"]
    assert info.samples[0].labels["region"] == LABEL
    assert info.samples[0].labels["target"] == HEALTHY

    page, headers = get(exporter, "/")
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    tags = Elements.of(page)
    assert {"script", "style", "img", "iframe", "object"}.isdisjoint(tags.names), tags.names
    assert tags.attributes <= {"lang", "charset", "href"}, tags.attributes  # no on*=, style=
    for text in (DIRECTORY, LABEL, REASON, "<img"):
        assert text not in page
    assert "&lt;img src=x onerror=&quot;alert(&#x27;path&#x27;)&quot;&gt;" in page
    assert f"<td>{HOSTILE}</td>" in page and f"<td>{HEALTHY}</td>" in page
    # The label is in the debug text (plain text) whole.
    debug, debug_headers = get(exporter, f"/probe?{target(HEALTHY)}&debug=true")
    assert debug_headers["Content-Type"].startswith("text/plain")
    assert f"labels: region={LABEL}" in debug
    # The server's error text reaches the probe's log, which is plain text, never sniffed.
    log, log_headers = get(exporter, "/logs?id=1")
    assert log_headers["Content-Type"].startswith("text/plain")
    assert log_headers["X-Content-Type-Options"] == "nosniff"
    assert log.startswith(f"probe 1 of {HOSTILE}")
    assert REASON in log, log


def test_a_failure_stays_on_the_page_after_more_healthy_probes_than_recent_holds(
        lab: LabNetwork, coturn: StartCoturn, hostile_stun: ScriptedResponder,
        tmp_path: Path, exporters: Callable[[Path], Exporter]) -> None:
    exporter = exporters(page_fleet(tmp_path, coturn(), hostile_stun))
    assert probe(exporter, target(HOSTILE))[0] == 200
    for _ in range(RECENT + 5):
        status, body = probe(exporter, target(HEALTHY))
        assert status == 200 and sample(body, "probe_success") == 1.0, body
    page, _ = get(exporter, "/")
    failures, recent = page.split("<h2>Recent failures</h2>", 1)[1].split(
        "<h2>Recent probes</h2>", 1)
    assert f"<td>{HOSTILE}</td>" in failures and 'href="/logs?id=1"' in failures
    assert HOSTILE not in recent  # dropped from the recent list, which holds RECENT
    assert recent.count("<tr><td>") == RECENT
    log, _ = get(exporter, "/logs?id=1")
    assert log.startswith(f"probe 1 of {HOSTILE}") and "failure" in log.splitlines()[0]
