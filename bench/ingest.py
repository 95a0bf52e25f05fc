"""Ingest throughput, side by side with DuckDB's own bare load of the same file; and the fixed cost of
one small commit, as the HTTP server makes them.

breachwatch validates every record against Contract 1, dedups on event_id,
quarantines bad input and chains each batch on top of what DuckDB does, so
DuckDB loading the same file into a table is the ceiling. Both run in this one
process, one after the other, on the same file, so the ratio is meaningful on
a shared, noisy machine.

    .venv/bin/python bench/ingest.py --events 10000000 --formats ndjson.gz,parquet

`--floor` also times what bounds any such ingest from above (`store_floor`): DuckDB writing the same
file straight into a store's events table, and hashing the stored rows as the chain does, or as
columns (`columns_bytes`; for Parquet also of the columns as read from the file, `input_digest_s`).
`--index-peer` also ingests each file into a store given the event_id index that migration 0009
dropped, and `--batch-peer N` in batches of N records, to compare in one run.

The small-commit cost is measured on a fresh store and again on the store the
first format's ingest filled: `--commits` commits of `--commit-size` events,
each through `Ingestor.feed` on a cursor with an unbounded batch size, exactly
as breachwatch/server/writer.py commits an HTTP request.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pyarrow.parquet as pq

from breachwatch.contract.catalog import load_catalog
from breachwatch.contract.event import FIELDS, canonical_record_sql
from breachwatch.ingest.pipeline import DEFAULT_BATCH, Ingestor, ingest_paths
from breachwatch.server.bodies import parse_body
from breachwatch.store.chain import DIGEST_COLUMNS, columns_bytes, sha256_each
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


def make_inputs(work: Path, n: int, formats: list[str], reuse: bool = False) -> dict[str, Path]:
    con = duckdb.connect()
    out = {}
    query = EVENTS_SQL.replace("__N__", str(n))
    for fmt in formats:
        path = work / f"events.{fmt}"
        if reuse and path.exists():
            out[fmt] = path
            continue
        if fmt == "parquet":
            con.execute(f"COPY ({query}) TO '{path}' (FORMAT parquet)")
        else:
            comp = "gzip" if fmt.endswith(".gz") else "none"
            con.execute(f"COPY ({query}) TO '{path}' (FORMAT json, COMPRESSION {comp})")
        out[fmt] = path
    con.close()
    return out


def file_source(path: Path, fmt: str, typed: bool) -> str:
    """DuckDB's own reader of the file; `typed`: NDJSON read with the Contract 1 types, not detected ones."""
    if fmt == "parquet":
        return f"read_parquet('{path}')"
    if typed:
        cols = ", ".join(f"'{f.name}': '{'TIMESTAMPTZ' if f.duck == 'TIMESTAMP' else f.duck.replace('JSON', 'VARCHAR')}'"
                         for f in FIELDS)
        return f"read_json('{path}', format='newline_delimited', columns={{{cols}}})"
    return f"read_json('{path}', format='newline_delimited')"


def bare_load(path: Path, fmt: str, typed: bool) -> tuple[float, float]:
    con = duckdb.connect(str(path.parent / "bare.duckdb"))
    con.execute("DROP TABLE IF EXISTS t")
    t, c = time.perf_counter(), cpu_s()
    con.execute(f"CREATE TABLE t AS SELECT * FROM {file_source(path, fmt, typed)}")
    dt, dc = time.perf_counter() - t, cpu_s() - c
    con.close()
    os.unlink(path.parent / "bare.duckdb")
    return dt, dc


def input_digest_s(path: Path) -> float:
    """Wall seconds of `columns_bytes` over a Parquet file's columns as pyarrow reads them, a million
    rows at a time (the read itself not counted): a digest taken of the columns on their way into the
    store rather than read back from it."""
    spent = 0.0
    h = hashlib.sha256()
    for batch in pq.ParquetFile(path).iter_batches(1_000_000):
        t = time.perf_counter()
        columns_bytes(h, batch.columns)
        spent += time.perf_counter() - t
    return spent


