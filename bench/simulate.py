"""Simulator throughput: events generated per second, alone and written to each output format.

    .venv/bin/python bench/simulate.py [--customers 100000] [--days 3] [--formats ndjson,ndjson.gz,parquet]

Prints one JSON object: for each mode, events, wall-clock and CPU seconds (all
threads), events per wall-clock second and output bytes. "generate" iterates
`Simulation.iter_batches()` without writing (what a drill replaying in memory
pays); the others run `Simulation.write()` into a temporary directory, which
is removed afterwards. CPU seconds are reported because wall-clock time on a
shared machine depends on what else runs.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from breachwatch.simulate import FORMATS, SimConfig, simulate


def measure(config: SimConfig, fmt: str | None) -> dict:
    sim = simulate(config)
    wall, cpu = time.perf_counter(), time.process_time()
    size = 0
    if fmt is None:
        events = sum(b.num_rows for b in sim.iter_batches())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            summary = sim.write(Path(tmp) / "out", fmt)
            events, size = summary["events"], summary["bytes"]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"mode": fmt or "generate", "events": events, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "events_per_wall_s": round(events / wall), "events_per_cpu_s": round(events / cpu), "bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--days", type=float, default=3.0)
    ap.add_argument("--warmup-days", type=float, default=1.0)
    ap.add_argument("--formats", default=",".join(FORMATS))
    args = ap.parse_args()
    config = SimConfig(customers=args.customers, days=args.days, warmup_days=args.warmup_days, seed=1)
    rows = [measure(config, None)] + [measure(config, f) for f in args.formats.split(",") if f]
    print(json.dumps({"customers": args.customers, "days": args.days, "warmup_days": args.warmup_days,
                      "scenarios": "all", "results": rows}, indent=2))


if __name__ == "__main__":
    main()
