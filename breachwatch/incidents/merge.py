"""Alerts into incidents, and each incident's running blast radius.

Alerts that share an entity and overlap in time are one incident: a forged
token campaign, the IPs it came from and the fingerprint of its tool surface
as several alerts but are one attack. An alert joins an open incident when
their lead entities match (same kind of traffic), or they share at least two
tokens or IPs seen in one actor's events, and their times are within
`merge_gap` of each other.

Every segment folds the events newly linked to incidents into their people,
fields and entities (the running blast radius) and counts; severity rises
with the number of people touched (`escalate_subjects`), which is an
escalation the notifier reports.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import orjson
import pyarrow as pa

from breachwatch.detect.config import DetectConfig
from breachwatch.incidents.alerts import _rank
from breachwatch.incidents.suppression import now_utc
from breachwatch.store.db import arrow_views

# Event columns that become incident entities (the Contract 5 lists).
ENTITY_COLUMNS = {"principal": "principal_id", "token": "token_id", "key": "key_id", "ip": "src_ip",
                  "asn": "src_asn", "country": "src_country", "fingerprint": "client_fingerprint",
                  "user_agent": "user_agent"}
# Link alerts only when an alert is about them (lead to lead): shared by many unrelated people
# (a key, a network, a country, a client), or, for principals, possibly an impersonated victim
# rather than the actor (a forged token names its victim as principal).
BROAD = ("key", "asn", "country", "user_agent", "fingerprint", "prefix", "principal")
CONTRACT = {"principal": "principals", "token": "tokens", "key": "keys", "ip": "ips", "asn": "asns",
            "country": "countries", "fingerprint": "fingerprints", "user_agent": "user_agents"}
_SINGULAR = {v: k for k, v in CONTRACT.items()}


@dataclass
class MergeOutcome:
    opened: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    realerted: list[str] = field(default_factory=list)   # incidents whose alerts changed: recompute their header


def _next_id(con: duckdb.DuckDBPyConnection) -> tuple[str, int]:
    seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM incidents").fetchall()[0][0]
    return f"INC-{seq:06d}", seq


def assign(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, raised: list[str], out: MergeOutcome,
           fresh: set[str] | None = None) -> None:
    """Give each newly raised alert an incident: an overlapping open one, or a new one.

    `fresh` names alerts recorded in this run: their events are all in `_run_links` already, so
    only the others (promoted from held or suppressed) need their stored events read back.
    """
    if not raised:
        return
    gap = int(cfg.engine["merge_gap"])
    cols = "alert_id, detector, etype, ptype, entity, first_seen, last_seen, detected_at, entities, links"
    rows = {r[0]: r[1:] for r in con.execute(f"SELECT {cols} FROM alerts WHERE alert_id IN "
                                             f"({', '.join('?' for _ in raised)})", raised).fetchall()}
    plans = []
    for alert_id in raised:
        detector, etype, ptype, entity, first, last, detected, ents, linking = rows[alert_id]
        # Any alert may join an incident through one actor's principals, tokens and IPs; only a
        # focused alert's own entities become linkable for later alerts (see _absorb: linkable).
        plans.append((alert_id, detector, etype, ptype, entity, first, last, detected, linking,
                      _links(etype, entity, orjson.loads(ents) if ents else {})))
    # An alert can only match incident entities named by its links: read those rows once, for all the
    # alerts, instead of scanning every incident's entities per alert; rows added below go to both.
    wanted = sorted({pair for p in plans for pair in p[-1]})
    with arrow_views(con, _links_in=pa.table({"etype": pa.array([t for t, _ in wanted], pa.string()),
                                              "value": pa.array([v for _, v in wanted], pa.string())})):
        con.execute("CREATE OR REPLACE TEMP TABLE _ie_cand AS SELECT e.* FROM incident_entities e "
                    "SEMI JOIN _links_in l ON l.etype = e.etype AND l.value = e.value")
    for alert_id, detector, etype, ptype, entity, first, last, detected, linking, links in plans:
        # A crowd's window reaches back over unrelated activity: overlap counts from its crossing.
        inc = _find(con, links, ptype, first if linking else detected, last, gap)
        if inc is None:
            inc, seq = _next_id(con)
            now = now_utc()
            con.execute("INSERT INTO incidents VALUES (?, ?, 'low', 'open', ?, ?, ?, NULL, [], 0, 0, ?, ?)",
                        [inc, seq, first, last, detected, now, now])
            con.execute("INSERT INTO incident_log VALUES (?, ?, 'opened', 'breachwatch', ?)",
                        [inc, now, f"opened by {detector} alert {alert_id}"])
            out.opened.append(inc)
        elif inc not in out.opened and inc not in out.updated:
            out.updated.append(inc)
        if inc not in out.realerted:
            out.realerted.append(inc)
        con.execute("UPDATE alerts SET incident_id = ? WHERE alert_id = ?", [inc, alert_id])
        if etype and entity and not con.execute(
                "SELECT count(*) FROM _ie_cand WHERE incident_id = ? AND etype = ? AND value = ? AND lead "
                "AND ptype IS NOT DISTINCT FROM ?", [inc, etype, entity, ptype]).fetchall()[0][0]:
            for table in ("incident_entities", "_ie_cand"):
                con.execute(f"INSERT INTO {table} VALUES (?, ?, ?, TRUE, ?, TRUE)", [inc, etype, entity, ptype])
    # Events an alert gathered before it had an incident (e.g. while held) count for it too; one scan
    # of the stored links for all of them.
    earlier = [a for a in raised if fresh is None or a not in fresh]
    if earlier:
        con.execute(f"""INSERT INTO _run_links SELECT alert_id, event_id, time, TRUE FROM alert_events e
            WHERE alert_id IN ({", ".join("?" for _ in earlier)}) AND NOT EXISTS (
                SELECT 1 FROM _run_links r WHERE r.alert_id = e.alert_id AND r.event_id = e.event_id)""", earlier)


def _links(etype: str | None, entity: str | None, ents: dict[str, list[str]]) -> list[tuple[str, str]]:
    links = [(etype, entity)] if etype and entity else []
    for plural, values in ents.items():
        single = _SINGULAR.get(plural)
        if single and single not in BROAD:
            links += [(single, v) for v in values]
    return links


def _find(con: duckdb.DuckDBPyConnection, links: list[tuple[str, str]], ptype: str | None, first, last,
          gap: int) -> str | None:
    """The oldest open incident these links match (within `_ie_cand`, the entity rows they can match)."""
    if not links:
        return None
    values = ", ".join("(?, ?, ?)" for _ in links)
    # The first pair is the alert's own lead entity; the rest come from its (one actor's) events.
    params = [x for i, pair in enumerate(links) for x in (*pair, i == 0)]
    # A broad entity (a key, a country) links only lead to lead, for the same kind of traffic. Other
    # entities (IPs, tokens) link to those seen in the events of one actor, never to a crowd's, and
    # it takes two of them: one shared address can be a coincidence of proxy pools.
    rows = con.execute(f"""
        SELECT i.incident_id FROM incidents i
        JOIN _ie_cand e ON e.incident_id = i.incident_id
        JOIN (VALUES {values}) l(etype, value, is_lead) ON l.etype = e.etype AND l.value = e.value
        WHERE i.status IN ('open', 'acknowledged')
          AND i.first_seen <= ?::TIMESTAMP + INTERVAL {gap} SECOND
          AND i.last_seen >= ?::TIMESTAMP - INTERVAL {gap} SECOND
          AND CASE WHEN e.etype IN ({", ".join(f"'{b}'" for b in BROAD)})
                   THEN e.lead AND l.is_lead AND e.ptype IS NOT DISTINCT FROM ?
                   ELSE e.linkable END
        GROUP BY i.incident_id, i.seq
        HAVING bool_or(e.lead AND l.is_lead) OR count(DISTINCT (e.etype, e.value)) >= 2
        ORDER BY i.seq LIMIT 1""", [*params, last, first, ptype]).fetchall()
    return rows[0][0] if rows else None


def absorb_run(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, out: MergeOutcome) -> None:
    """Blast radius: fold this segment's newly linked events (`_run_links`) into their incidents."""
    n = con.execute("""CREATE OR REPLACE TEMP TABLE _inc_ev AS
        SELECT n.incident_id, n.linkable, s.time, s.subject_ids, s.fields, s.subject_fields,
               s.principal_id, s.token_id, s.key_id, s.src_ip, s.src_asn, s.src_country, s.client_fingerprint,
               s.user_agent
        FROM (SELECT a.incident_id, e.event_id, bool_or(a.links) AS linkable FROM _run_links e
              JOIN alerts a ON a.alert_id = e.alert_id WHERE a.incident_id IS NOT NULL GROUP BY ALL) n
        JOIN _seg s ON s.event_id = n.event_id""").fetchall()[0][0]
    # Links to events of earlier segments (an alert held, then raised; a token confirmed forged once the
    # issuance feed caught up) are read from the store.
    missing = con.execute("""SELECT count(*) FROM _run_links r JOIN alerts a ON a.alert_id = r.alert_id
        WHERE a.incident_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM _seg g WHERE g.event_id = r.event_id)""").fetchall()[0][0]
    if missing:
        n += con.execute("""INSERT INTO _inc_ev
        SELECT a.incident_id, bool_or(a.links), s.time, s.subject_ids, s.fields, s.subject_fields,
               s.principal_id, s.token_id, s.key_id, s.src_ip, s.src_asn, s.src_country, s.client_fingerprint,
               s.user_agent
        FROM _run_links r JOIN alerts a ON a.alert_id = r.alert_id AND a.incident_id IS NOT NULL
        JOIN events s ON s.event_id = r.event_id
        WHERE NOT EXISTS (SELECT 1 FROM _seg g WHERE g.event_id = r.event_id)
        GROUP BY ALL""").fetchall()[0][0]
    if not n:
        return
    touched = [r[0] for r in con.execute("SELECT DISTINCT incident_id FROM _inc_ev").fetchall()]
    for inc in touched:
        if inc not in out.opened and inc not in out.updated:
            out.updated.append(inc)
    new_subjects = con.execute("""INSERT INTO incident_subjects
        SELECT incident_id, subject, min(time) FROM (
            SELECT incident_id, time, unnest(subject_ids) AS subject FROM _inc_ev WHERE subject_ids IS NOT NULL) x
        WHERE NOT EXISTS (SELECT 1 FROM incident_subjects s WHERE s.incident_id = x.incident_id
                          AND s.subject_id = x.subject)
        GROUP BY incident_id, subject
        RETURNING incident_id""").fetchall()
    added: dict[str, int] = {}
    for (inc,) in new_subjects:
        added[inc] = added.get(inc, 0) + 1
    con.execute("""INSERT INTO incident_fields
        SELECT DISTINCT incident_id, f FROM (
            SELECT incident_id, unnest(fields) AS f FROM _inc_ev WHERE fields IS NOT NULL
            UNION ALL
            SELECT incident_id, unnest(flatten(map_values(subject_fields))) FROM _inc_ev WHERE subject_fields IS NOT NULL) x
        WHERE f IS NOT NULL AND NOT EXISTS (SELECT 1 FROM incident_fields g WHERE g.incident_id = x.incident_id
                                            AND g.field = x.f)""")
    parts = " UNION ALL ".join(f"SELECT incident_id, '{t}' AS etype, {c} AS value, linkable FROM _inc_ev "
                               f"WHERE {c} IS NOT NULL" for t, c in ENTITY_COLUMNS.items())
    con.execute(f"""INSERT INTO incident_entities
        SELECT incident_id, etype, value, FALSE, NULL, bool_or(linkable) FROM ({parts}) x
        WHERE NOT EXISTS (SELECT 1 FROM incident_entities e WHERE e.incident_id = x.incident_id
                          AND e.etype = x.etype AND e.value = x.value AND NOT e.lead)
        GROUP BY incident_id, etype, value""")
    # An entity first seen in a crowd's events becomes linkable once one actor's events show it too.
    con.execute("""UPDATE incident_entities SET linkable = TRUE FROM (
            SELECT DISTINCT incident_id, 'ip' AS etype, src_ip AS value FROM _inc_ev WHERE linkable AND src_ip IS NOT NULL
            UNION SELECT DISTINCT incident_id, 'principal', principal_id FROM _inc_ev WHERE linkable AND principal_id IS NOT NULL
            UNION SELECT DISTINCT incident_id, 'token', token_id FROM _inc_ev WHERE linkable AND token_id IS NOT NULL) x
        WHERE incident_entities.incident_id = x.incident_id AND incident_entities.etype = x.etype
          AND incident_entities.value = x.value AND NOT incident_entities.linkable""")
    rows = con.execute("SELECT incident_id, count(*), max(time) FROM _inc_ev GROUP BY incident_id").fetchall()
    escalate = sorted(cfg.engine["escalate_subjects"].items(), key=lambda kv: _rank(kv[0]))
    for inc, n, t in rows:
        sev, subjects, status = con.execute(
            "UPDATE incidents SET events = events + ?, subjects = subjects + ?, last_seen = greatest(last_seen, ?), "
            "updated_at = ? WHERE incident_id = ? RETURNING severity, subjects, status",
            [n, added.get(inc, 0), t, now_utc(), inc]).fetchall()[0]
        new_sev = sev
        for level, threshold in escalate:
            if subjects >= threshold and _rank(level) > _rank(new_sev):
                new_sev = level
        if new_sev != sev:
            _set_severity(con, inc, sev, new_sev, f"{subjects:,} people so far", out, status)


