"""Ingest throughput, side by side with DuckDB's own bare load of the same file.

breachwatch validates every record against Contract 1, dedups on event_id,
quarantines bad input and chains each batch on top of what DuckDB does, so
DuckDB loading the same file into a table is the ceiling. Both run in this one
process, one after the other, on the same file, so the ratio is meaningful on
a shared, noisy machine.

    .venv/bin/python bench/ingest.py --events 10000000 --formats ndjson.gz,parquet
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from breachwatch.contract.event import FIELDS
from breachwatch.ingest.pipeline import ingest_paths
from breachwatch.store.db import connect

# A retail access log: a member's address book read from a Korean IP, as the simulator writes it.
EVENTS_SQL = """
SELECT 'e' || i AS event_id,
       strftime(TIMESTAMP '2025-04-14 00:00:00' + to_microseconds(i * 8640), '%Y-%m-%dT%H:%M:%S.%fZ') AS time,
       'access' AS kind,
       (100000 + i % 100000)::VARCHAR AS principal_id,
       'customer' AS principal_type,
       's' || (i // 12) AS session_id,
       't' || (i // 12) AS token_id,
       'k-2019-07' AS key_id,
       '211.' || (i % 200) || '.' || (i % 250) || '.' || (i % 97) AS src_ip,
       'AS4766' AS src_asn, 'KR' AS src_country,
       'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15' AS user_agent,
       'ja3-' || (i % 50) AS client_fingerprint,
       'web' AS service, 'GET /api/me/addresses' AS endpoint, 'read' AS action,
       200 AS status, 2048 + i % 1000 AS bytes_out,
       [(100000 + i % 100000)::VARCHAR, 'r-' || i] AS subject_ids,
       ['name'] AS fields,
       MAP {'r-' || i: ['name', 'phone', 'address', 'entrance_code_masked']} AS subject_fields,
       2 AS record_count
FROM range(__N__) t(i)
"""


def make_inputs(work: Path, n: int, formats: list[str]) -> dict[str, Path]:
    con = duckdb.connect()
    out = {}
    query = EVENTS_SQL.replace("__N__", str(n))
    for fmt in formats:
        path = work / f"events.{fmt}"
        if fmt == "parquet":
            con.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet)")
        else:
            comp = "gzip" if fmt.endswith(".gz") else "none"
            con.execute(f"COPY ({query}) TO '{path}' (FORMAT json, COMPRESSION {comp})")
        out[fmt] = path
    con.close()
    return out


def bare_load(path: Path, fmt: str, typed: bool) -> float:
    con = duckdb.connect(str(path.parent / "bare.duckdb"))
    con.execute("DROP TABLE IF EXISTS t")
    if fmt == "parquet":
        src = f"read_parquet('{path}')"
    elif typed:
        cols = ", ".join(f"'{f.name}': '{'TIMESTAMPTZ' if f.duck == 'TIMESTAMP' else f.duck.replace('JSON', 'VARCHAR')}'"
                         for f in FIELDS)
        src = f"read_json('{path}', format='newline_delimited', columns={{{cols}}})"
    else:
        src = f"read_json('{path}', format='newline_delimited')"
    t = time.perf_counter()
    con.execute(f"CREATE TABLE t AS SELECT * FROM {src}")
    dt = time.perf_counter() - t
    con.close()
    os.unlink(path.parent / "bare.duckdb")
    return dt


def breachwatch_load(path: Path) -> tuple[float, dict]:
    db = str(path.parent / "bw.duckdb")
    con = connect(db)
    t = time.perf_counter()
    summary = ingest_paths(con, db, [str(path)])
    dt = time.perf_counter() - t
    con.close()
    for p in (db, db + ".wal", db + ".anchor"):
        if os.path.exists(p):
            os.unlink(p)
    return dt, summary.as_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--formats", default="ndjson.gz,parquet")
    ap.add_argument("--workdir", default=None, help="where to write the generated files (default: a temp dir)")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bw-bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    formats = args.formats.split(",")
    t = time.perf_counter()
    inputs = make_inputs(work, args.events, formats)
    print(f"generated {args.events:,} events in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    rows = []
    for fmt, path in inputs.items():
        size = path.stat().st_size
        auto = bare_load(path, fmt, typed=False)
        typed = bare_load(path, fmt, typed=True) if fmt != "parquet" else None
        ours, summary = breachwatch_load(path)
        assert summary["loaded"] == args.events, summary
        n = args.events
        rows.append({"format": fmt, "events": n, "file_mb": round(size / 1e6, 1),
                     "duckdb_bare_events_per_s": round(n / auto),
                     "duckdb_bare_typed_events_per_s": round(n / typed) if typed else None,
                     "breachwatch_events_per_s": round(n / ours),
                     "ratio_vs_bare": round(auto / ours, 3),
                     "ratio_vs_bare_typed": round(typed / ours, 3) if typed else None})
        print(json.dumps(rows[-1]), file=sys.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"results": rows, "peak_rss_mb": round(peak_mb)}, indent=2))
    if not args.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
