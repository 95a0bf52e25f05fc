"""Learned levels (detect/baselines.py) against a reference worked out here, one entity, window and peer
group at a time: every counter metric's own and peer levels come from one pass over all metrics, and the
peer groups are numbers looked up once per kept day; neither may change a level."""
from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from breachwatch.contract.catalog import load_catalog
from breachwatch.detect import baselines
from breachwatch.detect.config import load_detect_config

UNTIL = datetime(2025, 5, 20)
# ek -> (etype, ptype); ek 9 has no registry row: it has own levels but belongs to no peer group.
REGISTRY = {1: ("ip", "customer"), 2: ("ip", "customer"), 3: ("ip", "customer"), 4: ("ip", "employee"),
            5: ("ip", "employee"), 6: ("asn", "customer"), 7: ("asn", "customer"), 8: ("principal", "employee")}
EKS = [*REGISTRY, 9]


def _quantile_cont(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks, as DuckDB's quantile_cont."""
    v = sorted(values)
    rn = (len(v) - 1) * q
    lo, hi = math.floor(rn), math.ceil(rn)
    return v[lo] if lo == hi else v[lo] + (rn - lo) * (v[hi] - v[lo])


def _own(hours: dict[datetime, float], span_h: int) -> float:
    """The largest sum of counts over span_h + 1 consecutive hourly buckets ending at a bucket of the entity."""
    return max(sum(n for b, n in hours.items() if t - timedelta(hours=span_h) <= b <= t) for t in hours)


def _setup(con, rng: random.Random) -> dict:
    con.executemany("INSERT INTO entity_registry VALUES (?, ?, ?, ?, ?)",
                    [(ek, et, pt, f"e{ek}", UNTIL - timedelta(days=40)) for ek, (et, pt) in REGISTRY.items()])
    counts: dict = {}
    rows = []
    for metric in ("subj", "authfail", "novel"):
        for ek in EKS:
            for _ in range(rng.randint(3, 40)):
                bucket = UNTIL - timedelta(hours=rng.randint(1, 29 * 24))
                n = float(rng.randint(1, 9))
                rows.append((metric, "h", ek, bucket, n))
                per = counts.setdefault((metric, ek), {})
                per[bucket] = per.get(bucket, 0.0) + n   # repeated buckets (rows of several runs) add up
    rows.append(("subj", "h", 1, UNTIL - timedelta(days=45), 500.0))  # before the history: not learned
    con.executemany("INSERT INTO counter_buckets VALUES (?, ?, ?, ?, ?)", rows)
    hours = []
    for ek in EKS:
        for _ in range(rng.randint(5, 60)):
            hours.append((ek, UNTIL - timedelta(hours=rng.randint(1, 29 * 24)), float(rng.randint(1, 400)),
                          float(rng.randint(1, 10**6)), float(rng.randint(0, 80)), 0.0, 1.0))
    con.executemany("INSERT INTO entity_hours VALUES (?, ?, ?, ?, ?, ?, ?)", hours)
    return {"counts": counts, "hours": hours}


def test_levels_match_a_reference_per_metric_window_and_peer_group(store):
    con, _ = store
    cfg = load_detect_config(load_catalog(None))
    # Two detectors with different quantiles, and windows that round to the same number of hours.
    cfg.detectors["enumeration"].update(windows=[3600.0, 86400.0, 7 * 86400.0], peer_quantile=0.9)
    cfg.detectors["novel_source"].update(windows=[1800.0, 3600.0], peer_quantile=0.5)
    data = _setup(con, random.Random(11))
    baselines.refresh(con, cfg, UNTIL)

    got_own = {(m, w, ek): (v, s) for m, w, ek, v, s in con.execute(
        "SELECT metric, window_s, ek, value, samples FROM baselines WHERE scope = 'own'").fetchall()}
    got_peer = {(m, w, et, pt): (v, s) for m, w, et, pt, v, s in con.execute(
        "SELECT metric, window_s, etype, ptype, value, samples FROM baselines WHERE scope = 'peer'").fetchall()}
    want_own, want_peer = {}, {}
    for metric, det in (("subj", "enumeration"), ("authfail", "enumeration"), ("novel", "novel_source")):
        d = cfg.detectors[det]
        for w in d["windows"]:
            span = max(1, math.ceil(w / 3600))
            groups: dict = {}
            for ek in EKS:
                per = data["counts"][(metric, ek)]
                level = _own(per, span)
                want_own[(metric, int(w), ek)] = (level, len(per))
                if ek in REGISTRY:
                    groups.setdefault(REGISTRY[ek], []).append(level)
            for (et, pt), levels in groups.items():
                want_peer[(metric, int(w), et, pt)] = (_quantile_cont(levels, d["peer_quantile"]), len(levels))
    assert got_own == want_own
    assert got_peer.keys() - {k for k in got_peer if k[0].startswith("vol_")} == want_peer.keys()
    for k, (v, s) in want_peer.items():
        assert got_peer[k][1] == s and math.isclose(got_peer[k][0], v, rel_tol=1e-12), k

    # Volume: every entity keeps its busiest hour; peers take the 99th percentile of their group's hours
    # (of the entities in the registry only).
    vol = {}
    for ek, hour, req, byt, subj, _, _ in data["hours"]:
        per = vol.setdefault(ek, {})
        per[hour] = tuple(a + b for a, b in zip(per.get(hour, (0.0, 0.0, 0.0)), (req, byt, subj)))
    tops = dict(((ek, m), top) for ek, m, top in con.execute("SELECT ek, metric, top FROM volume_levels").fetchall())
    for i, m in enumerate(("requests", "bytes", "subject_reads")):
        for ek, per in vol.items():
            assert tops[(ek, m)] == max(v[i] for v in per.values())
        groups = {}
        for ek, per in vol.items():
            if ek in REGISTRY:
                groups.setdefault(REGISTRY[ek], []).extend(v[i] for v in per.values())
        for (et, pt), values in groups.items():
            value, samples = got_peer[(f"vol_{m}", 0, et, pt)]
            assert samples == len(values) and math.isclose(value, _quantile_cont(values, 0.99), rel_tol=1e-12)
        assert len([k for k in got_peer if k[0] == f"vol_{m}"]) == len(groups)
