"""The benign world looks like a Korean online retailer's."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.contract.catalog import load_catalog
from breachwatch.simulate import people
from breachwatch.simulate.korean_names import SURNAMES
from breachwatch.simulate.timebase import kst_hour
from breachwatch.simulate.world import build_world


def _benign(run):
    malicious = pa.array([i for s in run.truth["scenarios"] for i in s["malicious_event_ids"]])
    return run.events.filter(pc.invert(pc.is_in(run.events.column("event_id"), value_set=malicious)))


def test_member_statuses_have_realistic_shares(standard_run):
    st = standard_run.events.filter(pc.equal(standard_run.events.column("kind"), "subject_status"))
    share = {k: v / st.num_rows for k, v in Counter(st.column("status_value").to_pylist()).items()}
    assert abs(share["active"] - 0.80) < 0.03
    assert abs(share["dormant"] - 0.15) < 0.03
    assert abs(share["withdrawn"] - 0.05) < 0.02
    assert st.num_rows == standard_run.truth["world"]["members"]
    assert st.column("time").cast("int64").to_numpy().max() == st.column("time").cast("int64").to_numpy().min()


def test_customers_follow_the_korean_daily_cycle(standard_run):
    b = _benign(standard_run)
    logins = b.filter(pc.and_(pc.equal(b.column("kind"), "login"), pc.equal(b.column("principal_type"), "customer")))
    hours = Counter(kst_hour(logins.column("time").cast("int64").to_numpy()).tolist())
    evening = sum(hours[h] for h in (20, 21, 22, 23))
    night = sum(hours[h] for h in (2, 3, 4, 5))
    assert evening > 4 * night > 0


def test_customer_events_are_complete_and_domestic(standard_run):
    b = _benign(standard_run)
    acc = b.filter(pc.and_(pc.equal(b.column("kind"), "access"), pc.equal(b.column("principal_type"), "customer")))
    catalog = load_catalog()
    for col in ("principal_id", "token_id", "key_id", "src_ip", "src_asn", "src_country", "user_agent",
                "client_fingerprint", "endpoint", "status", "bytes_out", "token_issued_at", "token_expires_at"):
        assert acc.column(col).null_count == 0, col
    for endpoint in set(acc.column("endpoint").to_pylist()):
        assert catalog.resolve(endpoint) is not None
    countries = Counter(acc.column("src_country").to_pylist())
    assert countries["KR"] > 0.97 * acc.num_rows
    assert {"AS4766", "AS9318", "AS3786", "AS9644"} <= set(acc.column("src_asn").to_pylist())
    # Every token a customer uses was issued by a login in the log.
    issued = b.filter(pc.equal(b.column("kind"), "token_issued")).column("token_id").combine_chunks()
    assert pc.all(pc.is_in(acc.column("token_id"), value_set=issued)).as_py()
    personal = acc.filter(pc.is_valid(acc.column("fields")))
    assert 0.02 < personal.num_rows / acc.num_rows < 0.4  # browsing dominates; own data now and then


def test_address_list_shows_member_name_and_recipients_details(standard_run):
    b = _benign(standard_run)
    book = b.filter(pc.and_(pc.equal(b.column("endpoint"), "GET /api/me/addresses"),
                            pc.equal(b.column("status"), 200))).to_pylist()
    assert book
    full = ["name", "phone", "address", "entrance_code_masked"]
    recipients = 0
    for r in book:
        sf = dict(r["subject_fields"])
        assert list(sf) == r["subject_ids"] and r["subject_ids"][0] == r["principal_id"]
        assert sf[r["principal_id"]] in (["name"], full)
        for other in r["subject_ids"][1:]:
            assert re.fullmatch(r"r-\d+", other) and sf[other] == full
            recipients += 1
        assert r["record_count"] == len(r["subject_ids"]) - (sf[r["principal_id"]] == ["name"])
    assert recipients > 0


def test_bulk_services_staff_and_partners(standard_run):
    b = _benign(standard_run)
    b = b.filter(pc.equal(b.column("kind"), "access"))
    labels = b.filter(pc.equal(b.column("principal_id"), "svc-shipping-label"))
    assert labels.num_rows > 0
    assert max(pc.list_value_length(labels.column("subject_ids")).to_pylist()) > 20
    assert set(labels.column("fields").to_pylist()[0]) == {"name", "phone", "address", "entrance_code"}
    mail = b.filter(pc.equal(b.column("principal_id"), "svc-marketing-mailer"))
    assert mail.num_rows > 0 and set(mail.column("fields").to_pylist()[0]) == {"name", "email"}
    staff = b.filter(pc.and_(pc.equal(b.column("principal_type"), "employee"), pc.equal(b.column("kind"), "access")))
    hours = set(kst_hour(staff.column("time").cast("int64").to_numpy()).tolist())
    assert hours and hours <= set(range(9, 19))
    assert staff.column("reason_ref").null_count < 0.05 * staff.num_rows
    partner = b.filter(pc.equal(b.column("principal_type"), "partner"))
    assert partner.num_rows > 0 and set(pc.list_value_length(partner.column("subject_ids")).to_pylist()) == {1}
    resigned = _benign(standard_run).filter(pc.equal(_benign(standard_run).column("kind"), "principal_offboarded"))
    assert resigned.num_rows == 3  # one agent resigns; the key owner and the stale credential's owner left earlier


def test_people_have_korean_names_contacts_and_road_addresses():
    world = build_world(20_000, 9, 1_748_790_000_000_000, frozenset({"1004242"}))
    t = pa.concat_tables(list(people.customer_blocks(world)))
    names = t.column("name").to_pylist()
    surnames = {s for s, _, _ in SURNAMES}
    two = {s for s in surnames if len(s) == 2}
    first = Counter(n[:2] if n[:2] in two else n[0] for n in names)
    assert set(first) <= surnames
    assert abs(first["김"] / len(names) - 0.215) < 0.015
    assert abs(first["이"] / len(names) - 0.147) < 0.015
    assert abs(first["박"] / len(names) - 0.084) < 0.01
    assert all(re.fullmatch(r"010-\d{4}-\d{4}", p) for p in t.column("phone").to_pylist())
    assert all(re.fullmatch(r"[a-z0-9._]+@[a-z]+\.(com|net)", e) for e in t.column("email").to_pylist())
    road = re.compile(r"\S+(특별시|광역시|도|특별자치시|특별자치도)( \S+[시군구])*( \S+[시군구])? \S+(로|길) \d+"
                      r"(, \d+동 \d+호)?")
    assert all(road.fullmatch(a) for a in t.column("address").to_pylist())
    codes = [(c, m) for c, m in zip(t.column("entrance_code").to_pylist(),
                                    t.column("entrance_code_masked").to_pylist()) if c]
    assert 0.55 < len(codes) / t.num_rows < 0.75
    assert all(len(c) == len(m) and m.endswith("**") and c[:2] == m[:2] for c, m in codes)
    r = pa.concat_tables(list(people.recipient_blocks(world)))
    assert r.num_rows == world.n_recipients > 0
    assert not set(r.column("recipient_id").to_pylist()) & set(t.column("member_id").to_pylist())


def test_member_ids_are_sequential_with_gaps_and_canaries_are_members():
    world = build_world(5_000, 2, 1_748_790_000_000_000, frozenset({"1000100", "1004242"}))
    ids = world.member_id
    assert (np.diff(ids) > 0).all() and ids[0] == 1_000_001
    gaps = (ids[-1] - ids[0] + 1) - len(ids)
    assert 0 < gaps < 0.05 * len(ids)
    assert {str(i) for i in ids[world.canary]} == {"1000100", "1004242"}
    assert (world.activity[world.canary] == 0).all() and not world.marketing_opt_in[world.canary].any()
    assert (world.abroad_from >= 0).sum() > 0  # some members travel
