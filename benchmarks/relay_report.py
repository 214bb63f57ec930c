"""The Markdown report of benchmarks/relay_engines.py: the machine, one row per contender and
payload, and the issue's targets as ratios of figures from the same run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmarks.run import markdown_table

if TYPE_CHECKING:
    from benchmarks.relay_engines import EngineFigure, Figures, Settings

#: The engine reports RTT percentiles in steps of 0.1 µs (plane_stats.percentiles_us).
ENGINE_REPORT_STEP_US = 0.1
#: turnutils_uclient's RTT figures are whole milliseconds.
UCLIENT_STEP_US = 1000.0
#: From this CPU share on, the engine marks itself client-bound (plane.CPU_BOUND).
CPU_BOUND = 0.9


def _n(value: float | None, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("PASS" if ok else "MISS")


def _engine_row(figure: EngineFigure) -> list[str]:
    bound = figure.client_bound or figure.sweep_client_bound
    note = [f"{figure.steps} sweep steps", f"knee {_n(figure.knee_pps)} pps"
            if figure.knee_pps is not None else "no knee below the sweep's limit"]
    if figure.loss is not None:
        note.append(f"the steady run at that rate: {_n(figure.steady_delivered_pps)} round "
                    f"trips/s delivered, loss {figure.loss * 100:.2f} %")
    note.append(f"kernel drops in the sweep: coturn's sockets {figure.sweep_drops[0]}, the "
                f"client's {figure.sweep_drops[1]}; in the steady run {figure.steady_drops[0]}"
                f", {figure.steady_drops[1]}")
    if bound:
        note.append("**client-bound**")
    if figure.failure:
        note.append(f"failure: {figure.failure}")
    flows = "" if figure.flows == 1 else f", --flows {figure.flows}"
    return [f"iceprobe engine (sweep, then steady at the highest clean rate{flows})",
            figure.topology,
            f"{figure.size}", f"{_n(figure.round_trips_per_s)} round trips/s",
            _n(figure.mbit_s, 1),
            f"{_n(figure.rtt_median_us, 1)} µs (p99 {_n(figure.rtt_p99_us, 1)})",
            f"{ENGINE_REPORT_STEP_US:g} µs (clock {figure.clock_resolution_us:g} µs)",
            _n(figure.client_cpu, 2), _n(figure.server_cpu, 2), "; ".join(note)]


def render(figures: Figures, facts: dict[str, str], cfg: Settings, stamp: str,
           seconds: float) -> str:
    rows = [_engine_row(f) for f in figures.engine]
    web = figures.webrtc
    rows.append(["iceprobe aiortc path (`relay --webrtc`)", "relay-relay (ICE, DTLS, SCTP)",
                 "SCTP stream", "–", f"{_n(web['mbit_s'], 1)} (up {_n(web['up_mbit_s'], 1)}, "
                 f"down {_n(web['down_mbit_s'], 1)})",
                 f"{_n(web['rtt_median_ms'], 2)} ms (echo)", "– (rtt_ms)",
                 f"{_n(web['process_cpu'], 2)} (whole process)", _n(web["server_cpu"], 2),
                 "ok" if web["ok"] else f"failed: {web['failure']}"])
    for (topology, size), run in sorted(figures.uclient.items()):
        mode = "-y" if topology == "relay-relay" else "with turnutils_peer"
        rtt = (f"{_n(run.rtt_average_ms, 3)} ms average (min {run.rtt_min_ms}, max "
               f"{run.rtt_max_ms} ms)" if run.rtt_average_ms is not None
               else "– (cut short while it waited for lost packets)")
        lost = run.lost if run.lost is not None else run.sent - run.received
        rows.append([f"turnutils_uclient {mode} -c -z 0 -n {run.messages}", topology,
                     f"{size}", f"{_n(run.messages_per_s)} messages/s ({run.method})",
                     _n(run.messages_per_s * size * 8 / 1e6 if run.messages_per_s else None, 1),
                     rtt, f"{UCLIENT_STEP_US:g} µs (whole ms)",
                     _n(run.client_cpu, 2),
                     _n(figures.uclient_server_cpu.get((topology, size)), 2)
                     + " (whole run)",
                     f"sent {run.sent}, received {run.received}, lost {lost}"])
    for size, loop in sorted(figures.aioice.items()):
        rows.append(["aioice create_turn_endpoint echo loop, window 64", "relay-relay",
                     f"{size}", f"{_n(loop['round_trips_per_s'])} round trips/s",
                     _n(loop["mbit_s"], 1), f"{_n(loop['rtt_median_us'], 1)} µs (timed by "
                     "the loop; aioice reports none)", "–", _n(loop["client_cpu"], 2),
                     _n(loop["server_cpu"], 2) + " (whole run)",
                     f"{loop['round_trips']} round trips"])
    table = markdown_table(["contender", "topology", "payload B", "rate", "Mbit/s",
                            "RTT", "RTT resolution", "client CPU (cores)", "coturn CPU (cores)",
                            "notes"], rows)
    return "\n\n".join([
        f"Measured {stamp} with `python -m benchmarks.relay_engines"
        f"{' --smoke' if cfg.smoke else ''}` in {seconds:.0f} s, one run, against coturn "
        f"with `--relay-threads={cfg.relay_threads}` in the benchmark's namespace.",
        markdown_table(["machine", ""], [[k, v] for k, v in facts.items()]),
        table, targets(figures)])


def confirmed_pps(figure: EngineFigure) -> float | None:
    """The figure the targets use: the sweep's highest clean rate, or what the steady run
    at that rate delivered when that was less (the edge of a sweep is noisy here)."""
    rates = [r for r in (figure.round_trips_per_s, figure.steady_delivered_pps) if r]
    return min(rates) if rates else None


def mbit(figure: EngineFigure | None) -> float | None:
    """Mbit/s at the confirmed rate (confirmed_pps) of a figure."""
    rate = confirmed_pps(figure) if figure is not None else None
    return rate * figure.size * 8 / 1e6 if figure is not None and rate else None


def targets(figures: Figures) -> str:
    """The issue's targets. The engine's figure is its confirmed rate: the lower of the
    sweep's highest clean step and what a steady run at that rate delivered."""
    def pick(topology: str, size: int) -> EngineFigure | None:
        return next((f for f in figures.engine if f.topology == topology and f.size == size
                     and f.flows == 1), None)

    rows: list[list[str]] = []
    big = pick("relay-relay", 1200)
    web = figures.webrtc.get("mbit_s")
    mine = mbit(big)
    ratio = mine / web if mine and web else None
    best = max((f for f in figures.engine if mbit(f)), key=lambda f: mbit(f) or 0.0,
               default=None)
    top = mbit(best) if best is not None else None
    also = (f" (the run's best: {_n(top, 1)} Mbit/s, {best.topology}, {best.flows} "
            f"flow(s), {best.size} B = {_n(top / web if top and web else None, 1)} ×)"
            if best is not None and best is not big else "")
    rows.append(["engine throughput ≥ 10 × the aiortc path's (relay-relay, 1200 B, 1 flow)",
                 f"{_n(mbit(big), 1)} vs {_n(web, 1)} Mbit/s = {_n(ratio, 1)} ×"
                 + also,
                 _verdict(None if ratio is None else ratio >= 10)])
    for topology, size in sorted(figures.uclient):
        run = figures.uclient[(topology, size)]
        ours = pick(topology, size)
        rate = confirmed_pps(ours) if ours else None
        theirs = run.messages_per_s
        if topology == "relay-relay":
            # A relay-relay round trip is two one-way messages, each on the path of one
            # `-y` message (client, server, the other relay, the other client).
            messages = 2 * rate if rate else None
            ratio = messages / theirs if messages and theirs else None
            strict = rate / theirs if rate and theirs else None
            figure = (f"{_n(messages)} one-way messages/s (2 × {_n(rate)} round trips/s) vs "
                      f"{_n(theirs)} = {_n(ratio, 1)} × (round trips/s against its "
                      f"messages/s: {_n(strict, 1)} ×)")
        else:
            ratio = rate / theirs if rate and theirs else None
            figure = f"{_n(rate)} vs {_n(theirs)} echoed messages/s = {_n(ratio, 1)} ×"
        rows.append([f"engine ≥ 5 × turnutils_uclient's message rate, {topology}, {size} B",
                     figure, _verdict(None if ratio is None else ratio >= 5)])
    if figures.engine:
        resolution = max(ENGINE_REPORT_STEP_US, max(f.clock_resolution_us
                                                    for f in figures.engine))
        rows.append(["RTT resolution ≤ 10 µs", f"{resolution:g} µs (turnutils_uclient: "
                     f"{UCLIENT_STEP_US:g} µs)", _verdict(resolution <= 10)])
    for f in figures.engine:
        if f.client_cpu is None:
            rows.append([f"client CPU < 1 core at the knee, {f.topology}, {f.flows} "
                         f"flow(s), {f.size} B", "no clean sweep step", "–"])
            continue
        bound = f.client_bound or f.sweep_client_bound
        ok = bound if f.client_cpu >= CPU_BOUND else True
        rows.append([f"client CPU < 1 core at the knee, {f.topology}, {f.flows} flow(s), "
                     f"{f.size} B",
                     f"{f.client_cpu:.2f} cores at {_n(f.round_trips_per_s)} pps offered"
                     + (" (marked client-bound)" if bound else ""), _verdict(ok)])
    met = sum(r[2] == "PASS" for r in rows)
    judged = sum(r[2] in ("PASS", "MISS") for r in rows)
    return (markdown_table(["target", "figure", ""], rows)
            + f"\n\nTargets met: {met} of {judged}.")
