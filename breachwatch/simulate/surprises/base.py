"""What every benign surprise shares: parameters and scheduling as scenarios have them, but benign events.

A surprise is the everyday kind of change a naive detector mistakes for an
attack (a sale day, an app release, a carrier renumbering, customers abroad,
a new batch job). It reuses the scenarios' machinery (a Params dataclass set
with --param NAME.KEY=VALUE, a default slot after the warm-up at a suitable
Korean hour, `start_h` to move it), but its events carry label 0: nothing it
does is malicious, so it adds no malicious event ids and exposes nobody in the
ground truth. Instead truth.json lists it under `benign_surprises` with its
period and the entities it changed, so a detector's false positives can be
traced to it.

A surprise either generates events of its own (`window`), or changes the
customers' sessions through the `SessionEffect` hooks, or both.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.effects import SessionEffect
from breachwatch.simulate.scenarios.base import Scenario, when


class Surprise(Scenario, SessionEffect):
    """Base class; subclasses set name, summary, Params and the schedule, and fill `start`/`end`."""
    start: int
    end: int

    def __init__(self, ctx: SimContext, overrides: dict[str, Any], code: int) -> None:
        super().__init__(ctx, overrides, 0, code)

    def peak_rate(self) -> float:
        return 0.0  # a surprise that only reshapes sessions adds no events of its own

    def window(self, w: Window) -> list[pa.Table]:
        return []

    def entities(self) -> dict[str, list[str]]:
        """Identifiers the surprise introduced or changed (keys as in a scenario's truth `entities`)."""
        return {}

    def truth(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary, "start": when(self.start), "end": when(self.end),
                "params": dict(self.p.__dict__), "entities": self.entities(), "context": self.context()}
