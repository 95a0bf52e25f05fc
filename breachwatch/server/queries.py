"""What the API and the dashboard show, as SQL over the store: charts' series and counts.

Each function reads committed data through the cursor it is given and returns
plain values, so the JSON API and the HTML pages show the same numbers.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb

from breachwatch.contract.catalog import Catalog

# Entity type -> the event column that holds it (Contract 1).
ENTITY_COLUMNS = {"principal": "principal_id", "token": "token_id", "key": "key_id", "ip": "src_ip",
                  "fingerprint": "client_fingerprint", "country": "src_country", "asn": "src_asn",
                  "user_agent": "user_agent"}
# Contract 5 entity list -> entity type
LIST_TYPES = {"principals": "principal", "tokens": "token", "keys": "key", "ips": "ip", "asns": "asn",
              "countries": "country", "fingerprints": "fingerprint", "user_agents": "user_agent"}
_NICE = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)


def iso(t: datetime | None) -> str | None:
    return t.isoformat() + "Z" if t is not None else None


def bucket_for(span_s: float, points: int = 120) -> int:
    """A round bucket size giving at most about `points` buckets over the span."""
    for b in _NICE:
        if span_s / b <= points:
            return b
    return _NICE[-1]


def _series(rows: list[tuple], names: list[str]) -> list[dict[str, Any]]:
    return [{"name": n, "points": [{"t": iso(r[0]), "n": float(r[i + 1] or 0)} for r in rows]}
            for i, n in enumerate(names)]


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary",
                       [name]).fetchall()[0][0] > 0


# -- incidents -------------------------------------------------------------------
def merged_into(con: duckdb.DuckDBPyConnection, incident_id: str) -> str | None:
    """The incident a folded incident is now part of (following later folds), or None if it never was.

    Detection folds incidents found to be one attack into one (incidents/merge.py); the one that stays
    records `<id> merged in: ...` in its history, so links to the folded id still lead somewhere.
    """
    seen = {incident_id}
    current, found = incident_id, None
    while True:
        row = con.execute("SELECT incident_id FROM incident_log WHERE action = 'merged' AND starts_with(detail, ?) "
                          "ORDER BY at_time DESC LIMIT 1", [f"{current} merged in"]).fetchone()
        if row is None or row[0] in seen:
            return found
        current = found = row[0]
        seen.add(current)


def incident_timeline(con: duckdb.DuckDBPyConnection, incident_id: str) -> dict[str, Any]:
    lo, hi = con.execute("SELECT min(time), max(time) FROM incident_events WHERE incident_id = ?",
                         [incident_id]).fetchall()[0]
    if lo is None:
        return {"incident": incident_id, "bucket_s": 60, "series": _series([], ["events", "subjects read"])}
    b = bucket_for((hi - lo).total_seconds())
    # Every bucket of the span, quiet ones as zero: a line drawn straight across a gap would show activity
    # that did not happen.
    rows = con.execute(f"""
        WITH ids AS (SELECT DISTINCT event_id FROM incident_events WHERE incident_id = $id),
        counts AS (
            SELECT time_bucket(INTERVAL '{b} seconds', e.time) AS t, count(*) AS n,
                   sum(len(coalesce(e.subject_ids, []::VARCHAR[]))) AS s
            FROM events e SEMI JOIN ids ON ids.event_id = e.event_id GROUP BY 1),
        grid AS (
            SELECT unnest(range(time_bucket(INTERVAL '{b} seconds', $lo::TIMESTAMP),
                                $hi::TIMESTAMP + INTERVAL '1 microsecond', INTERVAL '{b} seconds')) AS t)
        SELECT g.t, coalesce(c.n, 0), coalesce(c.s, 0) FROM grid g LEFT JOIN counts c USING (t)
        ORDER BY 1""", {"id": incident_id, "lo": lo, "hi": hi}).fetchall()
    return {"incident": incident_id, "bucket_s": b, "series": _series(rows, ["events", "subjects read"])}


def blast_radius(con: duckdb.DuckDBPyConnection, incident_id: str, catalog: Catalog) -> dict[str, Any]:
    """Distinct people per field in the incident's own events (scope widens it; see its manifest)."""
    from breachwatch.scope.exposures import build_exposures
    con.execute("""CREATE OR REPLACE TEMP TABLE _srv_inc_events AS
                   SELECT e.* FROM events e SEMI JOIN (SELECT event_id FROM incident_events WHERE incident_id = ?) i
                   ON i.event_id = e.event_id""", [incident_id])
    build_exposures(con, "_srv_inc_events", catalog, "_srv_inc_exposures")
    rows = con.execute("SELECT field, count(DISTINCT subject_id), count(*) FROM _srv_inc_exposures "
                       "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
    total = con.execute("SELECT count(DISTINCT subject_id) FROM _srv_inc_exposures").fetchall()[0][0]
    con.execute("DROP TABLE IF EXISTS _srv_inc_exposures")
    con.execute("DROP TABLE IF EXISTS _srv_inc_events")
    return {"incident": incident_id, "subjects": int(total),
            "by_field": [{"field": f, "subjects": int(s), "reads": int(n)} for f, s, n in rows]}


# -- entities --------------------------------------------------------------------
def entity_history(con: duckdb.DuckDBPyConnection, etype: str, value: str) -> dict[str, Any] | None:
    col = ENTITY_COLUMNS.get(etype)
    if col is None:
        raise ValueError(f"entity type '{etype}' is not known. Fix: use one of {', '.join(ENTITY_COLUMNS)}.")
    lo, hi, n, ptype = con.execute(f"""SELECT min(time), max(time), count(*), mode(coalesce(principal_type,
                                       'anonymous')) FROM events WHERE "{col}" = ?""", [value]).fetchall()[0]
    if not n:
        return None
    b = max(3600, bucket_for((hi - lo).total_seconds()))
    rows = con.execute(f"""
        SELECT time_bucket(INTERVAL '{b} seconds', time) AS t, count(*),
               sum(len(coalesce(subject_ids, []::VARCHAR[])))
        FROM events WHERE "{col}" = ? GROUP BY 1 ORDER BY 1""", [value]).fetchall()
    baseline, source = None, None
    if etype in ("principal", "key", "ip", "fingerprint", "country", "asn", "user_agent") and has_table(con, "baselines"):
        # the detectors' hourly subject-read level: the entity's own, else its peers'
        own = con.execute("SELECT max(value) FROM baselines WHERE scope = 'own' AND metric = 'vol_subject_reads' "
                          "AND slot = 300 AND ek = hash(?, ?, ?)", [etype, ptype, value]).fetchall()[0][0]
        if own is not None:
            baseline, source = float(own), "own"
        else:
            peer = con.execute("SELECT max(value) FROM baselines WHERE scope = 'peer' AND metric = "
                               "'vol_subject_reads' AND slot = 300 AND etype = ? AND ptype = ?",
                               [etype, ptype]).fetchall()[0][0]
            if peer is not None:
                baseline, source = float(peer), "peers"
    if baseline is not None and b != 3600:
        baseline *= b / 3600  # drawn against the chart's buckets
    list_key = {v: k for k, v in LIST_TYPES.items()}.get(etype)
    incidents = [r[0] for r in con.execute(
        "SELECT DISTINCT incident_id FROM incident_entities WHERE etype = ? AND value = ? ORDER BY 1",
        [etype, value]).fetchall()] if list_key and has_table(con, "incident_entities") else []
    return {"etype": etype, "value": value, "ptype": ptype, "bucket_s": b,
            "series": _series(rows, ["events", "subjects read"]), "baseline": baseline, "baseline_source": source,
            "first_seen": iso(lo), "last_seen": iso(hi), "events": int(n), "incidents": incidents}


# -- overview --------------------------------------------------------------------
def ingest_rate(con: duckdb.DuckDBPyConnection, minutes: int = 60) -> dict[str, Any]:
    since = datetime.utcnow() - timedelta(minutes=minutes)
    rows = con.execute("SELECT time_bucket(INTERVAL '1 minute', committed_at) AS t, sum(events) FROM batches "
                       "WHERE committed_at >= ? GROUP BY 1 ORDER BY 1", [since]).fetchall()
    total = sum(int(r[1] or 0) for r in rows)
    return {"minutes": minutes, "events": total, "per_s": round(total / (minutes * 60), 2),
            "series": _series(rows, ["events per minute"])}


def open_by_severity(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = dict(con.execute("SELECT severity, count(*) FROM incidents WHERE status IN ('open', 'acknowledged') "
                            "GROUP BY 1").fetchall()) if has_table(con, "incidents") else {}
    return {s: int(rows.get(s, 0)) for s in ("critical", "high", "medium", "low")}


def reads_by(con: duckdb.DuckDBPyConnection, column: str, days: int = 7, top: int = 8) -> dict[str, Any]:
    """Personal-data reads (subject records returned) per bucket over the last `days` of event time."""
    assert column in ("principal_type", "src_country")
    hi = con.execute("SELECT max(time) FROM events WHERE kind = 'access'").fetchall()[0][0]
    if hi is None:
        return {"bucket_s": 3600, "series": []}
    lo = hi - timedelta(days=days)
    b = bucket_for(days * 86400, 200)
    rows = con.execute(f"""
        SELECT time_bucket(INTERVAL '{b} seconds', time) AS t, coalesce({column}, 'unknown') AS g,
               sum(len(coalesce(subject_ids, []::VARCHAR[]))) AS n
        FROM events WHERE kind = 'access' AND time > ? AND subject_ids IS NOT NULL
        GROUP BY 1, 2 ORDER BY 1""", [lo]).fetchall()
    totals: dict[str, float] = {}
    for _, g, n in rows:
        totals[g] = totals.get(g, 0) + float(n or 0)
    keep = sorted(totals, key=lambda g: -totals[g])[:top]
    series = []
    for g in keep:
        series.append({"name": g, "points": [{"t": iso(t), "n": float(n or 0)} for t, gg, n in rows if gg == g]})
    other = [(t, n) for t, g, n in rows if g not in keep]
    if other:
        acc: dict[Any, float] = {}
        for t, n in other:
            acc[t] = acc.get(t, 0) + float(n or 0)
        series.append({"name": "other", "points": [{"t": iso(t), "n": n} for t, n in sorted(acc.items())]})
    return {"bucket_s": b, "series": series}


def store_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    ev, links = con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM batches)").fetchall()[0]
    return {"events": int(ev), "chain_links": int(links)}
