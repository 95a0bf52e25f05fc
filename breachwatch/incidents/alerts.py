"""From detector candidates to stored alerts: dedup, generations, shadow, held, suppressed.

A candidate whose pattern (detector + dedup key) already has a live alert
updates it: later evidence, more events. Otherwise a new alert (the next
generation of that pattern) is recorded with its status:
  finding     a hygiene fact, never an incident
  shadow      the detector runs in shadow mode: recorded, no incident
  held        waiting on an unhealthy feed (provenance)
  suppressed  a live suppression covers it
  raised      goes on to an incident
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import orjson

from breachwatch.detect.alert import CAND_EVENTS, AlertCandidate
from breachwatch.detect.config import DetectConfig
from breachwatch.incidents import suppression
from breachwatch.incidents.suppression import now_utc

# A pattern that fired without opening an incident (shadow, held, suppressed, finding)
# is one alert for this long after its last activity, not one per run.
REARM = timedelta(hours=24)


@dataclass
class AlertOutcome:
    new: list[str] = field(default_factory=list)          # alert ids recorded this run
    raised: list[str] = field(default_factory=list)       # new or promoted alerts that need an incident
    updated: list[str] = field(default_factory=list)      # live alerts with more activity
    by_status: dict[str, int] = field(default_factory=dict)


def _alert_id(detector: str, dedup: str, generation: int) -> str:
    return "a-" + hashlib.sha256(f"{detector}|{dedup}|{generation}".encode()).hexdigest()[:16]


def _latest(con: duckdb.DuckDBPyConnection, candidates: list[AlertCandidate]) -> dict[tuple[str, str], dict]:
    """The newest alert of each candidate's pattern, with its incident's state, in one query."""
    keys = sorted({(c.detector, c.dedup_key) for c in candidates})
    values = ", ".join("(?, ?)" for _ in keys)
    rows = con.execute(f"""
        SELECT a.detector, a.dedup_key, a.alert_id, a.generation, a.status, a.last_seen, a.severity, a.incident_id,
               i.status, i.last_seen
        FROM alerts a JOIN (VALUES {values}) k(detector, dedup_key)
          ON k.detector = a.detector AND k.dedup_key = a.dedup_key
        LEFT JOIN incidents i ON i.incident_id = a.incident_id
        QUALIFY row_number() OVER (PARTITION BY a.detector, a.dedup_key ORDER BY a.generation DESC) = 1""",
                       [x for k in keys for x in k]).fetchall()
    cols = ("alert_id", "generation", "status", "last_seen", "severity", "incident_id", "inc_status", "inc_last")
    return {(r[0], r[1]): dict(zip(cols, r[2:])) for r in rows}


def _is_live(a: dict, cand: AlertCandidate, gap: float) -> bool:
    """Does the candidate continue the pattern's newest alert?"""
    if a["incident_id"] is not None:
        # A pattern quiet for longer than merge_gap that starts again is a new alert, not more of the old.
        return a["inc_status"] in ("open", "acknowledged") and cand.first_seen <= max(
            a["inc_last"], a["last_seen"]) + timedelta(seconds=gap)
    return cand.detected_at <= a["last_seen"] + REARM


def reset_links(con: duckdb.DuckDBPyConnection) -> None:
    """`_run_links`: events linked to alerts in this segment (`stored` once already in alert_events)."""
    con.execute("CREATE OR REPLACE TEMP TABLE _run_links (alert_id VARCHAR, event_id VARCHAR, time TIMESTAMP, "
                "stored BOOLEAN)")


