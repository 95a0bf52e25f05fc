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
from datetime import timedelta

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
    cands = _Candidates.load(con, wanted)
    sharing = _Overlaps.stage(con, raised)
    # Each alert's incident, stored for all of them after the loop (nothing in it reads them back;
    # a fold redirects the ones already given).
    given: dict[str, str] = {}
    for alert_id, detector, etype, ptype, entity, first, last, detected, linking, links in plans:
        # A crowd's window reaches back over unrelated activity: overlap counts from its crossing.
        found = cands.find(links, ptype, first if linking else detected, last, gap, bool(linking))
        found += [i for i in sharing.incidents(alert_id, bool(linking)) if i not in found]
        found.sort(key=_seq)
        if not found:
            inc, seq = _next_id(con)
            now = now_utc()
            con.execute("INSERT INTO incidents VALUES (?, ?, 'low', 'open', ?, ?, ?, NULL, [], 0, 0, ?, ?)",
                        [inc, seq, first, last, detected, now, now])
            con.execute("INSERT INTO incident_log VALUES (?, ?, 'opened', 'breachwatch', ?)",
                        [inc, now, f"opened by {detector} alert {alert_id}"])
            out.opened.append(inc)
            cands.incidents[inc] = [seq, first, last, "open"]
        else:
            inc = found[0]
            if linking:
                for other in found[1:]:
                    _fold(con, other, inc, f"{detector} alert {alert_id}", out)
                    sharing.folded(other, inc)
                    cands.folded(con, other, inc)
                    given.update({a: inc for a, i in given.items() if i == other})
            if inc not in out.opened and inc not in out.updated:
                out.updated.append(inc)
        if inc not in out.realerted:
            out.realerted.append(inc)
        given[alert_id] = inc
        sharing.assigned(alert_id, inc)
        cands.know(con, inc)
        if etype and entity and not cands.has_lead(inc, etype, entity, ptype):
            con.execute("INSERT INTO incident_entities VALUES (?, ?, ?, TRUE, ?, TRUE)", [inc, etype, entity, ptype])
            cands.add(inc, etype, entity, True, ptype, True)
        # The alert's own tokens and IPs count for the alerts after it in this run already (absorb_run
        # records them in the store at the end of the segment).
        for t, v in links[1:]:
            cands.add(inc, t, v, False, None, bool(linking))
    if given:
        con.execute(f"""UPDATE alerts SET incident_id = g.inc
            FROM (VALUES {", ".join("(?, ?)" for _ in given)}) g(alert_id, inc) WHERE alerts.alert_id = g.alert_id""",
                    [x for kv in given.items() for x in kv])


def _seq(incident_id: str) -> int:
    return int(incident_id.rsplit("-", 1)[1])


