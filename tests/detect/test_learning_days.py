"""Learning keeps whole days between refreshes (detect/daycache.py): the baselines and the outlier
model's training sample it gives must be those of learning everything afresh, also after late rows
land in a day it kept."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

import pyarrow as pa

from breachwatch.contract.catalog import load_catalog
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.engine import _learn
from breachwatch.store.db import arrow_views

DAY0 = datetime(2025, 5, 1)
EKS = {101: "ip", 102: "ip", 103: "asn", 104: "prefix"}


def _rows(rng: random.Random, lo: datetime, hi: datetime) -> tuple[list, list]:
    """entity_steps (5-minute) and entity_hours rows of every entity over [lo, hi), busy enough to be sampled."""
    steps, hours = [], []
    t = lo
    while t < hi:
        for ek in EKS:
            if rng.random() < 0.8:
                n = rng.randint(5, 30)
                steps.append((ek, t, t + timedelta(seconds=299), n, n * rng.randint(500, 5000), rng.randint(0, 3 * n),
                              rng.randint(0, n // 4), rng.randint(0, n), rng.randint(0, n // 5)))
                if t.minute == 0:
                    hours.append((ek, t, 12 * n, 12 * n * 900, 3 * n, n // 4, 3))
        t += timedelta(minutes=5)
    return steps, hours


def _add(con, steps: list, hours: list) -> None:
    for table, rows in (("entity_steps", steps), ("entity_hours", hours)):
        names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        with arrow_views(con, _rows_in=pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})):
            con.execute(f"INSERT INTO {table} SELECT * FROM _rows_in")


def _learned(con) -> tuple:
    training = con.execute("SELECT etype, features FROM ml_training").fetchall()
    levels = sorted(con.execute("SELECT ek, metric, top, levels FROM volume_levels").fetchall())
    peers = sorted(con.execute("SELECT metric, etype, ptype, value, samples FROM baselines "
                               "WHERE metric LIKE 'vol_%'").fetchall())
    return training, levels, peers


def test_kept_days_learn_what_a_fresh_learn_does(store):
    con, _ = store
    cfg = load_detect_config(load_catalog(None))
    rng = random.Random(7)
    con.executemany("INSERT INTO entity_registry VALUES (?, ?, 'customer', ?, ?)",
                    [(ek, et, f"e{ek}", DAY0) for ek, et in EKS.items()])
    until = DAY0 + timedelta(days=4, hours=15, seconds=0.5)
    _add(con, *_rows(rng, DAY0 + timedelta(hours=9), until))
    _learn(con, cfg, until)                       # keeps the whole days it read
    first = _learned(con)
    assert first[0] and first[1] and con.execute("SELECT count(*) FROM _kept_vectors_keys").fetchall()[0][0]
    # A day later: that day's rows, and late rows in the last hour of a day already kept, which the
    # next day's first windows reach back into (both days must be read again).
    _add(con, *_rows(rng, until, until + timedelta(days=1)))
    _add(con, *_rows(rng, DAY0 + timedelta(days=2, hours=23), DAY0 + timedelta(days=3)))
    until += timedelta(days=1)
    _learn(con, cfg, until)
    kept = _learned(con)
    fresh = con.cursor()                          # another connection keeps nothing: learns from scratch
    assert not fresh.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_kept%'").fetchall()[0][0]
    _learn(fresh, cfg, until)
    assert _learned(fresh) == kept
    assert kept != first


def test_training_sample_is_each_pairs_smallest_hashes(store):
    """The sample per (entity type, principal type) is its `max_training_rows` vectors of smallest hash, in
    hash order, and every vector of a pair with no more than that."""
    con, _ = store
    cfg = load_detect_config(load_catalog(None))
    con.executemany("INSERT INTO entity_registry VALUES (?, ?, 'customer', ?, ?)",
                    [(ek, et, f"e{ek}", DAY0) for ek, et in EKS.items()])
    until = DAY0 + timedelta(days=2, hours=3)
    _add(con, *_rows(random.Random(3), DAY0, until))
    _learn(con, cfg, until)
    total = dict(con.execute("SELECT etype, count(*) FROM ml_training GROUP BY etype").fetchall())
    assert total["ip"] > total["asn"]            # two ip entities, one asn
    cut = total["asn"]                           # ip is cut, asn is kept whole
    cfg.detectors["ml_outlier"]["max_training_rows"] = cut
    _learn(con, cfg, until)
    want = con.execute(f"""SELECT etype, v FROM (
        SELECT r.etype, x.v, x.h, row_number() OVER (PARTITION BY r.etype ORDER BY x.h) AS rn
        FROM _ml_vec x JOIN entity_registry r ON r.ek = x.ek) WHERE rn <= {cut} ORDER BY etype, h""").fetchall()
    got = con.execute("SELECT etype, features FROM ml_training").fetchall()
    sizes = dict(con.execute("SELECT etype, count(*) FROM ml_training GROUP BY etype").fetchall())
    assert got == want
    assert sizes["ip"] == cut and sizes["asn"] == total["asn"]
