"""The plain lane accepts only what the full validator accepts, with the same values and record hashes.

Every edge-case line of test_fast_lane.py, and a few hundred generated records (odd strings, offsets,
fractions of seconds, missing ids, maps, lists), go through the plain lane both ways (Python, and its
one statement) and through the full validator; whatever the lane accepts must be the full validator's
valid row, hashed as `record_hashes` hashes the stored row.
"""
from __future__ import annotations

import random

import duckdb
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breachwatch.contract.event import FIELD_NAMES, canonical_record_sql
from breachwatch.ingest import plainlane
from breachwatch.ingest.compactlane import split_compact
from breachwatch.ingest.validate import validate_batch
from breachwatch.store.chain import record_hashes, sha256_each
from breachwatch.store.db import arrow_views

from test_fast_lane import COMPACT_LINES  # rootdir-relative: tests are not a package


@pytest.fixture()
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    return c


def _table(lines: list[str], first: int = 1) -> pa.Table:
    return pa.table({"_src": ["f"] * len(lines), "_pos": list(range(first, first + len(lines))),
                     "line": [line + "\n" for line in lines]})


def _full(con: duckdb.DuckDBPyConnection, lines: list[str]) -> dict[int, tuple[dict, str]]:
    """The full validator's valid rows (ROW_SCHEMA) with their record hashes, by position."""
    with arrow_views(con, _lines_in=_table(lines)):
        validate_batch(con, None, "_lines_in", fast=False)
    con.execute("CREATE OR REPLACE TEMP TABLE _v AS SELECT * FROM _valid_rows")
    rows = con.sql(f"SELECT {', '.join(plainlane.ROW_COLUMNS)} FROM _v ORDER BY _pos").to_arrow_table()
    hashes = dict(zip(*record_hashes(con, "_v").select(["_pos", "_rh"]).to_pydict().values()))
    return {r["_pos"]: (r, hashes[r["_pos"]]) for r in rows.cast(plainlane.ROW_SCHEMA).to_pylist()}


def _both_ways(con: duckdb.DuckDBPyConnection, compact: pa.Table) -> list[plainlane.PlainBatch | None]:
    """The lane's result in Python and by its statement (None: the batch would go the usual way)."""
    python = plainlane.in_python(compact)
    ok, derive_ids = plainlane._plain(compact, None)
    assert ok
    with arrow_views(con, _plain_in=compact):
        out = con.execute(plainlane._statement(compact.schema, derive_ids)).to_arrow_table()
    statement = (plainlane._batch(out.select(plainlane.ROW_COLUMNS).cast(plainlane.ROW_SCHEMA), out.column("_text"))
                 if all(out.column("_ok").to_pylist()) else None)
    return [python, statement]


def _check(con: duckdb.DuckDBPyConnection, lines: list[str]) -> tuple[int, int]:
    """Run each line alone through the lane; (lines taken by Python, lines taken by the statement)."""
    full = _full(con, lines)
    taken = [0, 0]
    for pos, line in enumerate(lines, 1):
        compact, rest = split_compact(_table([line], pos))
        if rest.num_rows or not plainlane._plain(compact, None)[0]:
            continue  # not the plain lane's: the usual way decides, as test_fast_lane.py checks
        for k, got in enumerate(_both_ways(con, compact)):
            if got is None:
                continue
            taken[k] += 1
            assert pos in full, f"the lane took a line the full validator refuses: {line}"
            row, rh = full[pos]
            assert got.rows.to_pylist() == [row], line
            assert got.hashes.column("_rh").to_pylist() == [rh], line
    return taken[0], taken[1]


def test_edge_cases_match_the_full_validator(con):
    python, statement = _check(con, COMPACT_LINES)
    assert python > 15 and statement > python  # the statement also takes attributes and other time forms


_ODD = ["", "a", "é☃😀", 'q"uo\\te/', "tab\there", "nl\nx", "\x01ctl", "\u2028", "x" * 300, "Ωmega", "  "]