def _set_severity(con: duckdb.DuckDBPyConnection, inc: str, old: str, new: str, why: str, out: MergeOutcome,
                  status: str) -> None:
    con.execute("UPDATE incidents SET severity = ? WHERE incident_id = ?", [new, inc])
    if inc not in out.opened and status in ("open", "acknowledged"):
        out.escalated.append(inc)
        con.execute("INSERT INTO incident_log VALUES (?, ?, 'escalated', 'breachwatch', ?)",
                    [inc, now_utc(), f"{old} -> {new} ({why})"])


def refresh_headers(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, incident_ids: list[str],
                    out: MergeOutcome) -> None:
    """Times, detectors, severity and awareness of incidents whose set of alerts changed."""
    for inc in incident_ids:
        rows = con.execute("""SELECT detector, severity, first_seen, detected_at, last_seen FROM alerts
                              WHERE incident_id = ? AND status = 'raised'""", [inc]).fetchall()
        if not rows:
            continue
        sev = max((r[1] for r in rows), key=_rank)
        old, subjects, status = con.execute("SELECT severity, subjects, status FROM incidents WHERE incident_id = ?",
                                            [inc]).fetchall()[0]
        for level, threshold in cfg.engine["escalate_subjects"].items():
            if subjects >= threshold and _rank(level) > _rank(sev):
                sev = level
        high = [r[3] for r in rows if _rank(r[1]) >= _rank("high")]
        detected = min(r[3] for r in rows)
        aware = min(high) if high else (detected if _rank(sev) >= _rank("high") else None)
        con.execute("""UPDATE incidents SET first_seen = least(first_seen, ?), detected_at = ?, aware_at = ?,
                           last_seen = greatest(last_seen, ?), detectors = ?, updated_at = ?
                       WHERE incident_id = ?""",
                    [min(r[2] for r in rows), detected, aware, max(r[4] for r in rows),
                     sorted({r[0] for r in rows}), now_utc(), inc])
        if _rank(sev) > _rank(old):
            if inc in out.opened:
                con.execute("UPDATE incidents SET severity = ? WHERE incident_id = ?", [sev, inc])
            else:
                _set_severity(con, inc, old, sev, "a more severe alert joined", out, status)