@dataclass
class _Overlaps:
    """Which incidents hold events that each alert of a run counted too, as the run's alerts are assigned.

    Staged once per run: for each alert, its events grouped by the set of other alerts that counted
    them as well (this run, `_run_links`, or earlier, `alert_events`), among the alerts that can be
    in an open incident while the run's alerts are assigned: the run's own and those already in one.
    Which incident each of those alerts is in is then followed here as alerts are assigned and
    incidents folded (nothing else moves an alert), so each alert's answer costs no query.
    """
    groups: dict[str, list[tuple[tuple[str, ...], int]]] = field(default_factory=dict)  # alert -> (others, events)
    counted: dict[str, int] = field(default_factory=dict)      # alert -> its events (with their link times)
    incident: dict[str, str | None] = field(default_factory=dict)  # other alert -> its open incident now
    links: dict[str, bool | None] = field(default_factory=dict)    # other alert -> alerts.links

    @classmethod
    def stage(cls, con: duckdb.DuckDBPyConnection, alert_ids: list[str]) -> "_Overlaps":
        out = cls()
        with arrow_views(con, _ie_raised=pa.table({"alert_id": pa.array(alert_ids, pa.string())})):
            con.execute("""CREATE OR REPLACE TEMP TABLE _ie_mine AS
                SELECT DISTINCT r.alert_id AS mine, r.event_id, r.time FROM _run_links r
                SEMI JOIN _ie_raised x ON x.alert_id = r.alert_id""")
            lo, hi = con.execute("SELECT min(time), max(time) FROM _ie_mine").fetchall()[0]
            if lo is None:
                return out
            # Each event's links to the alerts that may matter: this run's (time NULL) and stored ones,
            # these read only over the span of the events' times (constants: the scan skips the rest).
            con.execute("""CREATE OR REPLACE TEMP TABLE _ie_sig AS
                WITH others AS (
                    SELECT alert_id FROM _ie_raised
                    UNION
                    SELECT a.alert_id FROM alerts a JOIN incidents i ON i.incident_id = a.incident_id
                    WHERE i.status IN ('open', 'acknowledged')),
                evs AS (SELECT DISTINCT event_id FROM _ie_mine)
                SELECT event_id, list_sort(list_distinct(list({'other': other, 'time': time}))) AS linked FROM (
                    SELECT r.event_id, r.alert_id AS other, NULL::TIMESTAMP AS time FROM _run_links r
                    SEMI JOIN evs v ON v.event_id = r.event_id SEMI JOIN others o ON o.alert_id = r.alert_id
                    UNION ALL
                    SELECT e.event_id, e.alert_id, e.time FROM alert_events e
                    SEMI JOIN evs v ON v.event_id = e.event_id SEMI JOIN others o ON o.alert_id = e.alert_id
                    WHERE e.time >= ?::TIMESTAMP AND e.time <= ?::TIMESTAMP)
                GROUP BY event_id""", [lo, hi])
        spans = {m: (n, a, b) for m, n, a, b in con.execute(
            "SELECT mine, count(*), min(time), max(time) FROM _ie_mine GROUP BY mine").fetchall()}
        # Events linked alike are counted together: one row per alert and kind of linking.
        rows = con.execute("""SELECT m.mine, s.linked, count(*) FROM (SELECT DISTINCT mine, event_id FROM _ie_mine) m
            JOIN _ie_sig s ON s.event_id = m.event_id GROUP BY m.mine, s.linked""").fetchall()
        for mine, linked, n in rows:
            _, a, b = spans[mine]
            # A stored link counts within the span of the alert's own event times, as it always did.
            others = tuple(sorted({x["other"] for x in linked if x["other"] != mine
                                   and (x["time"] is None or a <= x["time"] <= b)}))
            if others:
                out.groups.setdefault(mine, []).append((others, n))
        out.counted = {m: v[0] for m, v in spans.items() if m in out.groups}
        others = sorted({o for groups in out.groups.values() for g, _ in groups for o in g})
        with arrow_views(con, _ie_others=pa.table({"alert_id": pa.array(others, pa.string())})):
            for alert_id, inc, links in con.execute("""
                    SELECT a.alert_id, CASE WHEN i.status IN ('open', 'acknowledged') THEN a.incident_id END, a.links
                    FROM alerts a SEMI JOIN _ie_others o ON o.alert_id = a.alert_id
                    LEFT JOIN incidents i ON i.incident_id = a.incident_id""").fetchall():
                out.incident[alert_id] = inc
                out.links[alert_id] = links
        return out

    def assigned(self, alert_id: str, incident_id: str) -> None:
        if alert_id in self.incident:
            self.incident[alert_id] = incident_id

    def folded(self, src: str, dst: str) -> None:
        for alert_id, inc in self.incident.items():
            if inc == src:
                self.incident[alert_id] = dst

    def incidents(self, alert_id: str, focused: bool) -> list[str]:
        """Open incidents holding events this alert counted, most shared first.

        For an alert about one actor, any request it shares with an incident's one-actor alerts; for
        a crowd's alert, the incident holding at least half of its events (that actor made the crowd
        cross).
        """
        shared: dict[str, int] = {}
        for others, n in self.groups.get(alert_id, []):
            for inc in {self.incident.get(o) for o in others if self.links.get(o) or not focused} - {None}:
                shared[inc] = shared.get(inc, 0) + n
        ranked = sorted(shared.items(), key=lambda kv: (-kv[1], kv[0]))
        if focused:
            return [inc for inc, _ in ranked]
        return [inc for inc, n in ranked if n * 2 >= self.counted[alert_id]][:1]


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
    from breachwatch.scope.fold import fold_scope  # scope imports incident helpers: imported when needed
    fold_scope(con, src, dst, now_utc())  # while both incident rows still hold their own times
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
    # Its history moves along, so the merged incident still says who did what to each part and when;
    # so do its scoping records (manifests, duties done, awareness changes): scope/fold.py.
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


