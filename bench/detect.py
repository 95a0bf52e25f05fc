"""Detection benchmarks and the drill bars, side by side with their ceiling.

    .venv/bin/python bench/detect.py throughput --events 10000000 [--statements 20]
    .venv/bin/python bench/detect.py latency [--rounds 10] [--refresh 60] [--interval 0.5]
    .venv/bin/python bench/detect.py bars --seeds 1,2,3 [--customers 100000] [--rate-scale 0.1] [--no-issuance-log]

throughput: simulated benign events; one day of history stored and learned with --backfill, the rest
            stored, then one `detect` over all of it (the engine, with its state tables,
            watermarks and incidents), and the same detector queries run bare on DuckDB over the
            same new events (no state, no bookkeeping): the ceiling.
latency:    `detect --follow` semantics in a background thread; a forged-token read and a canary
            read are stored among ordinary traffic; wall time from the commit of their batch to
            their alert. `--refresh S` relearns the baselines every S seconds of event time
            (a round is 5 s), so the rounds include the daily learning pass and the model refit
            that a real day's boundary brings.
bars:       the default drill's checks (not a test): simulate, replay in 60 s micro-batches after
            a backfilled warm-up, and score detection against the ground truth per scenario.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from breachwatch.contract.catalog import load_catalog
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.engine import run_detect
from breachwatch.detect.replay import _Store, replay, score
from breachwatch.simulate.config import SimConfig
from breachwatch.simulate.simulation import simulate
from breachwatch.store.db import connect

BARE = {
    "forged: accesses anti-join issuance": """
        SELECT count(*) FROM events a WHERE a.kind = 'access' AND a.token_id IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM events i WHERE i.kind = 'token_issued' AND i.token_id = a.token_id)""",
    "canary: subjects in the canary list": """
        SELECT count(*) FROM events WHERE kind = 'access' AND list_has_any(subject_ids, {canaries})""",
    "enumeration: first touch per (entity, subject)": """
        SELECT count(*) FROM (SELECT ek, s, min(time) FROM (
            SELECT unnest([hash('ip', src_ip), hash('asn', src_asn), hash('country', src_country),
                           hash('fp', client_fingerprint), hash('ua', user_agent), hash('key', key_id),
                           hash('principal', principal_id), hash('prefix', regexp_extract(src_ip, '^(\\d+\\.\\d+\\.\\d+)\\.', 1))]) AS ek,
                   unnest(subject_ids) AS s, time FROM events WHERE kind = 'access' AND subject_ids IS NOT NULL)
            GROUP BY ek, s)""",
    "enumeration: per-event sliding 1 h counts": """
        SELECT max(c) FROM (SELECT count(*) OVER (PARTITION BY src_ip ORDER BY time
                                                RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND CURRENT ROW) AS c
                            FROM events WHERE kind = 'access')""",
    "novel_source: first (principal, source) pairs": """
        SELECT count(*) FROM (SELECT principal_id, src_country, src_asn, client_fingerprint, min(time)
                              FROM events WHERE kind = 'access' AND principal_id IS NOT NULL GROUP BY ALL)""",
    "volume: per entity and hour": """
        SELECT count(*) FROM (SELECT src_ip, time_bucket(INTERVAL 1 HOUR, time), count(*), sum(bytes_out)
                              FROM events WHERE kind = 'access' GROUP BY ALL)""",
}


class _TimedConnection:
    """The store's connection with the wall time of each `execute` summed per statement (whitespace
    folded, first 160 characters): where a detect run's time goes, statement by statement."""

    def __init__(self, con, seconds: dict | None = None, calls: dict | None = None) -> None:
        self._con, self.seconds, self.calls = con, {} if seconds is None else seconds, {} if calls is None else calls

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def execute(self, query, *args, **kwargs):
        key = " ".join(str(query).split())[:160]
        t0 = time.perf_counter()
        try:
            return self._con.execute(query, *args, **kwargs)
        finally:
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0
            self.calls[key] = self.calls.get(key, 0) + 1

    def cursor(self):
        return _TimedConnection(self._con.cursor(), self.seconds, self.calls)

    def top(self, k: int) -> list[dict]:
        rows = sorted(self.seconds.items(), key=lambda kv: -kv[1])[:k]
        return [{"s": round(v, 2), "calls": self.calls[q], "statement": q} for q, v in rows]


def _sim_tables(customers: int, days: float, seed: int, **kw):
    sim = simulate(SimConfig(customers=customers, days=days, warmup_days=1, seed=seed, **kw))
    return sim, list(sim.iter_batches())


