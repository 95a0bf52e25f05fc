"""Alerts into incidents, and each incident's running blast radius.

One attack is one incident, however many alerts it raises: a forged-token
campaign alerts on its key, its client fingerprint, its user agents, the IPs,
networks and countries it comes from, each at its own moment. An alert joins
an open incident when
  - it is about one of the incident's lead entities in the same kind of traffic,
    within `merge_gap` of the incident; an alert about one actor's identity (a
    principal, a key's forged tokens) joins the open incident led by that identity
    however long it was quiet: the incident's own actor seen again;
  - it counted the same events (the same requests are the same activity): any
    shared event for an alert about one actor, most of its events for a crowd
    (a country, a network), whose crossing that actor then caused;
  - or they share at least two tokens or IPs seen in one actor's events, within
    `merge_gap`.
When an alert about one actor matches several open incidents they are one
attack seen in pieces, and are folded into the oldest. A crowd alert joins at
most one incident and never folds incidents together: a country or a popular
network is shared by unrelated people.

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
# Entities that name who acts (an account, a signing key and the tokens it made), rather than where
# from or with what client: the same one alerting again, however much later, is the incident's actor back.
IDENTITY = ("principal", "key", "token")
CONTRACT = {"principal": "principals", "token": "tokens", "key": "keys", "ip": "ips", "asn": "asns",
            "country": "countries", "fingerprint": "fingerprints", "user_agent": "user_agents"}
_SINGULAR = {v: k for k, v in CONTRACT.items()}


@dataclass
class MergeOutcome:
    opened: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    realerted: list[str] = field(default_factory=list)   # incidents whose alerts changed: recompute their header
    merged: dict[str, str] = field(default_factory=dict)  # incident folded into another -> the one it is now part of


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
    # Events an alert gathered before it had an incident (e.g. while held) count for it too (blast
    # radius, and event overlap below); one scan of the stored links for all of them.
    earlier = [a for a in raised if fresh is None or a not in fresh]
    if earlier:
        con.execute(f"""INSERT INTO _run_links SELECT alert_id, event_id, time, TRUE FROM alert_events e
            WHERE alert_id IN ({", ".join("?" for _ in earlier)}) AND NOT EXISTS (
                SELECT 1 FROM _run_links r WHERE r.alert_id = e.alert_id AND r.event_id = e.event_id)""", earlier)
    cols = "alert_id, detector, etype, ptype, entity, first_seen, last_seen, detected_at, entities, links"
    rows = {r[0]: r[1:] for r in con.execute(f"SELECT {cols} FROM alerts WHERE alert_id IN "
                                             f"({', '.join('?' for _ in raised)})", raised).fetchall()}
    plans = []
    for alert_id in raised:
        detector, etype, ptype, entity, first, last, detected, ents, linking = rows[alert_id]
        # Any alert may join an incident through one actor's principals, tokens and IPs; only a
        # focused alert's own entities become linkable for later alerts (see absorb_run: linkable).
        plans.append((alert_id, detector, etype, ptype, entity, first, last, detected, linking,
                      _links(etype, entity, orjson.loads(ents) if ents else {})))
    # Alerts about one actor first: a crowd alert of the same moment then finds the actor's incident
    # instead of opening one that the actor's alerts would join.
    plans.sort(key=lambda p: not p[8])
    # An alert can only match incident entities named by its links: read those rows once, for all the
    # alerts, instead of scanning every incident's entities per alert; rows added below go to both.
    wanted = sorted({pair for p in plans for pair in p[-1]})
    with arrow_views(con, _links_in=pa.table({"etype": pa.array([t for t, _ in wanted], pa.string()),
                                              "value": pa.array([v for _, v in wanted], pa.string())})):
        con.execute("CREATE OR REPLACE TEMP TABLE _ie_cand AS SELECT e.* FROM incident_entities e "
                    "SEMI JOIN _links_in l ON l.etype = e.etype AND l.value = e.value")
    for alert_id, detector, etype, ptype, entity, first, last, detected, linking, links in plans:
        # A crowd's window reaches back over unrelated activity: overlap counts from its crossing.
        found = _find(con, links, ptype, first if linking else detected, last, gap, bool(linking))
        found += [i for i in _sharing_events(con, alert_id, bool(linking)) if i not in found]
        found.sort(key=_seq)
        if not found:
            inc, seq = _next_id(con)
            now = now_utc()
            con.execute("INSERT INTO incidents VALUES (?, ?, 'low', 'open', ?, ?, ?, NULL, [], 0, 0, ?, ?)",
                        [inc, seq, first, last, detected, now, now])
            con.execute("INSERT INTO incident_log VALUES (?, ?, 'opened', 'breachwatch', ?)",
                        [inc, now, f"opened by {detector} alert {alert_id}"])
            out.opened.append(inc)
        else:
            inc = found[0]
            if linking:
                for other in found[1:]:
                    _fold(con, other, inc, f"{detector} alert {alert_id}", out)
            if inc not in out.opened and inc not in out.updated:
                out.updated.append(inc)
        if inc not in out.realerted:
            out.realerted.append(inc)
        con.execute("UPDATE alerts SET incident_id = ? WHERE alert_id = ?", [inc, alert_id])
        if etype and entity and not con.execute(
                "SELECT count(*) FROM _ie_cand WHERE incident_id = ? AND etype = ? AND value = ? AND lead "
                "AND ptype IS NOT DISTINCT FROM ?", [inc, etype, entity, ptype]).fetchall()[0][0]:
            for table in ("incident_entities", "_ie_cand"):
                con.execute(f"INSERT INTO {table} VALUES (?, ?, ?, TRUE, ?, TRUE)", [inc, etype, entity, ptype])
        # The alert's own tokens and IPs count for the alerts after it in this run already (absorb_run
        # records them in the store at the end of the segment).
        seen = links[1:]
        if seen:
            con.execute(f"INSERT INTO _ie_cand VALUES {', '.join('(?, ?, ?, FALSE, NULL, ?)' for _ in seen)}",
                        [x for t, v in seen for x in (inc, t, v, bool(linking))])


def _seq(incident_id: str) -> int:
    return int(incident_id.rsplit("-", 1)[1])


def _sharing_events(con: duckdb.DuckDBPyConnection, alert_id: str, focused: bool) -> list[str]:
    """Open incidents holding events this alert counted, most shared first.

    For an alert about one actor, any request it shares with an incident's one-actor alerts; for a
    crowd's alert, incidents holding at least half of its events (that actor made the crowd cross).
    """
    rows = con.execute("""
        WITH mine AS (SELECT DISTINCT event_id, time FROM _run_links WHERE alert_id = $1),
        span AS (SELECT min(time) AS lo, max(time) AS hi, count(*) AS n FROM mine),
        other AS (
            SELECT r.alert_id, r.event_id FROM _run_links r SEMI JOIN mine m ON m.event_id = r.event_id
            WHERE r.alert_id <> $1
            UNION
            SELECT e.alert_id, e.event_id FROM alert_events e, span
            SEMI JOIN mine m ON m.event_id = e.event_id
            WHERE e.time BETWEEN span.lo AND span.hi AND e.alert_id <> $1)
        SELECT a.incident_id, count(DISTINCT o.event_id) AS shared, any_value(span.n) AS n
        FROM other o JOIN alerts a ON a.alert_id = o.alert_id, span
        WHERE a.incident_id IS NOT NULL AND (a.links OR NOT $2)
          AND a.incident_id IN (SELECT incident_id FROM incidents WHERE status IN ('open', 'acknowledged'))
        GROUP BY a.incident_id ORDER BY shared DESC""", [alert_id, focused]).fetchall()
    if focused:
        return [r[0] for r in rows]
    return [r[0] for r in rows if r[1] * 2 >= r[2]][:1]


def _fold(con: duckdb.DuckDBPyConnection, src: str, dst: str, why: str, out: MergeOutcome) -> None:
    """Fold incident `src` into `dst`: its alerts, people, fields, entities and history; `src` is gone."""
    con.execute("UPDATE alerts SET incident_id = ? WHERE incident_id = ?", [dst, src])
    con.execute("""UPDATE incident_subjects SET first_time = least(incident_subjects.first_time, s.first_time)
        FROM incident_subjects s WHERE incident_subjects.incident_id = ? AND s.incident_id = ?
          AND s.subject_id = incident_subjects.subject_id""", [dst, src])
    con.execute("""INSERT INTO incident_subjects SELECT ?, subject_id, first_time FROM incident_subjects s
        WHERE incident_id = ? AND NOT EXISTS (SELECT 1 FROM incident_subjects d WHERE d.incident_id = ?
                                              AND d.subject_id = s.subject_id)""", [dst, src, dst])
    con.execute("""INSERT INTO incident_fields SELECT ?, field FROM incident_fields s
        WHERE incident_id = ? AND NOT EXISTS (SELECT 1 FROM incident_fields d WHERE d.incident_id = ?
                                              AND d.field = s.field)""", [dst, src, dst])
    con.execute("""UPDATE incident_entities SET linkable = TRUE FROM incident_entities s
        WHERE incident_entities.incident_id = ? AND s.incident_id = ? AND s.linkable
          AND s.etype = incident_entities.etype AND s.value = incident_entities.value
          AND s.lead = incident_entities.lead AND s.ptype IS NOT DISTINCT FROM incident_entities.ptype""", [dst, src])
    con.execute("""INSERT INTO incident_entities SELECT ?, etype, value, lead, ptype, linkable FROM incident_entities s
        WHERE incident_id = ? AND NOT EXISTS (SELECT 1 FROM incident_entities d WHERE d.incident_id = ?
              AND d.etype = s.etype AND d.value = s.value AND d.lead = s.lead
              AND d.ptype IS NOT DISTINCT FROM s.ptype)""", [dst, src, dst])
    for table in ("incident_subjects", "incident_fields", "incident_entities"):
        con.execute(f"DELETE FROM {table} WHERE incident_id = ?", [src])
    con.execute("UPDATE _ie_cand SET incident_id = ? WHERE incident_id = ?", [dst, src])
    (s_sev,) = con.execute("SELECT severity FROM incidents WHERE incident_id = ?", [src]).fetchall()[0]
    con.execute("""UPDATE incidents SET first_seen = least(incidents.first_seen, s.first_seen),
            last_seen = greatest(incidents.last_seen, s.last_seen),
            detected_at = least(incidents.detected_at, s.detected_at), aware_at = least(incidents.aware_at, s.aware_at),
            events = incidents.events + s.events, updated_at = ?,
            subjects = (SELECT count(*) FROM incident_subjects WHERE incident_id = ?)
        FROM incidents s WHERE incidents.incident_id = ? AND s.incident_id = ?""", [now_utc(), dst, dst, src])
    d_sev = con.execute("SELECT severity FROM incidents WHERE incident_id = ?", [dst]).fetchall()[0][0]
    if _rank(s_sev) > _rank(d_sev):
        con.execute("UPDATE incidents SET severity = ? WHERE incident_id = ?", [s_sev, dst])
    # Its history moves along, so the merged incident still says who did what to each part and when.
    con.execute("UPDATE incident_log SET incident_id = ? WHERE incident_id = ?", [dst, src])
    con.execute("INSERT INTO incident_log VALUES (?, ?, 'merged', 'breachwatch', ?)",
                [dst, now_utc(), f"{src} merged in: {why} is about the same actor"])
    con.execute("DELETE FROM incidents WHERE incident_id = ?", [src])
    was_new = src in out.opened
    for lst in (out.opened, out.updated, out.escalated, out.realerted):
        while src in lst:
            lst.remove(src)
    if was_new and dst not in out.opened and dst not in out.updated:
        out.updated.append(dst)
    if dst not in out.realerted:
        out.realerted.append(dst)
    out.merged[src] = dst


def _links(etype: str | None, entity: str | None, ents: dict[str, list[str]]) -> list[tuple[str, str]]:
    links = [(etype, entity)] if etype and entity else []
    for plural, values in ents.items():
        single = _SINGULAR.get(plural)
        if single and single not in BROAD:
            links += [(single, v) for v in values]
    return links


def _find(con: duckdb.DuckDBPyConnection, links: list[tuple[str, str]], ptype: str | None, first, last,
          gap: int, focused: bool) -> list[str]:
    """The open incidents these links match, oldest first (within `_ie_cand`, the rows they can match)."""
    if not links:
        return []
    values = ", ".join("(?, ?, ?)" for _ in links)
    # The first pair is the alert's own lead entity; the rest come from its (one actor's) events.
    params = [x for i, pair in enumerate(links) for x in (*pair, i == 0)]
    # A broad entity (a key, a country) links only lead to lead, for the same kind of traffic. Other
    # entities (IPs, tokens) link to those seen in the events of one actor, never to a crowd's, and
    # it takes two of them: one shared address can be a coincidence of proxy pools. Within merge_gap
    # only, except a one-actor alert about the same identity (IDENTITY) in the same kind of traffic:
    # that is the incident's own actor back, however long it paused (a test phase, then the campaign).
    rows = con.execute(f"""
        SELECT i.incident_id FROM incidents i
        JOIN _ie_cand e ON e.incident_id = i.incident_id
        JOIN (VALUES {values}) l(etype, value, is_lead) ON l.etype = e.etype AND l.value = e.value
        CROSS JOIN (SELECT ?::TIMESTAMP AS lo, ?::TIMESTAMP AS hi, ?::VARCHAR AS ptype, ?::BOOLEAN AS focused) a
        WHERE i.status IN ('open', 'acknowledged')
          AND CASE WHEN e.etype IN ({", ".join(f"'{b}'" for b in BROAD)})
                   THEN e.lead AND l.is_lead AND e.ptype IS NOT DISTINCT FROM a.ptype
                   ELSE e.linkable END
        GROUP BY i.incident_id, i.seq
        HAVING bool_or(e.lead AND l.is_lead AND (
                   (i.first_seen <= a.hi + INTERVAL {gap} SECOND AND i.last_seen >= a.lo - INTERVAL {gap} SECOND)
                   OR (a.focused AND e.etype IN ({", ".join(f"'{t}'" for t in IDENTITY)})
                       AND e.ptype IS NOT DISTINCT FROM a.ptype)))
            OR (any_value(i.first_seen <= a.hi + INTERVAL {gap} SECOND AND i.last_seen >= a.lo - INTERVAL {gap} SECOND)
                AND count(DISTINCT (e.etype, e.value)) >= 2)
        ORDER BY i.seq""", [*params, first, last, ptype, focused]).fetchall()
    return [r[0] for r in rows]


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
