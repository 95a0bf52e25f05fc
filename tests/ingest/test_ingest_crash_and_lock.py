"""Crash safety (SIGKILL mid-file), one writer, idempotency, migrations and bounded memory."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from breachwatch.store.db import ROW_GROUP_ROWS, connect, migrate, migrations, schema_version

BIN = Path(sys.executable).parent / "breachwatch"


def big_file(path: Path, n: int, make_event) -> Path:
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps(make_event(i)) + "\n")
    return path


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.parametrize("fmt", ["ndjson", "parquet"])
def test_sigkill_mid_file_then_rerun_holds_every_record_exactly_once(tmp_path, make_event, fmt):
    """NDJSON is staged batch by batch; Parquet is read in place and its batches inserted straight from the
    file (the direct lane): a kill in either leaves whole batches, and the re-run completes the file."""
    if fmt == "ndjson":
        n, batch = 200_000, "5000"
        src = big_file(tmp_path / "big.ndjson", n, make_event)
    else:  # read in place: DuckDB's own row groups, batches of one row group (8 of them)
        n, batch = 8 * ROW_GROUP_ROWS, str(ROW_GROUP_ROWS)
        src = tmp_path / "big.parquet"
        duckdb.sql(f"""COPY (SELECT 'e' || i AS event_id, TIMESTAMP '2025-04-14 00:00:00' + to_seconds(i) AS time,
                                    'access' AS kind, (100000 + i % 1000)::VARCHAR AS principal_id,
                                    'customer' AS principal_type, 'GET /api/me/profile' AS endpoint,
                                    200::BIGINT AS status, [(100000 + i % 1000)::VARCHAR] AS subject_ids
                             FROM range({n}) t(i)) TO '{src}' (FORMAT parquet)""")
    db = str(tmp_path / "s.duckdb")
    anchor = Path(db + ".anchor")
    proc = subprocess.Popen([str(BIN), "ingest", str(src), "--db", db, "--batch-size", batch, "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if anchor.exists() and len(anchor.read_text().splitlines()) >= 4:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "ingest finished before it could be killed; make the file bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    con = duckdb.connect(db, read_only=True)
    partial = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    assert 0 < partial < n
    again = run("ingest", str(src), "--db", db, "--batch-size", batch, "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["loaded"] + summary["duplicates"] == n
    assert summary["duplicates"] >= partial
    con = duckdb.connect(db, read_only=True)
    total, distinct = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
    status = con.execute("SELECT status FROM ingest_log ORDER BY started_at").fetchall()
    con.close()
    assert total == distinct == n
    assert [s[0] for s in status] == ["running", "complete"]  # the killed run is visible, not hidden
    v = run("verify", "--db", db, "--json")
    assert v.returncode == 0, v.stdout


def test_second_writer_is_told_and_stops(tmp_path, make_event):
    db = str(tmp_path / "s.duckdb")
    connect(db).close()
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import duckdb,time; c=duckdb.connect({db!r}); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        src = big_file(tmp_path / "a.ndjson", 10, make_event)
        t0 = time.time()
        r = run("ingest", str(src), "--db", db)
        assert r.returncode == 2
        assert "another process is writing to this store" in r.stderr
        assert str(holder.pid) in r.stderr
        assert time.time() - t0 < 30  # it stops; it does not wait for the lock
    finally:
        holder.kill()
        holder.wait()
    r = run("ingest", str(src), "--db", db, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["loaded"] == 10


def test_ingest_is_idempotent_and_json_summary_parses(tmp_path, make_event):
    src = big_file(tmp_path / "a.ndjson", 50, make_event)
    with open(src, "a") as f:
        f.write("{oops\n")
    db = str(tmp_path / "s.duckdb")
    first = json.loads(run("ingest", str(src), "--db", db, "--json").stdout)
    second = json.loads(run("ingest", str(src), "--db", db, "--json").stdout)
    assert (first["loaded"], first["quarantined"], first["quarantined_by_reason"]) == (50, 1, {"invalid_json": 1})
    assert (second["loaded"], second["duplicates"], second["quarantined"], second["batches"]) == (0, 51, 0, 0)
    strict = run("ingest", str(src), "--db", db, "--strict")
    assert strict.returncode == 0  # nothing newly quarantined
    (tmp_path / "b.ndjson").write_text("{also bad\n")
    assert run("ingest", str(tmp_path / "b.ndjson"), "--db", db, "--strict").returncode == 1


def test_stdin_and_usage_errors(tmp_path, make_event):
    db = str(tmp_path / "s.duckdb")
    body = "".join(json.dumps(make_event(i)) + "\n" for i in range(5))
    r = subprocess.run([str(BIN), "ingest", "-", "--db", db, "--json"], input=body, capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["loaded"] == 5
    missing = run("ingest", str(tmp_path / "nope.ndjson"), "--db", db)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    (tmp_path / "x.weird").write_text("?")
    unknown = run("ingest", str(tmp_path / "x.weird"), "--db", db)
    assert unknown.returncode == 2 and "--format" in unknown.stderr


def test_store_from_an_older_version_opens_and_upgrades(tmp_path, make_event):
    db = str(tmp_path / "old.duckdb")
    con = duckdb.connect(db)
    migrate(con, upto=1)
    assert schema_version(con) == 1
    con.close()
    con = connect(db)
    assert schema_version(con) == max(v for v, _, _ in migrations())
    con.close()
    assert os.stat(db).st_mode & 0o077 == 0  # owner-only


@pytest.mark.parametrize("fmt", ["ndjson", "parquet"])
def test_memory_stays_bounded_as_files_grow(tmp_path, make_event, make_typed_table, fmt):
    """Peak RSS for a 4x larger file stays close to the smaller file's: input is streamed (Parquet: read
    in place, a batch's row range at a time)."""
    batch = 10_000 if fmt == "ndjson" else ROW_GROUP_ROWS  # Parquet is read in place for whole row groups

    def peak(n: int) -> int:
        if fmt == "ndjson":
            src = big_file(tmp_path / f"f{n}.ndjson", n, make_event)
        else:  # in DuckDB's row groups (read in place), by a child: the ingest's peak RSS counts this process's
            src = tmp_path / f"f{n}.parquet"
            subprocess.run([sys.executable, "-c", (
                f"import sys; sys.path.insert(0, {str(Path(__file__).parent.parent)!r}); "
                "import pyarrow.parquet as pq; from event_rows import event, typed_table; "
                f"pq.write_table(typed_table([event(i) for i in range({n})]), {str(src)!r}, "
                f"row_group_size={ROW_GROUP_ROWS})")], check=True, timeout=300)
        code = ("import resource,sys;from breachwatch.cli.main import main;sys.argv=['breachwatch','ingest',"
                f"{str(src)!r},'--db',{str(tmp_path / f's{n}.duckdb')!r},'--batch-size','{batch}','--json'];"
                "exec('try:\\n main()\\nexcept SystemExit:\\n pass');"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        return int(r.stderr.strip().splitlines()[-1])
    small, large = (40_000, 160_000) if fmt == "ndjson" else (ROW_GROUP_ROWS, 4 * ROW_GROUP_ROWS)
    small, large = peak(small), peak(large)
    assert large < small * 1.5, (small, large)