def store_floor(path: Path, fmt: str, hash_rows: bool = True) -> tuple[float, float, float, float]:
    """DuckDB writing the file's rows straight into a fresh store's events table (its types), in one
    statement: no validation, dedup, quarantine or chain. Any design that keeps these columns must at
    least do this, so it bounds the ratio from above.

    Returns (wall s, CPU s) of that write and the wall seconds of hashing the stored rows as the chain
    does (`sha256_each` of each row's canonical text, read back a million rows at a time; 0 without
    `hash_rows`): what commit and verify must compute for every record on top of the write; and the
    wall seconds of reading the same rows back as Arrow and digesting their columns (`columns_bytes`)."""
    db = str(path.parent / "floor.duckdb")
    con = connect(db)
    t, c = time.perf_counter(), cpu_s()
    con.execute(f"INSERT INTO events BY NAME SELECT * REPLACE (time::TIMESTAMPTZ::TIMESTAMP AS time), "
                f"1 AS batch_id FROM {file_source(path, fmt, typed=True)}")
    dt, dc = time.perf_counter() - t, cpu_s() - c
    hash_s = col_s = 0.0
    if hash_rows:
        con.execute("CHECKPOINT")  # read back as verify reads a store: from its file
        t = time.perf_counter()
        for batch in con.execute(f"SELECT {canonical_record_sql()} FROM events").to_arrow_reader(1_000_000):
            sha256_each(batch.column(0))
        hash_s = time.perf_counter() - t
        t = time.perf_counter()
        h = hashlib.sha256()
        for batch in con.execute(f"SELECT {DIGEST_COLUMNS} FROM events").to_arrow_reader(1_000_000):
            columns_bytes(h, batch.columns)
        col_s = time.perf_counter() - t
    con.close()
    remove_store(db)
    return dt, dc, hash_s, col_s


def cpu_s() -> float:
    """CPU seconds of this process, all threads: steadier than wall time on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def breachwatch_load(path: Path, commits: int = 0, commit_size: int = 100, event_index: bool = False,
                     batch_size: int = DEFAULT_BATCH) -> tuple[tuple[float, float], dict, dict | None]:
    """Ingest `path` into a fresh store, in batches of `batch_size`; the summary also gives the store's
    size and the index's memory (`event_index`).

    `event_index=True` first adds the index on event_id that migrations 0007 to 0008 kept: what dropping it
    (0009) gained.
    """
    db = str(path.parent / "bw.duckdb")
    con = connect(db)
    if event_index:
        con.execute("CREATE INDEX events_event_id ON events (event_id)")
    t, c = time.perf_counter(), cpu_s()
    # With the built-in catalog, as `breachwatch ingest` runs when given none.
    summary = ingest_paths(con, db, [str(path)], batch_size=batch_size, catalog=load_catalog()).as_dict()
    dt = time.perf_counter() - t, cpu_s() - c
    # The index is buffer-managed: this is what it holds in memory right after the load (evictable).
    summary["art_index_memory_mb"] = round(con.execute(
        "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'ART_INDEX'").fetchone()[0] / 1e6)
    small = small_commits(con, db, commits, commit_size, offset=10**9) if commits else None
    con.execute("CHECKPOINT")
    summary["store_file_mb"] = round(os.path.getsize(db) / 1e6)
    con.close()
    remove_store(db)
    return dt, summary, small


def remove_store(db: str) -> None:
    for p in (db, db + ".wal", db + ".anchor"):
        if os.path.exists(p):
            os.unlink(p)


@contextlib.contextmanager
def scratch_store(work: Path, name: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh store for one measurement, removed afterwards."""
    db = str(work / f"{name}.duckdb")
    con = connect(db)
    try:
        yield con
    finally:
        con.close()
        remove_store(db)


