"""Learned baselines: what each entity, and its peers, normally do.

Thresholds are never absolute counts alone. For a counter metric and window
W, an entity's own level is the largest count it reached in any W-long window
of the history (from hourly buckets, so a slight overestimate, which errs
towards silence); its peers' level is a high quantile of the own levels of
entities of the same type used by the same principal type. A detector alerts
when a count reaches max(floor, own_factor x own, peer_factor x peers).

Baselines are recomputed at fixed event-time points (every `baseline_refresh`
after the last one), never mid-decision, so the same events always meet the
same thresholds however they were batched.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta

import duckdb

from breachwatch.detect import daycache
from breachwatch.detect.config import DetectConfig

# An entity's peer group as a number, from its registry row `r` (NULL when it has none).
PEER_GROUP = "CASE WHEN r.ek IS NOT NULL THEN hash(r.etype, r.ptype) END"
# Each peer group's number with its entity type and principal type.
_PEER_NAMES = f"(SELECT DISTINCT {PEER_GROUP} AS grp, etype, ptype FROM entity_registry r)"

# Counter metrics, the detector whose settings govern them, and its setting for the windows.
COUNTER_METRICS = {
    "subj": "enumeration",
    "inactive": "enumeration",
    "walk": "enumeration",
    "noreason": "enumeration",
    "authfail": "enumeration",
    "novel": "novel_source",
}


def refresh(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, until: datetime) -> None:
    """Replace all baselines with ones learned from the history before `until`.

    Actors under an incident that is not a false positive (a principal, an IP, a new tool: the
    focused alerts) teach nothing, neither their own level nor their peers' (a stale credential's
    night of reads must not become what staff do). Crowds keep learning: an attack is a small
    part of a country's traffic, and dropping the country's own level would make every ordinary
    hour of it look new.
    """
    since = until - timedelta(seconds=cfg.engine["baseline_history"])
    con.execute("DELETE FROM baselines WHERE scope IN ('own', 'peer')")
    con.execute("""CREATE OR REPLACE TEMP TABLE _suspect AS
        SELECT DISTINCT hash(a.etype, a.ptype, a.entity) AS ek FROM alerts a
        JOIN incidents i ON i.incident_id = a.incident_id
        WHERE a.status = 'raised' AND a.links AND i.status <> 'false_positive' AND a.ptype IS NOT NULL""")
    # Every metric and window reads the same hourly counts: aggregate them once.
    con.execute("""CREATE OR REPLACE TEMP TABLE _bl_hours AS
        SELECT metric, ek, bucket, sum(n) AS n FROM counter_buckets b
        WHERE gran = 'h' AND bucket >= ? AND bucket < ? AND NOT EXISTS (SELECT 1 FROM _suspect s WHERE s.ek = b.ek)
        GROUP BY ALL""", [since, until])
    _counter_baselines(con, {metric: cfg.detectors[det] for metric, det in COUNTER_METRICS.items()
                             if cfg.detectors[det]["enabled"]})
    _volume_baseline(con, cfg, since, until)
    _prune(con, cfg, until)


def _prune(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, until: datetime) -> None:
    """Drop state no window can reach any more: minute buckets past the longest sub-day window,
    anything past the longest window or the learning history."""
    longest = max([w for det in ("enumeration", "novel_source") for w in cfg.detectors[det]["windows"]]
                  + [cfg.engine["baseline_history"]])
    sub_day = max([w for det in ("enumeration", "novel_source") for w in cfg.detectors[det]["windows"]
                   if w < 86_400] + [3600.0])
    con.execute(f"DELETE FROM counter_buckets WHERE gran = 'm' AND bucket < ?::TIMESTAMP - INTERVAL {int(sub_day) + 3600} SECOND",
                [until])
    con.execute(f"DELETE FROM counter_buckets WHERE bucket < ?::TIMESTAMP - INTERVAL {int(longest) + 3600} SECOND", [until])
    con.execute(f"DELETE FROM counter_alerted WHERE seen_at < ?::TIMESTAMP - INTERVAL {int(longest)} SECOND", [until])


def _counter_baselines(con: duckdb.DuckDBPyConnection, settings: dict[str, dict]) -> None:
    """Own and peer levels of every counter metric (with its detector's `windows` and `peer_quantile`)
    for each of its windows, from the history's hourly counts (`_bl_hours`).

    All metrics and windows at once (a statement per metric and step, 18 per refresh, cost more): the
    rolling sums share one ordering of each entity's hours, and each (metric, window)'s levels are a
    view over them, read by the own levels' insert and by the peers' quantiles.
    """
    if not settings:
        return
    # Rolling sums over hours+1 hourly buckets bound every W-long window from above; windows that round
    # to the same number of hours share one sum.
    hours = {m: {int(w): max(1, math.ceil(w / 3600)) for w in d["windows"]} for m, d in settings.items()}
    spans = sorted({h for by_w in hours.values() for h in by_w.values()})
    col = {h: f"r{i}" for i, h in enumerate(spans)}
    rolling = ", ".join(f"sum(n) OVER (PARTITION BY metric, ek ORDER BY bucket RANGE BETWEEN INTERVAL {h} HOUR "
                        f"PRECEDING AND CURRENT ROW) AS {col[h]}" for h in spans)
    metrics = ", ".join(f"'{m}'" for m in settings)  # the fixed names of COUNTER_METRICS
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _bl_own AS
        SELECT o.*, {PEER_GROUP} AS grp FROM (
            SELECT metric, ek, count(*) AS samples, {", ".join(f"max({c}) AS {c}" for c in col.values())}
            FROM (SELECT metric, ek, {rolling} FROM _bl_hours WHERE metric IN ({metrics})) GROUP BY metric, ek) o
        LEFT JOIN entity_registry r ON r.ek = o.ek""")
    # One row per (metric, window): which rolling sum is its level.
    pairs = ", ".join(f"('{m}', {w}, '{col[h]}')" for m, by_w in hours.items() for w, h in by_w.items())
    own = " UNION ALL ".join(f"SELECT o.metric, p.w, o.ek, o.{c} AS value, o.samples, o.grp FROM _bl_own o "
                             f"JOIN p ON p.metric = o.metric AND p.c = '{c}'" for c in col.values())
    con.execute(f"""CREATE OR REPLACE TEMP VIEW _bl_own_w AS
        WITH p AS (SELECT * FROM (VALUES {pairs}) p(metric, w, c)) {own}""")
    con.execute("""INSERT INTO baselines (scope, metric, window_s, ek, value, samples, slot)
        SELECT 'own', metric, w, ek, value, samples, -1 FROM _bl_own_w""")
    # Peers: a quantile per (metric, window, peer group) over the own levels of entities in the registry,
    # one statement per distinct quantile the detectors ask for.
    by_q: dict[float, list[str]] = {}
    for m, d in settings.items():
        by_q.setdefault(float(d["peer_quantile"]), []).append(f"'{m}'")
    for q, ms in by_q.items():
        con.execute(f"""
            INSERT INTO baselines (scope, metric, window_s, etype, ptype, value, samples, slot)
            SELECT 'peer', v.metric, v.w, g.etype, g.ptype, v.value, v.samples, -1 FROM (
                SELECT metric, w, grp, quantile_cont(value, {q}) AS value, count(*) AS samples FROM _bl_own_w
                WHERE grp IS NOT NULL AND metric IN ({", ".join(ms)}) GROUP BY metric, w, grp) v
            JOIN {_PEER_NAMES} g ON g.grp = v.grp""")


