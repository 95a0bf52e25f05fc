"""Benchmark: the blast-radius manifest of an incident in a 20-million-event history.

Builds (or reuses) a store with a month of a retailer's benign traffic (logins that issue
tokens, profile, address-book and order reads, address books with non-member recipients)
and a forged-token campaign with the leaked key walking member ids from 2,313 foreign
addresses. The incident is the campaign's first hour. Measured: proposing the expansion
steps, building the manifest with them accepted, and writing it (CSV + Parquet), with the
process's peak memory; side by side with the ceiling, DuckDB running the final
aggregation bare over the already-known campaign events.

    .venv/bin/python bench/scope.py                      # 20 M events (store cached in /tmp)
    .venv/bin/python bench/scope.py --events 2000000     # quicker
Goal: manifest in 60 s or less for 20 M events.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from breachwatch.contract.catalog import load_catalog
from breachwatch.scope import build_manifest, propose_expansions, write_manifest
from breachwatch.store.db import connect

START = "2025-06-01 00:00:00"
CAMPAIGN_START = "2025-06-20 01:00:00"
BOOK = "['name', 'phone', 'address', 'entrance_code_masked']"


def generate(con: duckdb.DuckDBPyConnection, events: int, members: int, campaign_share: float) -> int:
    """Fill `events` with SQL (fast, reproducible); returns the campaign's event count."""
    campaign = int(events * campaign_share)
    sessions = (events - campaign) // 5  # one issuance and four reads per session
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _s AS
        SELECT i AS sess, (1000001 + hash(i * 7 + 1) % {members})::VARCHAR AS member,
               TIMESTAMP '{START}' + to_microseconds((hash(i * 7 + 2) % (30 * 86400000000))::BIGINT) AS t0,
               (hash(i * 7 + 3) % 4)::INT AS app
        FROM range({sessions}) t(i)""")
    cols = ("event_id, time, kind, principal_id, principal_type, session_id, token_id, key_id, src_ip, src_asn, "
            "src_country, client_fingerprint, endpoint, action, status, subject_ids, fields, subject_fields, batch_id")
    con.execute(f"""INSERT INTO events ({cols})
        SELECT 'iss-' || sess, t0, 'token_issued', member, 'customer', 's-' || sess, 'tok-' || sess, 'k-2019-07',
               '121.' || (sess % 200) || '.' || (sess // 200 % 250) || '.' || (sess % 250 + 1), 'AS4766', 'KR',
               'app-fp-' || app, 'POST /api/auth/login', NULL, 200, NULL, NULL, NULL, 1
        FROM _s""")
    con.execute(f"""INSERT INTO events ({cols})
        SELECT 'rd-' || sess || '-' || j, t0 + to_seconds(30 * (j + 1)), 'access', member, 'customer', 's-' || sess,
               'tok-' || sess, 'k-2019-07', '121.' || (sess % 200) || '.' || (sess // 200 % 250) || '.' || (sess % 250 + 1),
               'AS4766', 'KR', 'app-fp-' || app,
               CASE j WHEN 1 THEN 'GET /api/me/addresses' WHEN 2 THEN 'GET /api/me/orders' ELSE 'GET /api/me/profile' END,
               'read', 200,
               CASE WHEN j = 1 AND member::BIGINT % 5 = 0 THEN [member, 'r-' || member] ELSE [member] END,
               CASE j WHEN 1 THEN {BOOK} WHEN 2 THEN ['order_history'] ELSE ['name', 'email'] END,
               CASE WHEN j = 1 AND member::BIGINT % 5 = 0 THEN MAP([member, 'r-' || member], [['name'], {BOOK}])
                    WHEN j = 1 THEN MAP([member], [['name']]) END,
               1
        FROM _s, range(4) r(j)""")
    # The campaign: forged tokens (no login issued them), ids walked in order, ~10 views a second.
    con.execute(f"""INSERT INTO events ({cols})
        SELECT 'atk-' || i, TIMESTAMP '{CAMPAIGN_START}' + to_microseconds(i * 100000), 'access', m, 'customer', NULL,
               'forged-' || m, 'k-2019-07', '3.80.' || (i // 40 % 2313 // 256) || '.' || (i // 40 % 2313 % 256),
               'AS16509', 'US', 'tool-fp', CASE WHEN i % 2 = 1 THEN 'GET /api/me/addresses' ELSE 'GET /api/me/profile' END,
               'read', 200,
               CASE WHEN i % 2 = 1 AND m::BIGINT % 5 = 0 THEN [m, 'r-' || m] ELSE [m] END,
               CASE WHEN i % 2 = 1 THEN {BOOK} ELSE ['name', 'email'] END,
               CASE WHEN i % 2 = 1 AND m::BIGINT % 5 = 0 THEN MAP([m, 'r-' || m], [['name'], {BOOK}])
                    WHEN i % 2 = 1 THEN MAP([m], [['name']]) END,
               1
        FROM (SELECT i, (1000001 + i // 2)::VARCHAR AS m FROM range({campaign}) t(i))""")
    con.execute("DROP TABLE _s")
    return campaign


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--members", type=int, default=2_000_000)
    ap.add_argument("--campaign-share", type=float, default=0.1)
    ap.add_argument("--store", default=None, help="store to build or reuse (default: /tmp/bw-bench-scope-N.duckdb)")
    a = ap.parse_args()
    path = a.store or os.path.join(tempfile.gettempdir(), f"bw-bench-scope-{a.events}.duckdb")
    fresh = not Path(path).exists()
    con = connect(path)
    t = time.perf_counter()
    if fresh:
        campaign = generate(con, a.events, a.members, a.campaign_share)
        gen_s = time.perf_counter() - t
    else:
        campaign = con.execute("SELECT count(*) FROM events WHERE event_id LIKE 'atk-%'").fetchone()[0]
        gen_s = None
    total = con.execute("SELECT count(*) FROM events").fetchone()[0]
    seed = [r[0] for r in con.execute(f"SELECT event_id FROM events WHERE event_id LIKE 'atk-%' AND time < "
                                      f"TIMESTAMP '{CAMPAIGN_START}' + INTERVAL 1 HOUR").fetchall()]
    incident = {"id": "INC-bench", "aware_at": CAMPAIGN_START + "Z", "event_ids": seed}
    cat = load_catalog(None)

    t = time.perf_counter()
    steps = propose_expansions(con, incident, catalog=cat)
    propose_s = time.perf_counter() - t
    t = time.perf_counter()
    m = build_manifest(con, incident, steps, catalog=cat)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    out = tempfile.mkdtemp(prefix="bw-bench-scope-out-")
    write_manifest(m, out)
    write_s = time.perf_counter() - t

    # Ceiling: the final aggregation alone, over events already known to be the campaign's.
    t = time.perf_counter()
    bare = con.execute("""
        SELECT count(*) FROM (
            SELECT s AS subject_id, list(DISTINCT f) FROM (
                SELECT s, unnest(coalesce(subject_fields[s], fields)) AS f
                FROM (SELECT subject_fields, fields, unnest(subject_ids) AS s FROM events WHERE event_id LIKE 'atk-%'))
            GROUP BY 1)""").fetchone()[0]
    bare_s = time.perf_counter() - t
    manifest_s = propose_s + build_s
    print(json.dumps({
        "events": total, "campaign_events": campaign, "seed_events": len(seed), "store_generated_s": gen_s,
        "steps": [s.id for s in steps], "subjects": m.summary["subjects"], "pairs": m.summary["pairs"],
        "bare_subjects": bare, "propose_s": round(propose_s, 2), "build_s": round(build_s, 2),
        "manifest_s": round(manifest_s, 2), "write_s": round(write_s, 2), "bare_aggregation_s": round(bare_s, 2),
        "ratio_to_bare": round(manifest_s / bare_s, 1) if bare_s else None, "peak_rss_mb": round(peak_mb()),
        "goal_s": 60, "goal_met": manifest_s <= 60, "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
    }, indent=2))
    con.close()


if __name__ == "__main__":
    sys.exit(main())
