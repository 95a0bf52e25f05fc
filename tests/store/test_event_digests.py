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


def _column_digest(*arrays) -> str:
    import hashlib

    from breachwatch.store.chain import column_bytes
    h = hashlib.sha256()
    for a in arrays:
        column_bytes(h, a)
    return h.hexdigest()


def test_column_bytes_depend_on_values_not_on_layout():
    """The same values give the same digest whatever their chunking, offset or string and list layout;
    any change of a value, a null or a list's split gives another."""
    import pyarrow as pa

    strs = ["a", None, "", "bcd", "ef"]
    lists = [["x", "y"], None, [], ["z"], ["", "w"]]
    maps = pa.array([[("r-1", ["name", "phone"])], None, [], [("r-2", [])], [("r-3", ["address"])]],
                    pa.map_(pa.string(), pa.list_(pa.string())))
    ints = pa.array([1, None, -3, 2**40, 0], pa.int64())
    times = pa.array([0, 1, None, 10**15, 5], pa.timestamp("us"))
    base = _column_digest(pa.array(strs), pa.array(lists, pa.list_(pa.string())), maps, ints, times)
    # Sliced out of larger arrays (an offset into the buffers), and as large or view layouts:
    assert _column_digest(pa.array(["pad", *strs]).slice(1), pa.array([["p"], *lists]).slice(1),
                          pa.concat_arrays([pa.array([[("q", ["q"])]], maps.type), maps]).slice(1),
                          pa.array([7, *ints.to_pylist()], pa.int64()).slice(1),
                          pa.array([7, *times.to_pylist()], pa.timestamp("us")).slice(1)) == base
    assert _column_digest(pa.array(strs, pa.large_string()), pa.array(lists, pa.large_list(pa.string())),
                          maps, ints, times) == base
    assert _column_digest(pa.array(strs, pa.string_view()), pa.array(lists, pa.list_(pa.string())),
                          maps, ints, times) == base
    changed = [
        (pa.array(["a", "", "", "bcd", "ef"]), "a null became an empty string"),
        (pa.array(["a", None, "", "bc", "def"]), "bytes moved between neighbours"),
    ]
    for strs2, why in changed:
        assert _column_digest(strs2, pa.array(lists, pa.list_(pa.string())), maps, ints, times) != base, why
    assert _column_digest(pa.array(strs), pa.array([["x"], None, ["y"], ["z"], ["", "w"]]), maps, ints,
                          times) != base
    assert _column_digest(pa.array(strs), pa.array(lists, pa.list_(pa.string())), maps,
                          pa.array([1, 0, -3, 2**40, 0], pa.int64()), times) != base  # null vs 0


def test_column_digests_are_the_same_for_any_window_and_cover_every_column(tmp_path, make_event,
                                                                            make_typed_table):
    
    from breachwatch.contract.event import FIELDS
    from breachwatch.ingest.pipeline import ingest_tables
    from breachwatch.store.chain import column_digests, is_columnar
    db = str(tmp_path / "s.duckdb")
    con = connect(db)
    for b in range(4):  # typed columns, as a Parquet file gives them: every Contract 1 type is present
        rows = [make_event(i, attributes=f'{{"n": {i}}}', subject_fields=[(str(100000 + i), ["name"])])
                for i in range(b * 5, b * 5 + 5)]
        summary = ingest_tables(con, [make_typed_table(rows)], f"t{b}", db_path=db)
        assert summary.loaded == 5
    digests = [d for (d,) in con.execute("SELECT digest FROM batches ORDER BY seq").fetchall()]
    assert len(digests) == 4 and all(is_columnar(d) for d in digests)
    whole = column_digests(con)
    assert sorted(n for n, _ in whole.values()) == [5, 5, 5, 5]
    for window in (1, 7, 10_000):
        assert column_digests(con, window_rows=window) == whole
    assert column_digests(con, [2]) == {2: whole[2]}
    for f in FIELDS:  # a change to any one column of one stored row changes that batch's digest only
        value = {"str": "'x'", "time": "TIMESTAMP '2001-01-01'", "int": "99", "strlist": "['x']",
                 "fieldmap": "MAP {'x': ['y']}", "attrs": "'{\"x\": 1}'"}[f.kind]
        con.execute("BEGIN")
        con.execute(f'UPDATE events SET "{f.name}" = {value} WHERE event_id = \'e7\'')
        after = column_digests(con)
        con.execute("ROLLBACK")
        assert after[2] != whole[2] and {b: d for b, d in after.items() if b != 2} == \
            {b: d for b, d in whole.items() if b != 2}, f.name
    con.close()


def test_column_digest_versions_follow_their_definitions(tmp_path, make_event, make_typed_table):
    """Version 3 (new batches) is one BLAKE3 over every column's `column_bytes` in turn; version 2 SHA-256 over
    each column's own BLAKE2b-256, in column order, whatever thread hashed which column; version 1 one SHA-256
    over the columns in turn. verify checks each batch by the version its link names."""
    import hashlib

    import blake3

    from breachwatch.ingest.pipeline import ingest_tables
    from breachwatch.store.chain import DIGEST_COLUMNS, column_bytes, column_digests, column_version
    db = str(tmp_path / "s.duckdb")
    con = connect(db)
    for b in range(2):
        rows = [make_event(i, attributes=f'{{"n": {i}}}', subject_fields=[(str(100000 + i), ["name"])])
                for i in range(b * 7, b * 7 + 7)]
        ingest_tables(con, [make_typed_table(rows)], f"t{b}", db_path=db)
    assert [column_version(d) for (d,) in con.execute("SELECT digest FROM batches ORDER BY seq").fetchall()] == [3, 3]
    for b in (1, 2):
        cols = [c.combine_chunks() for c in
                con.sql(f"SELECT {DIGEST_COLUMNS} FROM events WHERE batch_id = {b}").to_arrow_table().columns]
        per_column = []
        for c in cols:
            h = hashlib.blake2b(digest_size=32)
            column_bytes(h, c)
            per_column.append(h.digest())
        in_turn = {1: hashlib.sha256(), 3: blake3.blake3()}
        for h in in_turn.values():
            for c in cols:
                column_bytes(h, c)
        assert column_digests(con, [b], version=3)[b] == (7, in_turn[3].hexdigest())
        assert column_digests(con, [b], version=2)[b] == (7, hashlib.sha256(b"".join(per_column)).hexdigest())
        assert column_digests(con, [b], version=1)[b] == (7, in_turn[1].hexdigest())
    con.close()