def small_commits(con: duckdb.DuckDBPyConnection, db: str, n: int, size: int, offset: int = 0) -> dict:
    """Milliseconds per commit of `size` new events, each its own HTTP-like request."""
    gen = duckdb.connect()
    query = EVENTS_SQL.replace("__N__", str(n * size)).replace("FROM range(", f"FROM range({offset}, {offset} + ")
    lines = [r[0] for r in gen.sql(f"SELECT to_json(t)::VARCHAR FROM ({query}) t").fetchall()]
    gen.close()
    cur = con.cursor()
    ing = Ingestor(cur, db, batch_size=1 << 62)  # as server/writer.py: one request, one commit
    ms = []
    for k in range(n):
        body = ("\n".join(lines[k * size:(k + 1) * size]) + "\n").encode()
        parsed = parse_body(body, limit=1 << 26, max_line=1 << 20)
        t = time.perf_counter()
        ing.feed(f"http:bench:{k}", "http", parsed.chunks)
        ms.append((time.perf_counter() - t) * 1000)
    assert ing.summary.loaded == n * size, ing.summary
    store_events = cur.execute("SELECT count(*) FROM events").fetchone()[0]
    cur.close()
    warm = sorted(ms[2:]) or sorted(ms)
    return {"commit_events": size, "commits": n, "store_events_after": store_events,
            "median_ms": round(statistics.median(warm), 1), "p90_ms": round(warm[int(len(warm) * 0.9)], 1),
            "max_ms": round(warm[-1], 1)}


