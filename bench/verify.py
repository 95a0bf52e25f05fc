"""verify on an untouched store, side by side with plain SHA-256 over the same bytes.

verify recomputes every batch's digest from the stored columns, then the chain,
and compares the chain with the anchor. Batches that ingest validated itself are
digested by column (`--digest column`, the default: each column's values,
lengths and validity as Arrow buffers, `column_bytes`); small batches, as HTTP
requests commit them, by record (`--digest record`: the canonical text of every
record and its SHA-256). The ceiling is hashing exactly the bytes verify hashes
in one SHA-256 stream (hashlib), timed in the same run.

The store is built the way the writer builds it (events inserted per batch,
then `batch_digest` and `link_head` for each link, the heads appended to the
anchor), without going through ingest, so that a 10-million-event store is
ready in minutes.

    .venv/bin/python bench/verify.py --events 10000000
    .venv/bin/python bench/verify.py --events 10000000 --digest record
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import tempfile
import time
from datetime import datetime
from pathlib import Path

from breachwatch.contract.event import FIELD_NAMES, canonical_record_sql
from breachwatch.store.anchor import AnchorEntry, AnchorFile
from breachwatch.store.chain import (COLUMN_VERSION, DIGEST_COLUMNS, GENESIS, batch_digest, columns_bytes, link_head,
                                     verify)
from breachwatch.store.db import connect

ROWS = """
SELECT 'e' || i AS event_id, TIMESTAMP '2025-04-14 00:00:00' + to_microseconds(i * 8640) AS time, 'access' AS kind,
       (100000 + i % 100000)::VARCHAR AS principal_id, 'customer' AS principal_type, 's' || (i // 12) AS session_id,
       't' || (i // 12) AS token_id, 'k-2019-07' AS key_id, NULL::TIMESTAMP AS token_issued_at,
       NULL::TIMESTAMP AS token_expires_at, NULL AS owner_id,
       '211.' || (i % 200) || '.' || (i % 250) || '.' || (i % 97) AS src_ip, 'AS4766' AS src_asn, 'KR' AS src_country,
       'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)' AS user_agent, 'ja3-' || (i % 50) AS client_fingerprint,
       'web' AS service, 'GET /api/me/addresses' AS endpoint, 'read' AS action, NULL AS reason_ref, 200 AS status,
       2048 + i % 1000 AS bytes_out, [(100000 + i % 100000)::VARCHAR, 'r-' || i] AS subject_ids, ['name'] AS fields,
       MAP {'r-' || i: ['name', 'phone', 'address', 'entrance_code_masked']} AS subject_fields, 2 AS record_count,
       NULL AS status_value, NULL::JSON AS attributes
FROM range(__LO__, __HI__) t(i)
"""


class Collected(list):
    """Stands in for a hash object: keeps the bytes `columns_bytes` would hash."""

    def update(self, data: bytes | memoryview) -> None:
        self.append(bytes(data))


def build_store(db: str, n: int, batch: int, columnar: bool) -> None:
    con = connect(db)
    anchor = AnchorFile(db + ".anchor")
    prev = GENESIS
    cols = ", ".join(f'"{c}"' for c in FIELD_NAMES)
    for seq, lo in enumerate(range(0, n, batch), 1):
        hi = min(n, lo + batch)
        con.execute(f"INSERT INTO events ({cols}, batch_id) SELECT *, {seq} FROM "
                    f"({ROWS.replace('__LO__', str(lo)).replace('__HI__', str(hi))})")
        digest = batch_digest(con, seq, has_quarantine=False, columnar=COLUMN_VERSION if columnar else None)
        head = link_head(prev, seq, seq, "ingest", hi - lo, 0, digest)
        now = datetime.utcnow()
        con.execute("INSERT INTO batches VALUES (?, ?, ?, 'ingest', 'bench', ?, 0, ?, ?, ?)",
                    [seq, seq, now, hi - lo, digest, prev, head])
        anchor.append([AnchorEntry(seq, seq, head, now.isoformat())])
        prev = head
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--batch", type=int, default=200_000)
    ap.add_argument("--digest", choices=("column", "record"), default="column",
                    help="how the store's batches are digested (ingest: column; HTTP requests: record)")
    ap.add_argument("--sql-peer", action="store_true",
                    help="also time the record hashing the old verify did: sha256() in SQL over the same store")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bw-bench-verify-"))
    db = str(work / "store.duckdb")
    t = time.perf_counter()
    build_store(db, args.events, args.batch, args.digest == "column")
    built = time.perf_counter() - t

    con = connect(db, read_only=True)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    rep = verify(con, db)
    verify_s = time.perf_counter() - t
    rss_verify = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert rep.ok, rep.message
    sql_s = None
    if args.sql_peer:
        # The events' part of verify as it was before 2026-11-27: every record hash with sha256() in SQL.
        t = time.perf_counter()
        con.execute(f"""SELECT batch_id, count(*), sha256(string_agg(h, '' ORDER BY h))
                        FROM (SELECT batch_id, sha256({canonical_record_sql()}) AS h FROM events)
                        GROUP BY batch_id""").fetchall()
        sql_s = time.perf_counter() - t
    # The same bytes verify hashes, fetched once (not timed), then one SHA-256 stream.
    if args.digest == "column":
        blobs = Collected()
        for batch in con.sql(f"SELECT {DIGEST_COLUMNS} FROM events").to_arrow_reader(args.batch):
            columns_bytes(blobs, batch.columns)
    else:
        reader = con.sql(f"SELECT {canonical_record_sql()} FROM events").to_arrow_reader(1_000_000)
        blobs = [b"".join(s.encode() for s in batch.column(0).to_pylist()) for batch in reader]
    con.close()
    nbytes = sum(len(b) for b in blobs)
    t = time.perf_counter()
    h = hashlib.sha256()
    for b in blobs:
        h.update(b)
    h.hexdigest()
    sha_s = time.perf_counter() - t
    print(json.dumps({
        "events": args.events, "digest": args.digest, "links": rep.links, "hashed_mb": round(nbytes / 1e6, 1),
        "store_built_s": round(built, 1),
        "verify_s": round(verify_s, 2), "verify_events_per_s": round(args.events / verify_s),
        "plain_sha256_s": round(sha_s, 2), "plain_sha256_mb_per_s": round(nbytes / 1e6 / sha_s),
        "verify_over_sha256": round(verify_s / sha_s, 2),
        "sql_sha256_events_only_s": round(sql_s, 2) if sql_s else None,
        "peak_rss_mb_before_verify": round(rss_before), "peak_rss_mb_after_verify": round(rss_verify),
    }, indent=2))
    for p in work.iterdir():
        os.unlink(p)
    work.rmdir()


if __name__ == "__main__":
    main()
