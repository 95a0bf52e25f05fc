"""verify's streamed digests: the same whatever the window, and equal to the SQL definition."""
from __future__ import annotations

from breachwatch.contract.event import canonical_record_sql
from breachwatch.ingest.pipeline import ingest_records
from breachwatch.store.chain import event_digests
from breachwatch.store.db import connect


def test_digests_match_the_sql_definition_for_any_window(tmp_path, make_event):
    db = str(tmp_path / "s.duckdb")
    con = connect(db)
    sizes = [3, 1, 12, 5, 9]
    start = 0
    for n in sizes:
        ingest_records(con, [make_event(i, status=200 + i % 3) for i in range(start, start + n)], f"p{n}", db_path=db)
        start += n
    # The definition, in SQL: SHA-256 of each record's canonical text, sorted, concatenated, hashed.
    expected = {b: (n, d) for b, n, d in con.execute(f"""
        SELECT batch_id, count(*), sha256(string_agg(h, '' ORDER BY h))
        FROM (SELECT batch_id, sha256({canonical_record_sql()}) AS h FROM events) GROUP BY 1""").fetchall()}
    assert sorted(n for n, _ in expected.values()) == sorted(sizes)
    for window in (1, 4, 13, 10_000):  # below, between and above the batch sizes
        assert event_digests(con, window_rows=window) == expected
    some = sorted(expected)[1:3]
    assert event_digests(con, some) == {b: expected[b] for b in some}
    assert event_digests(con, []) == {}
    con.close()


def test_windows_read_an_encrypted_store_through_its_own_database(tmp_path, monkeypatch, make_event):
    """Later windows are read on a second cursor; it must query the encrypted store, not an empty default."""
    from breachwatch.store import encryption
    monkeypatch.setenv(encryption.ALLOW_MBEDTLS_ENV, "1")  # as tests/server/test_server_encryption.py
    monkeypatch.setenv(encryption.KEY_ENV, "k" * 32)
    db = str(tmp_path / "enc.duckdb")
    con = connect(db)
    for b in range(3):
        ingest_records(con, [make_event(i) for i in range(b * 4, b * 4 + 4)], f"p{b}", db_path=db)
    assert event_digests(con, window_rows=4) == event_digests(con)
    assert len(event_digests(con, window_rows=4)) == 3
    con.close()
