"""enumeration: one actor touching many different people's records, quickly or slowly.

Mass reads through valid requests look ordinary one request at a time; what
gives them away is how many distinct people a principal, a signing key, an IP
or IP range, a network, a country, a client fingerprint or a user agent
touches over short and long windows, against what it and its peers did
before, and how those people were picked (ids in sequence, closed or
non-existent accounts, no ticket for staff, a customer reading others).

Logic, per segment:
  pairs     = entity rows x subjects read, less a person's own data read from their usual places
  first     = pairs anti-join seen_subj                             (a person this entity never touched)
  points    = first                                               -> metric subj
              first where the subject is dormant/withdrawn/deleted or the read missed (404/410)
                                                                  -> metric inactive
              first whose numeric id is within walk_max_stride of the entity's previous one
                                                                  -> metric walk
              first by staff with no reason_ref                   -> metric noreason
              failed logins per entity, distinct accounts tried   -> metric authfail
  crossings = windowed count per entity >= max(floor, own_factor x own level, peer_factor x peers' level)

Registered batch jobs. A new export or sync job walks ids exactly as a scraper does; what tells them
apart is who walks and how, all of it facts the logs already hold, none of it a name:
  batch     = first touches whose event is by a principal of `batch_principal_types` (service) that
              the directory announced (principal_created at or before the read, not offboarded since),
              from `batch_networks` (private address space: the job runs inside), through an endpoint
              that in the stored history only such principals ever called and that returned no field
              it had not returned before (a service endpoint, read for what it serves)
  walk      = walk steps not in batch                         -> the incident-raising `walk` counter
  batchwalk = walk steps in batch, per principal only         -> a low-severity finding: recorded and
              shown (`breachwatch incidents alerts --status finding`), never an incident
The same walk by a customer token, an unannounced or departed principal, a public or foreign source, or
through an endpoint customers or staff use stays a `walk` and raises an incident. The shipping-label
service stays quiet differently: its bulk reads are its own learned level, and it walks no ids.
"""
from __future__ import annotations


import pyarrow as pa

from breachwatch.detect.alert import AlertCandidate, add_candidate_events, top_values_by
from breachwatch.detect.config import fmt_window
from breachwatch.detect.context import RunContext, allowlist_sql, networks_sql
from breachwatch.detect.counting import Counter, CrossingRow, earliest_per_entity, first_new, focused
from breachwatch.detect.entities import LABEL, VALUE_COLUMNS, entity_rows_sql
from breachwatch.store.db import arrow_views

NAME = "enumeration"

METRIC_TEXT = {
    "subj": "touched {n} people it had never touched before",
    "inactive": "touched {n} dormant, closed or non-existent accounts",
    "walk": "stepped through {n} ids in sequence",
    "batchwalk": "stepped through {n} ids in sequence",
    "noreason": "opened {n} people's records with no ticket or stated reason",
    "authfail": "failed to log in to {n} different accounts",
}
_FLOOR = {"inactive": "inactive_min", "walk": "walk_min", "batchwalk": "walk_min", "noreason": "noreason_min",
          "authfail": "authfail_min"}


def _counter(d: dict, metric: str) -> Counter:
    floors = d["min_subjects"] if metric == "subj" else {w: float(d[_FLOOR[metric]]) for w in d["windows"]}
    return Counter(metric, d["windows"], floors, d["own_factor"], d["peer_factor"],
                   on_cross=lambda ctx, rows: _crossed(ctx, d, metric, rows))


