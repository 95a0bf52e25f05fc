"""volume_anomaly: an entity sending far more requests, bytes or record reads in an hour than it does at that hour.

Bulk theft moves volume: more requests, more bytes out, more records per
response than the same principal, address or network produces at that hour
of the week. Traffic is seasonal (nights, lunch, evenings, sale days), so
each entity is compared with its own level for the same hour of the week
(falling back to the same hour of the day, then to any hour), and a new
entity with its peers' 99th percentile, by a factor wide enough for a sale day.

Logic, per segment:
  hourly  = entity rows (carrying their events' volumes), grouped by (entity, hour): requests, bytes, records
  level   = baselines(vol_*, slot = hour of week | hour of day | any) else peers' p99
  cross   = running sum within the hour (stored + this segment, in event order) >= max(floor, factor x level)
"""
from __future__ import annotations

from breachwatch.detect.alert import AlertCandidate, add_candidate_events, top_values
from breachwatch.detect.context import RunContext, allowlist_sql
from breachwatch.detect.counting import focused
from breachwatch.detect.entities import LABEL

NAME = "volume_anomaly"
# Sums over `_ent` rows (alias {a}), which carry their events' volumes.
METRICS = {"requests": "1.0", "bytes": "{a}.bytes", "subject_reads": "{a}.nsubj"}
WORDS = {"requests": "requests", "bytes": "bytes", "subject_reads": "records read"}


def run(ctx: RunContext) -> None:
    d = ctx.cfg.detectors[NAME]
    if not ctx.accesses:
        return
    con = ctx.con
    ctx.need("_ent")
    acc = ctx.need("_acc_b")
    etypes = ", ".join(f"'{e}'" for e in d["entities"]) or "''"
    # The events themselves are joined only when an allowlist needs their other columns.
    allowed = allowlist_sql(d["allowlist"], "a")
    events = "" if allowed == "FALSE" else f"JOIN {acc} a ON a.seq = v.seq"
    # Added up per combo of sources first (RunContext.combo_sums); distinct endpoints as each combo's
    # set of them, counted once the sets of an entity's combos are put together.
    sums = {m: (f"sum({expr.format(a='v')})", "sum") for m, expr in METRICS.items()}
    sums.update(errors=("sum(CASE WHEN v.err THEN 1.0 ELSE 0.0 END)", "sum"), endpoints=("list(DISTINCT v.ep)", "list"))
    totals = ctx.combo_sums("time_bucket(INTERVAL 1 HOUR, v.time)", sums, etypes, joins=events, where=f"NOT {allowed}")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _va_tot AS
        SELECT ek, bucket AS hour, {", ".join(METRICS)}, errors,
               list_unique(flatten(endpoints))::BIGINT AS endpoints
        FROM ({totals})""")
    if d["enabled"] and not ctx.learn_only:
        _cross(ctx, d)
    # Kept for baselines and for ml_outlier, whether or not this detector alerts.
    con.execute("""INSERT INTO entity_hours
        SELECT ek, hour, requests, bytes, subject_reads, errors, endpoints FROM _va_tot ORDER BY hour""")


def _cross(ctx: RunContext, d: dict) -> None:
    """All three metrics at once: entities past a floor this hour, then their levels, then the crossing event."""
    con = ctx.con
    factor = float(d["factor"])
    floor = " OR ".join(f"x.{m} + coalesce(h.{m}, 0) >= {float(d[f'min_{m}'])}" for m in METRICS)
    # Only entities past an absolute floor can cross; an entity-hour that already alerted is one alert.
    n = con.execute(f"""CREATE OR REPLACE TEMP TABLE _va_floor AS
        WITH prior AS (SELECT h.ek, h.hour, {", ".join(f"sum(h.{m}) AS {m}" for m in METRICS)} FROM entity_hours h
                       SEMI JOIN _va_tot x ON x.ek = h.ek AND x.hour = h.hour
                       WHERE h.hour >= (SELECT min(hour) FROM _va_tot) GROUP BY ALL)
        SELECT x.ek, x.hour, (isodow(x.hour) - 1) * 24 + hour(x.hour) AS slot,
               {", ".join(f"x.{m} AS {m}, coalesce(h.{m}, 0) AS stored_{m}" for m in METRICS)}
        FROM _va_tot x LEFT JOIN prior h ON h.ek = x.ek AND h.hour = x.hour
        WHERE ({floor}) AND NOT EXISTS (SELECT 1 FROM counter_alerted c WHERE c.metric = 'volume' AND c.ek = x.ek
                                        AND c.window_s = epoch(x.hour))""").fetchall()[0][0]
    if not n:
        return
    levels = []
    for m in METRICS:
        levels.append(f"greatest({float(d[f'min_{m}'])}, {factor} * coalesce(l_{m}.levels[t.slot + 1], l_{m}.top, "
                      f"p_{m}.value, 0)) AS thr_{m}, coalesce(l_{m}.levels[t.slot + 1], l_{m}.top) AS own_{m}, "
                      f"p_{m}.value AS peer_{m}")
    joins = "\n".join(
        f"LEFT JOIN volume_levels l_{m} ON l_{m}.ek = t.ek AND l_{m}.metric = '{m}' "
        f"LEFT JOIN baselines p_{m} ON p_{m}.scope = 'peer' AND p_{m}.metric = 'vol_{m}' AND p_{m}.etype = r.etype "
        f"AND p_{m}.ptype = r.ptype" for m in METRICS)
    reach = " OR ".join(f"stored_{m} + {m} >= thr_{m}" for m in METRICS)
    n = con.execute(f"""CREATE OR REPLACE TEMP TABLE _va_cand AS
        SELECT * FROM (SELECT t.*, {", ".join(levels)} FROM _va_floor t JOIN entity_registry r ON r.ek = t.ek {joins})
        WHERE {reach}""").fetchall()[0][0]
    if not n:
        return
    cols = ", ".join(f"{expr.format(a='e')} AS {m}" for m, expr in METRICS.items())
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _va_rows AS
        SELECT e.ek, e.seq, e.time, time_bucket(INTERVAL 1 HOUR, e.time) AS hour, {cols}
        FROM _ent e SEMI JOIN _va_cand c ON c.ek = e.ek""")
    crossed: dict[tuple, tuple] = {}
    for metric in METRICS:
        rows = con.execute(f"""
            SELECT x.ek, r.etype, r.ptype, r.entity, x.hour, x.seq, x.time, x.running, x.thr, x.own, x.peer,
                   r.first_seen FROM (
                SELECT v.ek, v.hour, v.seq, v.time, c.thr_{metric} AS thr, c.own_{metric} AS own,
                       c.peer_{metric} AS peer,
                       c.stored_{metric} + sum(v.{metric}) OVER (PARTITION BY v.ek, v.hour ORDER BY v.time, v.seq
                                                                ROWS UNBOUNDED PRECEDING) AS running
                FROM _va_rows v JOIN _va_cand c ON c.ek = v.ek AND c.hour = v.hour) x
            JOIN entity_registry r ON r.ek = x.ek
            WHERE x.running >= x.thr
            QUALIFY row_number() OVER (PARTITION BY x.ek, x.hour ORDER BY x.time, x.seq) = 1""").fetchall()
        for row in rows:
            # The first metric to cross in an entity-hour decides it.
            k = (row[0], row[4])
            if k not in crossed or (row[6], row[5]) < (crossed[k][1][6], crossed[k][1][5]):
                crossed[k] = (metric, row)
    for (ek, hour), (metric, row) in crossed.items():
        _candidate(ctx, d, metric, row)
    if crossed:
        con.execute(f"INSERT INTO counter_alerted VALUES {', '.join('(?, ?, epoch(?::TIMESTAMP), ?, ?)' for _ in crossed)}",
                    [x for (ek, hour), (m, row) in crossed.items() for x in ("volume", ek, hour, row[6], row[6])])


