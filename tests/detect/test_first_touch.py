"""An entity's first touch of a key carries the values of that one first row, whatever falls after it."""
from __future__ import annotations

import duckdb

from breachwatch.detect.counting import first_new

_PAIRS = """SELECT * FROM (VALUES
    -- (ek 1, subject 'a'): read first without a ticket and with no status, then with both
    (1::UBIGINT, 'a', 10, TIMESTAMP '2025-04-14 02:00:00', NULL, NULL, 0),
    (1::UBIGINT, 'a', 20, TIMESTAMP '2025-04-14 02:05:00', 'T-1', 404, 0),
    -- (ek 1, subject 'b'): one request lists it twice; its first position is the first row
    (1::UBIGINT, 'b', 30, TIMESTAMP '2025-04-14 02:10:00', 'T-2', 200, 3),
    (1::UBIGINT, 'b', 30, TIMESTAMP '2025-04-14 02:10:00', 'T-2', 200, 1),
    -- (ek 2, subject 'a'): seen in an earlier pass
    (2::UBIGINT, 'a', 40, TIMESTAMP '2025-04-14 02:20:00', 'T-3', 200, 0)
) t(ek, subject, seq, time, reason_ref, status, pos)"""


def _first(con: duckdb.DuckDBPyConnection, pairs: str) -> dict:
    first_new(con, metric="subj", pairs=f"({pairs})", key="subject", out="_first", extra="reason_ref, status, pos")
    rows = con.execute("SELECT ek, subject, seq, time, reason_ref, status, pos FROM _first").fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_first_touch_takes_every_carried_value_from_its_first_row() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE seen_subj (h UBIGINT)")
    con.execute("INSERT INTO seen_subj SELECT hash(2::UBIGINT, 'a')")
    got = _first(con, _PAIRS)
    assert set(got) == {(1, "a"), (1, "b")}  # (2, 'a') was seen before
    seq, time, reason, status, pos = got[(1, "a")]
    # The first read had no ticket: it stays a read without a reason, though a later one had a ticket.
    assert (seq, reason, status, pos) == (10, None, None, 0)
    assert time.hour == 2 and time.minute == 0
    assert got[(1, "b")][0] == 30 and got[(1, "b")][4] == 1
    # The pairs are remembered: the same rows again give no first touch.
    assert _first(con, _PAIRS) == {}


def test_first_touch_does_not_depend_on_where_a_pass_ends() -> None:
    """The same reads in one pass or split after the first one give the same first touch."""
    whole = duckdb.connect()
    whole.execute("CREATE TABLE seen_subj (h UBIGINT)")
    one_pass = _first(whole, _PAIRS)
    split = duckdb.connect()
    split.execute("CREATE TABLE seen_subj (h UBIGINT)")
    first_part = _first(split, _PAIRS + " WHERE seq <= 10")
    second_part = _first(split, _PAIRS + " WHERE seq > 10")
    assert {**first_part, **second_part} == one_pass
