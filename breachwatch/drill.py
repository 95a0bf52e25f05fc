"""The drill (Contract 4): simulate, ingest, detect, scope, and score against the ground truth.

The simulator's events are replayed in event-time order into a fresh store in
micro-batches of `batch_s` seconds, as a live feed would deliver them; the
first `warmup_days` are stored first and learned from with a backfill. By
default the engine catches up as a live deployment running behind would, one
delivery of micro-batches per `engine.behaviour_max_lag` of event time;
`every_batch` stores and detects each micro-batch on its own (slower). Detection
times are event times, so both give the same results. Every detected incident is then scoped with all
its proposed expansion steps accepted, and each scenario is scored on when it
was caught, how many people it had exposed by then, and how exactly its
blast radius was found.

Scope precision for a scenario counts a manifest pair as right when the
malicious events of any scenario the same incidents contain exposed it: an
incident that holds two campaigns should scope both.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import pyarrow as pa

from breachwatch.contract.catalog import Catalog, load_catalog
from breachwatch.contract.event import ARROW_SCHEMA, FIELD_NAMES
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.replay import replay
from breachwatch.incidents.store import get_incident, list_incidents
from breachwatch.ingest.pipeline import ingest_paths, ingest_tables
from breachwatch.scope.expansion import propose_expansions
from breachwatch.scope.manifest import build_manifest
from breachwatch.simulate import SimConfig, simulate
from breachwatch.simulate.config import chooses_none
from breachwatch.store.db import arrow_views, connect


@dataclass(frozen=True)
class DrillOptions:
    customers: int = 100_000
    days: float = 3.0  # simulated days in all, warm-up included
    warmup_days: float = 1.0
    seed: int = 1
    scenarios: str = "all"
    rate_scale: float = 1.0
    batch_s: float = 60.0
    every_batch: bool = False
    issuance_log: bool = True
    background: tuple[str, ...] = ()
    db: str | None = None
    catalog: str | None = None
    # Benign surprises in the simulated traffic (not with --background): incidents they raise count as false.
    surprises: str = "none"

    def validate(self) -> None:
        if self.days <= self.warmup_days:
            raise ValueError(f"--days {self.days} must exceed --warmup-days {self.warmup_days}: the scenarios run "
                             "after the warm-up. Fix: e.g. --days 3 --warmup-days 1.")
        if self.batch_s <= 0:
            raise ValueError(f"--batch-s {self.batch_s}: must be positive. Fix: e.g. --batch-s 60.")
        if self.background and not chooses_none(self.surprises):
            raise ValueError(f"--surprises {self.surprises}: surprises are added to simulated traffic, and "
                             "--background replaces it with your logs. Fix: drop one of the two.")


def _sim_config(o: DrillOptions, benign: bool, start: str | None = None, days: float | None = None) -> SimConfig:
    kw: dict[str, Any] = {}
    if start:
        kw["start"] = start
    if benign:
        kw["surprises"] = o.surprises
    return SimConfig(customers=o.customers, days=days if days is not None else o.days - o.warmup_days,
                     warmup_days=o.warmup_days, seed=o.seed, scenarios=o.scenarios, rate_scale=o.rate_scale,
                     issuance_log=o.issuance_log, benign=benign, catalog=o.catalog, **kw)


def _ordered_tables(con: duckdb.DuckDBPyConnection, rows: int = 65_536) -> Iterator[pa.Table]:
    cols = ", ".join(f'"{c}"' for c in FIELD_NAMES)
    reader = con.sql(f"SELECT {cols} FROM events ORDER BY time, event_id").to_arrow_reader(rows)
    for batch in reader:
        yield pa.Table.from_batches([batch]).cast(ARROW_SCHEMA)


def _with_background(o: DrillOptions, work: Path) -> tuple[Iterator[pa.Table], dict[str, Any], datetime]:
    """The user's recorded logs with the scenarios injected: both validated into a staging store, then
    replayed together in time order. The scenarios start after `warmup_days` of the recorded period."""
    staging = str(work / "background.duckdb")
    scon = connect(staging)
    ingest_paths(scon, staging, list(o.background), catalog=load_catalog(o.catalog))
    lo, hi = scon.execute("SELECT min(time), max(time) FROM events").fetchall()[0]
    if lo is None:
        raise ValueError(f"--background {' '.join(o.background)}: no valid events in it. Fix: check the files "
                         "with 'breachwatch ingest' first.")
    start = lo.replace(minute=0, second=0, microsecond=0)
    span = (hi - start).total_seconds() / 86400
    if span <= o.warmup_days:
        raise ValueError(f"--background covers {span:.2f} days, not more than --warmup-days {o.warmup_days}. "
                         "Fix: give more recorded history or a shorter --warmup-days.")
    sim = simulate(_sim_config(o, benign=False, start=start.strftime("%Y-%m-%dT%H:00:00Z"),
                               days=span - o.warmup_days))
    ingest_tables(scon, sim.iter_batches(), "drill-scenarios", db_path=staging)
    truth = sim.truth()
    warm = datetime.fromtimestamp(start.replace(tzinfo=timezone.utc).timestamp() + o.warmup_days * 86400,
                                  timezone.utc).replace(tzinfo=None)

    def tables() -> Iterator[pa.Table]:
        try:
            yield from _ordered_tables(scon)
        finally:
            scon.close()
    return tables(), truth, warm


def _pairs(truth_scenario: dict[str, Any]) -> set[tuple[str, str]]:
    return {(s, f) for s, fields in truth_scenario.get("exposed", {}).items() for f in fields}


def run_drill(o: DrillOptions, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the drill and return Contract 4's JSON object."""
    o.validate()
    say = progress or (lambda msg: None)
    work = Path(tempfile.mkdtemp(prefix="breachwatch-drill-"))
    db = o.db or str(work / "drill.duckdb")
    catalog: Catalog = load_catalog(o.catalog)
    cfg = load_detect_config(catalog)
    try:
        if o.background:
            say("injecting the scenarios into the recorded logs ...")
            tables, truth, warm = _with_background(o, work)
        else:
            sim = simulate(_sim_config(o, benign=True))
            warm = datetime.fromtimestamp(sim.config.start_us / 1e6 + o.warmup_days * 86400,
                                          timezone.utc).replace(tzinfo=None)
            tables, truth = sim.iter_batches(), None
        con = connect(db)
        try:
            say(f"replaying events in {o.batch_s:g} s micro-batches, detecting "
                + ("after each ..." if o.every_batch else "as a live deployment catching up would ..."))
            stats = replay(con, db, tables, cfg, warmup_until=warm, batch_s=o.batch_s, source="drill",
                           pace="always" if o.every_batch else "auto")
            if truth is None:
                truth = sim.truth()
            say("scoring detection against the ground truth ...")
            scored = score_detection(con, truth)
            say("scoping every incident with all proposed expansions accepted ...")
            manifests = _scope_all(con, catalog)
        finally:
            con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the default store is temporary, never the user's
    by_name = {s["name"]: s for s in truth["scenarios"]}
    scenarios = []
    for row in scored["scenarios"]:
        incs = row.get("incidents") or []
        found: set[tuple[str, str]] = set().union(*(manifests.get(i, set()) for i in incs)) if incs else set()
        mine = _pairs(by_name[row["name"]])
        matched = {s["name"] for s in scored["scenarios"] if set(s.get("incidents") or []) & set(incs)}
        right = set().union(*(_pairs(by_name[n]) for n in matched)) if matched else set()
        detected = bool(row["detected"])
        scenarios.append({
            "name": row["name"],
            "detected": detected,
            "time_to_detect_s": row["time_to_detect_s"],
            "subjects_exposed_before_detection": row["subjects_exposed_before_detection"],
            "subjects_exposed_total": row["subjects_exposed_total"],
            "scope_recall": round(len(found & mine) / len(mine), 6) if detected and mine else None,
            "scope_precision": round(len(found & right) / len(found), 6) if detected and found else None,
            "incidents": incs,
        })
    return {
        "scenarios": scenarios,
        "false_positive_incidents": scored["false_positive_incidents"],
        "false_positive_summaries": scored.get("false_positive_summaries", []),
        "benign_days": round(o.days - o.warmup_days, 6),
        "events": stats.events,
        "events_per_s": round(stats.events_per_s, 1),
        "options": {"customers": o.customers, "days": o.days, "warmup_days": o.warmup_days, "seed": o.seed,
                    "scenarios": o.scenarios, "rate_scale": o.rate_scale, "batch_s": o.batch_s,
                    "every_batch": o.every_batch,
                    "issuance_log": o.issuance_log, "background": list(o.background),
                    **({"surprises": o.surprises} if not chooses_none(o.surprises) else {})},
    }


