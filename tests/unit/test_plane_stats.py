"""The data plane's receiver statistics (iceprobe/gather/plane_stats.py): pure arithmetic on
(sequence number, send time, receive time) triples, and the sweep's knee search."""

from __future__ import annotations

import pytest

from iceprobe.gather.plane_data import channel_data, frame_length
from iceprobe.gather.plane_stats import (
    FlowTally,
    is_past_knee,
    knee,
    merge,
    nearest_rank,
    next_rate,
    percentiles_us,
    sweep_step,
)
from iceprobe.model import SweepStep


def tally_of(arrivals: list[tuple[int, int, int]]) -> FlowTally:
    tally = FlowTally(4)
    for seq, sent, received in arrivals:
        tally.add(seq, sent, received)
    return tally


def test_in_order_packets_are_neither_reordered_nor_duplicated() -> None:
    tally = tally_of([(n, n * 1000, n * 1000 + 500) for n in range(10)])
    assert (tally.received, tally.reordered, tally.duplicates) == (10, 0, 0)
    assert tally.rtts_ns == [500] * 10


def test_a_packet_older_than_one_already_received_is_reordered() -> None:
    tally = tally_of([(0, 0, 10), (2, 20, 30), (1, 10, 35), (3, 30, 40)])
    assert tally.reordered == 1
    assert tally.received == 4


def test_a_second_copy_is_a_duplicate_and_not_a_second_sample() -> None:
    tally = tally_of([(0, 0, 10), (1, 10, 20), (1, 10, 25), (0, 0, 30)])
    assert tally.duplicates == 2
    assert tally.received == 2
    assert len(tally.rtts_ns) == 2


def test_sequence_numbers_beyond_the_expected_count_grow_the_record() -> None:
    tally = tally_of([(5000, 0, 1), (5000, 0, 2), (3, 0, 3)])
    assert (tally.received, tally.duplicates, tally.reordered) == (2, 1, 1)


def test_jitter_follows_rfc_3550_with_its_gain_of_one_sixteenth() -> None:
    # Transit times 100, 132, 100: |D| = 32 twice. J = 32/16 = 2, then 2 + (32 - 2)/16.
    tally = tally_of([(0, 0, 100), (1, 1000, 1132), (2, 2000, 2100)])
    assert tally.jitter_ns == pytest.approx(2 + 30 / 16)


def test_constant_transit_has_no_jitter() -> None:
    tally = tally_of([(n, n * 7, n * 7 + 250) for n in range(50)])
    assert tally.jitter_ns == 0


def test_merge_counts_loss_over_every_flow() -> None:
    first = tally_of([(0, 0, 5), (1, 0, 6)])
    second = tally_of([(0, 0, 7)])
    merged = merge([(2, first), (4, second)])
    assert (merged.sent, merged.received) == (6, 3)
    assert merged.loss == pytest.approx(0.5)
    assert merged.rtts_ns == (5, 6, 7)


def test_nothing_sent_has_no_loss_figure() -> None:
    assert merge([]).loss is None


def test_percentiles_are_nearest_rank_in_microseconds() -> None:
    samples = sorted(n * 1000 for n in range(1, 101))  # 1..100 µs
    summary = percentiles_us(samples)
    assert summary is not None
    assert (summary.min, summary.median, summary.p95, summary.p99, summary.max) == \
        (1.0, 50.5, 95.0, 99.0, 100.0)
    assert nearest_rank([10, 20, 30], 0.5) == 20


def test_one_sample_is_every_percentile() -> None:
    summary = percentiles_us([1234])
    assert summary is not None
    assert summary.min == summary.median == summary.p99 == summary.max == 1.2


def test_no_samples_no_percentiles() -> None:
    assert percentiles_us([]) is None


def step(offered: float, loss: float = 0.0, delivered: float | None = None,
         client_bound: bool = False) -> SweepStep:
    return SweepStep(payload_bytes=1200, offered_pps=offered, sent_pps=offered,
                     delivered_pps=offered * (1 - loss) if delivered is None else delivered,
                     mbit_s=0.0, loss=loss, client_bound=client_bound)