def compact_crossover(work: Path, commits: int) -> list[dict]:
    """Small commits of several sizes with the compact lane and without (every line through the JSON
    feeder), alternating on one fresh store: where the lane stops paying (COMPACT_MAX_LINES)."""
    from breachwatch.ingest import compactlane
    out = []
    offset = 10**9
    with scratch_store(work, "compact") as con:
        db = str(work / "compact.duckdb")
        for size in (1, 10, 100, 500, 1000, 2000, 5000, 10000):
            row: dict = {"commit_events": size}
            n = max(3, min(commits, 200_000 // size))
            for _ in range(2):  # alternate, so both lanes see the same store sizes and load
                for lane, limit in (("compact_lane", 1 << 40), ("json_feeder", 0)):
                    compactlane.COMPACT_MAX_LINES = limit
                    r = small_commits(con, db, n, size, offset=offset)
                    offset += n * size
                    row.setdefault(lane + "_median_ms", []).append(r["median_ms"])
            for lane in ("compact_lane", "json_feeder"):
                row[lane + "_median_ms"] = min(row[lane + "_median_ms"])
            out.append(row)
            print(json.dumps(row), file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--formats", default="ndjson.gz,parquet")
    ap.add_argument("--workdir", default=None, help="where to write the generated files (default: a temp dir)")
    ap.add_argument("--commits", type=int, default=40, help="small commits to time (0: skip)")
    ap.add_argument("--commit-size", type=int, default=100, help="events per small commit")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the loads this many times; medians reported")
    ap.add_argument("--random-ids", action="store_true",
                    help="random-looking event ids (md5), as gateways send, instead of e0, e1, ...: "
                         "sequential ids let min/max pruning hide the dedup lookup's scan")
    ap.add_argument("--index-peer", action="store_true",
                    help="also ingest each file into a store with the event_id index migration 0009 dropped")
    ap.add_argument("--batch-peer", type=int, default=0, metavar="N",
                    help="also ingest each file in batches of N records (default batch: %d), to compare"
                         % DEFAULT_BATCH)
    ap.add_argument("--reuse", action="store_true",
                    help="with --workdir: keep input files already generated there (same --events and ids)")
    ap.add_argument("--floor", action="store_true",
                    help="also time DuckDB writing the file straight into a store's events table (see store_floor)")
    ap.add_argument("--compact-crossover", action="store_true",
                    help="only time small commits of several sizes with and without the compact lane, and exit")
    args = ap.parse_args()
    if args.random_ids:
        global EVENTS_SQL
        EVENTS_SQL = EVENTS_SQL.replace("'e' || i AS event_id", "md5('e' || i) AS event_id")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bw-bench-ingest-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.compact_crossover:
        print(json.dumps({"crossover": compact_crossover(work, args.commits)}, indent=2))
        return
    formats = args.formats.split(",")
    t = time.perf_counter()
    inputs = make_inputs(work, args.events, formats, args.reuse)
    print(f"generated {args.events:,} events in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    rows = []
    small = []
    if args.commits:
        db = str(work / "small.duckdb")
        con = connect(db)
        small.append(small_commits(con, db, args.commits, args.commit_size))
        con.close()
        remove_store(db)
        print(json.dumps(small[-1]), file=sys.stderr)
    for fmt, path in inputs.items():
        size = path.stat().st_size
        n = args.events
        runs = []

        def load(commits: int = 0, label: str | None = None, **kw: Any) -> tuple[float, float, dict]:
            """breachwatch_load of this file, its small commits (if any) added to `small`."""
            (wall, cpu), summary, after = breachwatch_load(path, commits, args.commit_size, **kw)
            if after:
                small.append({**after, **({"store": label} if label else {})})
                print(json.dumps(small[-1]), file=sys.stderr)
            assert summary["loaded"] == n, summary
            return wall, cpu, summary
        # On a shared machine one pair of timings can be off by 2x; with --repeat the loads alternate
        # and the median of the per-pair ratios is reported.
        for _ in range(args.repeat):
            (auto, auto_cpu) = bare_load(path, fmt, typed=False)
            typed = bare_load(path, fmt, typed=True)[0] if fmt != "parquet" else None
            # Small commits on the store the first file filled (after those on a fresh store), and on
            # the index peer's.
            ours, ours_cpu, summary = load(args.commits if len(small) == 1 else 0)
            peer = {}
            if args.floor:
                floor, floor_cpu, hash_s, col_s = store_floor(path, fmt)
                peer |= {"store_floor_events_per_s": round(n / floor), "store_floor_cpu_s": round(floor_cpu, 1),
                         "store_floor_ratio_vs_bare": round(auto / floor, 3),
                         "chain_hashing_s": round(hash_s, 1),
                         "store_floor_and_hashing_ratio_vs_bare": round(auto / (floor + hash_s), 3),
                         "columnar_digest_s": round(col_s, 1),
                         "store_floor_and_columnar_digest_ratio_vs_bare": round(auto / (floor + col_s), 3)}
                if fmt == "parquet":
                    in_s = input_digest_s(path)
                    peer |= {"input_columnar_digest_s": round(in_s, 1),
                             "store_floor_and_input_digest_ratio_vs_bare": round(auto / (floor + in_s), 3)}
            if args.index_peer:
                indexed, indexed_cpu, indexed_summary = load(args.commits if len(small) == 2 else 0,
                                                             "with the event_id index", event_index=True)
                peer |= {"index_events_per_s": round(n / indexed), "index_cpu_s": round(indexed_cpu, 1),
                         "index_store_file_mb": indexed_summary["store_file_mb"],
                         "art_index_memory_mb": indexed_summary["art_index_memory_mb"]}
            if args.batch_peer:
                other, other_cpu, _ = load(batch_size=args.batch_peer)
                peer |= {"batch_peer_size": args.batch_peer, "batch_peer_events_per_s": round(n / other),
                         "batch_peer_cpu_s": round(other_cpu, 1)}
            runs.append({"duckdb_bare_events_per_s": round(n / auto),
                         "duckdb_bare_typed_events_per_s": round(n / typed) if typed else None,
                         "breachwatch_events_per_s": round(n / ours),
                         "ratio_vs_bare": round(auto / ours, 3),
                         "ratio_vs_bare_typed": round(typed / ours, 3) if typed else None,
                         "duckdb_bare_cpu_s": round(auto_cpu, 1), "breachwatch_cpu_s": round(ours_cpu, 1),
                         "store_file_mb": summary["store_file_mb"], **peer})
            print(json.dumps({"format": fmt, **runs[-1]}), file=sys.stderr)

        def med(key: str) -> float | None:
            vals = [r[key] for r in runs if r[key] is not None]
            return statistics.median(vals) if vals else None
        rows.append({"format": fmt, "events": n, "file_mb": round(size / 1e6, 1), "runs": len(runs),
                     **{k: med(k) for k in runs[0]}})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"results": rows, "small_commits": small, "peak_rss_mb": round(peak_mb)}, indent=2))
    if not args.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
