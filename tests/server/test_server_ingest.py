"""HTTP ingest: receipts, limits, shared commits with per-request counts, overload, watched folders, --server."""
from __future__ import annotations

import gzip
import os
import time

import orjson
import pytest
from fastapi.testclient import TestClient
from server_helpers import ServerProcess, event, make_store

from breachwatch.server.app import create_app
from breachwatch.server.bodies import parse_body
from breachwatch.server.client import ServerClient
from breachwatch.server.config import ServerConfig
from breachwatch.server.store import ServerStore
from breachwatch.server.writer import Overloaded, StoreWriter
from breachwatch.store.db import connect


def _ndjson(records):
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


@pytest.fixture()
def client(tmp_path):
    db, keys = make_store(tmp_path)
    app = create_app(ServerConfig(db=db, detect_interval_s=0, max_body_bytes=64 * 1024))
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {keys['ingest']}"
        yield c, db


def test_receipts_match_file_ingest_rules(client):
    c, db = client
    body = _ndjson([event(i) for i in range(5)]) + b"{not json\n" + orjson.dumps({"kind": "access"}) + b"\n"
    r = c.post("/v1/events", content=body)
    assert r.status_code == 202
    got = r.json()
    assert (got["records"], got["loaded"], got["duplicates"], got["quarantined"]) == (7, 5, 0, 2)
    assert got["quarantined_by_reason"] == {"invalid_json": 1, "missing_field": 1}
    # the same events again, as a gzip JSON array: all duplicates
    r = c.post("/v1/events", content=gzip.compress(orjson.dumps([event(i) for i in range(5)])),
               headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert r.json()["loaded"] == 0 and r.json()["duplicates"] == 5
    # a conflict (same id, other content) is quarantined, as in file ingest
    r = c.post("/v1/events", content=_ndjson([event(0, src_ip="10.9.9.9")]))
    assert r.json()["quarantined_by_reason"] == {"conflict": 1}
    with c.app.state.ctx.store.reading() as cur:
        assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == 5
        assert cur.execute("SELECT count(*) FROM quarantine WHERE source LIKE 'http:%'").fetchone()[0] == 3


def test_size_limits_and_bad_bodies_store_nothing(client):
    c, db = client
    big = _ndjson([event(i, attributes={"pad": "x" * 500}) for i in range(200)])
    assert c.post("/v1/events", content=big).status_code == 413
    bomb = gzip.compress(b"\n" * (1 << 20))
    assert c.post("/v1/events", content=bomb).status_code == 413
    assert c.post("/v1/events", content=gzip.compress(_ndjson([event(1)]))[:-6]).status_code == 400
    assert c.post("/v1/events", content=b"[{\"a\": 1},").status_code == 400
    with c.app.state.ctx.store.reading() as cur:
        assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_shared_commit_gives_each_request_its_own_counts(tmp_path):
    db, _ = make_store(tmp_path)
    store = ServerStore(db)
    w = StoreWriter(store, None)
    a = parse_body(_ndjson([event(i, "a") for i in range(3)] + [event(0, "a")]), limit=1 << 20, max_line=1 << 20,
                   ids_up_to=100)
    b = parse_body(_ndjson([event(0, "a"), event(1, "b")]) + b"{broken\n", limit=1 << 20, max_line=1 << 20,
                   ids_up_to=100)
    c = parse_body(_ndjson([event(1, "c")]), limit=1 << 20, max_line=1 << 20, ids_up_to=100)
    futures = [w.submit(w.stage(a), "A"), w.submit(w.stage(c), "C")]  # queued before the writer starts: one group commit
    w.start()
    ra, rc = [f.result(30) for f in futures]
    rb = w.submit(w.stage(b), "B").result(30)
    w.stop()
    assert ra["source"] == rc["source"] and ra["first_position"] == 1 and rc["first_position"] == 5
    assert (ra["loaded"], ra["duplicates"], ra["quarantined"]) == (3, 1, 0)
    assert (rc["loaded"], rc["duplicates"], rc["quarantined"]) == (1, 0, 0)
    assert (rb["loaded"], rb["duplicates"], rb["quarantined_by_reason"]) == (1, 1, {"invalid_json": 1})
    assert w.commits == 2
    with store.reading() as cur:
        assert cur.execute("SELECT count(*) FROM events").fetchone()[0] == 5
    store.close()


def test_ids_looked_up_before_a_commit_of_the_same_ids_count_as_duplicates(tmp_path):
    """A request looks its ids up when validated; ids stored after that, by another request's commit or by
    a watched file's batches, are still found at its commit."""
    from breachwatch.ingest.readers import chunk_records

    db, _ = make_store(tmp_path)
    store = ServerStore(db)
    w = StoreWriter(store, None, max_group_records=5)  # no two of these requests share a commit

    def body(prefix: str, n: int):
        return parse_body(_ndjson([event(i, prefix) for i in range(n)]), limit=1 << 20, max_line=1 << 20,
                          ids_up_to=100)
    first, second = w.stage(body("d", 5)), w.stage(body("d", 5))  # both looked up before either is stored
    assert first.stored == [] and second.stored == []
    futures = [w.submit(first, "1"), w.submit(second, "2")]
    third = w.stage(body("e", 3))
    w.start()
    r1, r2 = [f.result(30) for f in futures]
    w.run_job(lambda ing: ing.feed("file", "records", chunk_records([(1, None, event(0, "e"))]))).result(30)
    r3 = w.submit(third, "3").result(30)
    w.stop()
    assert (r1["loaded"], r1["duplicates"]) == (5, 0)
    assert (r2["loaded"], r2["duplicates"]) == (0, 5)
    assert (r3["loaded"], r3["duplicates"]) == (2, 1)
    _each_id_once(store, 8)


def _each_id_once(store: ServerStore, n: int) -> None:
    """The store holds `n` events, no event_id twice; closes it."""
    with store.reading() as cur:
        assert cur.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (n, n)
    store.close()


def test_a_request_looked_up_while_a_watched_file_is_stored_looks_again(tmp_path):
    from breachwatch.ingest.readers import chunk_records

    db, _ = make_store(tmp_path)
    store = ServerStore(db)
    w = StoreWriter(store, None)
    w.start()
    staged = {}

    def job(ing):  # a watched file: the request is looked up after the job began, before its batch is stored
        staged["r"] = w.stage(parse_body(_ndjson([event(0, "f"), event(1, "f")]), limit=1 << 20,
                                         max_line=1 << 20, ids_up_to=100))
        ing.feed("file", "records", chunk_records([(1, None, event(0, "f"))]))
    w.run_job(job).result(30)
    r = w.submit(staged["r"], "r").result(30)
    w.stop()
    assert staged["r"].stored == [] and (r["loaded"], r["duplicates"]) == (1, 1)
    _each_id_once(store, 2)


def test_overload_refuses_at_once_and_stores_nothing_of_it(tmp_path):
    db, _ = make_store(tmp_path)
    store = ServerStore(db)
    w = StoreWriter(store, None, max_pending_records=10, max_group_records=10)
    first = w.submit(w.stage(parse_body(_ndjson([event(i) for i in range(8)]), limit=1 << 20, max_line=1 << 20)),
                     "x")
    with pytest.raises(Overloaded) as e:
        w.stage(parse_body(_ndjson([event(i, "z") for i in range(8)]), limit=1 << 20, max_line=1 << 20))
    assert e.value.retry_after >= 1
    w.start()
    assert first.result(30)["loaded"] == 8
    w.stop()
    with store.reading() as cur:
        assert cur.execute("SELECT count(*) FROM events WHERE event_id LIKE 'z%'").fetchone()[0] == 0
    store.close()


def test_http_429_has_retry_after(tmp_path):
    db, keys = make_store(tmp_path)
    app = create_app(ServerConfig(db=db, detect_interval_s=0, max_pending_records=5, max_group_records=5))
    ctx = app.state.ctx
    ctx.writer.submit(ctx.writer.stage(parse_body(_ndjson([event(i) for i in range(5)]), limit=1 << 20,
                                                  max_line=1 << 20)), "x")
    client = TestClient(app)  # without the lifespan: the writer is not running, so the queue stays full
    r = client.post("/v1/events", content=_ndjson([event(9)]), headers={"Authorization": f"Bearer {keys['ingest']}"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    ctx.store.close()


def test_watched_folder_files_are_ingested_once(tmp_path):
    db, keys = make_store(tmp_path)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "a.ndjson").write_bytes(_ndjson([event(i, "w") for i in range(4)]))
    (spool / "b.ndjson.open").write_bytes(_ndjson([event(9, "w")]))  # still being written
    old = time.time() - 10
    os.utime(spool / "a.ndjson", (old, old))
    app = create_app(ServerConfig(db=db, detect_interval_s=0, watch=[str(spool)], watch_interval_s=3600))
    with TestClient(app):
        watcher = app.state.ctx.watcher
        watcher.scan_once()  # the loop may already have taken the file; either way once only
        assert watcher.scan_once() == []
        with app.state.ctx.store.reading() as cur:
            assert cur.execute("SELECT count(*) FROM events WHERE event_id LIKE 'w%'").fetchone()[0] == 4
            assert cur.execute("SELECT count(*) FROM watched_files").fetchone()[0] == 1


def test_cli_sends_files_to_a_running_server(tmp_path, monkeypatch):
    db, keys = make_store(tmp_path)
    f = tmp_path / "events.ndjson"
    f.write_bytes(_ndjson([event(i, "cli") for i in range(50)]) + b"{oops\n")
    server = ServerProcess(db, "--detect-interval", "0")
    try:
        with ServerClient(server.url, keys["ingest"]) as sc:
            got = sc.ingest_paths([str(f)], batch=20)
        assert (got["loaded"], got["quarantined"], got["requests"]) == (50, 1, 3)
        with ServerClient(server.url, keys["analyst"]) as sc:
            with pytest.raises(Exception, match="403"):
                sc.ingest_paths([str(f)])
    finally:
        server.stop()
    con = connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM events WHERE event_id LIKE 'cli%'").fetchone()[0] == 50


def test_a_body_of_rejects_only_is_quarantined(client):
    """Nothing in the body parses as a record (broken UTF-8): it is quarantined, not refused."""
    c, db = client
    r = c.post("/v1/events", content=b"\xff\xfe not text\n")
    assert r.status_code == 202, r.text
    assert r.json()["quarantined"] == 1 and r.json()["loaded"] == 0


def test_validation_cursors_made_at_once_in_many_threads(tmp_path):
    """Request threads start validating together on a fresh server: each gets its cursor (DuckDB's own
    ATTACH IF NOT EXISTS fails when two race, which answered a request with 500)."""
    import threading

    import duckdb

    from breachwatch.ingest.pipeline import validation_cursor

    for _ in range(60):  # without the lock about one round in ten fails
        con = duckdb.connect()
        errors: list[str] = []

        def make() -> None:
            try:
                validation_cursor(con).execute("SELECT 1").fetchall()
            except Exception as e:  # noqa: BLE001 - collected for the assertion
                errors.append(str(e))
        threads = [threading.Thread(target=make) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        con.close()
        assert errors == []
