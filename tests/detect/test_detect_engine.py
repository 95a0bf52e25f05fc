"""The engine: event-time decisions independent of batching, watermarks, held provenance, shadow mode."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

import detect_world as W
from breachwatch.contract.catalog import parse_catalog
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.engine import load_progress, run_detect
from breachwatch.detect.replay import replay
from breachwatch.incidents.store import list_alerts, list_incidents
from breachwatch.ingest.pipeline import ingest_records
from breachwatch.store.db import connect

T0 = datetime(2025, 5, 1, 9, 0, 0)
FEEDS = """
detectors:
  engine:
    feeds:
      issuance: {kinds: [token_issued, login], allowed_lateness: 5s, silent_after: 2m}
      gateway: {kinds: [access], allowed_lateness: 0s, silent_after: 2m}
"""


def _iso(t: datetime) -> str:
    return t.isoformat() + "Z"


def _login(i: int, t: datetime, token: str, who: str = "c1") -> dict:
    return {"event_id": f"iss{i}", "time": _iso(t), "kind": "token_issued", "principal_id": who,
            "principal_type": "customer", "token_id": token, "key_id": "k1", "token_issued_at": _iso(t),
            "token_expires_at": _iso(t + timedelta(hours=1))}


def _use(i: int, t: datetime, token: str, who: str = "c1", iat: datetime = T0) -> dict:
    return {"event_id": f"use{i}", "time": _iso(t), "kind": "access", "principal_id": who,
            "principal_type": "customer", "token_id": token, "key_id": "k1", "token_issued_at": _iso(iat),
            "token_expires_at": _iso(iat + timedelta(hours=1)), "src_ip": "192.0.2.10", "src_country": "KR",
            "endpoint": "GET /api/me/profile", "subject_ids": [who], "fields": ["name"], "status": 200}


@pytest.fixture
def feeds_cfg():
    return load_detect_config(parse_catalog(FEEDS, "<t>"))


def test_never_issued_waits_for_the_issuance_watermark(store, feeds_cfg):
    con, path = store
    # The issuance log starts, one token is issued, then a token nobody issued is used.
    ingest_records(con, [_login(1, T0, "good"), _use(1, T0 + timedelta(seconds=10), "good"),
                         _use(2, T0 + timedelta(seconds=20), "minted", who="c2")], "gw", db_path=path)
    first = run_detect(con, feeds_cfg)
    assert not first.incidents_opened  # the issuance feed is only complete up to 09:00:00 - 5s
    assert con.execute("SELECT count(*) FROM token_pending").fetchall()[0][0] == 1
    # Issuance events up to 09:00:24 do not yet cover 09:00:20 + 5s; the one at 09:00:26 does.
    ingest_records(con, [_login(2, T0 + timedelta(seconds=24), "other", who="c3")], "auth", db_path=path)
    assert not run_detect(con, feeds_cfg).incidents_opened
    ingest_records(con, [_login(3, T0 + timedelta(seconds=26), "third", who="c4"),
                         _login(4, T0 + timedelta(seconds=40), "fourth", who="c5")], "auth", db_path=path)
    res = run_detect(con, feeds_cfg)
    assert len(res.incidents_opened) == 1
    inc = list_incidents(con)[0]
    assert inc["detectors"] == ["forged_token"] and inc["detected_at"] == "2025-05-01T09:00:26Z"
    assert inc["entities"]["principals"] == ["c2"]


def test_a_late_issuance_record_clears_a_pending_token(store, feeds_cfg):
    con, path = store
    ingest_records(con, [_login(1, T0, "a"), _use(1, T0 + timedelta(seconds=10), "late", iat=T0 + timedelta(seconds=8))],
                   "gw", db_path=path)
    run_detect(con, feeds_cfg)
    ingest_records(con, [_login(2, T0 + timedelta(seconds=8), "late"), _login(3, T0 + timedelta(seconds=60), "b")],
                   "auth", db_path=path)
    assert not run_detect(con, feeds_cfg).incidents_opened
    assert con.execute("SELECT count(*) FROM token_pending").fetchall()[0][0] == 0


def test_a_silent_issuance_feed_holds_provenance_alerts_and_recovery_confirms_them(store, feeds_cfg):
    con, path = store
    uses = [_use(10 + k, T0 + timedelta(seconds=30 * k), "good") for k in range(1, 12)]
    ingest_records(con, [_login(1, T0, "good"), *uses, _use(99, T0 + timedelta(seconds=100), "minted", who="c9")],
                   "gw", db_path=path)
    res = run_detect(con, feeds_cfg)
    assert [h["state"] for h in res.health] == ["silent"] and res.health[0]["feed"] == "issuance"
    assert not res.incidents_opened and res.by_status == {"held": 1}
    held = list_alerts(con, statuses=["held"])[0]
    assert "silent since" in held["held_reason"]
    ingest_records(con, [_login(2, T0 + timedelta(seconds=340), "new", who="c7")], "auth", db_path=path)
    res = run_detect(con, feeds_cfg)
    assert [h["state"] for h in res.health] == ["recovered"] and len(res.incidents_opened) == 1
    alert = list_alerts(con)[0]
    assert alert["status"] == "raised" and alert["held_reason"] is None


def test_shadow_mode_records_without_incidents(store):
    con, path = store
    cfg = load_detect_config(parse_catalog('canaries: ["h1"]\ndetectors: {canary_read: {mode: shadow}}', "<t>"))
    ingest_records(con, [{**_use(1, T0, "t"), "subject_ids": ["h1"]}], "gw", db_path=path)
    res = run_detect(con, cfg)
    assert not res.incidents_opened and res.by_status == {"shadow": 1}
    assert list_alerts(con, statuses=["shadow"])[0]["detector"] == "canary_read"


def _attack_world() -> W.World:
    w = W.World(users=300, seed=3)
    w.benign_day(0)
    w.forged(1, 2.0, reads=60, rate_s=4.0)
    w.bola(1, 2.5, reads=120)
    return w


def _alerts_by_pattern(con) -> dict[tuple[str, str], str]:
    return {(a["detector"], a["entity"], a["evidence"].split(";")[0][:40]): a["detected_at"] for a in list_alerts(con)}


def test_detection_times_do_not_depend_on_batch_size(tmp_path):
    cat = W.catalog()
    out = []
    # Every 30 s micro-batch stored and detected on its own, against 900 s micro-batches that the
    # replay also gathers into deliveries of `engine.behaviour_max_lag` (pace="auto").
    for batch_s, pace in ((30, "always"), (900, "auto")):
        path = str(tmp_path / f"b{batch_s}.duckdb")
        con = connect(path)
        w = _attack_world()
        tables = [t.filter(_window(t)) for t in w.tables()]
        replay(con, path, tables, load_detect_config(cat), warmup_until=W.START + timedelta(days=1), batch_s=batch_s,
               pace=pace)
        out.append({(a["detector"], a["rule"], a["entity"]): a["detected_at"] for a in list_alerts(con)})
        con.close()
    assert out[0] and out[0] == out[1]


def _window(table):
    import pyarrow.compute as pc
    # History, and the first 50 minutes of the attack day (enough for both attacks to be caught).
    return pc.less(table.column("time"), pc.cast(W.START + timedelta(days=1, hours=2, minutes=50),
                                                  table.schema.field("time").type))


def test_rerun_is_idempotent_and_progress_moves(store, feeds_cfg):
    con, path = store
    ingest_records(con, [_login(1, T0, "good"), _use(1, T0, "good")], "gw", db_path=path)
    run_detect(con, feeds_cfg)
    before = con.execute("SELECT count(*) FROM alerts").fetchall()[0][0], load_progress(con).last_batch_id
    again = run_detect(con, feeds_cfg)
    assert again.events == 0
    assert (con.execute("SELECT count(*) FROM alerts").fetchall()[0][0], load_progress(con).last_batch_id) == before


def test_a_backlog_taken_in_bounded_passes_finds_the_same(tmp_path):
    import pyarrow as pa
    import pyarrow.compute as pc

    from breachwatch.detect.replay import _Store

    out, segments = [], []
    for cap in (10_000_000, 40):
        path = str(tmp_path / f"cap{cap}.duckdb")
        con = connect(path)
        cfg = load_detect_config(W.catalog())
        cfg.engine["max_pass_events"] = cap
        events = pa.concat_tables([t.filter(_window(t)) for t in _attack_world().tables()])
        cut = pc.cast(W.START + timedelta(days=1), events.schema.field("time").type)
        history, backlog = events.filter(pc.less(events.column("time"), cut)), events.filter(
            pc.greater_equal(events.column("time"), cut))
        store = _Store(con, path, "test")
        store.put(history)
        run_detect(con, cfg, backfill=True)
        for i in range(0, backlog.num_rows, 20):   # a backlog of many small batches, then one run
            store.put(backlog.slice(i, 20))
        res = run_detect(con, cfg)
        out.append({(a["detector"], a["rule"], a["entity"]): a["detected_at"] for a in list_alerts(con)})
        segments.append(res.segments)
        assert res.events == backlog.num_rows and backlog.num_rows > 4 * 40
        con.close()
    assert out[0] and out[0] == out[1]
    assert segments[1] > segments[0]   # the capped run really took several passes
