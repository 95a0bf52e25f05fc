"""Volume levels (baselines._volume_baseline): all three metrics are learned in one pass over the
hours, so an entity big in one metric only must get hour-of-week levels for that metric only, and
each level must be the busiest hour in its slot, else in its hour of the day, else overall."""
from __future__ import annotations

from datetime import datetime, timedelta

from breachwatch.contract.catalog import load_catalog
from breachwatch.detect.baselines import _volume_baseline
from breachwatch.detect.config import load_detect_config

MONDAY = datetime(2025, 5, 5)
METRICS = ("requests", "bytes", "subject_reads")


def _expected(hours: dict[datetime, float]) -> list[float]:
    """The 168 levels from hour -> value, computed plainly."""
    top = max(hours.values())
    week: dict[int, float] = {}
    day: dict[int, float] = {}
    for t, v in hours.items():
        slot = t.weekday() * 24 + t.hour
        week[slot] = max(week.get(slot, v), v)
        day[t.hour] = max(day.get(t.hour, v), v)
    return [week.get(s, day.get(s % 24, top)) for s in range(168)]


def test_each_metric_keeps_levels_only_for_entities_big_in_it(store):
    con, _ = store
    cfg = load_detect_config(load_catalog(None))
    d = cfg.detectors["volume_anomaly"]
    big = {m: float(d[f"min_{m}"]) / max(float(d["factor"]), 1.0) for m in METRICS}
    # ek 1: big in requests only; ek 2: big in bytes only; ek 3: small in everything. Hours on
    # Mondays and one Wednesday, so some slots fall back to the hour of the day, others to the top.
    shapes = {1: (2.0 * big["requests"], 10.0, 1.0), 2: (5.0, 2.0 * big["bytes"], 1.0), 3: (5.0, 10.0, 1.0)}
    hours = [MONDAY + timedelta(hours=h) for h in (1, 2, 9, 23)] + \
            [MONDAY + timedelta(days=7, hours=h) for h in (2, 9, 14)] + [MONDAY + timedelta(days=2, hours=9)]
    rows = []
    for ek, scale in shapes.items():
        for i, t in enumerate(hours):
            f = 0.4 + 0.6 * ((i * 5 + ek) % 7) / 6          # varies by hour, largest 1.0
            rows.append((ek, t, scale[0] * f, scale[1] * f, scale[2] * f, 0.0, 1))
    con.executemany("INSERT INTO entity_hours VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.executemany("INSERT INTO entity_registry VALUES (?, 'ip', 'customer', ?, ?)",
                    [(ek, f"e{ek}", MONDAY) for ek in shapes])
    con.execute("CREATE OR REPLACE TEMP TABLE _suspect (ek UBIGINT)")
    _volume_baseline(con, cfg, MONDAY, MONDAY + timedelta(days=14))
    got = {(ek, m): (top, levels) for ek, m, top, levels in
           con.execute("SELECT ek, metric, top, levels FROM volume_levels").fetchall()}
    assert len(got) == 9
    for ek, scale in shapes.items():
        for i, m in enumerate(METRICS):
            per_hour = {t: v for e, t, *vals in rows if e == ek for v in [vals[i]]}
            top, levels = got[(ek, m)]
            assert top == max(per_hour.values())
            if top >= big[m]:
                assert levels == _expected(per_hour)
            else:
                assert levels is None
    assert got[(1, "requests")][1] is not None and got[(2, "bytes")][1] is not None
    assert got[(1, "bytes")][1] is None and got[(2, "requests")][1] is None
