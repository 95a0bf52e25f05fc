"""Runs the generators window by window and hands out events in time order, in bounded batches.

Each window's new events are merged with the events earlier windows produced
for later times (a session that runs past its window's end), sorted (stably,
so equal times keep a fixed order), and everything before the window's end is
emitted. Memory therefore holds one window plus the spill-over, whatever the
run's length; windows are sized so one holds about `window_events` events.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.simulate import frames
from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.generator import Generator
from breachwatch.simulate.randomness import unique_ids
from breachwatch.simulate.timebase import SECOND

# Window lengths that divide an hour, so windows start on the hour when the
# scheduled jobs (label runs, the mailer) do.
WINDOW_SECONDS = (3600, 1800, 1200, 900, 600, 300, 240, 180, 120, 60)


@dataclass
class EngineStats:
    window_seconds: int = 0
    windows: int = 0
    max_window_rows: int = 0
    max_pending_rows: int = 0
    dropped_after_end: int = 0


def window_seconds(peak_rate: float, window_events: int) -> int:
    for s in WINDOW_SECONDS:
        if peak_rate * s <= window_events:
            return s
    return WINDOW_SECONDS[-1]


class Engine:
    def __init__(self, ctx: SimContext, snapshot: object, generators: Sequence[Generator]) -> None:
        codes = [g.code for g in generators]
        if len(set(codes)) != len(codes) or any(not 0 < c < 64 for c in codes):
            raise ValueError(f"generator codes must be distinct and in 1..63, got {codes}")
        self.ctx = ctx
        self.snapshot = snapshot
        self.generators = list(generators)
        peak = sum(g.peak_rate() for g in self.generators)
        self.stats = EngineStats(window_seconds=window_seconds(peak, ctx.config.window_events))
        step = self.stats.window_seconds * SECOND
        starts = np.arange(ctx.start, ctx.end, step)
        self.windows = [Window(i, int(s), int(min(s + step, ctx.end))) for i, s in enumerate(starts)]
        self.stats.windows = len(self.windows)

    def _with_ids(self, table: pa.Table, domain: int, block: int, counter: int) -> pa.Table:
        ids = unique_ids(self.ctx.seed, domain, block, counter, table.num_rows)
        return table.set_column(0, "event_id", ids)

    def run(self, on_window: object = None) -> Iterator[pa.Table]:
        """Yield time-ordered tables in the internal schema, each at most `batch_rows` rows."""
        rows = self.ctx.config.batch_rows
        for b, t in enumerate(self.snapshot.blocks(rows)):  # type: ignore[attr-defined]
            yield self._with_ids(t, 0, b, 0)
        pending = frames.empty()
        for w in self.windows:
            parts = [pending]
            for g in self.generators:
                counter = 0
                for t in g.window(w):
                    if t.num_rows == 0:
                        continue
                    if frames.time_us(t).min() < w.start:
                        raise AssertionError(f"{g.name} produced an event before its window {w}")
                    parts.append(self._with_ids(t, g.code, w.index, counter))
                    counter += t.num_rows
            table = pa.concat_tables(parts)
            self.stats.max_window_rows = max(self.stats.max_window_rows, table.num_rows)
            if table.num_rows:
                table = table.take(pc.sort_indices(table, [("time", "ascending")]))
            cut = int(np.searchsorted(frames.time_us(table), w.end))
            ready, pending = table.slice(0, cut), table.slice(cut)
            self.stats.max_pending_rows = max(self.stats.max_pending_rows, pending.num_rows)
            for lo in range(0, ready.num_rows, rows):
                yield ready.slice(lo, rows)
            if on_window is not None:
                on_window(w)  # type: ignore[operator]
        self.stats.dropped_after_end = pending.num_rows