def throughput(args: argparse.Namespace) -> dict:
    per_day = 380_000 * args.customers / 100_000      # what the simulator produces per benign day, roughly
    days = max(1.0, args.events / per_day - 1)
    sim = simulate(SimConfig(customers=args.customers, days=days, warmup_days=1, seed=1, scenarios="none"))
    work = Path(tempfile.mkdtemp(prefix="bw-bench-"))
    try:
        path = str(work / "bench.duckdb")
        con = connect(path)
        cfg = load_detect_config(load_catalog(None))
        store = _Store(con, path, "bench")
        # Streamed from the simulator in its own chunks (memory stays bounded at any --events): the
        # first day is history, stored and learned with --backfill; the rest is stored for one detect.
        n = warm = 0
        edge_us = None
        stored = backfill_s = 0.0
        since_us = None
        for table in sim.iter_batches():
            table = table.slice(0, max(0, args.events - n))
            if not table.num_rows:
                break
            t_us = table.column("time").cast(pa.int64()).to_numpy()
            if edge_us is None:
                edge_us = int(t_us[0]) + int(86_400e6)
            k = int(np.searchsorted(t_us, edge_us)) if since_us is None else 0
            t0 = time.perf_counter()
            if k:
                store.put(table.slice(0, k))
                warm += k
            stored += time.perf_counter() - t0
            if k < table.num_rows:
                if since_us is None:
                    since_us = int(t_us[k])
                    t0 = time.perf_counter()
                    run_detect(con, cfg, backfill=True)
                    backfill_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                store.put(table.slice(k))
                stored += time.perf_counter() - t0
            n += table.num_rows
        if since_us is None:
            raise SystemExit(f"--events {args.events}: fewer than one day of history; raise --events.")
        timed = _TimedConnection(con) if args.statements else None
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_detect(timed or con, cfg)
        engine_s = time.perf_counter() - t0
        # CPU time of the whole process (DuckDB's threads included): steadier than wall time on a shared machine.
        engine_cpu_s = time.process_time() - c0
        canaries = "[" + ", ".join(f"'{c}'" for c in sorted(cfg.canaries)) + "]"
        # A view cannot take a prepared parameter: the boundary goes in as a literal.
        since = datetime.utcfromtimestamp(since_us / 1e6).isoformat(sep=" ")
        con.execute(f"CREATE OR REPLACE TEMP VIEW new_events AS SELECT * FROM events WHERE time >= TIMESTAMP '{since}'")
        bare = {}
        for name, sql in BARE.items():
            t0 = time.perf_counter()
            con.execute(sql.replace("FROM events", "FROM new_events").format(canaries=canaries)).fetchall()
            bare[name] = round(time.perf_counter() - t0, 2)
        bare_s = sum(bare.values())
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    new = n - warm
    return {"events": n, "history_events": warm, "new_events": new, "store_s": round(stored, 1),
            "backfill_s": round(backfill_s, 1), "backfill_events_per_s": round(warm / backfill_s),
            "detect_s": round(engine_s, 1), "detect_cpu_s": round(engine_cpu_s, 1),
            "detect_events_per_s": round(new / engine_s),
            "bare_s": round(bare_s, 1), "bare_events_per_s": round(new / bare_s),
            "detect_share_of_bare_rate": round(bare_s / engine_s, 2), "bare_queries_s": bare,
            "segments": res.segments, "incidents_opened": len(res.incidents_opened),
            "detect_timings_s": {k: round(v, 1) for k, v in sorted(res.timings.items(), key=lambda kv: -kv[1])},
            **({"statements": len(timed.calls), "statement_calls": sum(timed.calls.values()),
                "statements_s": round(sum(timed.seconds.values()), 1), "top_statements": timed.top(args.statements)}
               if timed else {})}


def latency(args: argparse.Namespace) -> dict:
    sim, tables = _sim_tables(args.customers, 0.25, 2, scenarios="none")
    table = pa.concat_tables(tables)
    t_us = table.column("time").cast(pa.int64()).to_numpy()
    cut = int(np.searchsorted(t_us, t_us[0] + int(5 * 3600e6)))
    work = Path(tempfile.mkdtemp(prefix="bw-lat-"))
    path = str(work / "lat.duckdb")
    con = connect(path)
    store = _Store(con, path, "history")
    store.put(table.slice(0, cut))
    cfg = load_detect_config(load_catalog(None))
    run_detect(con, cfg, backfill=True)
    if args.refresh:
        cfg.engine["baseline_refresh"] = float(args.refresh)
    canary = sorted(cfg.canaries)[0] if cfg.canaries else None
    stop = threading.Event()
    detector = con.cursor()

    def follow() -> None:  # what `detect --follow` does (--interval 0.2 by default; serve's loop ticks at 0.5)
        while not stop.is_set():
            run_detect(detector, cfg, pace="auto")
            stop.wait(args.interval)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    writer = con.cursor()
    feed = _Store(writer, path, "live")
    samples = {"forged_token": [], "canary_read": []}
    pos, step = cut, int(5e6)
    for k in range(args.rounds):
        end = int(np.searchsorted(t_us, t_us[pos] + step))
        chunk = table.slice(pos, end - pos)
        pos = end
        t = datetime.utcfromtimestamp(int(t_us[end - 1]) / 1e6)
        bad = _bad_events(chunk.schema, t, k, canary)
        committed = time.time()
        feed.put(pa.concat_tables([chunk, bad]))
        for name, eid in (("forged_token", f"lat-forged-{k}"), ("canary_read", f"lat-canary-{k}")):
            if name == "canary_read" and canary is None:
                continue
            samples[name].append(_wait_alert(writer, eid, committed))
    stop.set()
    thread.join(timeout=30)
    con.close()
    shutil.rmtree(work, ignore_errors=True)
    return {name: {"rounds": len(v), "median_s": round(float(np.median(v)), 3), "max_s": round(max(v), 3)}
            for name, v in samples.items() if v}


