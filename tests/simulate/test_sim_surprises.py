"""Benign surprises: deterministic, visible in the events as described, listed in truth.json, off by default.

The "same world except" tests run a surprise alone next to a run without it
(same seed, so the same windows and random streams) and check that exactly
the surprise's own change separates them: every other event is identical.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import replace
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import breachwatch.cli.simulate  # noqa: F401  (registers the command)
from breachwatch.cli.main import app
from breachwatch.simulate import SURPRISE_NAMES, SimConfig, simulate
from breachwatch.simulate.clients import APP_VERSIONS
from breachwatch.simulate.timebase import parse_time

BASE = SimConfig(customers=3_000, days=2, warmup_days=1, seed=13, scenarios="none")
ALL = replace(BASE, surprises="all")
APP_UA = "RetailApp/%"


def _surprise(truth: dict, name: str) -> dict:
    return next(s for s in truth["benign_surprises"] if s["name"] == name)


def _run(config: SimConfig, out: Path) -> tuple[pa.Table, dict]:
    simulate(config).write(out, "parquet")
    return pq.read_table(out / "events.parquet"), orjson.loads((out / "truth.json").read_bytes())


@pytest.fixture(scope="module")
def surprised(tmp_path_factory) -> tuple[duckdb.DuckDBPyConnection, dict]:
    events, truth = _run(ALL, tmp_path_factory.mktemp("surprises"))
    con = duckdb.connect()
    con.register("ev", events)
    # Times as microseconds and Korean days, which the assertions compare with truth's instants.
    con.execute("""CREATE VIEW e AS SELECT *, epoch_us(time) AS us,
                   CAST(floor((epoch_us(time) + 32400000000) / 86400000000) AS BIGINT) AS kst_day FROM ev""")
    yield con, truth
    con.close()


def _us(rfc3339: str) -> int:
    return parse_time(rfc3339)


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchall()[0]


# -- off by default, deterministic, in truth ------------------------------------------------------


def test_without_surprises_nothing_mentions_them(tmp_path):
    _, truth = _run(replace(BASE, customers=600, days=0.5, warmup_days=0.25), tmp_path)
    assert "benign_surprises" not in truth and "surprises" not in truth["config"]
    assert SimConfig().surprises == "none"


def test_same_seed_with_surprises_gives_identical_bytes(tmp_path):
    small = replace(ALL, customers=800, days=1.5, warmup_days=0.5)
    for name in ("a", "b"):
        simulate(small).write(tmp_path / name, "ndjson")
    for f in ("events.ndjson", "truth.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_truth_lists_every_surprise_and_no_malicious_event(surprised):
    con, truth = surprised
    assert truth["scenarios"] == [] and truth["config"]["surprises"] == "all"
    got = truth["benign_surprises"]
    assert [s["name"] for s in got] == list(SURPRISE_NAMES)
    warmup_end, end = _us(truth["period"]["warmup_end"]), _us(truth["period"]["end"])
    for s in got:
        assert {"name", "summary", "start", "end", "params", "entities", "context"} <= set(s)
        assert warmup_end <= _us(s["start"]) < _us(s["end"]) <= end, s["name"]
        assert all(isinstance(v, list) for v in s["entities"].values())


# -- each surprise is visible as described ----------------------------------------------------------


def test_sale_day_triples_sessions_and_own_data_reads(surprised):
    con, truth = surprised
    sale = _surprise(truth, "sale_day")
    day = (_us(sale["start"]) + 9 * 3600 * 10**6) // (86_400 * 10**6)  # the sale's Korean day
    logins = dict(con.execute("SELECT kst_day, count(*) FROM e WHERE kind = 'login' AND principal_type = 'customer' "
                              "GROUP BY 1").fetchall())
    ratio = logins[day] / logins[day - 1]
    assert 2.5 < ratio < 3.5, (ratio, logins)
    # More of the views are people's own personal pages, and every one of them is the member's own data.
    share = dict(con.execute("""SELECT kst_day, avg(CASE WHEN endpoint LIKE 'GET /api/me/%' THEN 1 ELSE 0 END)
        FROM e WHERE kind = 'access' AND principal_type = 'customer' GROUP BY 1""").fetchall())
    assert share[day] > 1.3 * share[day - 1]
    foreign_subjects = _one(con, """SELECT count(*) FROM e WHERE kst_day = ? AND endpoint IN
        ('GET /api/me/profile', 'GET /api/me/orders') AND subject_ids[1] <> principal_id""", [day])[0]
    assert foreign_subjects == 0


def test_app_release_changes_every_app_session_at_once(surprised):
    con, truth = surprised
    rel = _surprise(truth, "app_release")
    at, new = _us(rel["start"]), rel["params"]["version"]
    rows = con.execute("""SELECT us >= ? AS after, user_agent, client_fingerprint, count(*) FROM e
        WHERE kind = 'login' AND principal_type = 'customer' AND user_agent LIKE ? GROUP BY ALL""",
                       [at, APP_UA]).fetchall()
    before = {ua for after, ua, _, _ in rows if not after}
    after = {ua for a, ua, _, _ in rows if a}
    assert before and after
    assert all(f"RetailApp/{new} " not in ua for ua in before)
    assert all(ua.startswith(f"RetailApp/{new} ") for ua in after)
    assert {v for ua in before for v in APP_VERSIONS if ua.startswith(f"RetailApp/{v} ")} == set(APP_VERSIONS)
    assert set(rel["entities"]["user_agents"]) >= after
    fps_before = {fp for a, _, fp, _ in rows if not a}
    fps_after = {fp for a, _, fp, _ in rows if a}
    assert not fps_before & fps_after  # the fingerprints changed too (iOS moved to HTTP/3: 'q...h3')
    assert any(fp.startswith("q13d") and "h3_" in fp for fp in fps_after)


def test_carrier_renumbering_moves_one_asn_to_its_new_blocks(surprised):
    con, truth = surprised
    ren = _surprise(truth, "carrier_renumbering")
    at, asn = _us(ren["start"]), ren["entities"]["asns"][0]
    new = [ipaddress.ip_network(p) for p in ren["entities"]["prefixes"]]
    old = [ipaddress.ip_network(p) for p in ren["context"]["old_prefixes"]]
    rows = con.execute("SELECT us >= ?, src_ip FROM e WHERE kind = 'login' AND src_asn = ?", [at, asn]).fetchall()
    before = [ipaddress.ip_address(ip) for a, ip in rows if not a]
    after = [ipaddress.ip_address(ip) for a, ip in rows if a]
    assert len(before) > 50 and len(after) > 50
    assert all(any(ip in n for n in old) for ip in before)
    assert all(any(ip in n for n in new) for ip in after)
    # A home line keeps one address after the move, as before it.
    per_member = _one(con, """SELECT max(n) FROM (SELECT principal_id, count(DISTINCT src_ip) n FROM e
        WHERE kind = 'login' AND src_asn = ? AND us >= ? GROUP BY 1)""", [asn, at])[0]
    assert per_member == 1


def test_travellers_log_in_from_abroad_reading_only_their_own_data(surprised):
    con, truth = surprised
    trip = _surprise(truth, "travel")
    travellers = set(trip["entities"]["principals"])
    assert len(travellers) >= 30
    con.register("travellers", pa.table({"id": pa.array(sorted(travellers))}))
    abroad = con.execute("""SELECT principal_id, src_country, us FROM e WHERE kind = 'login'
        AND principal_type = 'customer' AND src_country <> 'KR'""").fetchall()
    theirs = [r for r in abroad if r[0] in travellers]
    assert len({r[0] for r in theirs}) >= 10
    assert len(theirs) > 2 * (len(abroad) - len(theirs))  # the wave dwarfs the world's usual few travellers
    assert {r[1] for r in theirs} <= set(trip["entities"]["countries"])
    assert min(r[2] for r in theirs) >= _us(trip["start"])
    # Abroad, they read their own data only.
    other = _one(con, """SELECT count(*) FROM e JOIN travellers t ON e.principal_id = t.id WHERE src_country <> 'KR'
        AND kind = 'access' AND endpoint LIKE 'GET /api/me/%' AND endpoint <> 'GET /api/me/addresses'
        AND subject_ids[1] <> principal_id AND NOT starts_with(subject_ids[1], 'r-')""")[0]
    assert other == 0


def test_new_batch_job_is_a_new_service_reading_one_field_in_bulk(surprised):
    con, truth = surprised
    job = _surprise(truth, "new_batch_job")
    who = job["entities"]["principals"][0]
    rows = con.execute("SELECT kind, principal_type, us, endpoint, fields, len(subject_ids) FROM e "
                       "WHERE principal_id = ? ORDER BY us", [who]).fetchall()
    assert rows[0][:2] == ("principal_created", "service")
    reads = rows[1:]
    assert reads and all(r[0] == "access" and r[1] == "service" for r in reads)
    assert rows[0][2] < reads[0][2] == _us(job["context"]["first_run"])
    assert {tuple(r[4]) for r in reads} == {(job["params"]["field"],)}
    assert {r[3] for r in reads} == {job["params"]["endpoint"]}
    runs = {r[2] // (86_400 * 10**6) for r in reads}
    assert len(runs) == 2  # nightly, on both days after the warm-up
    people = sum(r[5] for r in reads) / len(runs)
    assert people == job["context"]["audience_size"] > 0.25 * truth["world"]["members"]


# -- a surprise changes only what it says ----------------------------------------------------------


def _diff(tmp_path: Path, name: str) -> tuple[pa.Table, pa.Table, dict]:
    small = replace(BASE, customers=1_500)
    plain, _ = _run(small, tmp_path / "plain")
    changed, truth = _run(replace(small, surprises=name), tmp_path / name)
    return plain, changed, truth


@pytest.mark.parametrize("name, columns", [("app_release", ("user_agent", "client_fingerprint")),
                                           ("carrier_renumbering", ("src_ip",)),
                                           ("travel", ("src_ip", "src_asn", "src_country"))])
def test_a_session_surprise_changes_only_its_columns(tmp_path, name, columns):
    plain, changed, _ = _diff(tmp_path, name)
    assert plain.num_rows == changed.num_rows
    con = duckdb.connect()
    con.register("a", plain)
    con.register("b", changed)
    same = [c for c in plain.column_names if c not in columns]
    differ = " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in columns)
    unequal = " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in same)
    n_changed, n_other = con.execute(f"""SELECT count(*) FILTER ({differ}), count(*) FILTER ({unequal})
        FROM a JOIN b USING (event_id)""").fetchall()[0]
    assert n_other == 0 and n_changed > 0


def test_the_new_batch_job_only_adds_its_own_events(tmp_path):
    plain, changed, truth = _diff(tmp_path, "new_batch_job")
    con = duckdb.connect()
    con.register("a", plain)
    con.register("b", changed)
    who = _surprise(truth, "new_batch_job")["entities"]["principals"][0]
    extra = con.execute("SELECT DISTINCT principal_id FROM b WHERE event_id NOT IN (SELECT event_id FROM a)").fetchall()
    assert extra == [(who,)]
    assert con.execute("SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM b)").fetchall()[0][0] == 0


# -- parameters and errors ---------------------------------------------------------------------------


def test_parameters_reshape_a_surprise(tmp_path):
    cfg = replace(BASE, customers=1_000, surprises="sale_day,travel",
                  params={"sale_day": {"factor": 2.0, "start_h": 30}, "travel": {"share": 0.1}})
    _, truth = _run(cfg, tmp_path)
    sale, trip = _surprise(truth, "sale_day"), _surprise(truth, "travel")
    assert [s["name"] for s in truth["benign_surprises"]] == ["sale_day", "travel"]
    assert sale["params"]["factor"] == 2.0 and _us(sale["start"]) == _us(truth["period"]["warmup_end"]) + 30 * 3600 * 10**6
    assert trip["context"]["travellers"] > 50


@pytest.mark.parametrize("changes, words", [
    ({"surprises": "sales_day"}, "unknown surprise"),
    ({"surprises": "travel", "params": {"sale_day": {"factor": 2}}}, "not selected"),
    ({"surprises": "sale_day", "params": {"sale_day": {"factor": 0.5}}}, "at least 1"),
    ({"surprises": "sale_day", "params": {"sale_day": {"facto": 2}}}, "no such parameter"),
    ({"surprises": "carrier_renumbering", "params": {"carrier_renumbering": {"prefixes": "1.224.0.0/16"}}},
     "overlaps"),
    ({"surprises": "carrier_renumbering", "params": {"carrier_renumbering": {"asn": "AS1"}}}, "no simulated"),
    ({"surprises": "new_batch_job", "params": {"new_batch_job": {"field": "phone"}}}, "does not return it"),
    ({"surprises": "new_batch_job", "params": {"new_batch_job": {"endpoint": "GET /api/me/profile"}}},
     "audience: service"),
    ({"surprises": "new_batch_job", "params": {"new_batch_job": {"principal_id": "svc-shipping-label"}}},
     "existing principal"),
    ({"surprises": "app_release", "params": {"app_release": {"version": "7.14.2"}}}, "already run"),
    ({"surprises": "travel", "benign": False}, "benign traffic"),
])
def test_bad_surprise_settings_are_refused_with_a_fix(changes, words):
    with pytest.raises(ValueError) as e:
        simulate(replace(BASE, customers=300, **changes)).truth()
    assert words in str(e.value) and "Fix" in str(e.value)


def test_cli_switches_surprises_on(tmp_path):
    r = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "sim"), "--customers", "400", "--days", "1",
                                 "--warmup-days", "0.5", "--scenarios", "none", "--surprises", "sale_day,new_batch_job",
                                 "--param", "sale_day.factor=2.5", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert [b["name"] for b in s["benign_surprises"]] == ["sale_day", "new_batch_job"]
    truth = json.loads((tmp_path / "sim" / "truth.json").read_text())
    assert _surprise(truth, "sale_day")["params"]["factor"] == 2.5
    r = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path / "x"), "--customers", "400", "--surprises", "all",
                                 "--param", "travel.share=2"])
    assert r.exit_code == 2 and "Fix" in r.output


def test_the_sale_day_keeps_windows_bounded():
    # The sale's extra sessions count toward the peak rate that sizes windows, so a window still holds
    # about `window_events` events on the busiest day.
    cfg = SimConfig(customers=8_000, days=1, warmup_days=0, seed=4, scenarios="none", surprises="sale_day",
                    batch_rows=1_000, window_events=1_500)
    sim = simulate(cfg)
    sizes = [b.num_rows for b in sim.iter_batches()]
    plain = simulate(replace(cfg, surprises="none"))
    assert sum(sizes) > 2.2 * sum(b.num_rows for b in plain.iter_batches())  # both open with 8,000 statuses
    assert max(sizes) <= 1_000 and sim.stats.window_seconds < plain.stats.window_seconds
    assert sim.stats.max_window_rows < 3 * 1_500
