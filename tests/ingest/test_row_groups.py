"""Batches are stored in DuckDB's whole row groups, whatever blocks the reader handed them over in.

A batch staged from many Arrow chunks (one per 8 MB of NDJSON, or per 50,000 rows) used to be inserted
as row groups of odd sizes, which the next checkpoint rewrote whole: twice the writes, and half the store
file left free (docs/BENCHMARKS.md).
"""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from breachwatch.contract.event import ARROW_SCHEMA
from breachwatch.ingest.pipeline import ingest_paths
from breachwatch.simulate.writers import event_writer
from breachwatch.store.db import ROW_GROUP_ROWS


def _row_groups(con) -> list[int]:
    return [n for (n,) in con.execute("SELECT max(count) FROM pragma_storage_info('events') "
                                      "WHERE column_name = 'event_id' GROUP BY row_group_id "
                                      "ORDER BY row_group_id").fetchall()]


def test_ndjson_batches_fill_whole_row_groups(store, tmp_path, make_event):
    con, path = store
    n = 2 * ROW_GROUP_ROWS + 1000
    src = tmp_path / "big.ndjson"
    with open(src, "w") as f:
        for i in range(n):
            f.write(json.dumps(make_event(i)) + "\n")
    assert ingest_paths(con, path, [str(src)]).loaded == n
    assert sum(_row_groups(con)) == n
    assert _row_groups(con)[:2] == [ROW_GROUP_ROWS, ROW_GROUP_ROWS]


def test_parquet_in_other_row_groups_fills_whole_row_groups(store, tmp_path, make_event, make_typed_table):
    """Its row groups are not DuckDB's, so it is read by pyarrow, not in place (where each batch would be
    inserted in the file's own odd row groups), and stored in whole ones."""
    con, path = store
    n = 2 * ROW_GROUP_ROWS + 1000
    src = tmp_path / "big.parquet"
    pq.write_table(make_typed_table([make_event(i) for i in range(n)]), src, row_group_size=30_000)
    assert ingest_paths(con, path, [str(src)]).loaded == n
    assert _row_groups(con)[:2] == [ROW_GROUP_ROWS, ROW_GROUP_ROWS]


def test_the_simulator_writes_parquet_in_duckdbs_row_groups(tmp_path):
    """So that its events are read in place, whatever sizes of tables the simulator hands the writer."""
    w = event_writer(tmp_path / "events.parquet", "parquet")
    for k in range(5):
        w.write(pa.table({f.name: pa.array([f"e{i}" for i in range(k * 50_000, (k + 1) * 50_000)])
                          if f.name == "event_id" else pa.nulls(50_000, f.type) for f in ARROW_SCHEMA},
                         schema=ARROW_SCHEMA))
    w.close()
    md = pq.ParquetFile(tmp_path / "events.parquet").metadata
    assert [md.row_group(i).num_rows for i in range(md.num_row_groups)] == [ROW_GROUP_ROWS, ROW_GROUP_ROWS, 4_240]