def test_sweep_step_counts_payload_megabits_delivered() -> None:
    tally = merge([(1000, tally_of([(n, 0, 1) for n in range(900)]))])
    made = sweep_step(1200, 2000, 1000, tally, 0.5, client_limited=True)
    assert made.delivered_pps == 1800
    assert made.mbit_s == pytest.approx(1800 * 1200 * 8 / 1e6)
    assert made.loss == pytest.approx(0.1)
    # 1000 sent in 0.5 s is the 2000 offered: the client kept up.
    assert not made.client_bound


def test_a_client_that_could_not_send_the_offered_rate_is_client_bound() -> None:
    tally = merge([(500, tally_of([(n, 0, 1) for n in range(500)]))])
    assert sweep_step(64, 2000, 500, tally, 0.5, client_limited=True).client_bound
    # Over TCP the server holding the sender back is the server's limit.
    assert not sweep_step(64, 2000, 500, tally, 0.5, client_limited=False).client_bound


def test_a_stream_falling_behind_is_past_the_knee_without_loss() -> None:
    assert is_past_knee(step(1000, loss=0.0, delivered=800))
    assert not is_past_knee(step(1000, loss=0.005))
    assert is_past_knee(step(1000, loss=0.02))


def test_the_knee_is_the_lowest_lossy_rate_the_client_kept_up_with() -> None:
    steps = [step(100), step(200), step(400, 0.3), step(300, 0.05), step(250),
             step(800, 0.5, client_bound=True)]
    assert knee(steps) == 300
    assert knee([step(100), step(200)]) is None


def test_the_sweep_doubles_until_loss_then_bisects_to_the_precision() -> None:
    measured: list[SweepStep] = []
    rates = []
    capacity = 1000.0  # loss above this rate
    while (rate := next_rate(measured, 100, 2, 100_000, 0.05)) is not None:
        rates.append(rate)
        measured.append(step(rate, 0.2 if rate > capacity else 0.0))
    assert rates[:5] == [100, 200, 400, 800, 1600]
    found = knee(measured)
    assert found is not None and capacity < found <= capacity * 1.05 + 1
    assert len(rates) < 15


def test_the_sweep_ends_at_its_limit_without_a_knee() -> None:
    measured: list[SweepStep] = []
    while (rate := next_rate(measured, 100, 2, 1000, 0.05)) is not None:
        measured.append(step(rate))
    assert [s.offered_pps for s in measured] == [100, 200, 400, 800]


def test_the_sweep_stops_once_the_client_falls_behind() -> None:
    measured = [step(100), step(200, client_bound=True)]
    assert next_rate(measured, 100, 2, 100_000, 0.05) is None


def test_channel_data_is_padded_to_four_bytes_over_a_stream_only() -> None:
    assert len(channel_data(0x4000, b"12345", stream=False)) == 9
    framed = channel_data(0x4000, b"12345", stream=True)
    assert len(framed) == 12 and framed[9:] == bytes(3)
    assert frame_length(framed) == 12
    # A STUN header: 20 bytes plus its length field.
    assert frame_length(bytes([0x01, 0x01, 0x00, 0x08]) + bytes(16)) == 28
    assert frame_length(bytes([0xC0, 0, 0, 0])) is None


def test_a_sweep_lossy_from_its_start_goes_down_to_find_clean_ground() -> None:
    measured: list[SweepStep] = []
    capacity = 60.0
    while (rate := next_rate(measured, 200, 2, 100_000, 0.08)) is not None:
        measured.append(step(rate, 0.2 if rate > capacity else 0.0))
    assert [s.offered_pps for s in measured][:3] == [200, 100, 50]
    found = knee(measured)
    assert found is not None and capacity < found <= capacity * 1.09


def test_a_sweep_lossy_at_every_rate_gives_up_at_the_floor() -> None:
    measured: list[SweepStep] = []
    while (rate := next_rate(measured, 200, 2, 100_000, 0.08)) is not None:
        measured.append(step(rate, 0.5))
    assert min(s.offered_pps for s in measured) >= 5
    assert knee(measured) == min(s.offered_pps for s in measured)
