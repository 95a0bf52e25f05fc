"""Windowed counters shared by the counting detectors: points in, first threshold crossings out.

A detector declares a counter (metric name, windows, floors, factors, and what
to do with a crossing) and appends its points to `_pts` (metric, ek, time,
seq, w). After every detector has run, the engine counts all metrics in one
pass:

    thresholds = max(floor, own_factor x own level, peer_factor x peers' level) per entity and window
    candidates = entities whose stored count (from the earliest window start) plus this
                 segment's points reach a threshold             -- one aggregate over everything
    crossings  = for candidates only, the first point where the count reaches it (windows.py)
    buckets    = the points, appended as minute and hour buckets for later runs and learning

so a quiet segment costs a handful of statements however many metrics exist.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from breachwatch.detect.windows import crossings_for_window, gran_for

POINTS = "_pts"
NARROW = ("principal", "ip", "token")
CLIENT = ("fingerprint", "user_agent")


def focused(etype: str, first_seen: datetime | None, baseline_at: datetime | None) -> bool:
    """Is the alerting entity one actor, or a crowd?

    A principal or an IP is one actor, and so is a client (fingerprint, user agent) never seen
    before the baselines were learned: a new tool. Everything such an entity does next belongs
    to the pattern, is tracked, and its principals and IPs may link incidents. A crowd (a
    country, a network, a popular app version) is not: only the events that counted toward
    its crossing belong to the alert, however small its history, because unrelated people
    share it.
    """
    if etype in NARROW:
        return True
    return etype in CLIENT and first_seen is not None and (baseline_at is None or first_seen >= baseline_at)


@dataclass
class CrossingRow:
    ek: int
    etype: str
    ptype: str
    entity: str
    window_s: float
    seq: int
    time: datetime
    count: float
    threshold: float
    own: float
    peer: float
    first_time: datetime
    entity_first_seen: datetime | None = None


@dataclass
class Counter:
    metric: str
    windows: list[float]
    floors: dict[float, float]
    own_factor: float
    peer_factor: float
    on_cross: Callable[[object, list[CrossingRow]], None] = field(repr=False, default=None)  # type: ignore[assignment]


def reset_points(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {POINTS} (metric VARCHAR, ek UBIGINT, time TIMESTAMP, seq BIGINT, "
                "w DOUBLE)")


def first_new(con: duckdb.DuckDBPyConnection, *, metric: str, pairs: str, key: str, out: str,
              extra: str = "") -> None:
    """`out` = the first row of each (ek, key) pair in `pairs` never seen in earlier runs; then remember them.

    `pairs` (a table or a parenthesised query) has ek, seq, time and the `key` column; `extra` lists
    more columns to carry (taken at the first row).
    """
    carried = [c for c in (x.strip() for x in extra.split(",")) if c]
    # The first row is the least by (seq, time, the carried columns in order): one request holding the key
    # twice is one seq, and its rows are told apart by the values, so reruns agree. Every carried value
    # comes from that one row, NULL or not (arg_min per column skipped NULLs and so could take a later
    # row's value, which then depended on whether that row fell in the same pass), and one struct minimum
    # costs half as much as an arg_min per column.
    first = "{" + ", ".join(f"'{c}': {c}" for c in ["seq", "time", *carried]) + "}"
    # Pairs seen before are dropped row by row, before grouping: most rows are of such pairs.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {out} AS
        SELECT ek, {key}, f.seq, f.time, h {''.join(f', f.{c}' for c in carried)}
        FROM (SELECT ek, {key}, h, min({first}) AS f
              FROM (SELECT *, hash(ek, {key}) AS h FROM {pairs}) p
              WHERE NOT EXISTS (SELECT 1 FROM seen_{metric} s WHERE s.h = p.h)
              GROUP BY ek, {key}, h)""")
    con.execute(f"INSERT INTO seen_{metric} SELECT h FROM {out}")


def count_all(con: duckdb.DuckDBPyConnection, counters: list[Counter], *, learn_only: bool,
              ctx: object, gap: float = 3600.0) -> None:
    """Thresholds, crossings and buckets for every counter's points of this segment."""
    if not counters:
        return
    present = dict(con.execute(f"SELECT metric, count(*) FROM {POINTS} GROUP BY metric").fetchall())
    active = [c for c in counters if present.get(c.metric)]
    if not active:
        return
    if not learn_only:
        rows = _crossings(con, active, gap)
        for c in active:
            mine = [r for m, r in rows if m == c.metric]
            if mine and c.on_cross is not None:
                c.on_cross(ctx, mine)
    con.execute(f"""INSERT INTO counter_buckets
        SELECT metric, 'm', ek, time_bucket(INTERVAL 1 MINUTE, time) AS b, sum(w) FROM {POINTS} GROUP BY ALL
        UNION ALL
        SELECT metric, 'h', ek, time_bucket(INTERVAL 1 HOUR, time) AS b, sum(w) FROM {POINTS} GROUP BY ALL""")


