"""Reading the README and docs/ for the tests that keep them true: the command lines they
show, the examples with their pasted output, and the option tables of docs/cli.md."""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: Every page whose `iceprobe …` command lines must parse.
PAGES = (README, ROOT / "CONTRIBUTING.md", *sorted(DOCS.glob("*.md")))

_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_INLINE = re.compile(r"(?<!`)`(iceprobe [^`]+)`(?!`)")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")
#: A placeholder in a synopsis (`iceprobe explain CODE`): shows a shape, not a command.
_PLACEHOLDER = re.compile(
    r"\b(?:URL|FILE|CODE|ID|CODE_OR_TEXT|VERDICT_ID|NAME|PATH|PORT|COMMAND|VERSION)\b")
_SHELL_ENDS = {"|", ">", ">>", "&&", "||", ";", "2>&1", "<"}


def blocks(text: str) -> list[tuple[str, str]]:
    """Each fenced block of a page: (language, body)."""
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]


def command_args(line: str) -> list[str] | None:
    """The arguments after `iceprobe` of a shell line that runs it (environment assignments
    before it and pipes or redirections after it left out), or None for other lines."""
    line = line.strip()
    if not line or line.startswith("#") or "$(" in line:
        return None
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    while words and _ENV.match(words[0]):
        if words.pop(0).startswith("_ICEPROBE_COMPLETE="):
            return None  # shell completion: not a command line

    if not words or words[0] != "iceprobe":
        return None
    args = []
    for word in words[1:]:
        if word in _SHELL_ENDS:
            break
        args.append(word)
    return args


@dataclass(frozen=True)
class CommandLine:
    page: str
    line: str
    args: list[str]
    #: Inline code in prose, which may name a command with some of its options but without
    #: what it needs to run (`iceprobe relay --json`); code blocks hold whole command lines.
    inline: bool = False


def command_lines() -> list[CommandLine]:
    """Every `iceprobe …` command a page shows: in sh code blocks, and inline code that is a
    whole command (not a synopsis with placeholders)."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for language, body in blocks(text):
            if language != "sh":
                continue
            for line in body.splitlines():
                args = command_args(line)
                if args is not None:
                    found.append(CommandLine(page.name, line.strip(), args))
        prose = _BLOCK.sub("", text)
        for match in _INLINE.finditer(prose):
            line = match.group(1)
            if _PLACEHOLDER.search(line):
                continue
            args = command_args(line)
            if args is not None:
                found.append(CommandLine(page.name, line, args, inline=True))
    return found


@dataclass(frozen=True)
class Example:
    """A README command followed by its pasted output."""

    line: str
    args: list[str]
    output: str

    @property
    def expected_exit(self) -> int:
        """0 for a PASS headline (or no headline), 1 for FAIL."""
        for line in reversed(self.output.splitlines()):
            if line.startswith(("PASS ", "FAIL ")):
                return 0 if line.startswith("PASS ") else 1
        return 0

    @property
    def verdict_ids(self) -> list[str]:
        return re.findall(r"\[([a-z][a-z0-9-]+)\]", self.output)

    @property
    def needs_server(self) -> bool:
        """It talks to the quickstart's coturn: a URL of it, or a fleet file naming it."""
        return any("127.0.0.1" in a or a.startswith("examples/quickstart") for a in self.args)

    @property
    def environment(self) -> dict[str, str]:
        """The VAR=value assignments the line starts with."""
        found = {}
        for word in shlex.split(self.line):
            if not _ENV.match(word):
                break
            name, _, value = word.partition("=")
            found[name] = value
        return found


def readme_examples() -> list[Example]:
    found = []
    parts = blocks(README.read_text())
    for (language, body), (next_language, output) in itertools.pairwise(parts):
        if language != "sh" or next_language != "text":
            continue
        lines = [line for line in body.splitlines() if line.strip()]
        if len(lines) == 1 and (args := command_args(lines[0])) is not None:
            found.append(Example(lines[0], args, output))
    return found


def option_tables() -> dict[str, set[str]]:
    """docs/cli.md: for each command section (`## \\`iceprobe gather\\``), the option names
    in the first column of its table ("" is the group, `iceprobe` itself)."""
    tables: dict[str, set[str]] = {}
    section: str | None = None
    for line in (DOCS / "cli.md").read_text().splitlines():
        heading = re.match(r"^## `iceprobe(?: (\w+))?`$", line)
        if heading:
            section = heading.group(1) or ""
            tables[section] = set()
            continue
        if line.startswith("## "):
            section = None
        if section is None or not line.startswith("| `"):
            continue
        first = line.split(" | ")[0]
        for code in re.findall(r"`([^`]+)`", first):
            tables[section].update(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", code))
    return tables
