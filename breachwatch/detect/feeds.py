"""Feeds, their event-time progress, watermarks and health.

Events reach the store through different pipes (the gateway's access log, the
login service's issuance log, the directory), each late and out of order in
its own way. A feed's progress is the latest event time it has delivered; its
watermark, the time up to which it is known complete, is that progress less
the feed's allowed lateness. A feed whose progress falls behind the others by
more than `silent_after` is silent: a health alert is recorded, and decisions
that need it (provenance) wait, marked as held, until it recovers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import duckdb

from breachwatch.detect.config import DetectConfig


@dataclass
class Feed:
    name: str
    kinds: list[str]
    allowed_lateness: float
    silent_after: float
    first_time: datetime | None = None
    progress: datetime | None = None
    events: int = 0
    healthy: bool = True
    unhealthy_since: datetime | None = None

    @property
    def watermark(self) -> datetime | None:
        if self.progress is None:
            return None
        return self.progress - timedelta(seconds=self.allowed_lateness)


@dataclass
class HealthChange:
    feed: str
    state: str       # silent, recovered
    at: datetime
    lag_s: float
    message: str


@dataclass
class Feeds:
    feeds: dict[str, Feed]
    changes: list[HealthChange] = field(default_factory=list)

    def get(self, name: str | None) -> Feed | None:
        return self.feeds.get(name) if name else None

    def overall(self) -> datetime | None:
        times = [f.progress for f in self.feeds.values() if f.progress is not None]
        return max(times) if times else None


def load_feeds(con: duckdb.DuckDBPyConnection, cfg: DetectConfig) -> Feeds:
    stored = {r[0]: r[1:] for r in con.execute(
        "SELECT feed, first_time, progress, events, healthy, unhealthy_since FROM feed_progress").fetchall()}
    out = {}
    for name, spec in cfg.engine["feeds"].items():
        f = Feed(name, list(spec["kinds"]), spec["allowed_lateness"], spec["silent_after"])
        if name in stored:
            f.first_time, f.progress, f.events, f.healthy, f.unhealthy_since = stored[name]
        out[name] = f
    return Feeds(out)


def advance(feeds: Feeds, span: dict[str, tuple]) -> None:
    """Move each feed's progress over the segment's events ({kind: (min time, max time, count)}), then judge health."""
    kind_to_feed = {k: f.name for f in feeds.feeds.values() for k in f.kinds}
    for kind, (lo, hi, n) in span.items():
        name = kind_to_feed.get(kind)
        if name is None:
            continue
        f = feeds.feeds[name]
        f.first_time = lo if f.first_time is None else min(f.first_time, lo)
        f.progress = hi if f.progress is None else max(f.progress, hi)
        f.events += n
    judge_health(feeds)


def judge_health(feeds: Feeds) -> None:
    overall = feeds.overall()
    if overall is None:
        return
    for f in feeds.feeds.values():
        if f.silent_after <= 0 or f.progress is None:
            continue
        lag = (overall - f.progress).total_seconds()
        if lag > f.silent_after and f.healthy:
            f.healthy = False
            # The moment it became silent is fixed by its own last event, not by when we noticed.
            f.unhealthy_since = f.progress + timedelta(seconds=f.silent_after)
            feeds.changes.append(HealthChange(
                f.name, "silent", f.unhealthy_since, lag,
                f"feed '{f.name}' ({', '.join(f.kinds)}) has delivered nothing since {f.progress:%Y-%m-%d %H:%M:%S} "
                f"while other feeds reached {overall:%Y-%m-%d %H:%M:%S} ({lag:,.0f} s behind); "
                "decisions that need it are held"))
        elif lag <= f.silent_after and not f.healthy:
            f.healthy = True
            feeds.changes.append(HealthChange(
                f.name, "recovered", f.progress, lag,
                f"feed '{f.name}' is delivering again (silent since {f.unhealthy_since:%Y-%m-%d %H:%M:%S})"))
            f.unhealthy_since = None


def save_feeds(con: duckdb.DuckDBPyConnection, feeds: Feeds) -> None:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute("DELETE FROM feed_progress")
    rows = [[f.name, f.first_time, f.progress, f.events, f.healthy, f.unhealthy_since, now] for f in feeds.feeds.values()]
    con.execute(f"INSERT INTO feed_progress VALUES {', '.join('(?, ?, ?, ?, ?, ?, ?)' for _ in rows)}",
                [x for r in rows for x in r])
    if feeds.changes:
        con.executemany("INSERT INTO feed_health VALUES (?, ?, ?, ?, ?, ?)",
                        [[c.feed, c.state, c.at, c.lag_s, c.message, now] for c in feeds.changes])


def feed_status(con: duckdb.DuckDBPyConnection, cfg: DetectConfig) -> list[dict]:
    """Each feed's progress, watermark and health, for `detect` output and the API."""
    feeds = load_feeds(con, cfg)
    out = []
    for f in feeds.feeds.values():
        out.append({"feed": f.name, "kinds": f.kinds, "events": f.events,
                    "progress": f.progress.isoformat() if f.progress else None,
                    "watermark": f.watermark.isoformat() if f.watermark else None,
                    "allowed_lateness_s": f.allowed_lateness, "healthy": f.healthy,
                    "unhealthy_since": f.unhealthy_since.isoformat() if f.unhealthy_since else None})
    return out
