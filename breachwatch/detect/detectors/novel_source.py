"""novel_source: accounts reached from places and clients they never used, that few others use either.

A stolen or forged credential is used from the attacker's machine: a country,
a network and a client none of its real owner's sessions ever came from, and
which are rare across the whole population; a campaign repeats that for
account after account, so one source cluster suddenly reaches many people
who never came from it. Travellers, new phones and app updates change one
or two of these at a time and towards common values, which is why every
dimension is weighted by how rare its value is.

Logic, per segment (on top of the shared `_novelty` table):
  rarity = per event: the mean over dimensions (country, network, client) of
           1 - log(1 + principals that used the value before) / log(2 + all known principals),
           counted where the value is new for the principal (or the principal is new)
  rare   = per client (else network), distinct accounts reached by events with rarity >= min_rarity
           through a client itself that rare -> windowed count vs floor rare_min_accounts (privileged
           principals: privileged_min_rarity, one account is enough)
  spread = per source entity (country, network, range, client), distinct established principals reached
           from a source new to them with rarity >= spread_min_rarity, less vouched arrivals
           -> windowed count vs own and peers
  vouched = (with spread_vouched_by_login) the access's session was opened, at or before it and within
           spread_vouch_lookback, by a login of that same principal from the same network and country

Why vouched arrivals do not count toward spread. A population moving together (a holiday wave abroad, a
forced app update that changes every client at once, a carrier renumbering) is many people each logging
in as themselves from their new place, and it is big enough to cross any level learned from quieter days.
The campaigns spread exists for reach accounts without a login there: forged tokens (no session, no login)
and stolen sessions replayed from elsewhere (their login came from the owner's usual place, not from
where the reads come from); those still count. Credentials used through a login (stuffing, phishing) are
left to what sees them: the failed logins (enumeration's authfail) and a rare tool or network
(rare_source, which counts every arrival). Logs without sessions or logins vouch for nothing, and spread
then counts every arrival as before.
"""
from __future__ import annotations

from datetime import timedelta

from breachwatch.detect.alert import AlertCandidate, add_candidate_events, top_values
from breachwatch.detect.config import fmt_window
from breachwatch.detect.context import RunContext, allowlist_sql
from breachwatch.detect.counting import Counter, CrossingRow, earliest_per_entity, first_new, focused
from breachwatch.detect.entities import LABEL, ek_sql

NAME = "novel_source"
MIN_POPULATION = 100  # below this many known principals nothing can be called rare


def run(ctx: RunContext) -> None:
    d = ctx.cfg.detectors[NAME]
    if not d["enabled"] or not ctx.accesses:
        return
    ctx.need("_novelty")
    ctx.need("_ent")
    _rarity(ctx, d)
    _rare(ctx, d)
    _spread(ctx, d)


