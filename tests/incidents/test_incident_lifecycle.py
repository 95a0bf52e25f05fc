"""Incidents from end to end on a small store: Contract 5 shape, merging, lifecycle, suppression."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from breachwatch.contract.catalog import parse_catalog
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.engine import run_detect
from breachwatch.incidents import lifecycle
from breachwatch.incidents.store import get_incident, incident_detail, incident_event_ids, list_alerts, list_incidents
from breachwatch.incidents.suppression import SuppressionRefused, list_suppressions
from breachwatch.ingest.pipeline import ingest_records

CATALOG = """
canaries: ["honey-1", "honey-2"]
"""
T0 = datetime(2025, 5, 1, 9, 0, 0)


def _read(i: int, who: str, subject: str, **over) -> dict:
    e = {"event_id": f"r{who}{i}", "time": (T0 + timedelta(seconds=i)).isoformat() + "Z", "kind": "access",
         "principal_id": who, "principal_type": "employee", "src_ip": "10.0.0.5", "src_country": "KR",
         "endpoint": "GET /admin/customers/{customerId}", "subject_ids": [subject], "fields": ["name", "phone"],
         "status": 200, "reason_ref": "T-1"}
    e.update(over)
    return e


@pytest.fixture
def canary_store(store):
    con, path = store
    cfg = load_detect_config(parse_catalog(CATALOG, "<t>"))
    ingest_records(con, [_read(1, "agent.kim", "c-100"), _read(2, "agent.kim", "honey-1"),
                         _read(3, "agent.kim", "c-101")], "test", db_path=path)
    res = run_detect(con, cfg)
    return con, path, cfg, res


def test_canary_read_opens_a_contract5_incident(canary_store):
    con, _, _, res = canary_store
    assert len(res.incidents_opened) == 1
    inc = get_incident(con, res.incidents_opened[0])
    assert set(inc) >= {"id", "severity", "status", "first_seen", "last_seen", "detected_at", "aware_at", "detectors",
                        "entities", "subjects", "fields", "summary", "evidence", "sample_event_ids"}
    assert set(inc["entities"]) == {"principals", "tokens", "keys", "ips", "asns", "countries", "fingerprints",
                                    "user_agents"}
    assert inc["severity"] == "critical" and inc["status"] == "open" and inc["detectors"] == ["canary_read"]
    assert inc["detected_at"] == "2025-05-01T09:00:02Z" and inc["aware_at"] == inc["detected_at"]
    assert inc["entities"]["principals"] == ["agent.kim"] and inc["subjects"] == 1
    assert "canary" in inc["summary"] and "honey-1" in inc["evidence"][0]
    assert incident_event_ids(con, inc["id"]) == ["ragent.kim2"] == inc["sample_event_ids"]


def test_rerunning_adds_nothing_and_new_reads_join_the_same_alert(canary_store):
    con, path, cfg, res = canary_store
    again = run_detect(con, cfg)
    assert again.events == 0 and not again.incidents_opened
    ingest_records(con, [_read(4, "agent.kim", "honey-2")], "test", db_path=path)
    more = run_detect(con, cfg)
    assert not more.incidents_opened and more.incidents_updated == res.incidents_opened
    inc = get_incident(con, res.incidents_opened[0])
    assert inc["subjects"] == 2 and len(list_alerts(con)) == 1


def test_lifecycle_is_audited_and_enforced(canary_store):
    con, _, _, res = canary_store
    inc_id = res.incidents_opened[0]
    with pytest.raises(ValueError, match="--by"):
        lifecycle.acknowledge(con, inc_id, by="")
    assert lifecycle.acknowledge(con, inc_id, by="alice", note="looking")["status"] == "acknowledged"
    with pytest.raises(ValueError, match="cannot become acknowledged"):
        lifecycle.acknowledge(con, inc_id, by="alice")
    assert lifecycle.resolve(con, inc_id, by="alice")["status"] == "resolved"
    history = [(h["action"], h["actor"]) for h in incident_detail(con, inc_id)["history"]]
    assert history == [("opened", "breachwatch"), ("acknowledged", "alice"), ("resolved", "alice")]
    with pytest.raises(ValueError, match="does not exist"):
        lifecycle.resolve(con, "INC-999999", by="alice")


def test_false_positive_suppresses_the_pattern_and_can_be_lifted(canary_store):
    con, path, cfg, res = canary_store
    inc_id = res.incidents_opened[0]
    with pytest.raises(SuppressionRefused, match="cannot suppress"):
        lifecycle.false_positive(con, inc_id, scope="pattern", expires="30d", reason="my own test reads", by="agent.kim")
    with pytest.raises(ValueError, match="reason"):
        lifecycle.false_positive(con, inc_id, scope="pattern", expires="30d", reason="ok", by="bob")
    with pytest.raises(ValueError, match="--scope"):
        lifecycle.false_positive(con, inc_id, scope="everything", expires="30d", reason="test data load", by="bob")
    out = lifecycle.false_positive(con, inc_id, scope="pattern", expires="30d", reason="canary seeded by QA run",
                                   by="bob")
    assert out["status"] == "false_positive" and len(out["suppressions"]) == 1
    # The same pattern again: recorded as suppressed, no incident.
    ingest_records(con, [_read(10, "agent.kim", "honey-2")], "test", db_path=path)
    res2 = run_detect(con, cfg)
    assert not res2.incidents_opened and res2.by_status == {"suppressed": 1}
    sup = list_suppressions(con)[0]
    assert sup["created_by"] == "bob" and sup["hits"] == 1 and sup["active"]
    lifecycle.unsuppress(con, sup["suppression_id"], by="carol", reason="QA finished")
    assert not list_suppressions(con)[0]["active"]
    ingest_records(con, [_read(11, "agent.kim", "honey-1")], "test", db_path=path)
    assert run_detect(con, cfg).incidents_opened
    actions = [h["action"] for h in incident_detail(con, inc_id)["history"]]
    assert actions[-2:] == ["false_positive", "unsuppressed"]


def test_expiry_parsing():
    now = datetime(2025, 1, 1)
    assert lifecycle.parse_expiry("30d", now) == datetime(2025, 1, 31)
    assert lifecycle.parse_expiry("2025-03-01T00:00:00+09:00", now) == datetime(2025, 2, 28, 15)
    with pytest.raises(ValueError, match="--expires"):
        lifecycle.parse_expiry("soonish", now)


def test_list_filters_and_bad_status(canary_store):
    con, *_ = canary_store
    assert len(list_incidents(con, statuses=["open"])) == 1
    assert list_incidents(con, statuses=["resolved"]) == []
    assert len(list_incidents(con, min_severity="high")) == 1
    with pytest.raises(ValueError, match="--status"):
        list_incidents(con, statuses=["closed"])