@dataclass
class _Candidates:
    """The incident entities a run's alerts can match (those their links name) and the open incidents
    holding them, kept in step as the alerts are assigned, so that matching an alert costs no query.

    `rows`: (etype, value) -> [incident_id, lead, ptype, linkable] rows of incident_entities, plus
    those the run adds; `incidents`: incident_id -> [seq, first_seen, last_seen, status].
    """
    rows: dict[tuple[str, str], list[list]] = field(default_factory=dict)
    incidents: dict[str, list] = field(default_factory=dict)

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, wanted: list[tuple[str, str]]) -> "_Candidates":
        out = cls()
        with arrow_views(con, _links_in=pa.table({"etype": pa.array([t for t, _ in wanted], pa.string()),
                                                  "value": pa.array([v for _, v in wanted], pa.string())})):
            for inc, etype, value, lead, ptype, linkable in con.execute(
                    "SELECT e.incident_id, e.etype, e.value, e.lead, e.ptype, e.linkable FROM incident_entities e "
                    "SEMI JOIN _links_in l ON l.etype = e.etype AND l.value = e.value").fetchall():
                out.add(inc, etype, value, lead, ptype, linkable)
        ids = sorted({r[0] for rows in out.rows.values() for r in rows})
        with arrow_views(con, _ie_ids=pa.table({"incident_id": pa.array(ids, pa.string())})):
            for inc, *info in con.execute("SELECT incident_id, seq, first_seen, last_seen, status FROM incidents "
                                          "SEMI JOIN _ie_ids USING (incident_id)").fetchall():
                out.incidents[inc] = info
        return out

    def add(self, inc: str, etype: str, value: str, lead: bool, ptype: str | None, linkable: bool | None) -> None:
        self.rows.setdefault((etype, value), []).append([inc, lead, ptype, linkable])

    def has_lead(self, inc: str, etype: str, value: str, ptype: str | None) -> bool:
        return any(r[0] == inc and r[1] and r[2] == ptype for r in self.rows.get((etype, value), []))

    def know(self, con: duckdb.DuckDBPyConnection, inc: str, reread: bool = False) -> None:
        """Read incident `inc`'s header if it is not known yet (or again: `reread`)."""
        if reread or inc not in self.incidents:
            for i, *info in con.execute("SELECT incident_id, seq, first_seen, last_seen, status FROM incidents "
                                        "WHERE incident_id = ?", [inc]).fetchall():
                self.incidents[i] = info

    def folded(self, con: duckdb.DuckDBPyConnection, src: str, dst: str) -> None:
        """`src` was folded into `dst` (in the store): its rows are dst's, and dst's times are re-read."""
        for rows in self.rows.values():
            for r in rows:
                if r[0] == src:
                    r[0] = dst
        self.incidents.pop(src, None)
        self.know(con, dst, reread=True)

    def find(self, links: list[tuple[str, str]], ptype: str | None, lo, hi, gap: int, focused: bool) -> list[str]:
        """The open incidents these links match, oldest first.

        The first link is the alert's own lead entity; the rest come from its (one actor's) events.
        A broad entity (a key, a country) links only lead to lead, for the same kind of traffic. Other
        entities (IPs, tokens) link to those seen in the events of one actor, never to a crowd's, and
        it takes two of them: one shared address can be a coincidence of proxy pools. Within merge_gap
        only, except a one-actor alert about the same identity (IDENTITY) in the same kind of traffic:
        that is the incident's own actor back, however long it paused (a test phase, then the campaign).
        """
        span = timedelta(seconds=gap)

        def overlaps(info: list) -> bool:
            first_seen, last_seen = info[1], info[2]
            if None in (first_seen, last_seen, lo, hi):
                return False
            return first_seen <= hi + span and last_seen >= lo - span

        lead_match: dict[str, bool] = {}
        pairs: dict[str, set] = {}
        for i, (etype, value) in enumerate(links):
            is_lead = i == 0
            for inc, lead, eptype, linkable in self.rows.get((etype, value), []):
                info = self.incidents.get(inc)
                if info is None or info[3] not in ("open", "acknowledged"):
                    continue
                if not (lead and is_lead and eptype == ptype if etype in BROAD else linkable):
                    continue
                hit = bool(lead and is_lead and (overlaps(info) or (focused and etype in IDENTITY
                                                                    and eptype == ptype)))
                lead_match[inc] = lead_match.get(inc, False) or hit
                pairs.setdefault(inc, set()).add((etype, value))
        found = [inc for inc in lead_match
                 if lead_match[inc] or (overlaps(self.incidents[inc]) and len(pairs[inc]) >= 2)]
        return sorted(found, key=lambda inc: self.incidents[inc][0])


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
