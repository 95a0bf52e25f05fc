"""One attack is one incident, and two attacks are two.

A forged-token campaign (one stolen key, a token per victim, IPs rotating over
three hosting networks abroad) with a short test phase hours before it raises
alerts on its key, its client, its user agent, its networks and countries, at
different moments. They must all land in one incident whose blast radius
grows. A BOLA attack by an unrelated customer, running at the same time from
a home network with another client, must stay its own incident.
"""
from __future__ import annotations

from datetime import timedelta

import pytest

import detect_world as W
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.replay import replay
from breachwatch.incidents.store import list_incidents
from breachwatch.store.db import connect


@pytest.fixture(scope="module")
def two_attacks(tmp_path_factory):
    w = W.World(users=600)
    for day in range(3):
        w.benign_day(day)
    w.forged(3, 1.0, reads=4, label="forged")                 # the test phase
    w.forged(3, 4.0, reads=300, rate_s=2.0, label="forged")   # the campaign, three hours later
    w.bola(3, 4.1, reads=200, client=W.SCRIPT)               # someone else, at the same time
    w.benign_day(3)
    path = str(tmp_path_factory.mktemp("two") / "two.duckdb")
    con = connect(path)
    # Small batches: the campaign's alerts then arrive over many runs, as they would live.
    replay(con, path, w.tables(), load_detect_config(W.catalog()),
           warmup_until=W.START + timedelta(days=3), batch_s=120)
    yield con, w
    con.close()


def _labels(con, inc_id: str, labels: dict[str, str]) -> set[str]:
    ids = con.execute("SELECT event_id FROM incident_events WHERE incident_id = ?", [inc_id]).fetchall()
    return {labels[i] for (i,) in ids if i in labels}


def test_a_multi_ip_multi_token_campaign_is_one_incident_and_an_unrelated_attack_another(two_attacks):
    con, w = two_attacks
    by_label: dict[str, list[dict]] = {}
    for inc in list_incidents(con):
        for label in _labels(con, inc["id"], w.labels):
            by_label.setdefault(label, []).append(inc)
    assert set(by_label) == {"forged", "bola"}
    forged, bola = by_label["forged"], by_label["bola"]
    assert len(forged) == 1, [i["summary"] for i in forged]
    assert len(bola) == 1, [i["summary"] for i in bola]
    assert forged[0]["id"] != bola[0]["id"]
    campaign = forged[0]
    # Its alerts came from several detectors and entities; its entities are the whole campaign's.
    assert "forged_token" in campaign["detectors"]
    assert len(campaign["entities"]["ips"]) >= 100 and len(campaign["entities"]["tokens"]) >= 100
    assert "kid-2024a" in campaign["entities"]["keys"]
    # The blast radius covers the test phase and the campaign.
    assert campaign["subjects"] >= 290
    malicious = {e for e, label in w.labels.items() if label == "forged"}
    held = {r[0] for r in con.execute("SELECT event_id FROM incident_events WHERE incident_id = ?",
                                      [campaign["id"]]).fetchall()}
    assert len(malicious & held) >= 0.95 * len(malicious)
    # Nothing of the unrelated attack's principal went into the campaign's incident.
    assert _labels(con, campaign["id"], w.labels) == {"forged"}


def test_a_merged_incident_keeps_the_history_of_its_parts(two_attacks):
    con, _ = two_attacks
    ids = {r[0] for r in con.execute("SELECT incident_id FROM incidents").fetchall()}
    # Every history row belongs to an incident that exists, and each incident was opened once.
    orphans = con.execute("SELECT count(*) FROM incident_log WHERE incident_id NOT IN "
                          "(SELECT incident_id FROM incidents)").fetchall()[0][0]
    assert orphans == 0
    for inc in ids:
        assert con.execute("SELECT count(*) FROM incident_log WHERE incident_id = ? AND action = 'opened'",
                           [inc]).fetchall()[0][0] >= 1
    # No alert points at an incident that was folded away.
    assert con.execute("SELECT count(*) FROM alerts WHERE incident_id IS NOT NULL AND incident_id NOT IN "
                       "(SELECT incident_id FROM incidents)").fetchall()[0][0] == 0
