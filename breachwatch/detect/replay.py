"""Replay recorded or simulated events through the store and the engine in event-time order.

History before `warmup_until` is stored in large batches and learned from
with `--backfill`; the rest arrives in micro-batches of `batch_s` seconds of
event time, each stored and then detected, as a live feed would. Detection
times are event times, so they do not depend on `batch_s`.

`score` compares the incidents with ground truth: for each scenario, the
earliest detection among incidents holding any of its malicious events, and
how many people its malicious events had exposed by then.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.contract.event import ARROW_SCHEMA
from breachwatch.detect.config import DetectConfig
from breachwatch.detect.engine import DetectResult, run_detect
from breachwatch.incidents.store import get_incident
from breachwatch.store.chain import QUARANTINE_SCHEMA, ChainWriter
from breachwatch.store.db import arrow_views

_NO_REJECTS = pa.Table.from_arrays([pa.array([], type=f.type) for f in QUARANTINE_SCHEMA], schema=QUARANTINE_SCHEMA)


@dataclass
class ReplayStats:
    events: int = 0
    batches: int = 0
    store_s: float = 0.0
    detect_s: float = 0.0
    results: list[DetectResult] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        spent = self.store_s + self.detect_s
        return self.events / spent if spent else 0.0


class _Store:
    def __init__(self, con: duckdb.DuckDBPyConnection, db_path: str, source: str) -> None:
        self.writer = ChainWriter(con, db_path)
        self.source = source
        self.pos = 0

    def put(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        table = table.select(list(ARROW_SCHEMA.names)).cast(ARROW_SCHEMA)
        n = table.num_rows
        staged = table.append_column("_src", pa.array([self.source] * n, pa.string())).append_column(
            "_pos", pa.array(np.arange(self.pos + 1, self.pos + n + 1), pa.int64()))
        self.pos += n
        with arrow_views(self.writer.con, _replay_in=staged, _replay_rejects=_NO_REJECTS):
            self.writer.commit("_replay_in", "_replay_rejects", self.source)


def _time_us(table: pa.Table) -> np.ndarray:
    return pc.cast(table.column("time"), pa.int64()).to_numpy(zero_copy_only=False)


def replay(con: duckdb.DuckDBPyConnection, db_path: str, tables: Iterable[pa.Table], cfg: DetectConfig, *,
           warmup_until: datetime | None, batch_s: float = 60.0, source: str = "replay",
           notify: dict[str, Any] | None = None, pace: str = "auto",
           on_batch: Callable[[DetectResult], None] | None = None) -> ReplayStats:
    """Store and detect `tables` (time-ordered, Contract 1 Arrow) as a live deployment would.

    Events arrive in micro-batches of `batch_s` seconds of event time. With `pace="always"` each
    micro-batch is stored (one ingest batch) and detected on its own. With "auto" the replay behaves
    like a live feed running faster than real time: by the time the engine wakes up, several
    micro-batches have arrived, so they are stored and detected together, one delivery per
    `engine.behaviour_max_lag` of event time (the longest the engine lets events wait while catching
    up). Detection times are event times either way; only the number of store commits and engine
    passes changes (tests/detect proves the detection times equal).
    """
    if pace not in ("always", "auto"):
        raise ValueError(f"pace={pace!r}: use 'always' or 'auto'.")
    st = ReplayStats()
    store = _Store(con, db_path, source)
    warm_us = None if warmup_until is None else int((warmup_until - datetime(1970, 1, 1)).total_seconds() * 1e6)
    step_us = int(batch_s * 1e6)
    deliver_us = step_us if pace == "always" else max(step_us, int(cfg.engine["behaviour_max_lag"] * 1e6))
    pending: list[pa.Table] = []
    edge: int | None = None
    warm_done = warm_us is None

    def timed_detect(**kw: Any) -> DetectResult:
        t0 = time.perf_counter()
        res = run_detect(con, cfg, notify=notify, **kw)
        st.detect_s += time.perf_counter() - t0
        st.results.append(res)
        return res

    def flush(parts: list[pa.Table]) -> None:
        if not parts:
            return
        t0 = time.perf_counter()
        store.put(pa.concat_tables(parts) if len(parts) > 1 else parts[0])
        st.store_s += time.perf_counter() - t0
        st.events += sum(p.num_rows for p in parts)
        res = timed_detect(pace="always")
        st.batches += 1
        if on_batch:
            on_batch(res)

    for table in tables:
        if table.num_rows == 0:
            continue
        t = _time_us(table)
        if not warm_done:
            k = int(np.searchsorted(t, warm_us, side="left"))
            if k:
                t0 = time.perf_counter()
                store.put(table.slice(0, k))
                st.store_s += time.perf_counter() - t0
                st.events += k
            if k == table.num_rows:
                continue
            timed_detect(backfill=True)
            warm_done = True
            table, t = table.slice(k), t[k:]
        while table.num_rows:
            if edge is None:
                # A delivery ends on a micro-batch edge at least `deliver_us` after its first event.
                edge = -(-(int(t[0]) + deliver_us) // step_us) * step_us if deliver_us > step_us else \
                    (int(t[0]) // step_us + 1) * step_us
            k = int(np.searchsorted(t, edge, side="left"))
            if k:
                pending.append(table.slice(0, k))
            if k == table.num_rows:
                break
            flush(pending)
            pending, edge = [], None
            table, t = table.slice(k), t[k:]
    if not warm_done:
        timed_detect(backfill=True)
    flush(pending)
    # Whatever the detectors have not yet taken in, they take now.
    timed_detect(pace="always")
    return st


def score(con: duckdb.DuckDBPyConnection, truth: dict[str, Any]) -> dict[str, Any]:
    """Per scenario (Contract 4 names): detected, time_to_detect_s, subjects_exposed_before_detection; and
    the incidents that hold no malicious event at all (false positives)."""
    con.execute("CREATE OR REPLACE TEMP TABLE _truth (scenario VARCHAR, event_id VARCHAR)")
    for s in truth["scenarios"]:
        ids = s.get("malicious_event_ids") or []
        if ids:
            with arrow_views(con, _truth_in=pa.table({"event_id": pa.array(ids, pa.string())})):
                con.execute("INSERT INTO _truth SELECT ?, event_id FROM _truth_in", [s["name"]])
    con.execute("""CREATE OR REPLACE TEMP TABLE _truth_ev AS
        SELECT t.scenario, e.event_id, e.time, e.subject_ids FROM _truth t JOIN events e ON e.event_id = t.event_id""")
    # Caught when an alert that entered an incident holds one of its events: at the later of the
    # alert's decision and that event (an alert raised for something else covers it only from then).
    matched = con.execute("""SELECT t.scenario, min(greatest(a.detected_at, e.time)), list(DISTINCT a.incident_id)
        FROM alert_events e JOIN alerts a ON a.alert_id = e.alert_id JOIN _truth t ON t.event_id = e.event_id
        WHERE a.incident_id IS NOT NULL GROUP BY t.scenario""").fetchall()
    by = {s: (d, ids) for s, d, ids in matched}
    out = []
    for s in truth["scenarios"]:
        name = s["name"]
        first = con.execute("SELECT min(time) FROM _truth_ev WHERE scenario = ?", [name]).fetchall()[0][0]
        total = con.execute("SELECT count(DISTINCT x) FROM (SELECT unnest(subject_ids) AS x FROM _truth_ev "
                            "WHERE scenario = ?)", [name]).fetchall()[0][0]
        det = by.get(name)
        row: dict[str, Any] = {"name": name, "detected": det is not None, "subjects_exposed_total": total,
                               "time_to_detect_s": None, "subjects_exposed_before_detection": total,
                               "incidents": det[1] if det else []}
        if det is not None and first is not None:
            row["time_to_detect_s"] = (det[0] - first).total_seconds()
            row["subjects_exposed_before_detection"] = con.execute(
                "SELECT count(DISTINCT x) FROM (SELECT unnest(subject_ids) AS x FROM _truth_ev "
                "WHERE scenario = ? AND time <= ?)", [name, det[0]]).fetchall()[0][0]
        out.append(row)
    fp_ids = [r[0] for r in con.execute("""SELECT incident_id FROM incidents i WHERE NOT EXISTS (
        SELECT 1 FROM incident_events ie JOIN _truth t ON t.event_id = ie.event_id WHERE ie.incident_id = i.incident_id)
        ORDER BY detected_at""").fetchall()]
    fps = [f"{i['id']} {i['detected_at']} {i['summary']}" for i in (get_incident(con, x) for x in fp_ids) if i]
    return {"scenarios": out, "false_positive_incidents": len(fp_ids), "false_positive_summaries": fps}