def run(ctx: RunContext) -> None:
    d = ctx.cfg.detectors[NAME]
    if not d["enabled"]:
        return
    if ctx.kinds.get("login_failed"):
        _authfail_points(ctx, d)
    if not ctx.accesses:
        return
    con = ctx.con
    ctx.need("_ent")
    ctx.need("_subj")
    ctx.need("_novelty")
    etypes = ", ".join(f"'{e}'" for e in d["entities"])
    min_novel = ctx.cfg.detectors["novel_source"]["min_novel_dimensions"]
    # The people read are sifted before they meet their events' entities (`_cmap`, by combo): most reads
    # are people's own data from their usual places, and each read has an entity per entity type.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _en_subj AS
        SELECT s.seq, s.time, s.cid, s.subject, s.pos, s.status, s.reason_ref, s.principal_type, s.principal_id
        FROM _subj s JOIN _novelty n ON n.seq = s.seq
        WHERE NOT (s.subject = s.principal_id AND n.has_history AND n.novel_dims < {min_novel})
          AND NOT {allowlist_sql(d['allowlist'], 's')}""")
    pairs = f"""(SELECT m.ek, m.etype, s.seq, s.time, s.subject, s.pos, s.status, s.reason_ref, s.principal_type
        FROM _en_subj s JOIN _cmap m ON m.cid = s.cid
        WHERE m.etype IN ({etypes}) AND NOT (m.etype = 'principal' AND s.subject = s.principal_id))"""
    first_new(con, metric="subj", pairs=pairs, key="subject", out="_en_first",
              extra="etype, status, reason_ref, principal_type, pos")
    ctx.stats["en_first"] = True
    stride = int(d["walk_max_stride"])
    # A walk step is a first touch whose id is close to the entity's previous numeric first touch. The ids
    # one request reads share its (time, seq): they follow in the order the request listed them (`pos`), so
    # the same input always gives the same steps.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _en_steps AS
        WITH nums AS (SELECT ek, etype, time, seq, pos, principal_type, try_cast(subject AS HUGEINT) AS num
                      FROM _en_first WHERE try_cast(subject AS HUGEINT) IS NOT NULL)
        SELECT ek, etype, time, seq, principal_type FROM (
            SELECT n.*, coalesce(lag(n.num) OVER (PARTITION BY n.ek ORDER BY n.time, n.seq, n.pos), l.num) AS prev
            FROM nums n LEFT JOIN walk_last l ON l.ek = n.ek)
        WHERE prev IS NOT NULL AND abs(num - prev) BETWEEN 1 AND {stride}""")
    # A registered batch job's steps are counted apart, per principal, as a finding (module docstring).
    batch = _batch_reads(ctx, d)
    walk = "SELECT ek, time, seq, 1.0 AS w FROM _en_steps" + (f" WHERE seq NOT IN (SELECT seq FROM {batch})"
                                                             if batch else "")
    batch_pair = ((_counter(d, "batchwalk"), f"""SELECT ek, time, seq, 1.0 AS w FROM _en_steps
        WHERE etype = 'principal' AND seq IN (SELECT seq FROM {batch})"""),) if batch else ()
    ctx.count(
        (_counter(d, "subj"), "SELECT ek, time, seq, 1.0 AS w FROM _en_first"),
        (_counter(d, "inactive"), """SELECT f.ek, f.time, f.seq, 1.0 AS w FROM _en_first f
            LEFT JOIN (SELECT subject_id, arg_max(status_value, at_time) AS sv FROM subject_status_state
                       WHERE subject_id IN (SELECT subject FROM _en_first) GROUP BY subject_id) st
              ON st.subject_id = f.subject
            WHERE f.status IN (404, 410) OR st.sv IN ('dormant', 'withdrawn', 'deleted')"""),
        (_counter(d, "noreason"), """SELECT ek, time, seq, 1.0 AS w FROM _en_first
            WHERE principal_type = 'employee' AND coalesce(reason_ref, '') = ''"""),
        (_counter(d, "walk"), walk),
        *batch_pair)
    con.execute("""CREATE OR REPLACE TEMP TABLE _en_last AS
        SELECT ek, arg_max(try_cast(subject AS HUGEINT), (time, seq, pos)) AS num FROM _en_first
        WHERE try_cast(subject AS HUGEINT) IS NOT NULL GROUP BY ek""")
    con.execute("DELETE FROM walk_last WHERE ek IN (SELECT ek FROM _en_last)")
    con.execute("INSERT INTO walk_last SELECT * FROM _en_last")


