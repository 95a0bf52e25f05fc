"""Parquet files are read in place: DuckDB reads each batch's rows straight from the file at validation,
and a batch of typed rows whose ids are all new is inserted straight from the file, or from memory when
pyarrow read it (the direct lane).

Both must store exactly what the typed Arrow lane stores from the same rows (values, duplicates,
conflicts, quarantine rows and their positions, what the catalog completes), and a file that cannot be
decoded must stop with a clear error that keeps everything read before the damage.
"""
from __future__ import annotations

import gzip
import shutil
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from breachwatch.contract.catalog import load_catalog
from breachwatch.contract.event import FIELD_NAMES
from breachwatch.ingest import pipeline, readers
from breachwatch.ingest.pipeline import UnreadableInput, ingest_paths, ingest_tables
from breachwatch.ingest.readers import read_source, typed_as_json
from breachwatch.store import chain
from breachwatch.store.db import connect
from event_rows import BIN, event, typed_table

def _write(table: pa.Table, f, group: int, monkeypatch) -> None:
    """Write `table` in row groups of `group` rows, and have the reader take that for DuckDB's row-group
    size (files are read in place only in DuckDB's own row groups; at 122,880 rows these tests would
    need files of hundreds of thousands of records)."""
    pq.write_table(table, f, row_group_size=group)
    monkeypatch.setattr(readers, "ROW_GROUP_ROWS", group)


BAD = {3: {"kind": "teleport"}, 7: {"time": None}, 12: {"time": "soon"}, 18: {"subject_ids": ["a", None]},
       25: {"time": "1980-01-01T00:00:00Z"}, 31: {"src_country": "Korea"}, 40: {"event_id": None}}


def _rows() -> pa.Table:
    rows = [event(i, **BAD.get(i, {})) for i in range(60)]
    rows[44] = dict(rows[2])  # the same record again: a duplicate from an earlier batch
    rows[46] = {**rows[45], "status": 404}  # the same id with other content in the same batch: a conflict
    rows[52] = {**rows[5], "bytes_out": 1}  # ... and in a later batch
    return typed_table(rows)


def _ingest(tmp_path, name: str, feed) -> tuple[dict, list, list]:
    path = str(tmp_path / f"{name}.duckdb")
    con = connect(path)
    summary = feed(con, path).as_dict()
    cols = ", ".join(f'"{n}"' for n in FIELD_NAMES)
    # Within a batch holding repeated ids, rows are inserted in no particular order: compared by id.
    events = con.execute(f"SELECT {cols}, batch_id FROM events ORDER BY batch_id, event_id").fetchall()
    bad = con.execute("SELECT position, reason, detail, raw, event_id, batch_id FROM quarantine "
                      "ORDER BY position").fetchall()
    con.close()
    return summary, events, bad


def test_rows_read_in_place_store_what_the_arrow_lane_stores(tmp_path, monkeypatch):
    table = _rows()
    f = tmp_path / "in.parquet"
    _write(table, f, 9, monkeypatch)
    monkeypatch.setattr(readers, "ROWS_PER_CHUNK", 4)  # chunks cross batches and row groups
    chunks = list(read_source(f, "parquet"))
    assert len(chunks) == 15 and all(c.file_rows is not None and c.typed is None for c in chunks)
    in_place = _ingest(tmp_path, "in_place", lambda con, p: ingest_paths(con, p, [str(f)], batch_size=10))
    arrow = _ingest(tmp_path, "arrow", lambda con, p: ingest_tables(con, [table], "arrow", db_path=p, batch_size=10))
    assert in_place == arrow
    summary, events, bad = in_place
    assert summary["batches"] == 6 and summary["duplicates"] == 1
    assert summary["quarantined_by_reason"]["conflict"] == 2 and len(bad) == 6 + 2
    assert len(events) == 60 - 6 - 1 - 2  # an event without an id is stored with a derived one


def _direct_commits(monkeypatch) -> list[bool]:
    """Record, per commit, whether it went through the direct lane."""
    seen: list[bool] = []
    commit = chain.ChainWriter.commit

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("direct") is not None)
        return commit(self, *args, **kwargs)
    monkeypatch.setattr(chain.ChainWriter, "commit", spy)
    return seen