def _crossings(con: duckdb.DuckDBPyConnection, counters: list[Counter], gap: float) -> list[tuple[str, CrossingRow]]:
    specs = []
    for c in counters:
        for w in c.windows:
            specs.append(f"('{c.metric}', {float(w)}, {gran_for(w)}, {float(c.floors[w])}, {float(c.own_factor)}, "
                         f"{float(c.peer_factor)})")
    wins = f"(VALUES {', '.join(specs)}) w(metric, window_s, gran_s, floor, own_factor, peer_factor)"
    lo = con.execute(f"SELECT min(time) - INTERVAL 32 DAY FROM {POINTS}").fetchall()[0][0]
    # Thresholds and the cheap upper bound, for every (metric, entity, window) in one pass.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _cc_cand AS
        WITH tot AS (SELECT metric, ek, sum(w) AS total, min(time) AS t0 FROM {POINTS} GROUP BY metric, ek),
             th AS (
                SELECT t.metric, t.ek, w.window_s, w.gran_s, t.total,
                       time_bucket(to_seconds(w.gran_s::BIGINT), t.t0) - to_seconds(w.window_s::BIGINT) AS start0,
                       greatest(w.floor, w.own_factor * coalesce(o.value, 0), w.peer_factor * coalesce(p.value, 0)) AS thr,
                       coalesce(o.value, 0) AS own, coalesce(p.value, 0) AS peer
                FROM tot t JOIN {wins} ON w.metric = t.metric
                JOIN entity_registry r ON r.ek = t.ek
                LEFT JOIN baselines o ON o.scope = 'own' AND o.metric = t.metric AND o.window_s = w.window_s
                     AND o.ek = t.ek
                LEFT JOIN baselines p ON p.scope = 'peer' AND p.metric = t.metric AND p.window_s = w.window_s
                     AND p.etype = r.etype AND p.ptype = r.ptype),
             quick AS (SELECT * FROM th WHERE total >= thr),
             st AS (SELECT th.metric, th.ek, th.window_s, sum(b.n) AS stored
                    FROM th JOIN counter_buckets b ON b.metric = th.metric AND b.ek = th.ek
                     AND b.gran = CASE WHEN th.gran_s = 60 THEN 'm' ELSE 'h' END AND b.bucket >= th.start0
                    WHERE b.bucket >= ?::TIMESTAMP AND th.total < th.thr
                    GROUP BY ALL)
        SELECT metric, ek, window_s, thr, own, peer FROM quick
        UNION ALL
        SELECT th.metric, th.ek, th.window_s, th.thr, th.own, th.peer FROM th
        JOIN st ON st.metric = th.metric AND st.ek = th.ek AND st.window_s = th.window_s
        WHERE st.stored + th.total >= th.thr""", [lo])
    if not con.execute("SELECT count(*) FROM _cc_cand").fetchall()[0][0]:
        return []
    # A window that crossed recently and is still over its level is the same crossing going on:
    # keep it alive instead of looking for a first crossing again (a campaign stays one alert).
    lo_seg, hi_seg = con.execute(f"SELECT min(time), max(time) FROM {POINTS}").fetchall()[0]
    live = f"c.seen_at >= ?::TIMESTAMP - INTERVAL {int(gap)} SECOND"
    con.execute(f"""UPDATE counter_alerted c SET seen_at = greatest(c.seen_at, ?) FROM _cc_cand k
        WHERE c.metric = k.metric AND c.ek = k.ek AND c.window_s = k.window_s AND {live}""", [hi_seg, lo_seg])
    con.execute(f"""DELETE FROM _cc_cand k WHERE EXISTS (SELECT 1 FROM counter_alerted c WHERE c.metric = k.metric
        AND c.ek = k.ek AND c.window_s = k.window_s AND {live})""", [lo_seg])
    found = con.execute("SELECT DISTINCT metric, window_s FROM _cc_cand").fetchall()
    out: list[tuple[str, CrossingRow]] = []
    for metric, window_s in found:
        rows = crossings_for_window(con, metric=metric, points=POINTS, candidates="_cc_cand", window_s=window_s)
        out += [(metric, CrossingRow(*r)) for r in rows]
    if out:
        con.execute("DELETE FROM counter_alerted c WHERE EXISTS (SELECT 1 FROM _cc_cand k WHERE c.metric = k.metric "
                    "AND c.ek = k.ek AND c.window_s = k.window_s)")
        values = ", ".join("(?, ?, ?, ?, ?)" for _ in out)
        con.execute(f"INSERT INTO counter_alerted VALUES {values}",
                    [x for m, r in out for x in (m, r.ek, r.window_s, r.time, hi_seg)])
    return out


def earliest_per_entity(rows: list[CrossingRow]) -> dict[int, list[CrossingRow]]:
    """Crossings grouped by entity, earliest first (the first one decides the detection time)."""
    by: dict[int, list[CrossingRow]] = {}
    for r in rows:
        by.setdefault(r.ek, []).append(r)
    for v in by.values():
        v.sort(key=lambda r: (r.time, r.seq, r.window_s))
    return by