def _volume_baseline(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, since: datetime, until: datetime) -> None:
    """Per entity and volume metric its busiest hour, and for entities big enough that it matters, 168
    hour-of-week levels (gaps filled from the same hour of the day, then the busiest hour); per peer
    group, the 99th percentile hour. Small entities never reach the floors, so they keep one number."""
    d = cfg.detectors["volume_anomaly"]
    con.execute("DELETE FROM volume_levels")
    metrics = ("requests", "bytes", "subject_reads")
    on, tops = ", ".join(metrics), ", ".join(f"max({m}) AS {m}" for m in metrics)
    _hours(con, since, until, metrics)
    # Each entity's busiest hour, for all three metrics in one pass.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _bl_top AS
        SELECT ek, {tops} FROM _bl_volume GROUP BY ek""")
    # All three metrics' hour-of-week levels in one pass over the hours (a pass per metric cost three):
    # the grid is built for entities big in any metric, and each metric keeps the levels only of
    # entities big in it. The maxima per slot are the same whichever entities share the pass.
    big = {m: float(d[f"min_{m}"]) / max(float(d["factor"]), 1.0) for m in metrics}
    is_big = {m: f"a.{m} >= {big[m]}" for m in metrics}
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _bl_levels AS
        WITH h AS (SELECT ek, (isodow(hour) - 1) * 24 + hour(hour) AS slot, hour(hour) AS hod, {on}
                   FROM _bl_volume),
             bigs AS (SELECT * FROM _bl_top a WHERE {" OR ".join(is_big.values())}),
             week AS (SELECT h.ek, slot, {tops} FROM h SEMI JOIN bigs b ON b.ek = h.ek GROUP BY ALL),
             day AS (SELECT h.ek, hod, {tops} FROM h SEMI JOIN bigs b ON b.ek = h.ek GROUP BY ALL)
        SELECT a.ek, {", ".join(f"list(coalesce(w.{m}, d.{m}, a.{m}) ORDER BY s.slot) AS {m}" for m in metrics)}
        FROM bigs a CROSS JOIN range(168) s(slot)
        LEFT JOIN week w ON w.ek = a.ek AND w.slot = s.slot
        LEFT JOIN day d ON d.ek = a.ek AND d.hod = s.slot % 24
        GROUP BY a.ek""")
    for metric in metrics:
        con.execute(f"""INSERT INTO volume_levels
            SELECT a.ek, '{metric}', a.{metric}, CASE WHEN {is_big[metric]} THEN r.{metric} END
            FROM _bl_top a LEFT JOIN _bl_levels r ON r.ek = a.ek""")
    con.execute("DROP TABLE _bl_levels")
    # The peer levels of the three metrics from one pass over the hours (three passes cost three times as much).
    quantiles = ", ".join(f"quantile_cont({m}, 0.99) AS {m}" for m in metrics)
    con.execute(f"""
        INSERT INTO baselines (scope, metric, window_s, etype, ptype, slot, value, samples)
        SELECT 'peer', 'vol_' || metric, 0, etype, ptype, 300, value, samples FROM (
            UNPIVOT (SELECT g.etype, g.ptype, v.samples, {on} FROM (
                         SELECT grp, count(*) AS samples, {quantiles} FROM _bl_volume
                         WHERE grp IS NOT NULL GROUP BY grp) v
                     JOIN {_PEER_NAMES} g ON g.grp = v.grp)
            ON {on} INTO NAME metric VALUE value)""")


