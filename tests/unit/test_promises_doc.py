"""docs/promises.md names, for every promise and path, the test that proves it: each named
test must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMED = re.compile(r"(tests/[\w/]+\.py)::(test_\w+)")


def named_tests() -> list[tuple[str, str]]:
    return NAMED.findall((ROOT / "docs" / "promises.md").read_text())


def defined(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_the_promise_table_names_exists() -> None:
    named = named_tests()
    assert len(named) >= 30
    missing = [f"{path}::{name}" for path, name in named
               if not (ROOT / path).exists() or name not in defined(path)]
    assert missing == []


def test_every_promises_lab_test_is_in_the_table() -> None:
    named = {f"{path}::{name}" for path, name in named_tests()}
    for path in sorted((ROOT / "tests" / "lab").glob("test_promises_*.py")):
        relative = str(path.relative_to(ROOT))
        for name in defined(relative):
            if name.startswith("test_"):
                assert f"{relative}::{name}" in named
