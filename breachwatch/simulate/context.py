"""The shared state of one run: the world, the clock's landmarks, orders placed so far, departures."""
from __future__ import annotations

from dataclasses import dataclass, field

from breachwatch.contract.catalog import Catalog
from breachwatch.simulate.config import SimConfig
from breachwatch.simulate.effects import SessionEffects
from breachwatch.simulate.orders import OrderBook
from breachwatch.simulate.world import World


@dataclass(frozen=True)
class Window:
    """A slice of simulated time [start, end) in microseconds; generators fill one at a time."""
    index: int
    start: int
    end: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / 1e6

    def overlap(self, start: int, end: int) -> tuple[int, int] | None:
        lo, hi = max(self.start, start), min(self.end, end)
        return (lo, hi) if lo < hi else None


@dataclass
class SimContext:
    config: SimConfig
    catalog: Catalog
    world: World
    orders: OrderBook
    start: int              # first instant simulated
    attack_start: int       # end of the warm-up: scenarios start at or after it
    end: int                # first instant not simulated
    # Employees who leave during the run (id -> instant); staff generators stop their work then.
    departures: dict[str, int] = field(default_factory=dict)
    # What the selected benign surprises change about customers' sessions (nothing by default).
    effects: SessionEffects = field(default_factory=SessionEffects)

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def rate_scale(self) -> float:
        return self.config.rate_scale
