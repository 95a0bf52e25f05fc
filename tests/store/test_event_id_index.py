"""The event_id index (migration 0007): an older store gains it on open, and dedup is the same
whether a batch's ids are probed through the index (small batches) or hash-joined (large ones)."""
from __future__ import annotations

import duckdb

from breachwatch.ingest.pipeline import ingest_records
from breachwatch.store.chain import probe_limit, verify
from breachwatch.store.db import connect, migrate, schema_version


def _has_index(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_indexes() WHERE table_name = 'events' "
                       "AND index_name = 'events_event_id'").fetchone()[0] == 1


def test_store_made_before_the_index_opens_gets_it_and_still_dedups(tmp_path, make_event):
    db = str(tmp_path / "old.duckdb")
    con = duckdb.connect(db)
    migrate(con, upto=6)  # the store as the version before migration 0007 left it
    first = ingest_records(con, [make_event(i) for i in range(50)], "before", db_path=db)
    assert first.loaded == 50 and not _has_index(con)
    con.close()

    con = connect(db)
    assert _has_index(con) and schema_version(con) >= 7
    changed = make_event(7, src_ip="198.51.100.9")  # same event_id, different content
    again = ingest_records(con, [make_event(i) for i in range(50)] + [changed, make_event(50)], "after", db_path=db)
    assert (again.loaded, again.duplicates, dict(again.quarantined)) == (1, 50, {"conflict": 1})
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (51, 51)
    assert verify(con, db).ok
    con.close()


def test_index_probe_and_hash_join_classify_alike(tmp_path, make_event):
    """A batch above the probe limit takes the join; one below it the index: same fates either way."""
    db = str(tmp_path / "s.duckdb")
    con = connect(db)
    big = 3000
    assert 21 <= probe_limit(big) < big + 10  # so the first re-ingest below joins and the second probes
    assert ingest_records(con, [make_event(i) for i in range(big)], "big", db_path=db).loaded == big
    for records in ([make_event(i) for i in range(big + 10)],  # join, then a join over all columns
                    [make_event(i) for i in range(big, big + 20)],  # probes: 10 stored, 10 new
                    # join on the id column, then probes for the few found: 10 stored, 10 new, repeats
                    [make_event(i) for i in range(big + 10, big + 30)] * 5 + [make_event(i % 20 + big + 10)
                                                                              for i in range(50)]):
        records.append(make_event(3, status=500))  # a conflict with a stored event every time
        got = ingest_records(con, records, "again", db_path=db)
        assert (got.loaded, got.duplicates, got.quarantined["conflict"]) == (10, len(records) - 11, 1)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == big + 30
    assert verify(con, db).ok
    con.close()