def test_the_direct_lane_stores_what_the_arrow_lane_stores(tmp_path, monkeypatch):
    """Batches of new ids go straight from the file, with their bad records and the records the catalog
    completes validated in the same transaction; a batch with a stored, repeated or missing id does not."""
    rows = [event(i) for i in range(40)]
    for i in (1, 6, 13):
        rows[i] = {**rows[i], "subject_ids": None, "fields": None, "endpoint": "GET /api/me/addresses"}
    for i in (4, 14):
        rows[i] = {**rows[i], "endpoint": "GET /nowhere", "subject_ids": None}  # no route: uncatalogued
    rows[8] = {**rows[8], "kind": "teleport"}
    rows[17] = {**rows[17], "time": "soon"}
    rows[25] = dict(rows[3])  # stored by the first batch: its batch is classified
    rows[33] = {**rows[33], "event_id": ""}  # derived: its batch is classified
    table = typed_table(rows)
    f = tmp_path / "in.parquet"
    _write(table, f, 7, monkeypatch)
    catalog = load_catalog()
    direct = _direct_commits(monkeypatch)
    in_place = _ingest(tmp_path, "in_place", lambda con, p: ingest_paths(con, p, [str(f)], batch_size=10,
                                                                         catalog=catalog))
    assert direct == [True, True, False, False]

    def arrow(con, p):
        return ingest_tables(con, [table], "arrow", db_path=p, batch_size=10, catalog=catalog)
    in_memory = _ingest(tmp_path, "in_memory", arrow)  # the same rows as Arrow tables: direct from memory
    assert direct[4:] == [True, True, False, False]
    monkeypatch.setattr(pipeline, "_direct_keys", lambda *args: (None, None))  # every batch staged
    staged = _ingest(tmp_path, "staged", arrow)
    assert direct[8:] == [False] * 4
    assert in_place == in_memory == staged
    summary, events, bad = in_place
    assert summary["uncatalogued_access_events"] == 2 and summary["duplicates"] == 1
    assert sorted(r for _, r, *_ in bad) == ["bad_timestamp", "unknown_kind"]
    filled = [e for e in events if e[FIELD_NAMES.index("event_id")] in ("e1", "e6", "e13")]
    assert [e[FIELD_NAMES.index("subject_ids")] for e in filled] == [["100001"], ["100006"], ["100013"]]


@pytest.mark.parametrize("keys_kept", [True, False])
def test_a_clean_file_goes_through_the_direct_lane_and_verifies(tmp_path, monkeypatch, keys_kept):
    """Also in a store too big for the writer to keep its ids' keys, whose batches join their ids against
    the stored ones instead."""
    if not keys_kept:
        monkeypatch.setattr(chain, "STORED_IDS_MAX", -1)
    f = tmp_path / "clean.parquet"
    _write(typed_table([event(i) for i in range(50)]), f, 16, monkeypatch)
    direct = _direct_commits(monkeypatch)
    path = str(tmp_path / "s.duckdb")
    con = connect(path)
    assert ingest_paths(con, path, [str(f)], batch_size=20).loaded == 50
    assert direct == [True, True, True]
    assert ingest_paths(con, path, [str(f)], batch_size=20).duplicates == 50  # again: all stored, classified
    assert direct[3:] == [False, False, False]
    from breachwatch.store.chain import verify
    assert verify(con, path).ok
    con.close()


def test_rows_in_a_file_give_their_json_text(tmp_path, monkeypatch):
    """What a server client sends for rows read in place: the same text as for the rows in memory."""
    table = _rows()
    f = tmp_path / "it's here.parquet"  # a quote in the name: it goes into SQL
    _write(table, f, 25, monkeypatch)
    chunks = list(read_source(f, "parquet"))
    assert [c.file_rows.count for c in chunks] == [60]
    assert chunks[0].lines.to_pylist() == typed_as_json(table).to_pylist()
    assert chunks[0].slice(10, 5, [], 15).lines.to_pylist() == typed_as_json(table.slice(10, 5)).to_pylist()


def _damaged(tmp_path, monkeypatch, row_group: int, column: int = 0) -> tuple[str, int]:
    """A Parquet file of 1,000 events in row groups of 100, whose `row_group`-th group has a broken page in
    its `column`-th column (0: event_id, which the direct lane reads first; 2: kind, which only its insert
    reads)."""
    f = tmp_path / "damaged.parquet"
    pq.write_table(typed_table([event(i) for i in range(1000)]), f, row_group_size=100, compression="snappy")
    monkeypatch.setattr(readers, "ROW_GROUP_ROWS", 100)
    col = pq.ParquetFile(f).metadata.row_group(row_group).column(column)
    data = bytearray(f.read_bytes())
    for i in range(col.data_page_offset, col.data_page_offset + 8):
        data[i] ^= 0xFF  # the page header: neither DuckDB nor pyarrow can decode the page
    f.write_bytes(bytes(data))
    return str(f), row_group * 100


