"""Reading incidents: Contract 5 objects, their events, alerts and history.

`list_incidents` and `get_incident` return exactly what `breachwatch
incidents --json` prints and the API serves; `incident_event_ids` is what
scope and the drill read to know which events an incident holds. The
summary, evidence and entity lists are written here, at read time, from the
incident's alerts and the running blast-radius tables, so they are always
current and detection never spends time on prose.
"""
from __future__ import annotations

from typing import Any, Iterable

import duckdb
import orjson

from breachwatch.incidents import render
from breachwatch.incidents.alerts import _rank
from breachwatch.incidents.merge import CONTRACT
from breachwatch.incidents.render import iso

STATUSES = ("open", "acknowledged", "resolved", "false_positive")
SEVERITIES = ("low", "medium", "high", "critical")
_COLS = ("incident_id", "severity", "status", "first_seen", "last_seen", "detected_at", "aware_at", "detectors",
         "subjects", "events")
ENTITY_LIMIT = 200
SAMPLES = 20


def _contract(con: duckdb.DuckDBPyConnection, row: tuple) -> dict[str, Any]:
    d = dict(zip(_COLS, row))
    inc = d["incident_id"]
    alerts = _alerts(con, inc)
    stats = _stats(con, inc, d)
    fields = [r[0] for r in con.execute("SELECT field FROM incident_fields WHERE incident_id = ? ORDER BY field",
                                        [inc]).fetchall()]
    lead = min(alerts, key=lambda a: (-_rank(a["severity"]), a["detected_at"])) if alerts else None
    in_order = sorted(alerts, key=lambda a: a["detected_at"])
    evidence = [a["evidence"] for a in in_order] + [render.stats_line(stats, fields)]
    # Each alert's samples in the order it raised them, earliest alert first, each event once.
    samples = list(dict.fromkeys(s for a in in_order for s in (a["sample_event_ids"] or [])))
    return {
        "id": inc, "severity": d["severity"], "status": d["status"],
        "first_seen": iso(d["first_seen"]), "last_seen": iso(d["last_seen"]), "detected_at": iso(d["detected_at"]),
        "aware_at": iso(d["aware_at"]), "detectors": list(d["detectors"] or []),
        "entities": _entities(con, inc),
        "subjects": int(d["subjects"]), "fields": fields,
        "summary": render.summary(lead, stats, d["first_seen"]) if lead else "",
        "evidence": evidence, "sample_event_ids": samples[:SAMPLES],
        "events": int(d["events"]),
    }


def _alerts(con: duckdb.DuckDBPyConnection, inc: str) -> list[dict[str, Any]]:
    cols = ["alert_id", "detector", "rule", "severity", "etype", "entity", "first_seen", "detected_at", "last_seen",
            "metrics", "evidence", "sample_event_ids"]
    out = []
    for r in con.execute(f"SELECT {', '.join(cols)} FROM alerts WHERE incident_id = ? AND status = 'raised'",
                         [inc]).fetchall():
        a = dict(zip(cols, r))
        a["metrics"] = orjson.loads(a["metrics"]) if a["metrics"] else {}
        out.append(a)
    return out


def _stats(con: duckdb.DuckDBPyConnection, inc: str, d: dict[str, Any]) -> dict[str, int]:
    counts = dict(con.execute("SELECT etype, count(*) FROM incident_entities WHERE incident_id = ? AND NOT lead "
                              "GROUP BY etype", [inc]).fetchall())
    return {"subjects": int(d["subjects"]), "events": int(d["events"]), "principals": counts.get("principal", 0),
            "tokens": counts.get("token", 0), "ips": counts.get("ip", 0), "countries": counts.get("country", 0),
            "asns": counts.get("asn", 0), "fingerprints": counts.get("fingerprint", 0)}


