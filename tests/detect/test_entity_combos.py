"""Entity rows by combo: the per-entity sums the engine adds up per combo of sources first are the sums
over every event expanded into its entities, and every entity is registered once with its name."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

from breachwatch.contract.catalog import load_catalog
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.context import ENT_VOLUMES
from breachwatch.detect.engine import run_detect
from breachwatch.detect.entities import entity_rows_sql
from breachwatch.ingest.pipeline import ingest_records

T0 = datetime(2025, 5, 1, 9, 0, 0)


def _events(n: int) -> list[dict]:
    """Accesses from a few principals, each switching now and then between addresses, networks and
    clients, some values absent, several endpoints (one reached from two combos of the same entity in the
    same hour, so per-combo distinct counts would add up wrongly), errors, and lists of people read."""
    rnd = random.Random(7)
    out = []
    for i in range(n):
        who = rnd.choice(["c1", "c2", "c3", "s1", None])
        out.append({
            "event_id": f"e{i}", "time": (T0 + timedelta(seconds=37 * i)).isoformat() + "Z", "kind": "access",
            "principal_id": who,
            "principal_type": None if who is None else ("service" if who == "s1" else "customer"),
            "key_id": rnd.choice(["k1", "k2", None]),
            "src_ip": rnd.choice(["192.0.2.10", "192.0.2.77", "198.51.100.5"]),
            "src_asn": rnd.choice(["AS4766", "AS9318"]), "src_country": rnd.choice(["KR", "KR", "JP"]),
            "user_agent": rnd.choice(["App/1.0", "App/1.1", None]), "client_fingerprint": rnd.choice(["ja4_a", None]),
            "endpoint": rnd.choice(["GET /api/me/profile", "GET /api/me/orders", None]),
            "status": rnd.choice([200, 200, 200, 404, 500]), "bytes_out": rnd.randrange(0, 5000),
            "subject_ids": rnd.sample(["p1", "p2", "p3", "p4"], rnd.randrange(0, 3)) or None, "fields": ["name"]})
    return out


def test_per_combo_sums_are_the_sums_over_every_entity_row(store):
    con, path = store
    ingest_records(con, _events(900), "gw", db_path=path)  # about 9 hours of one day: one segment
    cfg = load_detect_config(load_catalog(None))
    run_detect(con, cfg)
    # The same rows the engine used to write out: every access once per entity type with a value.
    volumes = ", ".join(f"{expr} AS {name}" for name, expr in ENT_VOLUMES.items())
    etypes = sorted(set(cfg.detectors["ml_outlier"]["entities"]) | set(cfg.detectors["volume_anomaly"]["entities"]))
    con.execute(f"""CREATE TEMP TABLE naive AS {entity_rows_sql(
        f"(SELECT *, {volumes} FROM events WHERE kind = 'access')", etypes, "time, " + ", ".join(ENT_VOLUMES))}""")
    assert con.execute("SELECT count(DISTINCT ek) FROM naive").fetchall()[0][0] > 20

    def differ(stored: str, expected: str) -> int:
        return con.execute(f"SELECT count(*) FROM (({stored}) EXCEPT ALL ({expected})) UNION ALL "
                           f"SELECT count(*) FROM (({expected}) EXCEPT ALL ({stored}))").fetchall()

    ml = ", ".join(f"'{e}'" for e in cfg.detectors["ml_outlier"]["entities"])
    steps = differ("SELECT ek, bucket, last_time, requests, bytes, subject_reads, errors FROM entity_steps",
                   f"""SELECT ek, time_bucket(INTERVAL {int(cfg.detectors['ml_outlier']['step'])} SECOND, time),
                              max(time), count(*)::DOUBLE, sum(bytes)::DOUBLE, sum(nsubj)::DOUBLE,
                              sum(CASE WHEN err THEN 1 ELSE 0 END)::DOUBLE
                       FROM naive WHERE etype IN ({ml}) GROUP BY ALL""")
    assert steps == [(0,), (0,)]
    va = ", ".join(f"'{e}'" for e in cfg.detectors["volume_anomaly"]["entities"])
    hours = differ("SELECT ek, hour, requests, bytes, subject_reads, errors, endpoints FROM entity_hours",
                   f"""SELECT ek, time_bucket(INTERVAL 1 HOUR, time), count(*)::DOUBLE, sum(bytes)::DOUBLE,
                              sum(nsubj)::DOUBLE, sum(CASE WHEN err THEN 1 ELSE 0 END)::DOUBLE,
                              count(DISTINCT ep)::DOUBLE
                       FROM naive WHERE etype IN ({va}) GROUP BY ALL""")
    assert hours == [(0,), (0,)]
    # Every entity once, named by its own value (its key is the hash of type, principal type and value),
    # first seen at its first event.
    used = ", ".join(f"'{e}'" for e in etypes)
    registry = differ(f"SELECT ek, first_seen FROM entity_registry WHERE etype IN ({used})",
                      "SELECT ek, min(time) FROM naive GROUP BY ek")
    assert registry == [(0,), (0,)]
    assert con.execute("SELECT count(*) - count(DISTINCT ek) FROM entity_registry").fetchall()[0][0] == 0
    misnamed = "SELECT count(*) FROM entity_registry WHERE ek <> hash(etype, ptype, entity)"
    assert con.execute(misnamed).fetchall() == [(0,)]