def _candidate(ctx: RunContext, d: dict, metric: str, row: tuple) -> None:
    con = ctx.con
    acc = ctx.need("_acc_b")
    ek, etype, ptype, entity, hour, seq, time, running, thr, own, peer, first_seen = row
    key = f"{metric}:{etype}:{ptype}:{entity}"
    one_actor = focused(etype, first_seen, ctx.baseline_at)
    # One actor: the whole hour so far; a crowd: only up to the crossing (it is a snapshot).
    add_candidate_events(con, NAME, f"""SELECT ?, a.event_id, a.time FROM {acc} a
        WHERE a.seq IN (SELECT seq FROM _va_rows WHERE ek = ? AND hour = ?) AND (? OR a.time <= ?)""",
                         [key, ek, hour, one_actor, time])
    usual = (f"its usual level at this hour {own:,.0f}" if own is not None
             else f"peers' 99th percentile {peer or 0:,.0f} (no history of its own)")
    ctx.add(AlertCandidate(
        detector=NAME, rule=metric, dedup_key=key, severity=d["severity"], first_seen=hour, detected_at=time,
        last_seen=time, etype=etype, ptype=ptype, entity=entity,
        evidence=(f"{LABEL.get(etype, etype)} {entity} ({ptype} traffic) reached {running:,.0f} {WORDS[metric]} "
                  f"in the hour from {hour:%m-%d %H:%M} ({usual}; alert level {thr:,.0f})"),
        metrics={"metric": metric, "value": running, "threshold": thr, "own": own, "peer": peer},
        entities=lambda: top_values(con, acc, "seq IN (SELECT seq FROM _va_rows WHERE ek = ? AND hour = ?)",
                                    params=[ek, hour]),
        track_eks=[ek] if one_actor else [], links=one_actor, attach_on_update=one_actor))
