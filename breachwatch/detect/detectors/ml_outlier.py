"""ml_outlier: an entity whose last hour, taken as a whole, looks like nothing its peers ever did.

Single counters miss a campaign that stays just under each threshold at once;
a multivariate model sees the unusual shape (each request a new person, from a
source new to its account, many misses, many records per request). An
IsolationForest per entity type and principal type (its peers: a partner's
network is compared with partners' networks, whose every lookup is a new buyer,
not with customers'), trained on the history's per-entity, per-hour feature
vectors, scores each active entity at fixed event-time checkpoints; the
evidence names the features that drove the score.

Logic:
  steps      = per (entity, step bucket): requests, bytes, records, errors, first touches,
               novel-source events                                     (sums, appended every segment)
  checkpoint = every `step` of event time the gateway feed's watermark has passed
  vector     = sums over the `window` before the checkpoint, for entities active in the last step
  alert      = IsolationForest decision (the model of its peers) below -score_margin (past the paper's 0.5
               anomaly line) and at least min_features_beyond features above anything in the history of
               its entity type (all principal types), with at least
               min_requests in the window; detected at the entity's last event before the checkpoint
"""
from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta

import numpy as np
import pyarrow.compute as pc

from breachwatch.detect import daycache
from breachwatch.detect.alert import AlertCandidate, add_candidate_events
from breachwatch.detect.context import RunContext
from breachwatch.detect.counting import NARROW
from breachwatch.detect.entities import LABEL, value_sql

NAME = "ml_outlier"
# Shapes, not volumes: a sale day triples every volume but changes none of these; a tool walking
# through other people's records changes several at once.
FEATURES = ("error share", "records per request", "bytes per request", "new-people share", "novel-source share")
# Only sums: a step written by several runs adds up to the same vector however events were batched.
_SUMS = ("requests", "bytes", "subject_reads", "errors", "new_subjects", "novel")
_MODELS: dict[tuple, dict] = {}
_FITTING: dict[tuple, Future] = {}
_FITTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ml-fit")


def _vector_sql(alias: str = "") -> str:
    p = f"{alias}." if alias else ""
    return (f"[{p}errors / {p}requests, {p}subject_reads / {p}requests, ln(1 + {p}bytes / {p}requests), "
            f"{p}new_subjects / {p}requests, {p}novel / {p}requests]")


def run(ctx: RunContext) -> None:
    d = ctx.cfg.detectors[NAME]
    if not d["enabled"]:
        return
    if ctx.accesses:
        _record_steps(ctx, d)
    if ctx.learn_only:
        ctx.stats["ml_checkpoint"] = _last_checkpoint(ctx, d)
        return
    _score_checkpoints(ctx, d)


def _record_steps(ctx: RunContext, d: dict) -> None:
    con = ctx.con
    ctx.need("_ent")
    ctx.need("_novelty")
    step = int(d["step"])
    bucket = f"time_bucket(INTERVAL {step} SECOND, {{t}})"
    etypes = ", ".join(f"'{e}'" for e in d["entities"]) or "''"
    steps = ctx.combo_sums(bucket.format(t="v.time"), {
        "last_time": ("max(v.time)", "max"), "requests": ("count(*)", "sum"), "bytes": ("sum(v.bytes)", "sum"),
        "nsubj": ("sum(v.nsubj)", "sum"), "errors": ("sum(CASE WHEN v.err THEN 1 ELSE 0 END)", "sum"),
        "novel": ("sum(CASE WHEN n.novel_dims > 0 OR NOT n.has_history THEN 1 ELSE 0 END)", "sum")},
        etypes, joins="JOIN _novelty n ON n.seq = v.seq")
    # People an entity touched for the first time, per step: each first touch is one row of `_en_first`,
    # at the time of the event that made it.
    new_subjects = (f"LEFT JOIN (SELECT ek, {bucket.format(t='time')} AS bucket, count(*) AS k FROM _en_first "
                    "GROUP BY ALL) f ON f.ek = s.ek AND f.bucket = s.bucket" if ctx.stats.get("en_first") else
                    "LEFT JOIN (SELECT NULL::UBIGINT AS ek, NULL::TIMESTAMP AS bucket, 0 AS k) f ON FALSE")
    con.execute(f"""INSERT INTO entity_steps
        SELECT s.ek, s.bucket, s.last_time, s.requests, s.bytes, s.nsubj, s.errors, coalesce(f.k, 0), s.novel
        FROM ({steps}) s {new_subjects} ORDER BY s.bucket""")