def _batch_reads(ctx: RunContext, d: dict) -> str | None:
    """`_en_batch`: seqs of this segment's walk steps made by a registered batch job (module docstring).

    None when there are none. Costs one small query unless a principal of a batch type stepped through
    ids in this segment (rare: a job's run); then one look at the stored history of the endpoints it used.
    """
    types = ", ".join(f"'{t}'" for t in d["batch_principal_types"])  # validated principal types
    if not types or not d["batch_networks"]:
        return None
    inside = networks_sql(d["batch_networks"], "a.src_ip", "enumeration.batch_networks")  # a bad range fails here
    con = ctx.con
    if not con.execute(f"SELECT count(*) FROM _en_steps WHERE principal_type IN ({types})").fetchall()[0][0]:
        return None
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _en_batchcand AS
        SELECT a.seq, a.time, a.principal_id, a.endpoint, a.fields FROM _acc a
        SEMI JOIN (SELECT DISTINCT seq FROM _en_steps WHERE principal_type IN ({types})) f ON f.seq = a.seq
        WHERE a.principal_type IN ({types}) AND a.endpoint IS NOT NULL AND {inside}
          AND EXISTS (SELECT 1 FROM principal_lifecycle c WHERE c.principal_id = a.principal_id
                      AND c.kind = 'principal_created' AND c.at_time <= a.time)
          AND NOT EXISTS (SELECT 1 FROM departures g WHERE g.principal_id = a.principal_id AND g.left_at <= a.time)""")
    # The endpoints' history before this segment: who called them and which fields they returned.
    since = ctx.kinds_span["access"][0]
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _en_batch AS
        WITH hist AS (
                SELECT endpoint, principal_type, fields FROM events
                WHERE kind = 'access' AND time < ? AND endpoint IN (SELECT DISTINCT endpoint FROM _en_batchcand)),
            served AS (
                SELECT endpoint FROM hist GROUP BY endpoint
                HAVING bool_and(coalesce(principal_type, '') IN ({types}))),
            returned AS (SELECT DISTINCT endpoint, unnest(fields) AS field FROM hist)
        SELECT c.seq FROM _en_batchcand c SEMI JOIN served s ON s.endpoint = c.endpoint
        WHERE NOT EXISTS (SELECT 1 FROM (SELECT unnest(c.fields) AS field) f
                          WHERE NOT EXISTS (SELECT 1 FROM returned r WHERE r.endpoint = c.endpoint
                                            AND r.field = f.field))""", [since])
    return "_en_batch" if con.execute("SELECT count(*) FROM _en_batch").fetchall()[0][0] else None


def _authfail_points(ctx: RunContext, d: dict) -> None:
    """Failed logins: each entity's distinct accounts tried (an unknown account counts each time)."""
    con = ctx.con
    # The failed logins first, once: each entity type's rows then read those few, not the whole segment.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _en_failed AS
        SELECT seq, time, event_id, {', '.join(VALUE_COLUMNS)} FROM _seg WHERE kind = 'login_failed'""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _en_fail AS
        {entity_rows_sql("_en_failed", d["authfail_entities"],
                         "seq, time, coalesce(principal_id, 'unknown:' || event_id) AS account")}""")
    ctx.register_entities("_en_fail")
    first_new(con, metric="authfail", pairs="_en_fail", key="account", out="_en_failfirst")
    ctx.count((_counter(d, "authfail"), "SELECT ek, time, seq, 1.0 AS w FROM _en_failfirst"))


def _crossed(ctx: RunContext, d: dict, metric: str, rows: list[CrossingRow]) -> None:
    """One candidate per crossing entity; their events, entity lists and coverage in a few set-wise queries."""
    firsts = [xs for _, xs in earliest_per_entity(rows).items()]
    if not firsts:
        return
    con = ctx.con
    source = "_seg" if metric == "authfail" else "_acc"
    rows_of = "_en_fail" if metric == "authfail" else "_ent"
    keys = [(f"{metric}:{xs[0].etype}:{xs[0].ptype}:{xs[0].entity}", xs[0],
             focused(xs[0].etype, xs[0].entity_first_seen, ctx.baseline_at)) for xs in firsts]
    pick = f"_en_pick_{metric}"
    wanted = pa.table({"dedup": pa.array([k for k, _, _ in keys], pa.string()),
                       "ek": pa.array([x.ek for _, x, _ in keys], pa.uint64()),
                       "t0": pa.array([x.first_time for _, x, _ in keys], pa.timestamp("us")),
                       "t1": pa.array([x.time for _, x, _ in keys], pa.timestamp("us")),
                       "one_actor": pa.array([o for _, _, o in keys], pa.bool_())})
    # One actor's alert holds everything the entity did since its count began; a crowd's only the
    # points that counted toward its crossing (unrelated people share a country or a network).
    with arrow_views(con, _en_wanted=wanted):
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {pick} AS
            SELECT k.dedup, r.seq FROM _en_wanted k JOIN {rows_of} r ON r.ek = k.ek AND r.time >= k.t0
            WHERE k.one_actor
            UNION
            SELECT k.dedup, p.seq FROM _en_wanted k JOIN _pts p ON p.metric = '{metric}' AND p.ek = k.ek
             AND p.time >= k.t0 AND p.time <= k.t1
            WHERE NOT k.one_actor""")
    picked = f"(SELECT p.dedup, s.* FROM {pick} p JOIN {source} s ON s.seq = p.seq)"
    add_candidate_events(con, NAME, f"SELECT dedup, event_id, time FROM {picked}")
    entities: dict[str, dict[str, list[str]]] = {}

    def entity_lists(dedup: str) -> dict[str, list[str]]:
        if not entities:  # only new alerts ask, all in the same run: one grouped query
            entities.update(top_values_by(con, picked, "dedup"))
        return entities.get(dedup, {})

    touched = _touched(ctx, [x.ek for _, x, _ in keys]) if metric == "subj" else {}
    for (dedup, _, one_actor), xs in zip(keys, firsts):
        _candidate(ctx, d, metric, xs, dedup, one_actor, touched, entity_lists)


