"""Every JSON document of iceprobe's that a test reads goes through `validated`: parsed, and
checked against the JSON Schema that the package ships for its kind (iceprobe/schemas)."""

from __future__ import annotations

import functools
import json
from typing import Any, Literal

from jsonschema import Draft202012Validator

from iceprobe.schemas import load

Kind = Literal["gather", "relay", "analyze", "explain", "results", "check", "capacity"]


@functools.cache
def validator(kind: Kind) -> Draft202012Validator:
    schema = load(kind)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(document: Any, kind: Kind) -> list[str]:
    """Every way `document` breaks its schema, one line each (empty when it is valid)."""
    found = sorted(validator(kind).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}" for e in found]


def validated(document: str | bytes | dict[str, Any] | list[Any], kind: Kind) -> Any:
    """The document, parsed if it is text, after checking it against the `kind` schema; an
    AssertionError naming every violation otherwise."""
    parsed = json.loads(document) if isinstance(document, (str, bytes)) else document
    problems = errors(parsed, kind)
    assert not problems, f"not a valid {kind} document:\n" + "\n".join(problems)
    return parsed