def _record(rng: random.Random, i: int) -> dict:
    rec: dict = {"kind": rng.choice(["access", "login", "token_issued", "subject_status"]),
                 "time": rng.choice(["2025-04-14T02:10:00Z", "2025-04-14T11:10:00.5+09:00",
                                     "2025-04-14T02:10:00.123400-03:30", "2099-12-31T23:59:59.999999Z",
                                     "1990-01-01T00:00:00+00:00", "2025-02-28T23:59:59.000001+14:00",
                                     "2025-04-14T02:10:00.1234567Z", "2025-04-14 02:10:00Z"])}
    if rng.random() < 0.8:
        rec["event_id"] = rng.choice([f"e{i}", f"é-{i}", f"{i}\x02"])
    for name in ("principal_id", "session_id", "token_id", "key_id", "src_ip", "user_agent", "endpoint",
                 "client_fingerprint", "service"):
        if rng.random() < 0.5:
            rec[name] = rng.choice(_ODD) + str(i)
    if rng.random() < 0.4:
        rec["src_country"] = rng.choice(["KR", "kr", "Us", ""])
    if rng.random() < 0.4:
        rec["principal_type"] = rng.choice(["customer", "employee", ""])
    if rng.random() < 0.4:
        rec["status"] = rng.choice([200, -1, 0, 2**40])
    if rng.random() < 0.4:
        rec["subject_ids"] = [rng.choice(_ODD) for _ in range(rng.randrange(4))]
    if rng.random() < 0.3:
        rec["subject_fields"] = {rng.choice(_ODD) + "k": [rng.choice(_ODD)] for _ in range(rng.randrange(3))}
    if rng.random() < 0.3:
        rec["token_issued_at"] = rng.choice(["2025-04-14T01:00:00Z", "2025-04-14T01:00:00.000100+01:00"])
    return rec


def test_generated_records_match_the_full_validator(con):
    rng = random.Random(7)
    lines = [orjson.dumps(_record(rng, i)).decode() for i in range(300)]
    python, statement = _check(con, lines)
    assert python > 80 and statement >= python


_CATALOG = """
endpoints:
  - route: GET /api/me/profile
    audience: customer
    fields: [name, email]
    subjects: {from: principal}
  - route: GET /api/members/{memberId}/profile
    audience: back_office
    fields: [name, email]
    subjects: {from: path, param: memberId}
  - route: GET /api/lookup
    audience: back_office
    fields: [phone]
    subjects: {from: query, param: id}
  - route: GET /api/products/{productId}
    audience: public
    fields: []
    subjects: {from: none}
"""


def _plain_access_logs() -> list[str]:
    base = {"time": "2025-04-14T02:10:00Z", "kind": "access", "principal_id": "p1", "principal_type": "customer"}
    rows = [
        {"endpoint": "GET /api/me/profile"}, {"endpoint": "GET /api/me/profile", "principal_id": None},
        {"endpoint": "GET /api/members/7/profile"}, {"endpoint": "GET /api/members/{memberId}/profile"},
        {"endpoint": "GET /api/members/8/profile?x=1"}, {"endpoint": "POST /api/members/9/profile"},
        {"endpoint": "GET /api/lookup?id=11&id=12"}, {"endpoint": "GET /api/lookup"},
        {"endpoint": "GET /api/products/5"}, {"endpoint": "GET /unknown/1"}, {"endpoint": "GET /unknown/1"},
        {"endpoint": "GET /api/members/7/profile", "subject_ids": ["7"]},
        {"endpoint": "GET /api/members/7/profile", "fields": ["phone"]},
        {"endpoint": "GET /api/members/\u00e9/profile"}, {"endpoint": "GET /api/members/a\"b/profile"},
        {"endpoint": ""}, {"kind": "login", "endpoint": "GET /api/members/7/profile"},
    ]
    out = []
    for i, extra in enumerate(rows):
        rec = {**base, **extra}
        if i % 3:  # every third record states no event_id: its id is derived before the catalog fills it
            rec["event_id"] = f"a{i}"
        out.append(orjson.dumps({k: v for k, v in rec.items() if v is not None}).decode())
    return out


