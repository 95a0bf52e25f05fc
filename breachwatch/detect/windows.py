"""Sliding-window counts with per-event answers, over a batch plus stored buckets.

A detector turns events into points: (metric, entity key `ek`, time, seq,
weight), e.g. "this IP touched a person it had never touched before". For a
window W the count at a point e is the weight of the entity's points from
the start of W up to and including e:

    count(e) = stored buckets at or after start(e)          (earlier runs)
             + points of this batch up to e, less those before start(e)

with start(e) = bucket(e.time) - W, buckets being minutes for windows under a
day and hours otherwise. The count depends only on points at or before e, so
the first point where it reaches a threshold is the same whether events came
in one batch or in a thousand: detection time is event time, without hindsight.
"""
from __future__ import annotations

import duckdb

DAY_S = 86_400


def gran_for(window_s: float) -> int:
    return 60 if window_s < DAY_S else 3600


def crossings_for_window(con: duckdb.DuckDBPyConnection, *, metric: str, points: str, candidates: str,
                         window_s: float) -> list[tuple]:
    """First crossing per candidate entity for one (metric, window).

    `candidates` has (metric, ek, window_s, thr, own, peer). Returns rows of
    (ek, etype, ptype, entity, window_s, seq, time, count, thr, own, peer, first_time, entity first seen).
    """
    g = gran_for(window_s)
    w = int(window_s)
    gi = f"INTERVAL {g} SECOND"
    gran = "m" if g == 60 else "h"
    return con.execute(f"""
        WITH cand AS (SELECT ek, thr, own, peer FROM {candidates} WHERE metric = ? AND window_s = ?),
        pts AS (
            SELECT p.ek, p.time, p.seq, p.w, c.thr, c.own, c.peer, time_bucket({gi}, p.time) AS b,
                   time_bucket({gi}, p.time) - INTERVAL {w} SECOND AS start
            FROM {points} p JOIN cand c ON c.ek = p.ek WHERE p.metric = ?),
        cum AS (
            SELECT *,
              sum(w) OVER (PARTITION BY ek ORDER BY time, seq ROWS UNBOUNDED PRECEDING) AS upto,
              coalesce(sum(w) OVER (PARTITION BY ek ORDER BY b
                       RANGE BETWEEN UNBOUNDED PRECEDING AND INTERVAL {w + g} SECOND PRECEDING), 0) AS before,
              min(time) OVER (PARTITION BY ek ORDER BY b
                       RANGE BETWEEN INTERVAL {w} SECOND PRECEDING AND CURRENT ROW) AS first_in_batch
            FROM pts),
        stored AS (
            SELECT ek, bucket, sum(n) OVER (PARTITION BY ek ORDER BY bucket DESC ROWS UNBOUNDED PRECEDING) AS suf
            FROM (SELECT b.ek, b.bucket, sum(b.n) AS n FROM counter_buckets b SEMI JOIN cand c ON c.ek = b.ek
                  WHERE b.metric = ? AND b.gran = '{gran}'
                    AND b.bucket >= (SELECT min(start) FROM pts) GROUP BY ALL)),
        counted AS (
            SELECT cum.ek, cum.time, cum.seq, cum.thr, cum.own, cum.peer,
                   coalesce(s.suf, 0) + cum.upto - cum.before AS count,
                   CASE WHEN s.bucket IS NOT NULL THEN least(s.bucket, cum.first_in_batch)
                        ELSE cum.first_in_batch END AS first_time
            FROM cum ASOF LEFT JOIN stored s ON cum.ek = s.ek AND cum.start <= s.bucket)
        SELECT c.ek, r.etype, r.ptype, r.entity, {float(window_s)}, c.seq, c.time, c.count, c.thr, c.own, c.peer,
               c.first_time, r.first_seen
        FROM counted c JOIN entity_registry r ON r.ek = c.ek
        WHERE c.count >= c.thr
        QUALIFY row_number() OVER (PARTITION BY c.ek ORDER BY c.time, c.seq) = 1""",
                       [metric, window_s, metric, metric]).fetchall()