def _entities(con: duckdb.DuckDBPyConnection, inc: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {v: [] for v in CONTRACT.values()}
    rows = con.execute(f"""SELECT etype, list(DISTINCT value ORDER BY value)[1:{ENTITY_LIMIT}] FROM incident_entities
                           WHERE incident_id = ? GROUP BY etype""", [inc]).fetchall()
    for etype, values in rows:
        key = CONTRACT.get(etype, "ips" if etype == "prefix" else None)
        if key:
            out[key] = sorted(set(out[key]) | set(values))
    return out


def list_incidents(con: duckdb.DuckDBPyConnection, *, statuses: Iterable[str] | None = None,
                   min_severity: str | None = None) -> list[dict[str, Any]]:
    """Incidents in Contract 5 shape, newest detection first."""
    where, params = ["TRUE"], []
    statuses = list(statuses or [])
    if statuses:
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise ValueError(f"--status {bad[0]}: unknown status. Fix: use one of {', '.join(STATUSES)}.")
        where.append(f"status IN ({', '.join('?' for _ in statuses)})")
        params += statuses
    if min_severity:
        if min_severity not in SEVERITIES:
            raise ValueError(f"--min-severity {min_severity}: unknown severity. Fix: use one of "
                             f"{', '.join(SEVERITIES)}.")
        where.append(f"severity IN ({', '.join(repr(s) for s in SEVERITIES[SEVERITIES.index(min_severity):])})")
    rows = con.execute(f"SELECT {', '.join(_COLS)} FROM incidents WHERE {' AND '.join(where)} "
                       "ORDER BY detected_at DESC, seq DESC", params).fetchall()
    return [_contract(con, r) for r in rows]


def get_incident(con: duckdb.DuckDBPyConnection, incident_id: str) -> dict[str, Any] | None:
    rows = con.execute(f"SELECT {', '.join(_COLS)} FROM incidents WHERE incident_id = ?", [incident_id]).fetchall()
    return _contract(con, rows[0]) if rows else None


def incident_event_ids(con: duckdb.DuckDBPyConnection, incident_id: str) -> list[str]:
    """Every event the incident holds, in time order."""
    return [r[0] for r in con.execute("SELECT event_id, min(time) FROM incident_events WHERE incident_id = ? "
                                      "GROUP BY event_id ORDER BY 2, 1", [incident_id]).fetchall()]


def incident_detail(con: duckdb.DuckDBPyConnection, incident_id: str) -> dict[str, Any] | None:
    """The Contract 5 object plus its alerts and lifecycle history (for `incidents ID`)."""
    inc = get_incident(con, incident_id)
    if inc is None:
        return None
    cols = ["alert_id", "detector", "rule", "severity", "status", "etype", "entity", "detected_at", "evidence"]
    inc["alerts"] = [dict(zip(cols, r)) | {"detected_at": iso(r[7])} for r in con.execute(
        f"SELECT {', '.join(cols)} FROM alerts WHERE incident_id = ? ORDER BY detected_at", [incident_id]).fetchall()]
    inc["history"] = [{"at": iso(at), "action": action, "actor": actor, "detail": detail} for at, action, actor, detail
                      in con.execute("SELECT at_time, action, actor, detail FROM incident_log WHERE incident_id = ? "
                                     "ORDER BY at_time", [incident_id]).fetchall()]
    return inc


def list_alerts(con: duckdb.DuckDBPyConnection, *, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Alerts, e.g. those that opened no incident (shadow, held, suppressed, finding), for review and tuning."""
    cols = ["alert_id", "detector", "rule", "severity", "status", "etype", "ptype", "entity", "first_seen",
            "detected_at", "last_seen", "evidence", "incident_id", "suppression_id", "held_reason"]
    where, params = "TRUE", []
    statuses = list(statuses or [])
    if statuses:
        where = f"status IN ({', '.join('?' for _ in statuses)})"
        params = statuses
    rows = con.execute(f"SELECT {', '.join(cols)} FROM alerts WHERE {where} ORDER BY detected_at", params).fetchall()
    out = []
    for r in rows:
        d = dict(zip(cols, r))
        for k in ("first_seen", "detected_at", "last_seen"):
            d[k] = iso(d[k])
        out.append(d)
    return out
