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


def test_a_batch_digest_from_an_arrow_array_equals_the_list_form():
    """The writer passes a batch's hashes as Arrow (sorted as fixed-width bytes): the same digest as the
    sorted list, for chunked and sliced arrays too."""
    import pyarrow as pa
    import pytest

    from breachwatch.store.chain import batch_digest, sha256_each
    hashes = sha256_each(pa.array([f"record {i}" for i in range(50)]))
    as_list = batch_digest(None, 1, hashes.to_pylist(), has_quarantine=False)
    chunked = pa.chunked_array([hashes.slice(0, 20), hashes.slice(20)])
    assert batch_digest(None, 1, hashes, has_quarantine=False) == as_list
    assert batch_digest(None, 1, chunked, has_quarantine=False) == as_list
    assert batch_digest(None, 1, hashes.slice(5, 10), has_quarantine=False) == batch_digest(
        None, 1, hashes.slice(5, 10).to_pylist(), has_quarantine=False)
    assert batch_digest(None, 1, pa.array([], pa.string()), has_quarantine=False) == batch_digest(
        None, 1, [], has_quarantine=False)
    with pytest.raises(ValueError, match="64-character"):
        batch_digest(None, 1, pa.array(["abc"]), has_quarantine=False)