def _last_checkpoint(ctx: RunContext, d: dict) -> datetime | None:
    feed = ctx.feeds.get(ctx.cfg.feed_of_kind().get("access"))
    if feed is None or feed.watermark is None:
        return ctx.stats.get("ml_checkpoint")
    step = int(d["step"])
    wm = feed.watermark
    epoch = datetime(1970, 1, 1)
    return epoch + timedelta(seconds=math.floor((wm - epoch).total_seconds() / step) * step)


def _score_checkpoints(ctx: RunContext, d: dict) -> None:
    last = ctx.stats.get("ml_checkpoint")
    upto = _last_checkpoint(ctx, d)
    if upto is None:
        return
    step = timedelta(seconds=int(d["step"]))
    if last is None:
        last = upto - step
    c = last + step
    if c > upto:
        return
    models = _models(ctx, d)
    if models is None:
        return  # still fitting: these checkpoints are scored by a later pass, with the same results
    if models:
        _score(ctx, d, c, upto, models)
    ctx.stats["ml_checkpoint"] = upto


def _score(ctx: RunContext, d: dict, first: datetime, last: datetime, models: dict) -> None:
    """Score every checkpoint from `first` to `last` (one step apart): one query, one model call per type.

    At checkpoint c, each entity active in the step before c is scored on its trailing window
    [c - window, c); a row's score does not depend on the other rows scored with it.
    """
    con = ctx.con
    step, window = int(d["step"]), int(d["window"])
    sums = ", ".join(f"sum(s.{k}) AS {k}" for k in _SUMS)
    rows = con.execute(f"""
        WITH cps AS (SELECT unnest(generate_series(?::TIMESTAMP, ?::TIMESTAMP, INTERVAL {step} SECOND)) AS c),
             active AS (SELECT DISTINCT p.c, s.ek FROM entity_steps s
                        JOIN cps p ON s.bucket = p.c - INTERVAL {step} SECOND),
             win AS (SELECT a.c, s.ek, {sums}, max(s.last_time) AS last_time, min(s.bucket) AS first_bucket
                     FROM active a JOIN entity_steps s ON s.ek = a.ek
                      AND s.bucket >= a.c - INTERVAL {window} SECOND AND s.bucket < a.c
                     WHERE s.bucket >= ?::TIMESTAMP - INTERVAL {window} SECOND AND s.bucket < ?::TIMESTAMP
                     GROUP BY a.c, s.ek)
        SELECT w.c, w.ek, r.etype, r.ptype, r.entity, w.last_time, {_vector_sql('w')}, w.requests, w.first_bucket
        FROM win w JOIN entity_registry r ON r.ek = w.ek WHERE w.requests >= {int(d['min_requests'])}
        ORDER BY w.c, r.etype, w.ek""", [first, last, first, last]).fetchall()
    rows = [r for r in rows if (r[2], r[3]) in models]
    if not rows:
        return
    scores = np.empty(len(rows))
    beyond = np.empty(len(rows), dtype=int)
    x = np.array([r[6] for r in rows], dtype=float)
    peers: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rows):
        peers.setdefault((r[2], r[3]), []).append(i)
    for pair, idx in peers.items():
        model, _train, _p99, top = models[pair]
        scores[idx] = model.decision_function(x[idx])
        # Isolation alone also finds ordinary entities at odd hours; an alert needs the vector to
        # leave the history's range on at least `min_features_beyond` features too.
        beyond[idx] = (x[idx] > top).sum(axis=1)
    hits = np.flatnonzero((scores < -d["score_margin"]) & (beyond >= d["min_features_beyond"]))
    for i in hits:  # in checkpoint order: the first checkpoint an entity stands out at opens its alert
        c, *row = rows[i]
        model, train, p99, _top = models[(row[1], row[2])]
        _candidate(ctx, d, tuple(row), float(scores[i]), x[i], train, p99, c)


