"""iceprobe.exporter.plan.within: a scrape that waited for a slot probes with what is left
of its budget, the gathering's share shrinking with it."""

from __future__ import annotations

from iceprobe.exporter.plan import MIN_BUDGET, gathering_budget, plan, within
from iceprobe.fleet.model import Check, Fleet, Module, Target
from iceprobe.urls import parse_server_url


def stun_fleet() -> Fleet:
    server = parse_server_url("stun:198.18.0.10:3478")
    module = Module("stun", (Check.BINDING,), timeout=20.0)
    return Fleet("fleet.toml", {"stun": module}, {}, (Target("far", server, "stun"),))


def test_what_is_left_after_waiting_is_the_new_budget_and_the_gathering_shrinks() -> None:
    planned = plan(stun_fleet(), {"target": "far"}, "5", 0.5, 0.0)
    assert planned.budget == 4.5
    left = within(planned, 1.5)
    assert left.budget == 1.5
    assert left.settings.timeout == gathering_budget(1.5, planned.specs) < 1.5
    assert (left.target, left.specs, left.key) == (planned.target, planned.specs, planned.key)


def test_a_probe_never_gets_less_than_the_least_budget() -> None:
    planned = plan(stun_fleet(), {"target": "far"}, "5", 0.5, 0.0)
    assert within(planned, 0.01).budget == MIN_BUDGET
    assert within(planned, -3).budget == MIN_BUDGET
