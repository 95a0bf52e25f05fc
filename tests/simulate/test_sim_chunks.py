"""Events come in bounded, time-ordered chunks; memory does not grow with the length of the run."""
from __future__ import annotations

import pyarrow as pa

from breachwatch.contract.event import ARROW_SCHEMA
from breachwatch.simulate import SimConfig, simulate
from breachwatch.simulate.engine import window_seconds


def _run(days: float) -> tuple[list[int], int, object]:
    sim = simulate(SimConfig(customers=8_000, days=days, warmup_days=0, seed=4, scenarios="none",
                             batch_rows=1_000, window_events=1_500))
    sizes, peak, last = [], 0, None
    base = pa.total_allocated_bytes()
    for batch in sim.iter_batches():
        assert batch.schema == ARROW_SCHEMA
        t = batch.column("time").cast("int64").to_numpy()
        assert (t[1:] >= t[:-1]).all() and (last is None or t[0] >= last)
        last = t[-1]
        sizes.append(batch.num_rows)
        peak = max(peak, pa.total_allocated_bytes() - base)
    return sizes, peak, sim.stats


def test_batches_are_bounded_and_ordered():
    sizes, _, stats = _run(0.5)
    assert max(sizes) <= 1_000 and sum(sizes) > 10_000
    assert stats.window_seconds < 3600  # windows shrank to keep ~1,500 events each
    assert stats.max_window_rows < 3 * 1_500


def test_memory_does_not_grow_with_the_number_of_days():
    short_sizes, short_peak, short = _run(0.5)
    long_sizes, long_peak, long = _run(1.5)
    assert sum(long_sizes) > 2 * sum(short_sizes)
    assert long.max_window_rows < 1.5 * short.max_window_rows
    assert long.max_pending_rows < 1.5 * short.max_pending_rows + 500
    assert long_peak < 1.5 * short_peak


def test_window_length_follows_the_peak_rate():
    assert window_seconds(10.0, 250_000) == 3600
    assert window_seconds(1_000.0, 250_000) == 240
    assert window_seconds(1e9, 250_000) == 60