def _hours(con: duckdb.DuckDBPyConnection, since: datetime, until: datetime, metrics: tuple[str, ...]) -> None:
    """`_bl_volume`: the history's hourly volumes per entity (rows of several runs added up), less suspects.

    Whole days are compacted once and kept between refreshes (daycache.py); the ends are read anew.
    """
    sums = ", ".join(f"sum({m}) AS {m}" for m in metrics)
    days = daycache.whole_days(since, until)

    # Each hour carries its entity's peer group (a hash of entity type and principal type), looked up once
    # when its day is compacted: the peer levels group the hours by it, and a join of every hour of the
    # history to the registry at every refresh cost more than the quantiles themselves. (The registry
    # only grows, and an entity is registered before its first hour is stored, so the answer never
    # changes.) A number, not the two names: copying two strings per hour cost what the join saved.
    grouped = f"SELECT d.*, {PEER_GROUP} AS grp FROM ({{}}) d LEFT JOIN entity_registry r ON r.ek = d.ek"

    def compute(missing: list[datetime]) -> None:
        days_sql = f"""SELECT date_trunc('day', hour) AS day, ek, hour, {sums} FROM entity_hours
            WHERE hour >= ? AND hour < ? AND date_trunc('day', hour) IN (SELECT unnest(?::TIMESTAMP[])) GROUP BY ALL"""
        con.execute(f"INSERT INTO _kept_hours {grouped.format(days_sql)}",
                    [missing[0], missing[-1] + daycache.DAY, missing])

    kept = daycache.keep(con, "hours", table="entity_hours", column="hour", days=days, key="", reach=False,
                         columns=f"ek UBIGINT, hour TIMESTAMP, {', '.join(f'{m} DOUBLE' for m in metrics)}, "
                                 "grp UBIGINT",
                         compute=compute)
    ends = daycache.ends(since, until, days)
    fresh = " OR ".join("(hour >= ? AND hour < ?)" for _ in ends) or "FALSE"
    fresh_sql = f"SELECT ek, hour, {sums} FROM entity_hours WHERE {fresh} GROUP BY ek, hour"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _bl_volume AS
        SELECT * FROM (
            SELECT ek, hour, {", ".join(metrics)}, grp FROM {kept} WHERE day IN (SELECT unnest(?::TIMESTAMP[]))
            UNION ALL
            {grouped.format(fresh_sql)}) h
        WHERE NOT EXISTS (SELECT 1 FROM _suspect s WHERE s.ek = h.ek)""", [days, *(t for span in ends for t in span)])