def store_links(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("INSERT INTO alert_events SELECT alert_id, event_id, time FROM _run_links WHERE NOT stored")


def record(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, candidates: list[AlertCandidate]) -> AlertOutcome:
    out = AlertOutcome()
    if not candidates:
        return out
    now = now_utc()
    gap = float(cfg.engine["merge_gap"])
    latest = _latest(con, candidates)
    live = suppression.LiveSuppressions(con)
    updates: dict[str, list] = {}
    mapping: list[tuple[str, str, str]] = []
    inserts: list[list] = []   # new alerts, stored together after the loop (nothing in it reads them back)
    tracks: list[list] = []
    for cand in sorted(candidates, key=lambda c: (c.detected_at, c.detector, c.dedup_key)):
        key = (cand.detector, cand.dedup_key)
        a = latest.get(key)
        if a is not None and _is_live(a, cand, gap):
            alert_id, was = a["alert_id"], a["status"]
            _update(cfg, cand, a, updates, out, live)
            if not cand.attach_on_update and was != "held":
                continue  # a crowd's alert keeps the events of its first crossing only
        else:
            generation = a["generation"] + 1 if a is not None else 1
            alert_id = _alert_id(cand.detector, cand.dedup_key, generation)
            status, sup = _status(cfg, cand, live)
            inserts.append([alert_id, cand.detector, cand.rule, cand.dedup_key, generation, cand.severity, status,
                            cand.etype, cand.ptype, cand.entity, cand.first_seen, cand.detected_at, cand.last_seen,
                            orjson.dumps(cand.metrics, default=str).decode(), cand.evidence_text(),
                            orjson.dumps(cand.entity_lists()).decode(), cand.links, [], sup, cand.held_reason, now,
                            now])
            latest[key] = {"alert_id": alert_id, "generation": generation, "status": status,
                           "last_seen": cand.last_seen, "severity": cand.severity, "incident_id": None,
                           "inc_status": None, "inc_last": None}
            out.new.append(alert_id)
            out.by_status[status] = out.by_status.get(status, 0) + 1
            if status == "raised":
                out.raised.append(alert_id)
            tracks += [[alert_id, ek] for ek in cand.track_eks]
        mapping.append((cand.detector, cand.dedup_key, alert_id))
    _insert_rows(con, "alerts", "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)", inserts)
    _insert_rows(con, "alert_tracks", "(?, ?::UBIGINT)", tracks)
    _apply_updates(con, updates, now)
    live.save_hits(con)
    con.execute("CREATE OR REPLACE TEMP TABLE _cand_map (detector VARCHAR, dedup_key VARCHAR, alert_id VARCHAR)")
    if mapping:
        con.execute(f"INSERT INTO _cand_map VALUES {', '.join('(?, ?, ?)' for _ in mapping)}",
                    [x for m in mapping for x in m])
    con.execute(f"""INSERT INTO _run_links
        SELECT DISTINCT m.alert_id, c.event_id, c.time, FALSE FROM {CAND_EVENTS} c
        JOIN (SELECT DISTINCT * FROM _cand_map) m ON m.detector = c.detector AND m.dedup_key = c.dedup_key""")
    _samples(con, cfg, out.new)
    return out


def _insert_rows(con: duckdb.DuckDBPyConnection, table: str, row: str, rows: list[list], chunk: int = 200) -> None:
    """Insert `rows` (each matching the VALUES template `row`) in a few statements rather than one each."""
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        con.execute(f"INSERT INTO {table} VALUES {', '.join(row for _ in part)}", [x for r in part for x in r])


def _status(cfg: DetectConfig, cand: AlertCandidate,
            live: suppression.LiveSuppressions) -> tuple[str, str | None]:
    """The new alert's status."""
    if cand.finding:
        return "finding", None
    if cfg.detectors[cand.detector]["mode"] == "shadow":
        return "shadow", None
    if cand.held_reason:
        return "held", None
    sup = live.match(cand.detector, cand.etype, cand.entity)
    if sup:
        return "suppressed", sup
    return "raised", None


def _update(cfg: DetectConfig, cand: AlertCandidate, a: dict, updates: dict[str, list], out: AlertOutcome,
            live: suppression.LiveSuppressions) -> None:
    """Fold a continuing candidate into its live alert (applied in one statement by _apply_updates)."""
    # A held alert is raised once its feed answers; a suppressed one once its suppression is lifted or expired.
    promote = (a["status"] == "held" and not cand.held_reason) or (
        a["status"] == "suppressed" and _status(cfg, cand, live)[0] == "raised")
    u = updates.get(a["alert_id"])
    severity = max(a["severity"], cand.severity, *(u[6:7] if u else []), key=_rank)
    metrics = orjson.dumps(cand.metrics, default=str).decode()
    if u is None:
        updates[a["alert_id"]] = [a["alert_id"], cand.first_seen, cand.last_seen, metrics, promote,
                                  cand.detected_at if promote else None,
                                  severity, cand.evidence_text() if promote else None]
    else:
        u[1], u[2], u[3], u[6] = min(u[1], cand.first_seen), max(u[2], cand.last_seen), metrics, severity
        if promote and not u[4]:
            u[4], u[5], u[7] = True, cand.detected_at, cand.evidence_text()
    if a["alert_id"] not in out.updated:
        out.updated.append(a["alert_id"])
    if promote and a["alert_id"] not in out.raised:
        out.raised.append(a["alert_id"])
        a["status"] = "raised"


def _apply_updates(con: duckdb.DuckDBPyConnection, updates: dict[str, list], now: datetime) -> None:
    if not updates:
        return
    values = ", ".join("(?, ?::TIMESTAMP, ?::TIMESTAMP, ?::JSON, ?::BOOLEAN, ?::TIMESTAMP, ?, ?)" for _ in updates)
    con.execute(f"""UPDATE alerts SET last_seen = greatest(alerts.last_seen, u.last_seen),
            first_seen = least(alerts.first_seen, u.first_seen), metrics = json_merge_patch(alerts.metrics, u.metrics),
            updated_at = ?, severity = u.severity,
            status = CASE WHEN u.promote THEN 'raised' ELSE alerts.status END,
            detected_at = CASE WHEN u.promote THEN u.detected_at ELSE alerts.detected_at END,
            held_reason = CASE WHEN u.promote THEN NULL ELSE alerts.held_reason END,
            suppression_id = CASE WHEN u.promote THEN NULL ELSE alerts.suppression_id END,
            evidence = CASE WHEN u.promote THEN u.evidence ELSE alerts.evidence END
        FROM (VALUES {values}) u(alert_id, first_seen, last_seen, metrics, promote, detected_at, severity, evidence)
        WHERE alerts.alert_id = u.alert_id""", [now, *[x for v in updates.values() for x in v]])


_RANKS = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def _rank(sev: str) -> int:
    return _RANKS.get(sev, 0)


def _samples(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, alert_ids: list[str]) -> None:
    """Keep the first events of each alert as its samples (the ones its decision used)."""
    if not alert_ids:
        return
    n = int(cfg.engine["sample_events"])
    con.execute(f"""UPDATE alerts SET sample_event_ids = s.ids FROM (
            SELECT alert_id, list(event_id ORDER BY time, event_id)[1:{n}] AS ids FROM _run_links
            WHERE alert_id IN ({", ".join("?" for _ in alert_ids)}) GROUP BY alert_id) s
        WHERE alerts.alert_id = s.alert_id AND len(coalesce(alerts.sample_event_ids, [])) < {n}""", alert_ids)


def track(con: duckdb.DuckDBPyConnection, cfg: DetectConfig) -> int:
    """Attach this segment's events of tracked entities to their live, raised alerts.

    Only while the incident is active: an entity quiet for longer than `merge_gap` stops
    feeding it (each attached event moves the incident's last_seen on).
    """
    return con.execute("""INSERT INTO _run_links
        SELECT DISTINCT t.alert_id, a.event_id, a.time, FALSE
        FROM alert_tracks t
        JOIN alerts al ON al.alert_id = t.alert_id AND al.status = 'raised'
        JOIN incidents i ON i.incident_id = al.incident_id AND i.status IN ('open', 'acknowledged')
        JOIN _ent e ON e.ek = t.ek
        JOIN _acc a ON a.seq = e.seq
        WHERE a.time >= al.first_seen AND a.time <= i.last_seen + to_seconds(?)
          AND NOT EXISTS (SELECT 1 FROM _run_links r WHERE r.alert_id = t.alert_id AND r.event_id = a.event_id)""",
                       [int(cfg.engine["merge_gap"])]).fetchall()[0][0]
