"""The 2025 retailer breach as the forged_token scenario replays it."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow.compute as pc

from breachwatch.simulate.timebase import DAY, HOUR, MINUTE, SECOND
from breachwatch.simulate.timebase import parse_time as stamp


def _forged(run):
    t = run.malicious("forged_token")
    return t.take(pc.sort_indices(t, [("time", "ascending")]))


def test_2313_rotating_foreign_addresses_one_client_family(standard_run):
    f = _forged(standard_run)
    assert pc.count_distinct(f.column("src_ip")).as_py() == 2313
    countries = set(f.column("src_country").to_pylist())
    assert "KR" not in countries and len(countries) >= 5
    assert len(set(f.column("src_asn").to_pylist())) >= 5
    assert len(set(f.column("client_fingerprint").to_pylist())) == 1
    assert all(ua.startswith("okhttp/4.9.") for ua in set(f.column("user_agent").to_pylist()))
    # Rotation: consecutive requests share an address for a while, no address dominates.
    per_ip = Counter(f.column("src_ip").to_pylist())
    assert max(per_ip.values()) < 0.01 * f.num_rows


def test_tokens_signed_with_the_leaked_key_were_never_issued(standard_run):
    f = _forged(standard_run)
    s = standard_run.scenario("forged_token")
    assert set(f.column("key_id").to_pylist()) == {s["context"]["leaked_key"]} == {"k-2019-07"}
    issued = standard_run.events.filter(pc.equal(standard_run.events.column("kind"), "token_issued"))
    assert not pc.any(pc.is_in(f.column("token_id"), value_set=issued.column("token_id").combine_chunks())).as_py()
    assert set(f.column("kind").to_pylist()) == {"access"}
    # In the walk, one token per member, whose subject is that member.
    walk = f.slice(s["params"]["test_requests"])
    pairs = set(zip(walk.column("token_id").to_pylist(), walk.column("principal_id").to_pylist()))
    assert len({t for t, _ in pairs}) == len(pairs) == len({p for _, p in pairs})
    for row in f.filter(pc.equal(f.column("status"), 200)).slice(0, 2000).to_pylist():
        assert row["principal_id"] in row["subject_ids"]
    # Odd claims: issued months before any use, valid for a year.
    iat = f.column("token_issued_at").cast("int64").to_numpy()
    exp = f.column("token_expires_at").cast("int64").to_numpy()
    first = f.column("time").cast("int64").to_numpy()[0]
    assert (exp - iat > 300 * DAY).all() and (iat < first - 100 * DAY).all()


def test_key_owner_left_before_and_the_key_was_never_rotated(standard_run):
    ev = standard_run.events
    s = standard_run.scenario("forged_token")
    owner = s["context"]["key_owner"]
    left = ev.filter(pc.and_(pc.equal(ev.column("kind"), "principal_offboarded"),
                             pc.equal(ev.column("principal_id"), owner)))
    assert left.num_rows == 1
    assert left.column("time")[0].as_py() < _forged(standard_run).column("time")[0].as_py()
    created = ev.filter(pc.equal(ev.column("kind"), "key_created")).to_pylist()
    assert {"k-2019-07": owner} == {r["key_id"]: r["owner_id"] for r in created if r["key_id"] == "k-2019-07"}
    assert not set(ev.column("kind").to_pylist()) & {"key_rotated", "key_revoked", "key_retired"}


def test_a_short_test_phase_hours_before_a_sequential_walk(standard_run):
    f = _forged(standard_run)
    s = standard_run.scenario("forged_token")
    n_test = s["params"]["test_requests"]
    t = f.column("time").cast("int64").to_numpy()
    ctx = s["context"]
    # The standard run's attack period is one day, so the lead shrinks from 5 h to a tenth of it.
    assert stamp(ctx["campaign_start"]) - stamp(ctx["test_phase_start"]) >= 2 * HOUR
    assert t[n_test - 1] < stamp(ctx["test_phase_start"]) + 20 * MINUTE <= stamp(ctx["campaign_start"]) <= t[n_test]
    walk = np.array(f.column("principal_id").to_pylist()[n_test:], dtype=np.int64)
    assert (np.diff(walk) >= 0).all()
    assert set(walk) == set(range(walk[0], walk[-1] + 1))
    assert walk[0] == int(standard_run.truth["world"]["first_member_id"])

    status = {r["principal_id"]: r["status_value"] for r in standard_run.events.filter(
        pc.equal(standard_run.events.column("kind"), "subject_status")).select(["principal_id", "status_value"])
        .to_pylist()}
    walked = {str(i) for i in walk}
    assert {status[i] for i in walked if i in status} == {"active", "dormant", "withdrawn"}
    missing = walked - set(status)
    last_issued = s["context"]["last_issued_member_id"]
    assert any(int(i) < last_issued for i in missing), "gaps in the id sequence are walked"
    assert any(int(i) > last_issued for i in missing), "ids beyond the last member are walked"
    # Non-existent and withdrawn accounts answer 404 and expose nothing.
    for row in f.slice(n_test).to_pylist()[:5000]:
        if row["principal_id"] in missing or status.get(row["principal_id"]) == "withdrawn":
            assert row["status"] == 404 and row["subject_ids"] is None


def test_pages_in_the_investigations_proportions_at_ten_a_second(standard_run):
    f = _forged(standard_run)
    s = standard_run.scenario("forged_token")
    pages = Counter(f.column("endpoint").to_pylist())
    assert pages["GET /api/me/addresses"] > 3 * pages["GET /api/me/profile"]
    assert pages["GET /api/me/orders"] < 0.01 * f.num_rows
    assert pages["GET /api/me/addresses/{addressId}"] < 0.01 * f.num_rows
    assert s["fields_exposed"] == sorted({"name", "email", "phone", "address", "entrance_code_masked",
                                          "order_history"} | ({"entrance_code"} if pages[
                                              "GET /api/me/addresses/{addressId}"] else set()))
    n_test = s["params"]["test_requests"]
    t = f.column("time").cast("int64").to_numpy()[n_test:]
    rate = (len(t) - 1) / ((t[-1] - t[0]) / SECOND)
    assert 9.0 < rate < 11.0
    assert s["non_members_exposed"] > 0  # recipients in address books are exposed too
