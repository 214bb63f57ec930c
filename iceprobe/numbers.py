"""Numbers for people: durations and counts as every report writes them.

One place, so that a rule's detail, the table and the summary line never show the same time
two ways, and never round a value the user gave to something else ("0.5 ms", not "0 ms").
"""

from __future__ import annotations


def describe_ms(ms: float) -> str:
    """A duration given in milliseconds: "0.4 ms", "12 ms", "1.25 s", "39.8 s".

    Below 10 ms one decimal is kept (a 0.5 ms threshold stays 0.5 ms); from 1 s on it is
    shown in seconds, with two decimals below 10 s."""
    if ms < 0:
        return "-" + describe_ms(-ms)
    if ms < 10:
        text = f"{ms:.1f}".rstrip("0").rstrip(".")
        return f"{text or '0'} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 10_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 1000:.1f} s"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """"1 error event", "2 error events", "0 candidates"."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"


__all__ = ["describe_ms", "plural"]
