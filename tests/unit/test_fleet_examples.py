"""The fleet and CI examples (issue 18 items 1 and 2) are real: the fleet files load, the
one in docs/fleet.md is examples/fleet.toml, the CI files are YAML whose iceprobe command
lines parse, and each publishes the JUnit report it writes."""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

import pytest

from iceprobe.fleet.config import load
from tests.unit.test_docs import parse

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
ENV = {"TURN_PASSWORD": "x", "TURN_REST_SECRET": "y"}


def test_examples_fleet_toml_loads_and_is_the_one_docs_fleet_md_shows() -> None:
    fleet = load(str(EXAMPLES / "fleet.toml"), ENV)
    assert [t.name for t in fleet.targets] == ["eu-1", "eu-1-tls", "stun-us"]
    doc = (ROOT / "docs" / "fleet.md").read_text()
    [shown] = re.findall(r"```toml\n(.*?)```", doc, re.S)
    assert shown in (EXAMPLES / "fleet.toml").read_text()


def test_the_ci_fleet_loads() -> None:
    fleet = load(str(EXAMPLES / "ci-fleet.toml"), ENV)
    assert {t.server.url for t in fleet.targets} == {
        "turn:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=tcp"}


def _iceprobe_lines(text: str) -> list[list[str]]:
    """The iceprobe command lines of a CI file's scripts (YAML `run: |` blocks and `- `
    script items), without what a shell adds after them."""
    lines = []
    for line in text.splitlines():
        line = line.strip().removeprefix("- ").split(" || ")[0].split(" && ")[0]
        if line.startswith("iceprobe "):
            lines.append(shlex.split(line)[1:])
    return lines


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_run_check_and_publish_its_junit(name: str, tmp_path: Path) -> None:
    # Text checks: the project has no YAML parser among its test dependencies.
    text = (EXAMPLES / name).read_text()
    assert "\t" not in text
    lines = _iceprobe_lines(text)
    assert any(args[0] == "check" and "junit" in args for args in lines), lines
    assert any(args[0] == "gather" for args in lines), "a readiness wait"
    for args in lines:
        parse(args)
    assert "coturn/coturn" in text and "-o iceprobe-junit.xml" in text
    if name == "github-actions.yml":
        publish = text.split("uses: mikepenz/action-junit-report@v4")[1]
        assert "report_paths: iceprobe-junit.xml" in publish
        assert "if: always()" in text.split("uses: mikepenz/action-junit-report@v4")[0][-120:]
    else:
        assert re.search(r"artifacts:\n\s+when: always\n\s+reports:\n\s+junit: "
                         r"iceprobe-junit.xml", text)
        body = text.split("<<'TOML'\n", 1)[1].split("\n      TOML", 1)[0]
        fleet = tmp_path / "fleet.toml"
        fleet.write_text(textwrap.dedent(body))
        assert [t.name for t in load(str(fleet), ENV).targets] == ["coturn"]