def _candidate(ctx: RunContext, d: dict, metric: str, xs: list[CrossingRow], dedup: str, one_actor: bool,
               touched: dict[int, float], entity_lists) -> None:
    x = xs[0]
    label = LABEL.get(x.etype, x.etype)
    findings = []
    for r in xs:
        what = METRIC_TEXT[metric].format(n=f"{r.count:,.0f}")
        findings.append(f"{label} {r.entity} ({r.ptype} traffic) {what} within {fmt_window(r.window_s)} "
                        f"(its own previous maximum {r.own:,.0f}; peers' level {r.peer:,.0f}; alert level "
                        f"{r.threshold:,.0f}), from {r.first_time:%m-%d %H:%M:%S}")
    severity, finding = d["severity"], metric == "batchwalk"
    if finding:
        # Named as what it is, so a reviewer sees why it opened no incident and can judge that.
        severity = "low"
        findings.append("a registered service principal, from internal address space, through an endpoint only "
                        "services have used, reading only fields it serves: taken for a batch job, recorded "
                        "without an incident")
    coverage = None
    if metric == "subj":
        coverage = _coverage(ctx, touched.get(x.ek, 0.0))
        if coverage is not None and coverage >= d["critical_coverage"]:
            severity = "critical"
            findings.append(f"that is {coverage:.1%} of the whole customer base")
    ctx.add(AlertCandidate(
        detector=NAME, rule=metric, dedup_key=dedup, severity=severity, first_seen=x.first_time,
        detected_at=x.time, last_seen=x.time, etype=x.etype, ptype=x.ptype, entity=x.entity,
        evidence="; ".join(findings),
        metrics={"metric": metric, "count": x.count, "window_s": x.window_s, "own": x.own, "peer": x.peer,
                 "threshold": x.threshold, "coverage": coverage},
        entities=lambda: entity_lists(dedup),
        track_eks=[x.ek] if one_actor and not finding else [], links=one_actor and not finding,
        attach_on_update=one_actor, finding=finding))


def _touched(ctx: RunContext, eks: list[int]) -> dict[int, float]:
    """People each entity has touched so far (its stored first-touch counts), for many entities at once."""
    with arrow_views(ctx.con, _en_eks=pa.table({"ek": pa.array(eks, pa.uint64())})):
        return dict(ctx.con.execute("""SELECT b.ek, sum(b.n) FROM counter_buckets b SEMI JOIN _en_eks k ON k.ek = b.ek
            WHERE b.metric = 'subj' AND b.gran = 'h' GROUP BY b.ek""").fetchall())


def _coverage(ctx: RunContext, touched: float) -> float | None:
    """Share of the customer base an entity that touched `touched` people has touched so far."""
    con = ctx.con
    if "customer_base" not in ctx.stats:
        ctx.stats["customer_base"] = con.execute(
            "SELECT count(DISTINCT subject_id) FROM subject_status_state").fetchall()[0][0] or None
    base = ctx.stats["customer_base"]
    if not base:
        return None
    return float(touched) / base
