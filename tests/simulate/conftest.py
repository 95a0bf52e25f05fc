"""One small but complete simulated run, shared by the simulator's tests (it takes a few seconds)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from breachwatch.simulate import SimConfig, simulate

# Small enough to be quick, large enough that every scenario has room: 3,000 members, a half-day
# warm-up and one attack day; the partner scraper runs 4 minutes instead of 20.
STANDARD = SimConfig(customers=3_000, days=1, warmup_days=0.5, seed=11,
                     params={"partner_scraping": {"duration_min": 4}})


@dataclass
class Run:
    config: SimConfig
    out: Path
    events: pa.Table
    truth: dict[str, Any]
    summary: dict[str, Any]

    def scenario(self, name: str) -> dict[str, Any]:
        return next(s for s in self.truth["scenarios"] if s["name"] == name)

    def malicious(self, name: str) -> pa.Table:
        ids = pa.array(self.scenario(name)["malicious_event_ids"], pa.string())
        return self.events.filter(pc.is_in(self.events.column("event_id"), value_set=ids))

    def rows(self, table: pa.Table | None = None) -> list[dict[str, Any]]:
        return (self.events if table is None else table).to_pylist()


@pytest.fixture(scope="session")
def standard_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("standard")
    sim = simulate(STANDARD)
    summary = sim.write(out, "parquet")
    truth = orjson.loads((out / "truth.json").read_bytes())
    return Run(STANDARD, out, pq.read_table(out / "events.parquet"), truth, summary)