def score_detection(con: duckdb.DuckDBPyConnection, truth: dict[str, Any]) -> dict[str, Any]:
    """When each scenario was caught, without hindsight, and which incidents hold none of them.

    A scenario is detected at the earliest moment an alert that entered an incident
    held one of its malicious events: the later of the alert's detection time and
    that event's time (an alert raised earlier for something else only covers the
    campaign once the campaign's event has happened). People exposed before
    detection count members and non-members alike, from the malicious events up to
    that moment.
    """
    names, ids = [], []
    for sc in truth["scenarios"]:
        for i in sc.get("malicious_event_ids") or []:
            names.append(sc["name"])
            ids.append(i)
    with arrow_views(con, _truth_in=pa.table({"scenario": pa.array(names, pa.string()),
                                              "event_id": pa.array(ids, pa.string())})):
        con.execute("CREATE OR REPLACE TEMP TABLE _truth AS SELECT * FROM _truth_in")
    con.execute("""CREATE OR REPLACE TEMP TABLE _truth_ev AS
        SELECT t.scenario, e.event_id, e.time,
               list_distinct(coalesce(e.subject_ids, []) || coalesce(map_keys(e.subject_fields), [])) AS people
        FROM _truth t JOIN events e USING (event_id)""")
    caught = {s: (at, incs) for s, at, incs in con.execute("""
        SELECT t.scenario, min(greatest(a.detected_at, ae.time)), list(DISTINCT a.incident_id ORDER BY a.incident_id)
        FROM alert_events ae JOIN alerts a USING (alert_id) JOIN _truth t USING (event_id)
        WHERE a.incident_id IS NOT NULL GROUP BY 1""").fetchall()}
    rows = []
    for sc in truth["scenarios"]:
        name = sc["name"]
        first = con.execute("SELECT min(time) FROM _truth_ev WHERE scenario = ?", [name]).fetchall()[0][0]
        total = int(sc.get("subjects_exposed", 0))
        hit = caught.get(name)
        row: dict[str, Any] = {"name": name, "detected": hit is not None, "time_to_detect_s": None,
                               "subjects_exposed_before_detection": total, "subjects_exposed_total": total,
                               "incidents": hit[1] if hit else []}
        if hit is not None and first is not None:
            row["time_to_detect_s"] = round((hit[0] - first).total_seconds(), 3)
            row["subjects_exposed_before_detection"] = con.execute(
                "SELECT count(DISTINCT p) FROM (SELECT unnest(people) AS p FROM _truth_ev "
                "WHERE scenario = ? AND time <= ?)", [name, hit[0]]).fetchall()[0][0]
        rows.append(row)
    fp = [r[0] for r in con.execute("""SELECT incident_id FROM incidents i WHERE NOT EXISTS (
        SELECT 1 FROM incident_events ie JOIN _truth t USING (event_id) WHERE ie.incident_id = i.incident_id)
        ORDER BY detected_at""").fetchall()]
    summaries = [f"{inc['id']} {inc['detected_at']} {inc['summary']}" for inc in map(lambda x: get_incident(con, x), fp)
                 if inc]
    return {"scenarios": rows, "false_positive_incidents": len(fp), "false_positive_summaries": summaries}


def _scope_all(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for inc in list_incidents(con):
        steps = propose_expansions(con, inc, catalog=catalog)
        m = build_manifest(con, inc, steps, catalog=catalog)
        out[inc["id"]] = m.pairs()
        m.release()
    return out
