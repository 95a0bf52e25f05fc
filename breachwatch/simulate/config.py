"""What a simulation run is asked for: `SimConfig`, and parsing of the command line's lists."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import orjson

from breachwatch.simulate.timebase import HOUR, parse_time

FORMATS = ("ndjson", "ndjson.gz", "parquet")
DEFAULT_START = "2025-06-01T15:00:00Z"  # 00:00 KST on Monday 2 June 2025


@dataclass(frozen=True)
class SimConfig:
    """A run of the simulated retailer; equal configs give byte-identical output.

    `days` is the period in which scenarios run; it follows `warmup_days` of
    benign history, so the events span warmup_days + days.
    """
    customers: int = 100_000
    days: float = 3.0
    warmup_days: float = 1.0
    seed: int = 1
    scenarios: tuple[str, ...] | str = "all"
    # Benign surprises (a sale day, an app release...): everyday events a naive detector flags. Off by default.
    surprises: tuple[str, ...] | str = "none"
    rate_scale: float = 1.0
    issuance_log: bool = True
    # False: only the opening snapshot and the scenarios' own events, to inject into recorded traffic.
    benign: bool = True
    start: str = DEFAULT_START
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    catalog: str | None = None
    batch_rows: int = 65_536
    window_events: int = 250_000

    def validate(self) -> None:
        if self.customers < 100:
            raise ValueError(f"--customers {self.customers}: too few for a retailer. Fix: use at least 100.")
        if self.days <= 0 or self.warmup_days < 0:
            raise ValueError(f"--days {self.days} / --warmup-days {self.warmup_days}: days must be positive and "
                             "warm-up days not negative. Fix: e.g. --days 3 --warmup-days 1.")
        if self.days + self.warmup_days > 400:
            raise ValueError(f"--days {self.days} plus --warmup-days {self.warmup_days} exceeds 400 days. "
                             "Fix: simulate at most 400 days per run.")
        if not self.rate_scale > 0:
            raise ValueError(f"--rate-scale {self.rate_scale}: must be positive. Fix: e.g. --rate-scale 0.5.")
        if self.batch_rows < 1000 or self.window_events < self.batch_rows:
            raise ValueError(f"batch_rows {self.batch_rows} / window_events {self.window_events}: batches need "
                             "at least 1000 rows and windows at least one batch. Fix: raise them.")
        if self.start_us % HOUR:
            raise ValueError(f"--start {self.start}: must be on the hour (scheduled jobs run on the hour). "
                             "Fix: e.g. 2025-06-01T15:00:00Z.")

    @property
    def start_us(self) -> int:
        return parse_time(self.start)

    def scenario_names(self, known: tuple[str, ...]) -> tuple[str, ...]:
        return parse_scenarios(self.scenarios, known)

    def surprise_names(self, known: tuple[str, ...]) -> tuple[str, ...]:
        return parse_names(self.surprises, known, "--surprises", "surprise")

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["params"] = {k: dict(v) for k, v in self.params.items()}
        # Runs without surprises describe themselves exactly as before surprises existed (same truth.json bytes).
        if chooses_none(self.surprises):
            del d["surprises"]
        return d


def parse_scenarios(value: tuple[str, ...] | list[str] | str, known: tuple[str, ...]) -> tuple[str, ...]:
    return parse_names(value, known, "--scenarios", "scenario")


def chooses_none(value: tuple[str, ...] | list[str] | str) -> bool:
    return value.strip() in ("none", "") if isinstance(value, str) else not value


def parse_names(value: tuple[str, ...] | list[str] | str, known: tuple[str, ...], option: str,
                what: str) -> tuple[str, ...]:
    """'all', 'none' (or empty), or a comma list of known names, in the registry's order."""
    if isinstance(value, str):
        v = value.strip()
        if v == "all":
            return known
        if chooses_none(v):
            return ()
        names = [s.strip() for s in v.split(",") if s.strip()]
    else:
        names = list(value)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"{option}: unknown {what}(s) {unknown}. Fix: use 'all', 'none' or a comma list of "
                         f"{', '.join(known)}.")
    return tuple(n for n in known if n in names)


def parse_param(text: str) -> tuple[str, str, Any]:
    """'scenario.key=value' or 'surprise.key=value' (value as JSON where it parses, else text) from --param."""
    left, sep, raw = text.partition("=")
    scenario, dot, key = left.strip().partition(".")
    if not sep or not dot or not scenario or not key:
        raise ValueError(f"--param '{text}': expected SCENARIO.KEY=VALUE (or SURPRISE.KEY=VALUE). "
                         "Fix: e.g. --param forged_token.ips=500.")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = raw
    return scenario, key.strip(), value


def params_from_cli(items: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        s, k, v = parse_param(item)
        out.setdefault(s, {})[k] = v
    return out
