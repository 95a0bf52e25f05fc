"""Dedup without an index on event_id (migration 0009 drops the one 0007 added): a store made with the
index loses it on open and still dedups, and small and big batches classify alike whichever way their
stored ids are found (the writer's key set, or a join when it keeps none)."""
from __future__ import annotations

import duckdb
import pytest

from breachwatch.ingest.pipeline import ingest_records
from breachwatch.store import chain
from breachwatch.store.chain import verify
from breachwatch.store.db import connect, migrate, schema_version


def _has_index(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_indexes() WHERE table_name = 'events' "
                       "AND index_name = 'events_event_id'").fetchone()[0] == 1


def test_store_made_with_the_index_opens_without_it_and_still_dedups(tmp_path, make_event):
    db = str(tmp_path / "old.duckdb")
    con = duckdb.connect(db)
    migrate(con, upto=8)  # the store as the version before migration 0009 left it: with the index
    first = ingest_records(con, [make_event(i) for i in range(50)], "before", db_path=db)
    assert first.loaded == 50 and _has_index(con)
    con.close()

    con = connect(db)
    assert not _has_index(con) and schema_version(con) >= 9
    changed = make_event(7, src_ip="198.51.100.9")  # same event_id, different content
    again = ingest_records(con, [make_event(i) for i in range(50)] + [changed, make_event(50)], "after", db_path=db)
    assert (again.loaded, again.duplicates, dict(again.quarantined)) == (1, 50, {"conflict": 1})
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (51, 51)
    assert verify(con, db).ok
    con.close()


@pytest.mark.parametrize("keys_kept", [True, False])
def test_small_and_big_batches_classify_alike(tmp_path, make_event, monkeypatch, keys_kept):
    """Batches below and above one list parameter's worth of ids (`ID_KEYS_AS_LIST`), with stored ids, new
    ids, repeats and a conflict each time: same fates through the key set and through the join."""
    if not keys_kept:
        monkeypatch.setattr(chain, "STORED_IDS_MAX", -1)
    db = str(tmp_path / "s.duckdb")
    con = connect(db)
    big = chain.ID_KEYS_AS_LIST + 500
    assert ingest_records(con, [make_event(i) for i in range(big)], "big", db_path=db).loaded == big
    for records in ([make_event(i) for i in range(big + 10)],  # every id but 10 stored
                    [make_event(i) for i in range(big, big + 20)],  # 10 stored, 10 new
                    # 10 stored, 10 new, each several times
                    [make_event(i) for i in range(big + 10, big + 30)] * 5 + [make_event(i % 20 + big + 10)
                                                                              for i in range(50)]):
        records.append(make_event(3, status=500))  # a conflict with a stored event every time
        got = ingest_records(con, records, "again", db_path=db)
        assert (got.loaded, got.duplicates, got.quarantined["conflict"]) == (10, len(records) - 11, 1)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == big + 30
    assert verify(con, db).ok
    con.close()
