"""The reference client: real aioice, run as its own process by the benchmark.

`gather` mode: `aioice.Connection(stun_server=..., turn_server=...).gather_candidates()`, the
call an aioice or aiortc application makes, bounded by `asyncio.wait_for(LIMIT)`.

`transaction` mode: the exchanges that Connection runs underneath, without its fixed 5 s cap:
aioice's own server-reflexive query (`aioice.ice.server_reflexive_candidate` on an aioice
`StunProtocol`) and TURN allocation (`aioice.turn.create_turn_endpoint`), concurrently, each
bounded by `asyncio.wait_for(LIMIT)`, each timed until it returns or raises.

Prints one JSON object on stdout: what came back and how long it took.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aioice
from aioice import ice, turn


def _server(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def _gather(args: argparse.Namespace) -> dict[str, Any]:
    connection = aioice.Connection(
        ice_controlling=True,
        stun_server=_server(args.stun) if args.stun else None,
        turn_server=_server(args.turn) if args.turn else None,
        turn_username=args.username, turn_password=args.password)
    started = time.monotonic()
    outcome = "returned"
    try:
        await asyncio.wait_for(connection.gather_candidates(), args.limit)
    except asyncio.TimeoutError:
        outcome = f"still running after {args.limit:g} s"
    elapsed = time.monotonic() - started
    types = sorted(c.type for c in connection.local_candidates)
    await connection.close()
    return {"mode": "gather", "outcome": outcome, "elapsed_s": round(elapsed, 3),
            "candidate_types": types,
            # Connection.gather_candidates() has no error channel: a failed STUN or TURN
            # task is dropped without a trace.
            "errors_reported": 0}


async def _timed(what: str, work: Any, limit: float) -> dict[str, Any]:
    started = time.monotonic()
    try:
        await asyncio.wait_for(work, limit)
        outcome = "succeeded"
    except asyncio.TimeoutError:
        outcome = f"still running after {limit:g} s"
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return {"exchange": what, "outcome": outcome,
            "elapsed_s": round(time.monotonic() - started, 3)}


async def _transaction(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    connection = aioice.Connection(ice_controlling=True)
    jobs = []
    if args.stun:
        _transport, protocol = await loop.create_datagram_endpoint(
            lambda: ice.StunProtocol(connection), local_addr=(args.local, 0))
        jobs.append(_timed("STUN Binding (aioice.ice.server_reflexive_candidate)",
                           ice.server_reflexive_candidate(protocol, _server(args.stun)),
                           args.limit))
    if args.turn:
        jobs.append(_timed("TURN Allocate (aioice.turn.create_turn_endpoint)",
                           turn.create_turn_endpoint(asyncio.DatagramProtocol,
                                                     _server(args.turn), args.username,
                                                     args.password),
                           args.limit))
    results = await asyncio.gather(*jobs)
    return {"mode": "transaction", "exchanges": list(results)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.aioice_probe")
    parser.add_argument("mode", choices=["gather", "transaction"])
    parser.add_argument("--stun", metavar="HOST:PORT")
    parser.add_argument("--turn", metavar="HOST:PORT")
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--local", default="0.0.0.0", help="local address (transaction mode)")
    parser.add_argument("--limit", type=float, default=70.0, metavar="SECONDS")
    args = parser.parse_args()
    work = _gather(args) if args.mode == "gather" else _transaction(args)
    print(json.dumps(asyncio.run(work)))


if __name__ == "__main__":
    main()
