"""Where each key of a TOML document is written: tomllib gives no positions, so the fleet
file's errors find their line here.

A line scanner, not a parser (the document has already parsed when this runs): it follows
`[table]` and `[[array]]` headers (counting the entries of each array of tables), `key =`
and dotted `a.b =` lines, and skips the inside of multi-line strings. A key written inside
an inline table (`labels = { region = "eu" }`) or on a continuation line of a multi-line
array has no line of its own: `line_of` then answers with the line of the nearest enclosing
key that has one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Path = tuple[str | int, ...]

# A bare key, or a basic or literal string key (escapes inside are rare in key names and
# only matter for finding the closing quote).
_KEY = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART = re.compile(_KEY)


def _parts(dotted: str) -> list[str]:
    found = []
    for match in _PART.finditer(dotted):
        part = match.group(0)
        if part[:1] in ('"', "'"):
            part = part[1:-1]
            if match.group(0)[0] == '"':
                part = re.sub(r"\\(.)", r"\1", part)
        found.append(part)
    return found


class KeyLines:
    """The line (1-based) of each table header and key of one TOML text."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Path, int] = {}
        #: How many entries each array of tables has had so far, by its path.
        counts: dict[tuple[str, ...], int] = {}
        table: Path = ()
        open_quote: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if open_quote is not None:
                if line.count(open_quote) % 2 == 1:
                    open_quote = None
                continue
            header = _HEADER.match(line)
            if header:
                names = _parts(header.group(2))
                table = self._resolve(names, counts, is_array=header.group(1) == "[[")
                self.lines.setdefault(table, number)
                continue
            assign = _ASSIGN.match(line)
            if assign:
                path = (*table, *_parts(assign.group(1)))
                for end in range(len(table) + 1, len(path) + 1):
                    self.lines.setdefault(path[:end], number)
                rest = line[assign.end():]
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        open_quote = quote

    def _resolve(self, names: Sequence[str], counts: dict[tuple[str, ...], int],
                 is_array: bool) -> Path:
        """The path of a header: arrays of tables it passes through get the index of their
        latest entry (`[targets.labels]` after the second `[[targets]]` is targets.1.labels),
        and a `[[name]]` header starts a new entry."""
        path: list[str | int] = []
        for depth, name in enumerate(names):
            path.append(name)
            key = tuple(str(p) for p in path)
            last = depth == len(names) - 1
            if last and is_array:
                counts[key] = counts.get(key, 0) + 1
                path.append(counts[key] - 1)
            elif key in counts:
                path.append(counts[key] - 1)
        return tuple(path)

    def line_of(self, path: Path) -> int | None:
        """The line of `path`, or of the nearest enclosing key or table that has one."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None


__all__ = ["KeyLines", "Path"]
