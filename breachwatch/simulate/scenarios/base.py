"""What every breach scenario shares: parameters, scheduling inside the attack period, planned events.

A scenario is a generator whose events carry its label. Its parameters are a
dataclass (overridable from the command line with --param NAME.KEY=VALUE);
parameters named `rate...` are multiplied by --rate-scale. It is scheduled
after the warm-up, by default at a fixed fraction of the attack period and at
a Korean time of day that suits it (an insider at work, a scraper at night),
and its length is cut to fit the period.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.simulate import frames
from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.randomness import rng
from breachwatch.simulate.timebase import HOUR, MINUTE, next_kst_hour, rfc3339
from breachwatch.simulate.world import Principal


def _coerce(name: str, default: Any, type_text: str, value: Any) -> Any:
    """A --param value as the parameter's declared type (int, float, str, bool, optionally None)."""
    if value is None and "None" in type_text:
        return None
    base = type_text.replace("| None", "").strip()
    ok = False
    if base == "bool":
        ok = isinstance(value, bool)
    elif base == "int":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()
        value = int(value) if ok else value
    elif base == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base == "str":
        ok, value = True, str(value)
    if not ok:
        raise ValueError(f"--param {name}={value!r}: expected {base}. Fix: e.g. {name}={default!r}.")
    return value


class Scenario:
    """Base class; subclasses set the class attributes and implement `window`."""
    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type]
    # Default start: this fraction into the attack period, then the next time the Korean clock shows kst_hour.
    at_fraction: ClassVar[float] = 0.0
    kst_hour: ClassVar[float] = 0.0

    def __init__(self, ctx: SimContext, overrides: dict[str, Any], label: int, code: int) -> None:
        self.ctx = ctx
        self.label = label
        self.code = code
        self.p = self.parse(overrides)

    @classmethod
    def parse(cls, overrides: dict[str, Any]) -> Any:
        fields = {f.name: f for f in dataclasses.fields(cls.Params)}
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise ValueError(f"--param {cls.name}.{unknown[0]}: {cls.name} has no such parameter. Fix: use one of "
                             f"{', '.join(sorted(fields))}.")
        values = {k: _coerce(f"{cls.name}.{k}", fields[k].default, str(fields[k].type), v)
                  for k, v in overrides.items()}
        return cls.Params(**values)

    @property
    def rate_scale(self) -> float:
        return self.ctx.rate_scale

    def start_at(self, start_h: float | None, length: int = 0) -> int:
        """The scenario's start: explicit hours after the warm-up, else the class's default slot.

        The default is the first time the Korean clock shows `kst_hour` after
        `at_fraction` of the attack period, or failing that after the warm-up,
        leaving room for at least an hour (or `length`, if shorter) of activity;
        in a period too short for either, the unaligned fraction point.
        """
        ctx = self.ctx
        if start_h is not None:
            t = ctx.attack_start + int(start_h * HOUR)
            if not ctx.attack_start <= t < ctx.end:
                raise ValueError(f"--param {self.name}.start_h={start_h}: outside the attack period of "
                                 f"{(ctx.end - ctx.attack_start) / HOUR:g} hours after the warm-up. "
                                 "Fix: choose a value inside it, or raise --days.")
            return t
        base = ctx.attack_start + int(self.at_fraction * (ctx.end - ctx.attack_start)) // MINUTE * MINUTE
        room = min(length, HOUR)
        for after in (base, ctx.attack_start):
            aligned = next_kst_hour(after, self.kst_hour)
            if aligned + room <= ctx.end:
                return aligned
        return base

    def fit(self, start: int, length: int) -> int:
        """End of an activity of `length` starting at `start`, cut at the end of the run."""
        return min(start + length, self.ctx.end)

    def schedule(self, start_h: float | None, length: int | None = None) -> tuple[int, int]:
        """(start, end) of an activity of `length` (`start_at`, `fit`); without one it lasts to the run's end."""
        start = self.start_at(start_h, length or 0)
        return start, (self.ctx.end if length is None else self.fit(start, length))

    def created_before(self, start: int, hours: float) -> int:
        """When an account first used at `start` was created, `hours` before it (not before the run)."""
        return max(self.ctx.start, start - int(hours * HOUR))

    def peak_rate(self) -> float:
        return 1.0

    def context(self) -> dict[str, Any]:
        """Facts about the scenario beyond its events (e.g. the leaked key), for truth.json."""
        return {}

    def window(self, w: Window) -> list[pa.Table]:
        raise NotImplementedError


def principal_created(w: Window, at: int, principal_id: str, principal_type: str, role: str) -> list[pa.Table]:
    """The directory's `principal_created` event of a new account, in the window that holds `at`."""
    if not w.start <= at < w.end:
        return []
    attrs = orjson.dumps({"created_at": rfc3339(at), "role": role}).decode()
    return [frames.events(1, 0, time=at, kind="principal_created", principal_id=principal_id,
                          principal_type=principal_type, attributes=attrs)]


class PlannedScenario(Scenario):
    """A scenario small enough to draw all its events up front; windows then take their slice."""

    _plan: pa.Table | None = None
    _times: np.ndarray | None = None

    def __init__(self, ctx: SimContext, overrides: dict[str, Any], label: int, code: int) -> None:
        super().__init__(ctx, overrides, label, code)
        # Plan now: a plan may record a departure that the staff generator must know before the first window.
        self._planned()

    def plan(self) -> list[pa.Table]:
        raise NotImplementedError

    def _planned(self) -> tuple[pa.Table, np.ndarray]:
        if self._plan is None:
            parts = [t for t in self.plan() if t.num_rows]
            table = pa.concat_tables(parts) if parts else frames.empty()
            if table.num_rows:
                table = table.take(pc.sort_indices(table, [("time", "ascending")]))
            self._plan, self._times = table, frames.time_us(table)
        return self._plan, self._times  # type: ignore[return-value]

    def peak_rate(self) -> float:
        _, t = self._planned()
        if len(t) < 2:
            return 1.0
        per_minute = np.bincount((t - t[0]) // (60 * 1_000_000))
        return float(per_minute.max()) / 60.0

    def window(self, w: Window) -> list[pa.Table]:
        table, t = self._planned()
        lo, hi = np.searchsorted(t, [w.start, w.end])
        return [table.slice(lo, hi - lo)] if hi > lo else []


def pick_agent(ctx: SimContext, role: int) -> tuple[int, Principal]:
    """A customer-service agent for a scenario role; roles get distinct agents, never the benign leaver."""
    agents = ctx.world.agents[:-1]
    order = rng(ctx.seed, "agent-roles").permutation(len(agents))
    i = int(order[role % len(agents)])
    return i, agents[i]


def when(us: int | None) -> str | None:
    return rfc3339(us) if us is not None else None