def _candidate(ctx: RunContext, d: dict, row, score: float, v: np.ndarray, train: np.ndarray, p99: np.ndarray,
               c: datetime) -> None:
    ek, etype, ptype, entity, last_time, _, requests, first_bucket = row
    # The features furthest above what the training history shows drove the score.
    spread = np.maximum(p99 - np.median(train, axis=0), 1e-6)
    excess = (v - p99) / spread
    top = [i for i in np.argsort(-excess)[:3] if excess[i] > 0]
    shown = [f"{FEATURES[i]} {_show(i, v[i])} (peers' 99th percentile {_show(i, p99[i])})" for i in top]
    key = f"outlier:{etype}:{ptype}:{entity}"
    # The window's events, most of them from earlier segments: read from the store.
    add_candidate_events(ctx.con, NAME, f"""SELECT ?, event_id, time FROM events
        WHERE kind = 'access' AND time >= ? AND time < ? AND {value_sql(etype)} = ?
          AND coalesce(principal_type, 'anonymous') = ?""", [key, first_bucket, c, entity, ptype])
    ctx.add(AlertCandidate(
        detector=NAME, rule="outlier", dedup_key=key, severity=d["severity"],
        first_seen=first_bucket, detected_at=last_time, last_seen=last_time, etype=etype,
        ptype=ptype, entity=entity,
        evidence=(f"{LABEL.get(etype, etype)} {entity} ({ptype} traffic) over the hour to {c:%m-%d %H:%M} is unlike "
                  f"anything in the history (anomaly score {-score:.2f} past the line); driven by "
                  + ("; ".join(shown) if shown else "an unusual combination of otherwise ordinary values")),
        metrics={"score": score, "requests": requests, "features": dict(zip(FEATURES, map(float, v)))},
        track_eks=[int(ek)] if etype in NARROW else [], links=etype in NARROW, attach_on_update=etype in NARROW))


def _show(i: int, v: float) -> str:
    if FEATURES[i].endswith("share"):
        return f"{v:.0%}"
    if FEATURES[i] == "bytes per request":
        return f"{math.expm1(v):,.0f}"
    return f"{v:,.1f}"


def _models(ctx: RunContext, d: dict) -> dict | None:
    """IsolationForest per (entity type, principal type), fitted on the stored training vectors (cached
    per baseline); a pair with fewer than `min_training_rows` vectors has no model and is not scored.

    The fit (up to a second or two after each baseline refresh) runs in a thread of its own. A
    following engine (`ctx.defer`) does not wait for it: None tells the caller to leave the
    checkpoints to a later pass, so the provenance tier's next pass, and its alerts, are not held
    back by it. Scores depend only on the model and each row, so when they are computed changes
    no decision. Other runs wait for the fit.
    """
    key = _model_key(ctx.con, d, ctx.baseline_at)
    if key in _MODELS:
        return _MODELS[key]
    fit = _FITTING.get(key) or _start_fit(ctx.con, d, key)
    if ctx.defer and not fit.done():
        return None
    models = fit.result()
    _FITTING.pop(key, None)
    _MODELS.clear()
    _MODELS[key] = models
    return models