def _bad_events(schema: pa.Schema, t: datetime, k: int, canary: str | None) -> pa.Table:
    forged = {"event_id": f"lat-forged-{k}", "time": t, "kind": "access", "principal_id": f"{1000100 + k}",
              "principal_type": "customer", "token_id": f"minted-{k}", "key_id": "k-2019-07",
              "token_issued_at": t - timedelta(days=150), "token_expires_at": t + timedelta(days=215),
              "src_ip": f"159.203.7.{k % 200}", "src_country": "US", "src_asn": "AS14061",
              "endpoint": "GET /api/me/profile", "subject_ids": [f"{1000100 + k}"], "fields": ["name", "email"],
              "status": 200}
    rows = [forged]
    if canary:
        rows.append({"event_id": f"lat-canary-{k}", "time": t, "kind": "access", "principal_id": "emp-20001",
                     "principal_type": "employee", "src_ip": "10.12.0.3", "src_country": "KR",
                     "endpoint": "GET /admin/customers/{customerId}", "subject_ids": [canary],
                     "fields": ["name", "phone"], "status": 200, "reason_ref": "CS-1"})
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.Table.from_pydict(cols, schema=schema)


def _wait_alert(cur, event_id: str, committed: float, timeout: float = 30.0) -> float:
    while time.time() - committed < timeout:
        got = cur.execute("SELECT count(*) FROM alert_events WHERE event_id = ?", [event_id]).fetchall()[0][0]
        if got:
            return time.time() - committed
        time.sleep(0.02)
    return float("inf")


def bars(args: argparse.Namespace) -> dict:
    out = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        sim = simulate(SimConfig(customers=args.customers, days=args.days, warmup_days=1, seed=seed,
                                 rate_scale=args.rate_scale, issuance_log=not args.no_issuance_log))
        truth = sim.truth()
        warm = datetime.fromisoformat(truth["period"]["warmup_end"].rstrip("Z"))
        work = Path(tempfile.mkdtemp(prefix="bw-bars-"))
        path = str(work / "bars.duckdb")
        con = connect(path)
        t0 = time.perf_counter()
        st = replay(con, path, sim.iter_batches(), load_detect_config(load_catalog(None)), warmup_until=warm,
                    batch_s=args.batch_s)
        wall = time.perf_counter() - t0
        result = score(con, truth)
        con.close()
        shutil.rmtree(work, ignore_errors=True)
        out[f"seed {seed}"] = {
            "events": st.events, "replay_s": round(wall, 1), "store_s": round(st.store_s, 1),
            "detect_s": round(st.detect_s, 1), "events_per_s": round(st.events_per_s),
            "false_positive_incidents": result["false_positive_incidents"],
            "benign_days": args.days,
            "scenarios": {s["name"]: {k: s[k] for k in ("detected", "time_to_detect_s",
                                                        "subjects_exposed_before_detection", "subjects_exposed_total")}
                          for s in result["scenarios"]},
            "false_positives": result["false_positive_summaries"]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--events", type=int, default=10_000_000)
    t.add_argument("--customers", type=int, default=300_000)
    t.add_argument("--statements", type=int, default=0, metavar="K",
                   help="time every SQL statement of the detect run and list the K costliest")
    la = sub.add_parser("latency")
    la.add_argument("--customers", type=int, default=100_000)
    la.add_argument("--rounds", type=int, default=10)
    la.add_argument("--interval", type=float, default=0.2,
                    help="seconds between looks for new events (detect --follow's default; serve's is 0.5)")
    la.add_argument("--refresh", type=float, default=0.0,
                    help="relearn every this many seconds of event time (default: the config's 24 h)")
    b = sub.add_parser("bars")
    b.add_argument("--seeds", default="1")
    b.add_argument("--customers", type=int, default=100_000)
    b.add_argument("--days", type=float, default=2.0)
    b.add_argument("--rate-scale", type=float, default=1.0)
    b.add_argument("--batch-s", type=float, default=60.0)
    b.add_argument("--no-issuance-log", action="store_true")
    args = p.parse_args()
    result = {"throughput": throughput, "latency": latency, "bars": bars}[args.what](args)
    json.dump(result, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
