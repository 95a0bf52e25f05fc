"""Benign surprises in the simulated retailer must not turn into incidents.

A world with every benign surprise on (a sale day with triple traffic, a
forced app release, a carrier renumbering, a holiday wave of travellers, a new
CRM batch job) and no attack is stored and detected as the drill does it:
`detect --backfill` over the warm-up day, then detection in event-time
micro-batches. Every incident is then a false positive; the drill's bar allows
at most one per benign day. Each incident's alerts are traced to the surprise
whose entities (or, for the sale day, which touches everyone, whose hours)
they fired on, so a failure says which detector fires on which surprise.
"""
from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

import pytest

from breachwatch.contract.catalog import load_catalog
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.replay import replay, score
from breachwatch.incidents.store import incident_detail, list_incidents
from breachwatch.simulate import SURPRISE_NAMES, SimConfig, simulate
from breachwatch.store.db import connect

# 20,000 members: big enough that the surprises move the counts detectors watch (at 2,500 nothing fires at
# all), small enough to run in well under a minute. Two benign days after a day of warm-up. Which surprise
# trips which detector depends on scale (absolute floors): at the drill's 100,000 members the travellers and
# the app release also reached novel_source's spread floors, until arrivals their own login vouched for
# stopped counting there (tests/detect/test_batch_and_vouched.py guards both fixes on a small world).
CONFIG = SimConfig(customers=20_000, days=2, warmup_days=1, seed=1, scenarios="none", surprises="all")
# Consequences of the sale (sellers looking up the day's buyers) trail its last hour.
SALE_TAIL = timedelta(hours=12)
# Alert entity types and the truth `entities` key that names the same kind of thing.
ENTITY_KEYS = {"principal": "principals", "ip": "ips", "asn": "asns", "country": "countries",
               "fingerprint": "fingerprints", "user_agent": "user_agents"}
# Surprises the detectors still turn into incidents in this world (the whole world stays within the drill's
# bar, which the first test requires). Their tests are strict xfails: once a detector is fixed the test
# reports XPASS as a failure, so the entry must be removed and the test then guards the fix.
# (The sale day was one until ml_outlier compared the sellers' network with partners' networks rather than
# with customers': on the sale day it reached the model's minimum traffic for the first time, and every
# lookup of a new buyer looked like nothing customers do.)
KNOWN: dict[str, str] = {}


def _t(iso: str) -> datetime:
    return datetime.fromisoformat(iso.rstrip("Z"))


@pytest.fixture(scope="module")
def detected(tmp_path_factory):
    sim = simulate(CONFIG)
    warmup_end = datetime(1970, 1, 1) + timedelta(microseconds=sim.attack_start)
    path = str(tmp_path_factory.mktemp("surprises") / "store.duckdb")
    con = connect(path)
    replay(con, path, sim.iter_batches(), load_detect_config(load_catalog(None)), warmup_until=warmup_end,
           batch_s=600)
    truth = sim.truth()
    incidents = [incident_detail(con, i["id"]) for i in list_incidents(con)]
    yield con, truth, incidents
    con.close()


def _in_prefixes(entity: str, prefixes: list[str]) -> bool:
    try:
        net = ipaddress.ip_network(entity, strict=False)
    except ValueError:
        return False
    return any(net.subnet_of(ipaddress.ip_network(p)) for p in prefixes if net.version == 4)


def causes(alert: dict, surprises: list[dict]) -> list[str]:
    """The surprises an alert fired on: those that introduced its entity and were under way when it fired;
    failing any, the surprises that name no entity (the sale day touches everyone) and whose hours it fell in."""
    at = _t(alert["detected_at"])
    key = ENTITY_KEYS.get(alert["etype"])
    named, timed = [], []
    for s in surprises:
        start, end, ents = _t(s["start"]), _t(s["end"]), s["entities"]
        if not ents:
            if start <= at <= end + SALE_TAIL:
                timed.append(s["name"])
        elif start <= at <= end and ((key is not None and alert["entity"] in ents.get(key, []))
                                     or (alert["etype"] in ("ip", "prefix")
                                         and _in_prefixes(alert["entity"], ents.get("prefixes", [])))):
            named.append(s["name"])
    return named or timed


def _explain(incidents: list[dict], surprises: list[dict]) -> str:
    lines = []
    for inc in incidents:
        lines.append(f"{inc['id']} {inc['detected_at']} [{', '.join(inc['detectors'])}] {inc['summary']}")
        for a in inc["alerts"]:
            lines.append(f"    {a['detector']}/{a['rule']} on {a['etype']} {a['entity']} at {a['detected_at']} "
                         f"<- {causes(a, surprises) or 'no surprise'}: {a['evidence'][:240]}")
    return "\n".join(lines)


def test_benign_days_stay_within_the_drill_bar(detected):
    con, truth, incidents = detected
    scored = score(con, truth)
    assert scored["false_positive_incidents"] == len(incidents)  # no scenario: every incident is a false one
    allowed = int(truth["benign_days"])
    assert len(incidents) <= allowed, (f"{len(incidents)} false-positive incidents in {allowed} benign days:\n"
                                       + _explain(incidents, truth["benign_surprises"]))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN[n]))
                                  if n in KNOWN else n for n in SURPRISE_NAMES])
def test_no_incident_comes_from_the_surprise(detected, name):
    con, truth, incidents = detected
    surprises = truth["benign_surprises"]
    assert name in {s["name"] for s in surprises}
    flagged = [inc for inc in incidents if any(name in causes(a, surprises) for a in inc["alerts"])]
    assert not flagged, f"incidents raised on {name}:\n" + _explain(flagged, surprises)


def test_the_surprises_are_in_the_store(detected):
    """The world really holds what the surprises promise, so a quiet detector is not a blind one."""
    con, truth, _ = detected
    by = {s["name"]: s for s in truth["benign_surprises"]}
    job = by["new_batch_job"]["entities"]["principals"][0]
    assert con.execute("SELECT count(*) FROM events WHERE principal_id = ? AND kind = 'access'",
                       [job]).fetchall()[0][0] >= 2
    new_ua = by["app_release"]["entities"]["user_agents"]
    assert con.execute("SELECT count(*) FROM events WHERE list_contains(?, user_agent)",
                       [new_ua]).fetchall()[0][0] > 1_000
    abroad = con.execute("SELECT count(DISTINCT principal_id) FROM events WHERE kind = 'login' AND "
                         "src_country <> 'KR' AND list_contains(?, principal_id)",
                         [by["travel"]["entities"]["principals"]]).fetchall()[0][0]
    assert abroad >= 50


def test_the_batch_job_is_recorded_not_silenced(detected):
    """The new job's walk is kept as a low-severity finding (reviewable), not dropped and not an incident."""
    con, truth, _ = detected
    job = next(s for s in truth["benign_surprises"] if s["name"] == "new_batch_job")["entities"]["principals"][0]
    rows = con.execute("SELECT rule, severity, status, incident_id FROM alerts WHERE detector = 'enumeration' "
                       "AND etype = 'principal' AND entity = ?", [job]).fetchall()
    assert ("batchwalk", "low", "finding", None) in rows, rows
    assert all(r[2] != "raised" for r in rows), rows