def prefit(con, cfg, baseline_at: datetime) -> None:
    """Start fitting the models of a baseline just learned, so the fit runs beside the counting
    detectors of the next segment (ml_outlier runs last) instead of before its scoring."""
    d = cfg.detectors[NAME]
    key = _model_key(con, d, baseline_at)
    if d["enabled"] and key not in _MODELS and key not in _FITTING:
        _start_fit(con, d, key)


def _model_key(con, d: dict, baseline_at: datetime | None) -> tuple:
    db = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()[0][0]
    return (db, str(baseline_at), int(d["trees"]), int(d["seed"]))


def _start_fit(con, d: dict, key: tuple) -> Future:
    # Through Arrow in one read (Python lists cost ten times as much); rows keep the table's order.
    stored = con.sql("SELECT etype, ptype, features FROM ml_training "
                     "WHERE ptype IS NOT NULL").to_arrow_table()  # rows of an older version wait for a refresh
    etypes = stored.column("etype").to_numpy(zero_copy_only=False)
    ptypes = stored.column("ptype").to_numpy(zero_copy_only=False)
    vectors = pc.list_flatten(stored.column("features")).to_numpy().reshape(len(etypes), len(FEATURES))
    _FITTING.clear()
    fit = _FITTING[key] = _FITTER.submit(_fit, etypes, ptypes, vectors, d)
    return fit


def _fit(etypes: np.ndarray, ptypes: np.ndarray, vectors: np.ndarray, d: dict) -> dict:
    """Models keyed by (etype, ptype), from the training rows' entity types, principal types and vectors.

    Each model is fitted on its peers' vectors only, but "above anything in the history" is measured
    against every vector of the entity type: an entity must both stand out among its peers and do what no
    entity of its kind did (a few customers' apps reading a handful of new people an hour are unusual
    for customers, with a day of history in a small shop, yet ordinary for the type as a whole).
    """
    from sklearn.ensemble import IsolationForest
    tops = {e: vectors[etypes == e].max(axis=0) for e in dict.fromkeys(etypes)}
    models = {}
    for etype, ptype in dict.fromkeys(zip(etypes, ptypes)):
        train = vectors[(etypes == etype) & (ptypes == ptype)].astype(float)
        if len(train) < d["min_training_rows"]:
            continue
        model = IsolationForest(n_estimators=int(d["trees"]), random_state=int(d["seed"]), contamination="auto")
        model.fit(train)
        models[(etype, ptype)] = (model, train, np.quantile(train, 0.99, axis=0), tops[etype])
    return models


def learn(con, cfg, since: datetime, until: datetime) -> None:
    """Sample each (entity type, principal type)'s per-step trailing-window vectors from the history.

    The sample is the `max_training_rows` vectors per pair with the smallest hash of
    (entity, step), so it does not depend on how the vectors were computed: those of whole days
    of the history are kept from earlier refreshes of this connection (daycache.py), and only
    the days that changed, and the partial days at the ends, are computed again.
    """
    d = cfg.detectors[NAME]
    con.execute("DELETE FROM ml_training")
    if not d["enabled"]:
        return
    _history_vectors(con, d, since, until)
    # Per pair, the vectors up to its n-th smallest hash: found from the hashes alone (ranking the rows
    # themselves kept every vector in a top-n heap), and every vector of a pair with fewer. Hashes of
    # distinct (entity, step) tie only by a 64-bit collision, which would keep one vector more.
    n = int(d["max_training_rows"])
    con.execute(f"""INSERT INTO ml_training (etype, features, ptype)
        WITH x AS (SELECT r.etype, r.ptype, x.v, x.h FROM _ml_vec x JOIN entity_registry r ON r.ek = x.ek
                   WHERE NOT EXISTS (SELECT 1 FROM _suspect s WHERE s.ek = x.ek)),
             cut AS (SELECT etype, ptype, CASE WHEN count(*) > {n} THEN list_max(min(h, {n})) END AS h_max
                     FROM x GROUP BY etype, ptype)
        SELECT x.etype, x.v, x.ptype FROM x JOIN cut c ON c.etype = x.etype AND c.ptype = x.ptype
        WHERE c.h_max IS NULL OR x.h <= c.h_max ORDER BY x.etype, x.ptype, x.h""")