def test_the_catalog_completes_plain_access_logs_as_the_usual_way_does(tmp_path, monkeypatch):
    """Plain gateway lines without subject_ids or fields, completed from the catalog in Python, are stored
    exactly as enrich.py completes them (same values, derived ids, record hashes, uncatalogued count)."""
    from breachwatch.contract.catalog import parse_catalog
    from breachwatch.ingest.pipeline import ingest_paths
    from breachwatch.store.db import connect

    catalog = parse_catalog(_CATALOG, "<t>")
    f = tmp_path / "gw.ndjson"
    f.write_text("".join(line + "\n" for line in _plain_access_logs()))
    took = []
    original = plainlane.plain_batch

    def spy(con, compact, cat):
        got = original(con, compact, cat)
        took.append(got is not None)
        return got
    results = []
    for name, lane in (("plain", spy), ("usual", lambda *a: None)):
        monkeypatch.setattr(plainlane, "plain_batch", lane)
        path = str(tmp_path / f"{name}.duckdb")
        con = connect(path)
        summary = ingest_paths(con, path, [str(f)], catalog=catalog).as_dict()
        cols = ", ".join(f'"{n}"' for n in FIELD_NAMES)
        events = con.execute(f"SELECT {cols} FROM events ORDER BY event_id").fetchall()
        hashes = sorted(sha256_each(con.sql(f"SELECT {canonical_record_sql()} FROM events").to_arrow_table()
                                    .column(0)).to_pylist())
        con.close()
        results.append((summary["loaded"], summary["uncatalogued_access_events"], events, hashes))
    assert took == [True]  # the plain lane took the whole file (one small batch)
    assert results[0] == results[1]
    loaded, uncatalogued, events, _ = results[0]
    assert loaded == len(_plain_access_logs()) and uncatalogued == 3  # the two unknown routes and the POST
    by_route = {e[FIELD_NAMES.index("endpoint")] for e in events}
    assert "GET /api/members/{memberId}/profile" in by_route and "GET /unknown/1" in by_route


def test_rows_keep_every_contract_column_in_order(con):
    compact, _ = split_compact(_table([COMPACT_LINES[0]]))
    got = plainlane.plain_batch(con, compact, None)
    assert got is not None and got.rows.column_names == [*FIELD_NAMES, "_src", "_pos"]


# Property test: any record the lane takes, Python or statement, is the full validator's, value for value.
_texts = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FFFF, exclude_categories=("Cs",)), max_size=12)
_times = st.builds(
    lambda y, mo, d, h, mi, s, frac, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{off}",
    st.integers(1985, 2105), st.integers(1, 12), st.integers(1, 31), st.integers(0, 24), st.integers(0, 59),
    st.integers(0, 60), st.sampled_from(["", ".5", ".123456", ".1234567", ".000100"]),
    st.sampled_from(["Z", "+09:00", "-03:30", "+23:59", "+24:00", "+0900", "", "z"]))
_records = st.fixed_dictionaries(
    {"kind": st.sampled_from(["access", "login", "subject_status", "", "teleport"]), "time": _times},
    optional={"event_id": _texts, "principal_id": _texts, "user_agent": _texts, "endpoint": _texts,
              "src_country": st.sampled_from(["KR", "kr", "", "K", "KOR", "ß1", "Us"]),
              "principal_type": st.sampled_from(["customer", "robot", ""]),
              "action": st.sampled_from(["read", "print", "", "x"]),
              "status": st.integers(-2**63, 2**63 - 1), "subject_ids": st.lists(_texts, max_size=3),
              "subject_fields": st.dictionaries(_texts, st.lists(_texts, max_size=2), max_size=2),
              "token_expires_at": _times})


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(st.lists(_records, min_size=1, max_size=20))
def test_any_record_the_lane_takes_is_the_full_validators(records):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    _check(con, [orjson.dumps(r).decode() for r in records])
