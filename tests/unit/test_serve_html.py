"""The server-rendered pages: every string escaped, and the one style block allowed by its
hash (a CSP without 'unsafe-inline' that still lets the page's own style apply)."""

from __future__ import annotations

import base64
import hashlib
import re

from iceprobe.serve.html import link_error, login, result_detail, results_list
from iceprobe.serve.judge import envelope, judge
from iceprobe.serve.store import Summary
from tests.serve_uploads import events, upload

HOSTILE = "<script>alert(1)</script>"


def _style_hash_allowed(html: str, csp: str) -> bool:
    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    return f"style-src 'sha256-{digest}'" in csp and "unsafe-inline" not in csp


def test_every_page_allows_exactly_its_own_style_and_no_script() -> None:
    summary = Summary("K7Q-4MX", "l", HOSTILE, 1.0e9, HOSTILE, "fail")
    data = upload("u", events("stun:198.18.0.10:3478", "turn:198.18.0.10:3478",
                              turn_error=(701, HOSTILE)))
    pages = [link_error("expired"), link_error("tampered"), login("bad <b>"),
             results_list([summary], new_link="https://x/t/<a>"),
             result_detail(summary, judge(data, envelope(data)).reports)]
    for page in pages:
        assert _style_hash_allowed(page.html, page.csp)
        assert "script-src 'none'" in page.csp
        assert "<script" not in page.html and "<b>" not in page.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[-1].html  # the errorText
    assert "&lt;script&gt;" in pages[3].html  # the label and browser in the list


def test_a_changed_style_no_longer_matches_the_hash() -> None:
    page = link_error("expired")
    assert not _style_hash_allowed(page.html.replace("margin:2em", "margin:3em"), page.csp)