def _history_vectors(con, d: dict, since: datetime, until: datetime) -> None:
    """`_ml_vec` (ek, h, v): every step of [since, until) whose trailing window, cut at `since`,
    holds at least `min_requests`, for every entity (suspects are left out by the caller).

    A step's window reaches back `window - step` (less than a day): the vectors of a whole day far
    enough from `since` are kept between refreshes while neither it nor the day before gains rows.
    """
    window, step = int(d["window"]), int(d["step"])
    reach = timedelta(seconds=window - step)
    days = daycache.whole_days(since, until, reach)

    def compute(missing: list[datetime]) -> None:
        con.execute(f"""INSERT INTO _kept_vectors SELECT date_trunc('day', bucket), ek, h, v FROM ({_vectors_sql(d)})
            WHERE date_trunc('day', bucket) IN (SELECT unnest($3::TIMESTAMP[]))""",
                    [missing[0] - reach, missing[-1] + daycache.DAY, missing])

    kept = daycache.keep(con, "vectors", table="entity_steps", column="bucket", days=days,
                         key=f"{window}:{step}:{int(d['min_requests'])}", reach=True,
                         columns="ek UBIGINT, h UBIGINT, v DOUBLE[]", compute=compute)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _ml_vec AS SELECT ek, h, v FROM {kept} "
                "WHERE day IN (SELECT unnest(?::TIMESTAMP[]))", [days])
    # The partial days at the ends: windows cut at `since`, and the day `until` falls in.
    for lo, hi in daycache.ends(since, until, days):
        con.execute(f"INSERT INTO _ml_vec SELECT ek, h, v FROM ({_vectors_sql(d)}) WHERE bucket >= $3",
                    [max(since, lo - reach), hi, lo])


def _vectors_sql(d: dict) -> str:
    """A query (ek, bucket, h, v) of the steps of entity_steps in [$1, $2) whose trailing window,
    over those rows only, holds at least `min_requests`."""
    window, step = int(d["window"]), int(d["step"])
    least = int(d["min_requests"])
    sums = ", ".join(f"sum({k}) OVER w AS {k}" for k in _SUMS)
    # Most entities never make `min_requests` in any window, and only the vectors that do are
    # sampled: the trailing windows are summed for the others alone. A window is shorter than
    # `window`, so it lies within two consecutive `window`-long blocks; an entity whose two busiest
    # neighbouring blocks stay under the bar has no window that reaches it.
    return f"""
        WITH rows AS (SELECT * FROM entity_steps WHERE bucket >= $1 AND bucket < $2),
        busy AS (
            SELECT ek FROM (
                SELECT ek, n + coalesce(lead(n) OVER (PARTITION BY ek ORDER BY blk), 0) AS pair FROM (
                    SELECT ek, time_bucket(INTERVAL {max(window, 1)} SECOND, bucket) AS blk, sum(requests) AS n
                    FROM rows GROUP BY ALL))
            GROUP BY ek HAVING max(pair) >= {least})
        SELECT ek, bucket, hash(ek, bucket) AS h, {_vector_sql('x')} AS v
        FROM (SELECT ek, bucket, {sums} FROM (
                  SELECT ek, bucket, {", ".join(f"sum({k}) AS {k}" for k in _SUMS)} FROM rows s
                  SEMI JOIN busy b ON b.ek = s.ek GROUP BY ek, bucket)
              WINDOW w AS (PARTITION BY ek ORDER BY bucket
                           RANGE BETWEEN INTERVAL {window - step} SECOND PRECEDING AND CURRENT ROW)) x
        WHERE x.requests >= {least}"""
