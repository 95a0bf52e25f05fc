"""Detection in the same process must not hold up ingest: no request waits on its lock, and a pass leaves a core.

Liveness, not speed, is checked here (timing never decides a test): a request made while
detection holds the store's state lock completes, and a detection pass runs with one DuckDB
thread fewer than the server has, putting the setting back after. The latency numbers are in
bench/http_ingest.py and docs/BENCHMARKS.md.
"""
from __future__ import annotations

import threading

import orjson
from fastapi.testclient import TestClient
from server_helpers import event, make_store

import breachwatch.detect.engine as engine
from breachwatch.server.app import create_app
from breachwatch.server.config import ServerConfig


def _ndjson(n: int, prefix: str) -> bytes:
    return b"".join(orjson.dumps(event(i, prefix)) + b"\n" for i in range(n))


def test_ingest_is_acknowledged_while_detection_holds_the_store(tmp_path):
    db, keys = make_store(tmp_path)
    app = create_app(ServerConfig(db=db, detect_interval_s=0))
    ctx = app.state.ctx
    held, release = threading.Event(), threading.Event()

    def detection_pass() -> None:  # what a long detection run does to the state lock
        with ctx.store.changing():
            held.set()
            release.wait(120)

    with TestClient(app) as c:
        holder = threading.Thread(target=detection_pass)
        holder.start()
        held.wait(30)
        try:
            answers: list[int] = []
            # The key was never used, so this request is due to stamp its last-used time under the lock.
            poster = threading.Thread(target=lambda: answers.append(c.post(
                "/v1/events", content=_ndjson(3, "held-"),
                headers={"Authorization": f"Bearer {keys['ingest']}"}).status_code))
            poster.start()
            poster.join(60)
            assert answers == [202], "an ingest request waited for the detection run's lock"
            with ctx.store.reading() as cur:
                stamped = cur.execute("SELECT last_used_at FROM api_keys WHERE name = 'test-ingest'").fetchone()[0]
            assert stamped is None  # skipped while the lock was held ...
        finally:
            release.set()
            holder.join(30)
        assert c.post("/v1/events", content=_ndjson(3, "free-"),
                      headers={"Authorization": f"Bearer {keys['ingest']}"}).status_code == 202
        with ctx.store.reading() as cur:
            assert cur.execute("SELECT last_used_at FROM api_keys WHERE name = 'test-ingest'").fetchone()[0]
        metrics = c.get("/metrics", headers={"Authorization": f"Bearer {keys['ingest']}"}).text
    # ... and stamped by the next request. The ack time is split into queue wait and the store's commit.
    counts = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines() if "_count " in line}
    assert counts["breachwatch_ingest_queue_wait_seconds_count"] == 2
    assert counts["breachwatch_ingest_commit_seconds_count"] == 2
    assert counts["breachwatch_ingest_ack_seconds_count"] == 2


def test_a_detection_pass_leaves_a_core_and_restores_the_setting(tmp_path, monkeypatch):
    db, keys = make_store(tmp_path)
    app = create_app(ServerConfig(db=db, detect_interval_s=0))
    ctx = app.state.ctx
    seen: list[int] = []
    real = engine.run_detect

    def spy(con, cfg, **kw):
        seen.append(int(con.execute("SELECT current_setting('threads')").fetchone()[0]))
        return real(con, cfg, **kw)

    monkeypatch.setattr(engine, "run_detect", spy)
    with TestClient(app) as c:
        assert c.post("/v1/events", content=_ndjson(20, "d-"),
                      headers={"Authorization": f"Bearer {keys['ingest']}"}).status_code == 202
        with ctx.store.reading() as cur:
            cur.execute("SET threads = 2")  # what a two-core server has
        result = ctx.detection.run_once()
        with ctx.store.reading() as cur:
            after = int(cur.execute("SELECT current_setting('threads')").fetchone()[0])
    assert seen == [1] and after == 2
    assert result["events"] == 20


def test_the_checkpoint_threshold_is_set_and_checked(tmp_path):
    """The served store folds its log only past --checkpoint-mb (DuckDB's own 16 MB made a pause every few
    seconds under steady ingest); an out-of-range value is refused with the fix."""
    import pytest

    from breachwatch.server.config import ServerConfig
    from breachwatch.server.store import ServerStore

    store = ServerStore(str(tmp_path / "s.duckdb"), checkpoint_mb=256)
    try:
        got = store.con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
        assert got.replace(" ", "").upper().startswith(("256MB", "256.0MIB", "244.1MIB")), got
    finally:
        store.close()
    with pytest.raises(ValueError, match="--checkpoint-mb 8"):
        ServerConfig(db=str(tmp_path / "x.duckdb"), checkpoint_mb=8).validate()


def test_the_loop_paces_detection_as_follow_does(tmp_path):
    """The server's loop runs the provenance tier on new events by itself (its alerts committed without
    waiting for the behavioural tier), and a tick with nothing due is not counted as a run."""
    db, keys = make_store(tmp_path)
    app = create_app(ServerConfig(db=db, detect_interval_s=0))
    ctx = app.state.ctx
    canary = sorted(ctx.catalog.canaries)[0]
    with TestClient(app) as c:
        post = {"headers": {"Authorization": f"Bearer {keys['ingest']}"}}
        assert c.post("/v1/events", content=_ndjson(5, "a-"), **post).status_code == 202
        ctx.detection.run_once(pace="auto")           # the first tick: both tiers
        cfg = ctx.detection._cfg
        cfg.engine["provenance_every"], cfg.engine["behaviour_every"] = 0.0, 3600.0
        idle = ctx.detection.run_once(pace="auto")     # nothing new: no run
        assert idle["segments"] == 0
        read = orjson.dumps(event(99, "canary-", subject_ids=[canary])) + b"\n"
        assert c.post("/v1/events", content=read, **post).status_code == 202
        ctx.detection.run_once(pace="auto")
        with ctx.store.reading() as cur:
            alerted = cur.execute("SELECT count(*) FROM alert_events WHERE event_id = 'canary-99'").fetchone()[0]
            prog = engine.load_progress(cur)
        assert alerted == 1
        assert prog.behaviour_batch_id < prog.last_batch_id   # the behavioural tier has not taken it yet
        metrics = c.get("/metrics", headers={"Authorization": f"Bearer {keys['all']}"}).text
    ok = [line for line in metrics.splitlines() if line.startswith("breachwatch_detect_runs_total")]
    assert any(line.endswith(" 2.0") or line.endswith(" 2") for line in ok), ok
