"""The detection engine: new events in, alerts and incidents out, exactly once.

Each run takes the events stored since the last run (batch ids above a
progress mark per tier). The provenance tier advances the feeds' watermarks,
updates lifecycle state and runs the provenance detectors over all of them;
the behavioural tier splits them into segments at baseline-refresh points of
event time and runs the counting detectors over each. Both record alerts,
merge them into incidents and fold new events into incidents' blast radius.
Each pass is one transaction (a following engine commits the provenance
tier's passes apart from the behavioural tier's, so its alerts come first): a
crash leaves nothing half-done, and a re-run over the same events adds nothing.

`--backfill` runs the same code over history already in the store with the
behavioural detectors learning only, then learns baselines from it, so a new
installation compares today with last week rather than with nothing.
"""
from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

import duckdb

from breachwatch.detect import baselines, lifecycle
from breachwatch.detect.alert import reset_candidate_events
from breachwatch.detect.config import DetectConfig
from breachwatch.detect.context import RunContext
from breachwatch.detect.counting import count_all, reset_points
from breachwatch.detect.detectors import BEHAVIOURAL, PROVENANCE, forged_token, ml_outlier
from breachwatch.detect.feeds import advance, load_feeds, save_feeds
from breachwatch.incidents import alerts as alert_store
from breachwatch.incidents import merge
from breachwatch.incidents.notify import enqueue

_EPOCH = datetime(1970, 1, 1)


@dataclass
class DetectResult:
    events: int = 0
    segments: int = 0
    batches: tuple[int, int] | None = None
    alerts_new: int = 0
    alerts_updated: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    incidents_opened: list[str] = field(default_factory=list)
    incidents_updated: list[str] = field(default_factory=list)
    incidents_escalated: list[str] = field(default_factory=list)
    health: list[dict[str, Any]] = field(default_factory=list)
    baseline_at: datetime | None = None
    backfill: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"events": self.events, "segments": self.segments,
                "batches": list(self.batches) if self.batches else None,
                "alerts_new": self.alerts_new, "alerts_updated": self.alerts_updated,
                "alerts_by_status": dict(sorted(self.by_status.items())),
                "incidents_opened": self.incidents_opened, "incidents_updated": self.incidents_updated,
                "incidents_escalated": self.incidents_escalated, "health": self.health,
                "baseline_at": self.baseline_at.isoformat() if self.baseline_at else None,
                "backfill": self.backfill, "seconds": round(self.seconds, 3)}


@dataclass
class Progress:
    last_batch_id: int = 0
    events_processed: int = 0
    runs: int = 0
    baseline_at: datetime | None = None
    backfill_until: datetime | None = None
    issuance_since: datetime | None = None
    principals_seen: int = 0
    ml_checkpoint: datetime | None = None
    issued_lifetime_max: float | None = None
    behaviour_batch_id: int = 0
    behaviour_ran_at: float | None = None
    provenance_ran_at: float | None = None


def load_progress(con: duckdb.DuckDBPyConnection) -> Progress:
    row = con.execute("SELECT last_batch_id, events_processed, runs, baseline_at, backfill_until, issuance_since, "
                      "principals_seen, ml_checkpoint, issued_lifetime_max, behaviour_batch_id, behaviour_ran_at, "
                      "provenance_ran_at "
                      "FROM detect_progress").fetchall()
    row = row[0] if row else None
    return Progress(*row) if row else Progress()


def _save_progress(con: duckdb.DuckDBPyConnection, p: Progress) -> None:
    con.execute("DELETE FROM detect_progress")
    con.execute("INSERT INTO detect_progress VALUES (?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [p.last_batch_id, p.events_processed, p.runs, p.baseline_at, p.backfill_until, p.issuance_since,
                 p.principals_seen, p.ml_checkpoint, p.issued_lifetime_max, p.behaviour_batch_id,
                 p.behaviour_ran_at, p.provenance_ran_at])