def _rarity(ctx: RunContext, d: dict) -> None:
    """`_rarity`: per access event with a principal, how rare its new source is in the population."""
    con = ctx.con
    acc = ctx.need("_acc_b")
    population = ctx.stats.get("principals_seen", 0)
    # Only events with something new (a new source for the principal, or a principal without history)
    # can have a rarity above 0, and every reader asks for a rarity at or above a threshold: while all
    # thresholds are above 0 the other events are left out (most first uses in a segment are of sources
    # the principal had before). The running counts below count only new pairs (each of them kept) and
    # new principals (kept for the count).
    thresholds = (d["min_rarity"], d["privileged_min_rarity"], d["spread_min_rarity"])
    # `_novelty` already counts each event's new pairs (novel_dims).
    live = ("SELECT seq FROM _novelty WHERE novel_dims > 0 OR NOT has_history" if min(thresholds) > 0
            else "SELECT seq FROM _novelty")
    # The population as of each event: known before the segment, plus those first seen earlier in it;
    # a value's users likewise: stored, plus this segment's earlier first uses.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _rarity AS
        WITH live AS ({live}),
        pairs AS (SELECT * FROM _srcpairs SEMI JOIN live USING (seq)),
        pop AS (
            SELECT s.dim, s.value, sum(s.principals) AS n FROM source_popularity s
            SEMI JOIN (SELECT DISTINCT dim, value FROM pairs) p
              ON p.dim = s.dim AND p.value = s.value
            GROUP BY ALL),
        dims AS (
            SELECT p.seq, p.dim, p.value, p.is_new,
                   coalesce(pop.n, 0) + coalesce(sum(p.is_new::INT) OVER (PARTITION BY p.dim, p.value ORDER BY p.seq
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS users
            FROM pairs p LEFT JOIN pop ON pop.dim = p.dim AND pop.value = p.value),
        pn AS (SELECT seq, {population} + coalesce(sum(principal_new::INT) OVER (ORDER BY seq
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS known
               FROM _novelty WHERE principal_new OR seq IN (SELECT seq FROM live))
        SELECT a.seq, a.time, a.principal_id, coalesce(a.principal_type, 'anonymous') AS ptype,
               a.cid, pn.known,
               n.has_history, n.novel_dims,
               sum(CASE WHEN x.is_new OR NOT n.has_history
                        THEN greatest(0, 1 - ln(1 + x.users) / ln(2 + pn.known)) ELSE 0 END)
                   / {len(d['dimensions'])} AS rarity,
               list(x.dim || '=' || x.value || ' (' || x.users || ' before)') FILTER (WHERE x.is_new) AS new_dims,
               max(greatest(0, 1 - ln(1 + x.users) / ln(2 + pn.known))) FILTER (WHERE x.dim = 'fingerprint')
                   AS client_rarity
        FROM {acc} a JOIN _novelty n ON n.seq = a.seq JOIN dims x ON x.seq = a.seq JOIN pn ON pn.seq = a.seq
        WHERE NOT {allowlist_sql(d['allowlist'], 'a')} AND pn.known >= {MIN_POPULATION}
        GROUP BY ALL""")


def _rare(ctx: RunContext, d: dict) -> None:
    """Accounts reached from a rare new source, per client (a tool is one stack) or else per network."""
    con = ctx.con
    acc = ctx.need("_acc_b")
    privileged = ", ".join(f"'{p}'" for p in d["privileged_types"]) or "''"
    cluster = ("CASE WHEN a.client_fingerprint IS NOT NULL THEN {fp} WHEN a.user_agent IS NOT NULL THEN {ua} "
               "ELSE {asn} END").format(
        fp=ek_sql("fingerprint", "r.ptype", "a.client_fingerprint"), ua=ek_sql("user_agent", "r.ptype", "a.user_agent"),
        asn=ek_sql("asn", "r.ptype", "a.src_asn"))
    # The client that links the accounts must itself be rare (a tool), not a popular app that two
    # unrelated travellers happen to share.
    client_rare = "coalesce(r.client_rarity, 1.0)" if "fingerprint" in d["dimensions"] else "1.0"
    pairs = f"""(SELECT {cluster} AS ek, r.seq, r.time, r.principal_id, r.ptype IN ({privileged}) AS privileged
        FROM _rarity r JOIN {acc} a ON a.seq = r.seq
        WHERE r.rarity >= CASE WHEN r.ptype IN ({privileged}) THEN {d['privileged_min_rarity']}
                               ELSE {d['min_rarity']} END
          AND {client_rare} >= {d['min_rarity']})"""
    first_new(con, metric="rare", pairs=pairs, key="principal_id", out="_ns_rare", extra="privileged")
    window = [d["rare_window"]]
    ctx.count((Counter("rare", window, {window[0]: float(d["rare_min_accounts"])}, 0.0, 0.0,
                       on_cross=lambda c, rows: _rare_crossed(c, d, rows)),
               "SELECT ek, time, seq, 1.0 AS w FROM _ns_rare WHERE NOT privileged"),
              (Counter("rarepriv", window, {window[0]: 1.0}, 0.0, 0.0,
                       on_cross=lambda c, rows: _rare_crossed(c, d, rows)),
               "SELECT ek, time, seq, 1.0 AS w FROM _ns_rare WHERE privileged"))


def _rare_crossed(ctx: RunContext, d: dict, rows: list[CrossingRow]) -> None:
    con = ctx.con
    acc = ctx.need("_acc_b")
    home = ctx.cfg.home_country
    for ek, xs in earliest_per_entity(rows).items():
        x = xs[0]
        key = f"rare_source:{x.etype}:{x.ptype}:{x.entity}"
        picked = "SELECT seq FROM _ns_rare WHERE ek = ? AND time >= ?"
        add_candidate_events(con, NAME, f"SELECT ?, a.event_id, a.time FROM {acc} a WHERE a.seq IN ({picked})",
                             [key, x.ek, x.first_time])
        first = con.execute("""SELECT r.principal_id, r.new_dims, r.rarity, r.known, a.src_country FROM _rarity r
            JOIN _ns_rare n ON n.seq = r.seq JOIN _acc a ON a.seq = r.seq WHERE n.ek = ? ORDER BY r.seq LIMIT 1""",
                            [x.ek]).fetchall()
        text = (f"{x.count:,.0f} {x.ptype} account(s) reached within {fmt_window(x.window_s)} through "
                f"{LABEL.get(x.etype, x.etype)} {x.entity} from sources new to them and rare in the population")
        if first:
            who, new_dims, rarity, known, country = first[0]
            text += (f"; first {x.ptype} {who} via {', '.join(new_dims or [])} (rarity {rarity:.2f} among "
                     f"{known:,} known principals)")
            if country and home and country != home:
                text += f"; from abroad ({country}) for a customer base in {home}"
        ctx.add(AlertCandidate(
            detector=NAME, rule="rare_source", dedup_key=key, severity=d["severity"], first_seen=x.first_time,
            detected_at=x.time, last_seen=x.time, etype=x.etype, ptype=x.ptype, entity=x.entity, evidence=text,
            metrics={"accounts": x.count, "window_s": x.window_s},
            entities=lambda x=x, p=picked: top_values(con, acc, f"seq IN ({p})", params=[x.ek, x.first_time]),
            track_eks=[x.ek] if focused(x.etype, x.entity_first_seen, ctx.baseline_at) else []))


def _spread(ctx: RunContext, d: dict) -> None:
    """Distinct established principals reached from a rare source new to them, per source entity."""
    con = ctx.con
    acc = ctx.need("_acc_b")
    etypes = ", ".join(f"'{e}'" for e in d["aggregate_by"])
    novel = f"r.has_history AND r.novel_dims >= {d['min_novel_dimensions']} AND r.rarity >= {d['spread_min_rarity']}"
    vouched = "FALSE"
    if d["spread_vouched_by_login"] and _vouched(ctx, d, novel):
        vouched = "r.seq IN (SELECT seq FROM _ns_vouched)"
    # The few novel arrivals meet their entities by combo (see RunContext._build_ent).
    pairs = f"""(SELECT m.ek, r.seq, r.time, r.principal_id
        FROM _rarity r JOIN _cmap m ON m.cid = r.cid
        WHERE m.etype IN ({etypes}) AND {novel} AND NOT {vouched})"""
    first_new(con, metric="novel", pairs=pairs, key="principal_id", out="_ns_first")
    ctx.count((Counter("novel", d["windows"], d["min_principals"], d["own_factor"], d["peer_factor"],
                       on_cross=lambda c, rows: _crossed(c, d, rows)),
               "SELECT ek, time, seq, 1.0 AS w FROM _ns_first"))


def _vouched(ctx: RunContext, d: dict, novel: str) -> bool:
    """`_ns_vouched`: the novel arrivals whose session a login of their own opened from the same place.

    Decided on the few novel arrivals only, with logins at or before each arrival (no hindsight), looked
    up in the store within `spread_vouch_lookback` of the segment so the scan stays a recent slice.
    """
    con = ctx.con
    acc = ctx.need("_acc_b")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _ns_arrivals AS
        SELECT r.seq, a.time, a.principal_id, a.session_id, a.src_asn, a.src_country
        FROM _rarity r JOIN {acc} a ON a.seq = r.seq WHERE {novel} AND a.session_id IS NOT NULL""")
    lo, hi = con.execute("SELECT min(time), max(time) FROM _ns_arrivals").fetchall()[0]
    if lo is None:
        return False
    con.execute("""CREATE OR REPLACE TEMP TABLE _ns_vouched AS
        SELECT DISTINCT v.seq FROM _ns_arrivals v JOIN events l
          ON l.session_id = v.session_id AND l.principal_id = v.principal_id
        WHERE l.kind = 'login' AND l.time >= ? AND l.time <= ? AND l.time <= v.time
          AND l.src_asn IS NOT DISTINCT FROM v.src_asn AND l.src_country IS NOT DISTINCT FROM v.src_country""",
                [lo - timedelta(seconds=d["spread_vouch_lookback"]), hi])
    return True


def _crossed(ctx: RunContext, d: dict, rows: list[CrossingRow]) -> None:
    con = ctx.con
    acc = ctx.need("_acc_b")
    home = ctx.cfg.home_country
    for ek, xs in earliest_per_entity(rows).items():
        x = xs[0]
        key = f"spread:{x.etype}:{x.ptype}:{x.entity}"
        one_actor = focused(x.etype, x.entity_first_seen, ctx.baseline_at)
        picked = ("SELECT seq FROM _ent WHERE ek = ? AND time >= ?" if one_actor else
                  "SELECT seq FROM _pts WHERE metric = 'novel' AND ek = ? AND time >= ? AND time <= ?")
        params = [x.ek, x.first_time] if one_actor else [x.ek, x.first_time, x.time]
        add_candidate_events(con, NAME, f"SELECT ?, a.event_id, a.time FROM {acc} a WHERE a.seq IN ({picked})",
                             [key, *params])
        label = LABEL.get(x.etype, x.etype)
        texts = [f"{label} {x.entity} reached {r.count:,.0f} established {x.ptype} accounts that had never come "
                 f"from there within {fmt_window(r.window_s)} (its own previous maximum {r.own:,.0f}; peers' level "
                 f"{r.peer:,.0f}; alert level {r.threshold:,.0f}), from {r.first_time:%m-%d %H:%M:%S}" for r in xs]
        if x.etype == "country" and home and x.entity != home:
            texts.append(f"foreign traffic to a customer base in {home}")
        ctx.add(AlertCandidate(
            detector=NAME, rule="spread", dedup_key=key, severity=d["severity"], first_seen=x.first_time,
            detected_at=x.time, last_seen=x.time, etype=x.etype, ptype=x.ptype, entity=x.entity,
            evidence="; ".join(texts),
            metrics={"accounts": x.count, "window_s": x.window_s, "own": x.own, "peer": x.peer,
                     "threshold": x.threshold},
            entities=lambda p=picked, q=params: top_values(con, acc, f"seq IN ({p})", params=q),
            track_eks=[x.ek] if one_actor else [], links=one_actor, attach_on_update=one_actor))
