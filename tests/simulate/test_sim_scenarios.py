"""Each scenario other than forged_token does what its description says."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow.compute as pc

from breachwatch.simulate.timebase import HOUR, MINUTE, kst_hour


def _times(table):
    return np.sort(table.column("time").cast("int64").to_numpy())


def _kind(table, kind):
    return table.filter(pc.equal(table.column("kind"), kind))


def test_stale_credential_is_used_after_its_owner_left(standard_run):
    s = standard_run.scenario("stale_credential")
    m = standard_run.malicious("stale_credential")
    who = s["context"]["employee"]
    assert set(m.column("principal_id").to_pylist()) == {who}
    ev = standard_run.events
    left = ev.filter(pc.and_(pc.equal(ev.column("kind"), "principal_offboarded"), pc.equal(ev.column("principal_id"),
                                                                                            who)))
    assert left.num_rows == 1 and left.column("time")[0].as_py() < _kind(m, "login").column("time")[0].as_py()
    assert not any(ip.startswith("10.") for ip in m.column("src_ip").to_pylist())
    # The agent's own work stops when they leave: everything after is the misuse.
    after = ev.filter(pc.and_(pc.equal(ev.column("principal_id"), who),
                              pc.greater(ev.column("time"), left.column("time")[0])))
    assert after.num_rows == m.num_rows
    reads = _kind(m, "access")
    assert reads.num_rows >= s["params"]["reads"]
    assert 22 <= kst_hour(int(_times(reads)[0])) or kst_hour(int(_times(reads)[0])) < 2


def test_insider_reads_without_tickets_among_ticketed_work(standard_run):
    s = standard_run.scenario("insider_browsing")
    m = _kind(standard_run.malicious("insider_browsing"), "access")
    who = s["context"]["employee"]
    assert m.num_rows >= s["params"]["reads"] and m.column("reason_ref").null_count == m.num_rows
    assert all(ip.startswith("10.12.") for ip in m.column("src_ip").to_pylist())
    ev = standard_run.events
    mine = ev.filter(pc.and_(pc.equal(ev.column("principal_id"), who), pc.equal(ev.column("kind"), "access")))
    ticketed = mine.filter(pc.is_valid(mine.column("reason_ref")))
    assert ticketed.num_rows > 0  # the same agent's legitimate work carries tickets
    hours = {kst_hour(int(t)) for t in _times(m)}
    assert hours <= set(range(9, 19))


def test_bola_reads_other_members_by_changing_the_path_id(standard_run):
    m = standard_run.malicious("bola_enumeration")
    reads = _kind(m, "access").to_pylist()
    principals = {r["principal_id"] for r in reads}
    assert len(principals) == 1
    me = principals.pop()
    assert {r["endpoint"] for r in reads} == {"GET /api/members/{memberId}/profile"}
    path_ids = [int(json.loads(r["attributes"])["path"].split("/")[3]) for r in reads]
    assert me not in {str(i) for i in path_ids}
    skipped_own = path_ids[0] < int(me) < path_ids[-1]
    assert path_ids == sorted(path_ids) and path_ids[-1] - path_ids[0] == len(path_ids) - 1 + skipped_own
    assert {r["status"] for r in reads} == {200, 404}
    for r, pid in zip(reads, path_ids):
        assert r["subject_ids"] in ([str(pid)], None)
    assert _kind(m, "login").num_rows == _kind(m, "token_issued").num_rows >= 1


def test_new_partner_scrapes_five_thousand_a_minute_mostly_missing(standard_run):
    s = standard_run.scenario("partner_scraping")
    m = standard_run.malicious("partner_scraping")
    ev = standard_run.events
    created = ev.filter(pc.and_(pc.equal(ev.column("kind"), "principal_created"),
                                pc.equal(ev.column("principal_id"), s["context"]["partner"])))
    assert created.num_rows == 1
    t = _times(m)
    age = t[0] - created.column("time").cast("int64")[0].as_py()
    assert 0 < age <= 7 * HOUR
    per_minute = len(t) / ((t[-1] - t[0]) / MINUTE)
    assert 4500 < per_minute < 5500
    status = Counter(m.column("status").to_pylist())
    assert status[404] > 0.5 * m.num_rows and status[200] > 0
    assert set(m.column("principal_type").to_pylist()) == {"partner"}
    # Legitimate sellers read too, far more slowly.
    benign = ev.filter(pc.and_(pc.equal(ev.column("endpoint"), "GET /partner/orders/{orderId}/buyer"),
                               pc.not_equal(ev.column("principal_id"), s["context"]["partner"])))
    assert benign.num_rows > 0 and set(benign.column("status").to_pylist()) == {200}


def test_credential_stuffing_bursts_then_takeovers(standard_run):
    s = standard_run.scenario("credential_stuffing")
    m = standard_run.malicious("credential_stuffing")
    failed = _kind(m, "login_failed")
    assert failed.num_rows > 5000
    assert pc.count_distinct(failed.column("src_ip")).as_py() > 500
    assert failed.column("principal_id").null_count > 0.3 * failed.num_rows  # unknown accounts
    victims = set(s["context"]["victims"])
    assert len(victims) == s["params"]["takeovers"] == _kind(m, "login").num_rows == _kind(m, "token_issued").num_rows
    reads = _kind(m, "access")
    assert set(reads.column("principal_id").to_pylist()) <= victims
    assert victims <= set(s["exposed"])
    t = _times(failed)
    gaps = np.diff(t)
    assert (gaps > 30 * MINUTE).sum() == s["params"]["bursts"] - 1  # quiet time between bursts


def test_canary_read_is_a_ticketed_back_office_read_of_a_honey_record(standard_run):
    s = standard_run.scenario("canary_read")
    reads = _kind(standard_run.malicious("canary_read"), "access").to_pylist()
    assert len(reads) == s["params"]["canaries"]
    assert all(r["reason_ref"].startswith("CS-") for r in reads)
    assert {x for r in reads for x in r["subject_ids"]} == set(s["context"]["canaries_read"])
    assert set(s["context"]["canaries_read"]) <= set(standard_run.truth["world"]["canaries"])


def test_scenario_sessions_stay_short(standard_run):
    for name in ("stale_credential", "bola_enumeration", "partner_scraping", "credential_stuffing"):
        t = _times(standard_run.malicious(name))
        assert (t[-1] - t[0]) < 4 * HOUR, name
