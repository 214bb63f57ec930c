"""Writes the JSON Schemas (draft 2020-12) of iceprobe's JSON documents.

The files next to this module are generated, so that the definitions the documents
share (a server, a candidate, an error event, a verdict) are written once and the enums come
from `iceprobe.constants`:

    python3 -m iceprobe.schemas.build          # rewrite them
    python3 -m iceprobe.schemas.build --check  # exit 1 if one is out of date

A unit test runs the check. The documents are described in docs/json.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..constants import Cause, Confidence, RelayStep, Role, Scheme, Severity, Status, Transport

Schema = dict[str, Any]

BASE = "https://github.com/iceprobe/iceprobe/schemas/"
#: Verdict ids, error problems and verdicts named by `explain` are open sets: a new verdict
#: is an additive change that a reader must tolerate, so they are patterns, not enums.
ID_PATTERN = "^[a-z][a-z0-9-]*$"
SERVER_STATUSES = ["ok", "failed", "unconfirmed", "interrupted", "not-probed", "not-recorded"]
RECORDING_FORMATS = ["chrome-webrtc-internals", "rtcstats", "firefox-about-webrtc",
                     "iceprobe-events", "sdp", "iceprobe-report"]


def _values(enum: Any) -> list[str]:
    return [member.value for member in enum]


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None,
            extra: bool = False, description: str | None = None) -> Schema:
    schema: Schema = {"type": "object"}
    if description:
        schema["description"] = description
    schema["properties"] = {**required, **(optional or {})}
    schema["required"] = list(required)
    schema["additionalProperties"] = extra
    return schema


STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
NUMBER: Schema = {"type": "number"}
MS: Schema = {"type": "number", "minimum": 0}
PORT: Schema = {"type": "integer", "minimum": 0, "maximum": 65535}
CODE: Schema = {"type": "integer", "minimum": 0, "maximum": 999}
ID: Schema = {"type": "string", "pattern": ID_PATTERN}
TRANSPORT: Schema = {"enum": _values(Transport)}
COUNT: Schema = {"type": "integer", "minimum": 0}
SHARE: Schema = {"type": "number", "minimum": 0, "maximum": 1}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def definitions() -> dict[str, Schema]:
    """The parts the gather, relay and analyze documents share."""
    browser = _object(
        {"error_code": CODE, "error_text": STRING, "after_ms": MS},
        extra=True,
        description="What Chrome would have fired for the same failure (an icecandidateerror). "
                    "Open to additional keys: what is known of Chrome's event may grow.")
    error = _object(
        {"url": STRING, "address": _nullable(STRING), "port": _nullable(PORT),
         "server_address": _nullable(STRING), "server_port": _nullable(PORT),
         "error_code": CODE, "error_text": STRING, "cause": {"enum": _values(Cause)},
         "problem": _nullable(STRING), "elapsed_ms": _nullable(MS),
         "requested_family": _nullable({"enum": [4, 6]}),
         "after_challenge": _nullable(BOOLEAN)},
        {"browser": _nullable({"$ref": "#/$defs/browser"})},
        description="One failure, as a browser's icecandidateerror plus its precise cause.")
    server = _object(
        {"url": STRING, "scheme": {"enum": _values(Scheme)}, "host": STRING, "port": PORT,
         "transport": TRANSPORT, "addresses": _array(STRING),
         "status": {"enum": SERVER_STATUSES}, "unfinished": _nullable(STRING),
         "implied_by": _nullable(STRING), "duration_ms": _nullable(MS),
         "realm": _nullable(STRING), "first_sent_ms": _nullable(MS),
         "software": _nullable(STRING), "unauthenticated_allocation": BOOLEAN})
    candidate = _object(
        {"type": {"enum": ["host", "srflx", "prflx", "relay"]}, "protocol": STRING,
         "address": STRING, "port": PORT, "related_address": _nullable(STRING),
         "related_port": _nullable(PORT), "url": _nullable(STRING),
         "relay_protocol": _nullable(TRANSPORT), "foundation": STRING,
         "priority": {"type": "integer", "minimum": 0}, "elapsed_ms": _nullable(MS),
         "tcp_type": _nullable(STRING)})
    verdict = _object(
        {"id": ID, "severity": {"enum": _values(Severity)}, "title": STRING, "detail": STRING,
         "hint": STRING, "urls": _array(STRING), "role": {"enum": _values(Role)},
         "key": STRING, "caused_by": _array(STRING), "group": STRING, "ignored": BOOLEAN,
         "confidence": {"enum": _values(Confidence)}})
    cell = _object(
        {"host": STRING, "transport": TRANSPORT, "port": PORT, "ok": BOOLEAN,
         "result": STRING, "duration_ms": _nullable(MS)})
    rtt = _object({"min": MS, "median": MS, "p95": MS, "max": MS})
    relay = _object(
        {"url": STRING, "attempted": BOOLEAN, "ok": BOOLEAN,
         "failed_step": _nullable({"enum": _values(RelayStep)}),
         "failure": _nullable(STRING), "ice_connected_ms": _nullable(MS),
         "dtls_connected_ms": _nullable(MS), "channel_open_ms": _nullable(MS),
         "pair": _nullable(_object(
             {"local_address": STRING, "local_port": PORT, "remote_address": STRING,
              "remote_port": PORT, "relay_protocol": TRANSPORT})),
         "echo": _object({"sent": {"type": "integer", "minimum": 0},
                          "received": {"type": "integer", "minimum": 0},
                          "loss": _nullable({"type": "number", "minimum": 0, "maximum": 1}),
                          "rtt_ms": _nullable({"$ref": "#/$defs/rtt"})}),
         "throughput_bps": _object({"up": _nullable(NUMBER), "down": _nullable(NUMBER)}),
         "duration_ms": _nullable(MS), "errors": _array({"$ref": "#/$defs/error"}),
         "ice_check_retransmissions": {"type": "integer", "minimum": 0},
         "ice_note": _nullable(STRING), "interrupted": BOOLEAN,
         "turn_requests": _array({"$ref": "#/$defs/turn_request"}),
         "channel_data": _object({"sent": {"type": "integer", "minimum": 0},
                                  "received": {"type": "integer", "minimum": 0}}),
         "engine": {"enum": ["turn", "webrtc"]},
         "topology": _nullable({"enum": ["relay-relay", "relay-peer"]}),
         "crossings": _nullable({"type": "integer", "minimum": 1}),
         "flows": {"type": "integer", "minimum": 1},
         "rate_pps": _nullable(MS), "payload_bytes": _nullable(COUNT),
         "rtt_us": _nullable(_object({"min": MS, "median": MS, "p95": MS, "p99": MS,
                                      "max": MS})),
         "jitter_us": _nullable(MS), "loss": _nullable(SHARE),
         "reordered": _nullable(COUNT), "duplicates": _nullable(COUNT),
         "client_cpu": _nullable(MS), "client_bound": BOOLEAN,
         "clock_resolution_us": _nullable(MS),
         "sweep": _array(_object(
             {"payload_bytes": COUNT, "offered_pps": MS, "sent_pps": MS,
              "delivered_pps": MS, "mbit_s": MS, "loss": SHARE, "client_bound": BOOLEAN})),
         "knee_pps": _nullable(MS), "knee_payload_bytes": _nullable(COUNT)},
        description="A relay data-path check (`relay`, `gather --relay-check`).")
    turn_request = _object(
        {"peer": {"enum": ["offerer", "answerer"]}, "request": STRING, "elapsed_ms": MS,
         "sends": {"type": "integer", "minimum": 0},
         "answers": {"type": "integer", "minimum": 0},
         "outcome": {"enum": ["success", "error", "discarded", "unanswered"]},
         "error_code": _nullable(CODE), "reason": STRING, "problem": _nullable(STRING),
         "rtt_ms": _nullable(MS)},
        description="A TURN request a peer of the relay check made, and what came of it.")
    state = _object({"kind": STRING, "state": STRING, "elapsed_ms": _nullable(MS)})
    source = _object(
        {"file": STRING, "format": {"enum": RECORDING_FORMATS}, "session": STRING,
         "page_url": _nullable(STRING), "browser": _nullable(STRING)},
        {"ice_transport_policy": _nullable(STRING), "configuration_known": BOOLEAN,
         "errors_recorded": BOOLEAN, "events": {"type": "integer", "minimum": 0},
         "time_resolution_ms": MS, "states": _array({"$ref": "#/$defs/state"})},
        description="Where an analyze session was read from; the recording's keys are absent "
                    "for a saved iceprobe report.")
    tool = _object({"name": {"const": "iceprobe"}, "version": STRING})
    return {"tool": tool, "server": server, "candidate": candidate, "error": error,
            "browser": browser, "verdict": verdict, "cell": cell, "relay": relay,
            "turn_request": turn_request, "rtt": rtt,
            "state": state, "source": source}


def _report_properties() -> tuple[dict[str, Schema], dict[str, Schema]]:
    """The keys of one report (a gather or relay run, an analyze session): required, then
    optional ones."""
    required: dict[str, Schema] = {
        "started_at": _nullable(STRING), "duration_ms": _nullable(MS),
        "status": {"enum": _values(Status)}, "ok": BOOLEAN, "interrupted": BOOLEAN,
        "require": {"enum": ["each", "any"]}, "username": _nullable(STRING),
        "servers": _array({"$ref": "#/$defs/server"}),
        "candidates": _array({"$ref": "#/$defs/candidate"}),
        "errors": _array({"$ref": "#/$defs/error"}),
        "verdicts": _array({"$ref": "#/$defs/verdict"}),
    }
    optional: dict[str, Schema] = {
        "matrix": _array({"$ref": "#/$defs/cell"}),
        "relay": _array({"$ref": "#/$defs/relay"}),
    }
    return required, optional


def _header() -> dict[str, Schema]:
    return {"schema_version": {"const": 2}, "tool": {"$ref": "#/$defs/tool"}}


def _document(name: str, title: str, body: Schema) -> Schema:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{BASE}{name}.schema.json", "title": title, **body,
            "$defs": definitions()}


def gather_schema() -> Schema:
    required, optional = _report_properties()
    return _document("gather", "iceprobe gather --json", _object(
        {**_header(), **required}, optional))


def relay_schema() -> Schema:
    required, optional = _report_properties()
    optional.pop("matrix")
    return _document("relay", "iceprobe relay --json", _object(
        {**_header(), **required}, optional))


def _session() -> Schema:
    required, optional = _report_properties()
    return _object({**required, "source": {"$ref": "#/$defs/source"}}, optional)


def analyze_schema() -> Schema:
    session = _session()
    unreadable = _object({"file": STRING, "error": STRING})
    return _document("analyze", "iceprobe analyze --json", _object(
        {**_header(), "status": {"enum": _values(Status)}, "ok": BOOLEAN,
         "sessions": _array(session)},
        {"unreadable": _array(unreadable)}))


def results_schema() -> Schema:
    result = _object(
        {"code": {"type": "string", "pattern": "^[A-Z0-9]{3}-[A-Z0-9]{3}$"}, "label": STRING,
         "received_at": {"type": "string", "format": "date-time"},
         "browser": _nullable(STRING), "status": {"enum": _values(Status)}, "ok": BOOLEAN,
         "sessions": _array(_session())},
        description="One upload to `iceprobe serve`: its link's label, when it came, the "
                    "browser, and the `analyze --json` keys of the recording.")
    return _document("results", "iceprobe results --json", _object(
        {"schema_version": {"const": 2}, "results": _array(result)}))


def check_schema() -> Schema:
    required, optional = _report_properties()
    report = _object(required, optional,
                     description="The target's gather report (the keys of `gather --json` "
                                 "without schema_version and tool).")
    result = _object(
        {"check": {"enum": ["binding", "allocate", "relay"]},
         "outcome": {"enum": ["pass", "failure", "error", "skipped"]},
         "verdict": _nullable(ID), "message": STRING, "urls": _array(STRING),
         "warnings": _array(ID), "duration_ms": _nullable(MS)},
        description="One check of one target: a JUnit test case.")
    target = _object(
        {"name": STRING, "url": STRING, "module": STRING, "auth": _nullable(STRING),
         "labels": {"type": "object", "additionalProperties": STRING},
         "status": {"enum": _values(Status)}, "ok": BOOLEAN,
         "checks": _array(result), "report": report})
    return _document("check", "iceprobe check --format json", _object(
        {**_header(), "file": STRING, "status": {"enum": _values(Status)}, "ok": BOOLEAN,
         "interrupted": BOOLEAN, "targets": _array(target)}))


def capacity_schema() -> Schema:
    count: Schema = {"type": "integer", "minimum": 0}
    first_error = _object(
        {"error_code": CODE, "error_text": STRING, "cause": {"enum": _values(Cause)},
         "after": count},
        description="The first Allocate that failed (486 quota, 508 capacity, or any other "
                    "error), and how many allocations the server granted before it.")
    return _document("capacity", "iceprobe capacity --json", _object(
        {**_header(), "url": STRING, "server_address": _nullable(STRING),
         "started_at": STRING, "duration_ms": MS,
         "max_allocations": {"type": "integer", "minimum": 1, "maximum": 100},
         "allocations_ok": count, "allocations_per_s": _nullable(NUMBER),
         "allocate_ms": _object({"p50": _nullable(MS), "p99": _nullable(MS)}),
         "first_error": _nullable(first_error), "released": count,
         "interrupted": BOOLEAN}))


def explain_schema() -> Schema:
    entry = _object(
        {"code": CODE, "name": STRING, "reference": STRING,
         "emitted_by": _array({"enum": ["STUN server", "TURN server", "browser"]}),
         "meaning": STRING, "remedy": STRING, "verdict": ID,
         "cause": _nullable({"enum": _values(Cause)}), "generic": BOOLEAN,
         "aliases": _array(STRING)})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{BASE}explain.schema.json", "title": "iceprobe explain --json",
            "type": "array", "items": entry}


SCHEMAS = {"gather": gather_schema, "relay": relay_schema, "analyze": analyze_schema,
           "explain": explain_schema, "results": results_schema, "check": check_schema,
           "capacity": capacity_schema}


def rendered(name: str) -> str:
    return json.dumps(SCHEMAS[name](), indent=2) + "\n"


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    stale = []
    for name in SCHEMAS:
        path = here / f"{name}.schema.json"
        text = rendered(name)
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)} (run python3 -m iceprobe.schemas.build)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