@pytest.mark.parametrize("gzipped,column", [(False, 0), (False, 2), (True, 0)])
def test_a_damaged_parquet_file_stops_with_a_clear_error_and_keeps_what_was_read(store, tmp_path, gzipped, column,
                                                                                  monkeypatch):
    con, path = store
    monkeypatch.setattr(readers, "ROWS_PER_CHUNK", 100)  # pyarrow reads as many row groups as a chunk needs
    f, first_bad = _damaged(tmp_path, monkeypatch, 5, column)
    if gzipped:  # read through a decompressed copy, by pyarrow
        with open(f, "rb") as src, gzip.open(f + ".gz", "wb") as out:
            shutil.copyfileobj(src, out)
        f += ".gz"
    with pytest.raises(UnreadableInput) as e:
        ingest_paths(con, path, [f], batch_size=150)
    assert str(e.value).startswith(f"{f}: cannot be read ") and "Fix:" in str(e.value)
    stored = con.execute("SELECT count(*) FROM events").fetchone()[0]
    # In place, the batch holding the damage is lost with it (rows 451-600); through pyarrow, every
    # row before the damaged group is read.
    assert stored == (450 if not gzipped else first_bad)
    log = con.execute("SELECT status, records, loaded FROM ingest_log").fetchall()
    assert log == [("failed", stored, stored)]
    # The events stored are exactly the first ones, each once: a repaired file's re-run skips them.
    assert con.execute("SELECT count(DISTINCT event_id) FROM events WHERE event_id IN "
                       f"(SELECT 'e' || range FROM range({stored}))").fetchone()[0] == stored


def test_the_cli_names_a_damaged_file_and_exits_2(tmp_path, monkeypatch):
    f, _ = _damaged(tmp_path, monkeypatch, 2)
    r = subprocess.run([str(BIN), "ingest", f, "--db", str(tmp_path / "s.duckdb"), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert f"{f}: cannot be read " in " ".join(r.stderr.split())  # read by pyarrow here (other row groups)


def test_a_file_rewritten_during_its_ingest_stops_it_rather_than_mixing_two_files(store, tmp_path, monkeypatch):
    """Rows are read when their batch is validated: a file exported again under the same name meanwhile
    must not lend its rows to the batches still to come."""
    con, path = store
    f = tmp_path / "export.parquet"
    _write(typed_table([event(i) for i in range(100)]), f, 10, monkeypatch)

    def rewrite(summary) -> None:
        if summary.batches == 1:
            pq.write_table(typed_table([event(i, kind="login") for i in range(500, 600)]), f, row_group_size=10)

    with pytest.raises(UnreadableInput) as e:
        ingest_paths(con, path, [str(f)], batch_size=30, on_batch=rewrite)
    assert "changed while it was being read" in str(e.value) and "from row 31 on" in str(e.value)
    assert con.execute("SELECT count(*), min(event_id), max(event_id) FROM events").fetchone() == (30, "e0", "e9")
    assert con.execute("SELECT status, records FROM ingest_log").fetchall() == [("failed", 30)]


def test_a_file_in_other_row_groups_is_read_by_pyarrow_and_stores_the_same(tmp_path, monkeypatch):
    """Row groups of another size than DuckDB's would be decoded once per batch they hold, or inserted as
    partial row groups: such a file is read by pyarrow instead, with the same result."""
    table = _rows()
    aligned, other = tmp_path / "aligned.parquet", tmp_path / "other.parquet"
    pq.write_table(table, other, row_group_size=7)
    _write(table, aligned, 9, monkeypatch)
    assert all(c.file_rows is None and c.typed is not None for c in read_source(other, "parquet"))
    assert all(c.file_rows is not None for c in read_source(aligned, "parquet"))
    results = [_ingest(tmp_path, f.stem, lambda con, p, f=f: ingest_paths(con, p, [str(f)], batch_size=10))
               for f in (aligned, other)]
    assert results[0] == results[1]