def _boundaries(lo: datetime, hi: datetime, baseline_at: datetime | None, every: float) -> list[datetime]:
    """Baseline refresh points (event time) strictly inside (lo, hi]."""
    step = timedelta(seconds=every)
    if baseline_at is None:
        k = int((lo - _EPOCH).total_seconds() // every) + 1
        nxt = _EPOCH + timedelta(seconds=k * every)
    else:
        nxt = baseline_at + step
        while nxt <= lo:
            nxt += step
    out = []
    while nxt <= hi:
        out.append(nxt)
        nxt += step
    return out


def run_detect(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, *, backfill: bool = False,
               notify: dict[str, Any] | None = None, pace: str = "always",
               on_segment: Callable[[int], None] | None = None) -> DetectResult:
    """Process the events stored since the last run. Returns what was found.

    With `pace="always"` (the default) every detector takes every new event now. With "auto"
    (follow mode, replays) the provenance detectors take new events once `engine.provenance_every`
    of wall-clock time has passed since their last pass, and the behavioural ones once
    `engine.behaviour_every` has, or `engine.behaviour_max_lag` of event time is pending. Every
    decision is per event in event time either way, so detection times are the same; only how
    often the engine wakes up changes. `detect --follow` calls "auto"; a replay gathers micro-batches
    into deliveries itself (replay.py) and detects each with "always".
    """
    if pace not in ("always", "auto"):
        raise ValueError(f"pace={pace!r}: use 'always' or 'auto'.")
    started = _time.perf_counter()
    res = DetectResult(backfill=backfill)
    prog = load_progress(con)
    hi_batch = con.execute("SELECT max(batch_id) FROM events").fetchall()[0][0] or 0
    now = _time.time()
    eager = pace == "always" or backfill
    provenance = hi_batch > prog.last_batch_id and (
        eager or _elapsed(prog.provenance_ran_at, now) >= cfg.engine["provenance_every"])
    behaviour = hi_batch > prog.behaviour_batch_id and (eager or _behaviour_due(con, cfg, prog, now))
    if not (provenance or behaviour):
        res.baseline_at = prog.baseline_at
        res.seconds = _time.perf_counter() - started
        return res
    run = (con, cfg, prog, backfill, res, notify, on_segment, not eager)
    if eager:
        _passes(*run, hi_batch, provenance, behaviour)
    else:
        # Following: the provenance tier commits on its own, before the behavioural tier's pass and
        # again right after it for what arrived meanwhile, so a forged token's or a canary's alert is
        # never held back by counting, scoring or learning (which take up to seconds) and waits for at
        # most one behavioural pass. Each tier keeps its own progress mark, so the decisions are the same.
        if provenance:
            _passes(*run, hi_batch, True, False)
        if behaviour:
            _passes(*run, hi_batch, False, True)
            latest = con.execute("SELECT max(batch_id) FROM events").fetchall()[0][0] or 0
            if latest > prog.last_batch_id:
                _passes(*run, latest, True, False)
    res.seconds = _time.perf_counter() - started
    return res


def _passes(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, prog: Progress, backfill: bool, res: DetectResult,
            notify: dict[str, Any] | None, on_segment: Callable[[int], None] | None, defer: bool, hi_batch: int,
            provenance: bool, behaviour: bool) -> None:
    """The due tiers over the batches up to `hi_batch`, one transaction per pass.

    A backlog (a first run after a bulk load, a long outage) is taken in passes of at most
    `engine.max_pass_events` events, cut at batch boundaries, so memory stays bounded whatever
    its size. Cutting by arrival is what a more wakeful engine would have done, and decisions are
    per event in event time, so the results are the same.
    """
    while True:
        lo = min(m for m, due in ((prog.last_batch_id, provenance), (prog.behaviour_batch_id, behaviour)) if due)
        end = _pass_end(con, lo, hi_batch, int(cfg.engine["max_pass_events"]))
        con.execute("BEGIN")
        try:
            _run(con, cfg, prog, end, backfill, provenance and end > prog.last_batch_id,
                 behaviour and end > prog.behaviour_batch_id, res, notify, on_segment, defer)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if end >= hi_batch:
            break


def _pass_end(con: duckdb.DuckDBPyConnection, lo: int, hi: int, cap: int) -> int:
    """The last batch of a pass starting after batch `lo`: as many whole batches as fit in `cap`
    events, and at least one. Each batch's size is read from its chain link, not by counting events."""
    row = con.execute("""
        SELECT max(batch_id) FILTER (WHERE upto <= ?), min(batch_id) FROM (
            SELECT batch_id, sum(events) OVER (ORDER BY batch_id) AS upto
            FROM batches WHERE link_type = 'ingest' AND batch_id > ? AND batch_id <= ?)
        """, [cap, lo, hi]).fetchall()[0]
    return row[0] or row[1] or hi


def _elapsed(since: float | None, now: float) -> float:
    return float("inf") if since is None else now - since


def _run(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, prog: Progress, hi_batch: int, backfill: bool,
         provenance: bool, behaviour: bool, res: DetectResult, notify: dict[str, Any] | None,
         on_segment: Callable[[int], None] | None, defer: bool = False) -> None:
    # A run may take several passes into the same result: notify only what this pass adds.
    opened, escalated = len(res.incidents_opened), len(res.incidents_escalated)
    feeds = load_feeds(con, cfg)
    ctx = RunContext(con=con, cfg=cfg, feeds=feeds, learn_only=backfill, baseline_at=prog.baseline_at,
                     issuance_since=prog.issuance_since, defer=defer)
    ctx.stats.update(principals_seen=prog.principals_seen, ml_checkpoint=prog.ml_checkpoint,
                     issued_lifetime_max=prog.issued_lifetime_max)
    # When both tiers take the same batches, the behavioural one starts from the provenance tier's segment.
    staged = provenance and behaviour and prog.last_batch_id == prog.behaviour_batch_id
    if provenance:
        span = [prog.last_batch_id, hi_batch]
        n = ctx.set_segment("events", "batch_id > ? AND batch_id <= ?", span)
        res.events += n
        res.batches = ((res.batches or (prog.last_batch_id + 1, 0))[0], hi_batch)
        _provenance(ctx, res)
        res.segments += 1
        if on_segment:
            on_segment(n)
        prog.last_batch_id = hi_batch
        prog.events_processed += n
        prog.provenance_ran_at = _time.time()
    if behaviour:
        _behavioural(ctx, prog, hi_batch, backfill, res, on_segment, staged)
    for inc in res.incidents_opened[opened:]:
        enqueue(con, notify, inc, "new")
    for inc in res.incidents_escalated[escalated:]:
        if inc not in res.incidents_opened:
            enqueue(con, notify, inc, "escalated")
    save_feeds(con, feeds)
    res.health += [{"feed": c.feed, "state": c.state, "at": c.at.isoformat(), "message": c.message}
                   for c in feeds.changes]
    prog.runs += 1
    prog.issuance_since = ctx.issuance_since
    prog.principals_seen = ctx.stats["principals_seen"]
    prog.ml_checkpoint = ctx.stats.get("ml_checkpoint")
    prog.issued_lifetime_max = ctx.stats.get("issued_lifetime_max")
    _save_progress(con, prog)
    res.baseline_at = prog.baseline_at


def _behaviour_due(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, prog: Progress, now: float) -> bool:
    if _elapsed(prog.behaviour_ran_at, now) >= cfg.engine["behaviour_every"]:
        return True
    lag = con.execute("""SELECT epoch(max(time)) - epoch(min(time)) FROM events WHERE batch_id > ?""",
                      [prog.behaviour_batch_id]).fetchall()[0][0]
    return lag is not None and lag >= cfg.engine["behaviour_max_lag"]


def _behavioural(ctx: RunContext, prog: Progress, hi_batch: int, backfill: bool, res: DetectResult,
                 on_segment: Callable[[int], None] | None, staged: bool = False) -> None:
    """The counting detectors over everything since their last pass, split at baseline refresh points.

    `staged`: the current segment (`_seg`) already holds exactly these events.
    """
    con, cfg = ctx.con, ctx.cfg
    span = [prog.behaviour_batch_id, hi_batch]
    if staged:
        lo = min((v[0] for v in ctx.kinds_span.values()), default=None)
        hi = max((v[1] for v in ctx.kinds_span.values()), default=None)
    else:
        lo, hi = con.execute("SELECT min(time), max(time) FROM events WHERE batch_id > ? AND batch_id <= ?",
                             span).fetchall()[0]
    if lo is not None:
        edges = [] if backfill else _boundaries(lo, hi, prog.baseline_at, cfg.engine["baseline_refresh"])
        if edges:
            # Several segments: number the pass's events once, then cut each segment out by event time.
            if staged:
                ctx.keep_as_pass()
            else:
                ctx.set_segment("events", "batch_id > ? AND batch_id <= ?", span, into="_pass")
        cuts = [lo, *edges, hi + timedelta(microseconds=1)]
        for a, b in zip(cuts, cuts[1:]):
            if edges:
                n = ctx.cut_segment(a, b)
            elif staged:
                n = ctx.reuse_segment()
            else:
                n = ctx.set_segment("events", "batch_id > ? AND batch_id <= ?", span)
            if n:
                _counting(ctx, res)
                res.segments += 1
                if on_segment:
                    on_segment(n)
            if b in edges:
                _learn(con, cfg, b, prefit=True)
                prog.baseline_at = ctx.baseline_at = b
        if backfill:
            until = hi + timedelta(microseconds=1)
            _learn(con, cfg, until)
            prog.baseline_at = ctx.baseline_at = until
            prog.backfill_until = until
    prog.behaviour_batch_id = hi_batch
    prog.behaviour_ran_at = _time.time()


def _provenance(ctx: RunContext, res: DetectResult) -> None:
    """Feeds, lifecycle state and the provenance detectors, over every new event."""
    con, cfg = ctx.con, ctx.cfg
    issuance = ctx.feeds.get(cfg.issuance_feed())
    ctx.stats["issuance_progress_before"] = issuance.progress if issuance else None
    t0 = _time.perf_counter()
    advance(ctx.feeds, ctx.kinds_span)
    lifetime = lifecycle.update(con, ctx.kinds)
    if lifetime is not None:
        ctx.stats["issued_lifetime_max"] = max(lifetime, ctx.stats.get("issued_lifetime_max") or 0.0)
    if ctx.issuance_since is None and ctx.kinds.get("token_issued"):
        ctx.issuance_since = lifecycle.issuance_since(con)
    res.timings["state"] = res.timings.get("state", 0.0) + _time.perf_counter() - t0
    _detect(ctx, res, PROVENANCE, track=False)


def _counting(ctx: RunContext, res: DetectResult) -> None:
    _detect(ctx, res, BEHAVIOURAL, track=True)


def _detect(ctx: RunContext, res: DetectResult, detectors: tuple, track: bool) -> None:
    con, cfg = ctx.con, ctx.cfg
    ctx.candidates = []
    reset_candidate_events(con)
    alert_store.reset_links(con)
    if track:
        reset_points(con)
    for det in detectors:
        t0 = _time.perf_counter()
        det.run(ctx)
        res.timings[det.NAME] = res.timings.get(det.NAME, 0.0) + _time.perf_counter() - t0
    t0 = _time.perf_counter()
    if track:
        count_all(con, ctx.counters, learn_only=ctx.learn_only, ctx=ctx, gap=cfg.engine["merge_gap"])
        ctx.stats["principals_seen"] += ctx.commit_novelty()
    res.timings["counting"] = res.timings.get("counting", 0.0) + _time.perf_counter() - t0
    t0 = _time.perf_counter()
    outcome = alert_store.record(con, cfg, ctx.candidates)
    res.alerts_new += len(outcome.new)
    res.alerts_updated += len(outcome.updated)
    for k, v in outcome.by_status.items():
        res.by_status[k] = res.by_status.get(k, 0) + v
    t0 = _lap(res, "incidents: alerts", t0)
    mo = merge.MergeOutcome()
    merge.assign(con, cfg, outcome.raised, mo, fresh=set(outcome.new))
    t0 = _lap(res, "incidents: assign", t0)
    if track and ctx.accesses:
        ctx.need("_ent")
        alert_store.track(con, cfg)
    t0 = _lap(res, "incidents: track", t0)
    merge.refresh_headers(con, cfg, mo.realerted, mo)
    merge.absorb_run(con, cfg, mo)
    t0 = _lap(res, "incidents: blast radius", t0)
    alert_store.store_links(con)
    for inc in mo.opened:
        res.incidents_opened.append(inc)
    for inc in mo.updated:
        if inc not in res.incidents_updated and inc not in res.incidents_opened:
            res.incidents_updated.append(inc)
    res.incidents_escalated += [i for i in mo.escalated if i not in res.incidents_escalated]
    _lap(res, "incidents: links", t0)


def _lap(res: DetectResult, name: str, t0: float) -> float:
    """Add the time since `t0` to `res.timings[name]`; returns now."""
    now = _time.perf_counter()
    res.timings[name] = res.timings.get(name, 0.0) + now - t0
    return now


def _learn(con: duckdb.DuckDBPyConnection, cfg: DetectConfig, until: datetime, prefit: bool = False) -> None:
    since = until - timedelta(seconds=cfg.engine["baseline_history"])
    baselines.refresh(con, cfg, until)
    forged_token.lifetime_policy(con, since, until)
    ml_outlier.learn(con, cfg, since, until)
    if prefit:  # the next segment scores with these models: fit them while it counts
        ml_outlier.prefit(con, cfg, until)
