"""Whole days of learning, kept between baseline refreshes of one connection.

Each refresh learns from up to `baseline_history` (30 days) of per-entity state, though only the
newest day changed since the last one. What a whole calendar day (UTC) of an append-only state
table gives (its compacted hours, its feature vectors) is kept in a temp table together with the
day's row count; a later refresh reuses each kept day whose count, and the previous day's when
its results reach back into it, has not changed, and computes only the others. Late rows change
a count, so their day is computed again; a rolled-back pass takes what it kept with it (temp
tables are transactional); another connection starts afresh. The results are the same as
computing everything at every refresh.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import duckdb

DAY = timedelta(days=1)


def whole_days(since: datetime, until: datetime, reach: timedelta = timedelta(0)) -> list[datetime]:
    """The calendar days inside [since, until) whose results, reaching back `reach`, use rows from
    [since, until) only (so they do not depend on where the history starts)."""
    if reach >= DAY:
        return []  # results would reach past the previous day: nothing is kept
    day = datetime.combine(since.date(), datetime.min.time())
    out = []
    while day + DAY <= until:
        if day - reach >= since:
            out.append(day)
        day += DAY
    return out


def keep(con: duckdb.DuckDBPyConnection, name: str, *, table: str, column: str, days: list[datetime],
         key: str, reach: bool, columns: str, compute: Callable[[list[datetime]], None]) -> str:
    """Make temp table `_kept_{name}` (day, `columns`) hold the results of exactly `days`; returns its name.

    Results of `table` rows in a day (by timestamp `column`) stay valid while that day's row count,
    and the previous day's if `reach`, and `key` (the settings that shaped them) are unchanged.
    `compute(days)` inserts the results of the given days, with their day, into the table.
    """
    kept, keys = f"_kept_{name}", f"_kept_{name}_keys"
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {kept} (day TIMESTAMP, {columns})")
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {keys} (day TIMESTAMP, key VARCHAR)")
    counts: dict[datetime, int] = {}
    if days:
        counts = dict(con.execute(f"""SELECT date_trunc('day', {column}) AS day, count(*) FROM {table}
            WHERE {column} >= ? AND {column} < ? GROUP BY day""", [days[0] - DAY, days[-1] + DAY]).fetchall())
    want = {d: f"{key}:{counts.get(d - DAY, 0) if reach else '-'}:{counts.get(d, 0)}" for d in days}
    have = dict(con.execute(f"SELECT day, key FROM {keys}").fetchall())
    stale = [d for d, k in have.items() if want.get(d) != k]
    if stale:
        for t in (kept, keys):
            con.execute(f"DELETE FROM {t} WHERE day IN (SELECT unnest(?::TIMESTAMP[]))", [stale])
    missing = [d for d in days if have.get(d) != want[d]]
    if missing:
        compute(missing)
        con.execute(f"INSERT INTO {keys} SELECT unnest(?::TIMESTAMP[]), unnest(?::VARCHAR[])",
                    [missing, [want[d] for d in missing]])
    return kept


def ends(since: datetime, until: datetime, days: list[datetime]) -> list[tuple[datetime, datetime]]:
    """The parts of [since, until) outside `days` (at most one before and one after them)."""
    if not days:
        return [(since, until)]
    return [(lo, hi) for lo, hi in ((since, days[0]), (days[-1] + DAY, until)) if lo < hi]
