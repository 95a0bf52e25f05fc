"""Ingest: read sources, normalise, and commit chained batches to the store.

Records stream through in batches of `batch_size`, so memory is bounded by the
batch, not the file. Each batch commits atomically (events, quarantine, ingest
log and chain link in one transaction), so a crash loses at most the batch in
flight, and re-running the same input adds nothing (dedup on `event_id`).
"""
from __future__ import annotations

import contextlib
import glob
import logging
import os
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.contract.catalog import Catalog
from breachwatch.ingest import compactlane, plainlane
from breachwatch.ingest.enrich import NEEDS_CATALOG, enrich_batch
from breachwatch.ingest.fastlane import staged_sql, typed_feeder_sql, typed_ok
from breachwatch.ingest.normalize import SourceZone
from breachwatch.ingest.readers import (DEFAULT_MAX_LINE, Chunk, FileChanged, FileRows, chunk_records,
                                        chunk_tables, detect_format, read_source)
from breachwatch.ingest.validate import validate_batch
from breachwatch.store.chain import (QUARANTINE_SCHEMA, BatchResult, ChainWriter, DirectInsert, IdKeys, LogUpdate,
                                     id_keys, quarantine_id, record_hashes, stored_ids)
from breachwatch.store.db import ROW_GROUP_ROWS, arrow_views, sql_views

log = logging.getLogger(__name__)
# DuckDB stores a table in row groups of ROW_GROUP_ROWS (122,880) rows, and an INSERT of a whole number of
# them is the cheap one: 2 million rows inserted in batches of 245,760 took 6-7 s, in batches of 200,000
# (or of 245,759, or of one row group) 10-13 s (docs/BENCHMARKS.md). So a batch is two row groups: every
# batch of a clean file but its last inserts the cheap way.
DEFAULT_BATCH = 2 * ROW_GROUP_ROWS
_LINES_SCHEMA = pa.schema([("_src", pa.string()), ("_pos", pa.int64()), ("line", pa.large_string())])


@dataclass
class IngestSummary:
    sources: int = 0
    records: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: Counter = field(default_factory=Counter)
    batches: int = 0
    uncatalogued: int = 0
    skipped_files: list[str] = field(default_factory=list)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def as_dict(self) -> dict[str, Any]:
        return {"sources": self.sources, "records": self.records, "loaded": self.loaded,
                "duplicates": self.duplicates, "quarantined": self.quarantined_total,
                "quarantined_by_reason": dict(sorted(self.quarantined.items())), "batches": self.batches,
                "uncatalogued_access_events": self.uncatalogued, "skipped_files": self.skipped_files}


@dataclass
class Source:
    name: str
    fmt: str
    path: Path | None = None
    stream: BinaryIO | None = None
    size: int | None = None


class InputError(ValueError):
    """A path or option that cannot be ingested; the message says what to fix."""


# What a reader raises for input it cannot decode at all (pyarrow on a damaged Parquet page, an I/O error),
# as opposed to a bad record, which is quarantined.
_UNREADABLE = (OSError, pa.ArrowException)


class UnreadableInput(InputError):
    """Input that cannot be decoded at all past some point; what was read before it is stored. `stored_upto`:
    the last record stored when the batch in flight was lost with the damage (None: none was)."""

    def __init__(self, source: str, where: str, e: BaseException, stored_upto: int | None = None,
                 fix: str = "repair or re-export the file and ingest it again") -> None:
        super().__init__(f"{source}: cannot be read {where} ({str(e).strip()}). Everything before that point is "
                         f"stored. Fix: {fix}; what is already stored is skipped as duplicates.")
        self.stored_upto = stored_upto


def expand_paths(paths: Iterable[str], fmt: str | None = None) -> tuple[list[Source], list[str]]:
    """Files, globs and directories (recursively) to sources; unknown extensions are listed as skipped."""
    sources: list[Source] = []
    skipped: list[str] = []
    for p in paths:
        if p == "-":
            sources.append(Source("<stdin>", fmt or "ndjson", stream=sys.stdin.buffer))
            continue
        matches = sorted(glob.glob(p, recursive=True)) if glob.has_magic(p) else [p]
        if not matches:
            raise InputError(f"{p}: no file matches this pattern. Fix: check the path or quote the glob.")
        for m in matches:
            mp = Path(m)
            if mp.is_dir():
                files = sorted(f for f in mp.rglob("*") if f.is_file())
                for f in files:
                    ff = fmt or detect_format(f.name, in_directory=True)
                    if ff:
                        sources.append(Source(str(f), ff, path=f, size=f.stat().st_size))
                    elif not f.name.startswith("."):
                        skipped.append(str(f))
            elif mp.is_file():
                ff = fmt or detect_format(mp.name)
                if not ff:
                    raise InputError(f"{m}: cannot tell the format from the name. Fix: name it .ndjson, "
                                     ".jsonl, .csv or .parquet (optionally .gz), or pass --format.")
                sources.append(Source(str(mp), ff, path=mp, size=mp.stat().st_size))
            else:
                raise InputError(f"{m}: no such file or directory. Fix: check the path.")
    return sources, skipped


class Ingestor:
    """Accumulates chunks of records and commits them batch by batch."""

    def __init__(self, con: duckdb.DuckDBPyConnection, db_path: str, *, catalog: Catalog | None = None,
                 source_tz: SourceZone | None = None, batch_size: int = DEFAULT_BATCH,
                 anchor_path: str | None = None,
                 on_batch: Callable[[IngestSummary], None] | None = None) -> None:
        self.con = con
        con.execute("SET TimeZone = 'UTC'")  # timestamps are stored as UTC instants
        self.writer = ChainWriter(con, db_path, anchor_path)
        self.catalog = catalog
        self.zone = source_tz
        self.batch_size = batch_size
        self.summary = IngestSummary()
        self.on_batch = on_batch
        self.run_id = uuid.uuid4().hex[:12]
        self._chunks: list[tuple[str, Chunk]] = []
        self._pending = 0
        self._source = ""
        self._last_pos = 0
        self._log_start: tuple[str, datetime] | None = None
        self._open_sources: set[str] = set()  # sources of `commit_staged` whose ingest-log row exists

    def feed(self, source: str, fmt: str, chunks: Iterable[Chunk],
             progress: Callable[[int], None] | None = None) -> None:
        self.summary.sources += 1
        self._source = source
        # The source's ingest-log row is written with its first batch and closed with its last, in
        # their transactions, so a small input costs one commit, not three.
        self._log_start = (fmt, datetime.now(timezone.utc).replace(tzinfo=None))
        status = "complete"
        try:
            for chunk in self._readable(source, chunks):
                self._last_pos = chunk.last_position
                if any(r.reason == "truncated_input" for _, _, r in chunk.rejects):
                    status = "truncated"
                for piece in self._pieces(chunk):
                    self._chunks.append((source, piece))
                    self._pending += len(piece)
                    if self._pending >= self.batch_size:
                        self.flush()
                if progress:
                    progress(chunk.bytes_read)
        except UnreadableInput as e:
            if e.stored_upto is not None:  # the batch in flight is what could not be read: none of it is stored
                self._chunks, self._pending, self._last_pos = [], 0, e.stored_upto
            self._finish(source, "failed")  # what was read before the damage is committed
            raise
        self._finish(source, status)

    def _finish(self, source: str, status: str) -> None:
        """Commit what is pending and close the source's ingest-log row with `status`."""
        finish = (status, datetime.now(timezone.utc).replace(tzinfo=None))
        if self._pending:
            self.flush(finish)  # the last batch closes the source's log row
            return
        con = self.con
        if self._log_start is not None:  # nothing was read: the row is written now, already closed
            con.execute("INSERT INTO ingest_log (run_id, source, format, started_at, finished_at, status, records) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", [self.run_id, source, self._log_start[0], self._log_start[1],
                                                        finish[1], status, self._last_pos])
            self._log_start = None
            return
        con.execute("UPDATE ingest_log SET finished_at = ?, status = ?, records = ? WHERE run_id = ? AND source = ?",
                    [finish[1], status, self._last_pos, self.run_id, source])

    def _readable(self, source: str, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        """The reader's chunks; a reader failing on undecodable input ends the source (`UnreadableInput`)."""
        it = iter(chunks)
        while True:
            try:
                chunk = next(it)
            except StopIteration:
                return
            except _UNREADABLE as e:
                raise UnreadableInput(source, f"after record {self._last_pos:,}", e) from None
            yield chunk

    def _pieces(self, chunk: Chunk) -> Iterable[Chunk]:
        """Cut a reader's chunk so no batch exceeds `batch_size` (readers cut by bytes, not rows)."""
        start, n = 0, chunk.rows
        rejects = chunk.rejects
        while True:
            room = max(1, self.batch_size - self._pending)
            take = min(room, n - start)
            yield chunk.slice(start, take, rejects, chunk.last_position if start + take >= n
                              else int(chunk.positions[start + take].as_py()) - 1)
            rejects = []
            start += take
            if start >= n:
                return

    def flush(self, finish: tuple[str, datetime] | None = None) -> None:
        """Commit what is pending as one batch; `finish` (status, time) closes the source's log row."""
        if not self._pending:
            return
        # Validated and committed in line: a second thread validating the next batch meanwhile measured no
        # faster on this 2-core machine under load, for 10-25 % more CPU (docs/BENCHMARKS.md).
        # The batch ends at its last piece, not at the last chunk read: that may hold records of the next batch.
        log_update = LogUpdate(self.run_id, self._source, self._chunks[-1][1].last_position, self._log_start, finish)
        plain, split = small_batch(self.con, self._chunks, self.catalog)
        # A batch read in place is one relation over its file(s), built (and the file checked) once here.
        files = _in_place_sql(self._chunks) if plain is None else None
        keys, stored = _direct_keys(self.con, self._chunks, self.writer, files) if plain is None else (None, None)
        if plain is not None:
            with arrow_views(self.con, _plain_rows=plain.rows):
                res = self.writer.commit("_plain_rows", None, self._source, log_update, hashes=plain.hashes)
            records, uncatalogued = plain.rows.num_rows, plain.uncatalogued
        elif keys is not None:
            res, records, uncatalogued = self._commit_direct(keys, log_update, files)
        else:
            with validated(self.con, self._chunks, self.zone, self.catalog, split) as (valid, records,
                                                                                         uncatalogued):
                res = self.writer.commit(valid, "_bad_rows", self._source, log_update, stored=stored)
        self._log_start = None
        self._account(res, records, uncatalogued)
        self._chunks = []
        self._pending = 0

    def _commit_direct(self, keys: IdKeys, log_update: LogUpdate, files: str | None
                       ) -> tuple[BatchResult, int, int]:
        """Commit a batch of typed rows (read in place, `files` its relation, or in memory) whose ids are all
        new (`_direct_keys`): the records the fast lane vouches for (and the catalog need not complete) are
        inserted straight from the file or the Arrow table, and only if that leaves some are the rest
        validated, in the same transaction (`DirectInsert`). Returns the result, the records handed in and
        those no catalog route matched."""
        first = self._chunks[0][1]
        vouched = "_sure" + (f" AND NOT ({NEEDS_CATALOG})" if self.catalog else "")
        records = sum(c.rows for _, c in self._chunks)
        if files is not None:
            schema = _with_position(first.file_rows.schema)  # type: ignore[union-attr]
            source = sql_views(self.con, _direct_in=files)
        else:
            table = _typed_tables(self._chunks)[0]
            schema, source = table.schema, arrow_views(self.con, _direct_in=table)
        rest_uncatalogued = [0]
        with contextlib.ExitStack() as later, source:
            def rest() -> tuple[str, str]:
                valid, _, rest_uncatalogued[0] = later.enter_context(
                    validated(self.con, self._chunks, self.zone, self.catalog, skip=vouched, files=files))
                return valid, "_bad_rows"

            rows = f"(SELECT * FROM ({staged_sql([typed_feeder_sql(schema, '_direct_in')])}) WHERE {vouched})"
            try:
                res = self.writer.commit(None, None, self._source, log_update,
                                         direct=DirectInsert(rows, records, keys, rest))
            except duckdb.Error as e:  # rolled back: a file's rows can be read again to tell damage from a fault
                damage = _unreadable(self.con, self._chunks, ["SELECT * FROM _direct_in"]) if files else None
                raise damage or e
        return res, records, rest_uncatalogued[0]

    def commit_staged(self, source: str, batches: list["StagedBatch"], stored: list[str] | None = None
                      ) -> BatchResult:
        """Commit batches validated elsewhere (`stage_batch`) as one batch of `source`, whose ingest-log
        row this Ingestor opens with its first commit and keeps up to date; their staging tables are
        dropped afterwards, also when the commit fails. `stored`: see `ChainWriter.commit`."""
        start = None
        if source not in self._open_sources:
            start = (batches[0].fmt, datetime.now(timezone.utc).replace(tzinfo=None))
            self.summary.sources += 1
        log_update = LogUpdate(self.run_id, source, max(b.last_position for b in batches), start)
        cols = ", ".join(f'"{c}"' for c in plainlane.ROW_COLUMNS)
        plain = [b.rows for b in batches if b.rows is not None]
        try:
            with arrow_views(self.con, **({"_plain_rows": pa.concat_tables(plain)} if plain else {})):
                valid = " UNION ALL ".join([f"SELECT {cols} FROM {b.valid}" for b in batches if b.valid]
                                           + ([f"SELECT {cols} FROM _plain_rows"] if plain else []))
                bad = " UNION ALL ".join(f"SELECT * FROM {b.bad}" for b in batches if b.bad)
                res = self.writer.commit(f"({valid})", f"({bad})" if bad else None, source, log_update,
                                         hashes=pa.concat_tables([b.hashes for b in batches]), stored=stored)
        finally:
            for b in batches:
                b.drop(self.con)  # never raises: a leftover staging table must not undo a commit's answer
        self._open_sources.add(source)
        self._account(res, sum(b.records for b in batches), sum(b.uncatalogued for b in batches))
        return res

    def _account(self, res: BatchResult, records: int, uncatalogued: int) -> None:
        s = self.summary
        s.uncatalogued += uncatalogued
        blank = records - (res.loaded + res.duplicates + res.conflicts + res.rejects)
        s.records += records - blank
        s.loaded += res.loaded
        # A bad line already quarantined by an earlier run of the same input is a duplicate too.
        s.duplicates += res.duplicates + res.requarantined
        s.quarantined.update(res.reasons)
        if res.seq is not None:
            s.batches += 1
        if self.on_batch:
            self.on_batch(s)


STAGE_DB = "bw_stage"  # an in-memory database attached to the store's DuckDB: validated batches wait there


@dataclass
class StagedBatch:
    """Records validated (and completed from the catalog) ahead of their commit, in tables of STAGE_DB: an
    HTTP request is validated in its own thread while the writer commits the requests before it."""
    valid: str | None  # table of Contract 1 columns plus `_src` and `_pos`, or None when `rows` holds them
    hashes: pa.Table  # `record_hashes` of `valid`: hashing, too, is done before the commit
    bad: str | None  # table of quarantine rows (QUARANTINE_SCHEMA), None when there are none
    records: int  # records handed in, blank lines included
    uncatalogued: int
    last_position: int
    fmt: str
    rows: pa.Table | None = None  # the valid rows in memory (plainlane.ROW_COLUMNS) instead of a table

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        """Remove the staging tables; a failure is logged, not raised (they are in memory only)."""
        for table in (self.valid, self.bad):
            if table:
                try:
                    con.execute(f"DROP TABLE IF EXISTS {table}")
                except duckdb.Error as e:
                    log.warning("could not drop staging table %s: %s", table, e)


_ATTACHING = threading.Lock()  # DuckDB's ATTACH IF NOT EXISTS fails ("already exists") when two race


def validation_cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of the store's DuckDB for `stage_batch` in another thread (with STAGE_DB attached)."""
    cur = con.cursor()
    with _ATTACHING:
        cur.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {STAGE_DB}")
    cur.execute("SET TimeZone = 'UTC'")  # validated and stored as UTC instants
    return cur


def stage_batch(con: duckdb.DuckDBPyConnection, fmt: str, chunks: list[tuple[str, Chunk]], *,
                catalog: Catalog | None = None, source_tz: SourceZone | None = None) -> StagedBatch:
    """Validate `chunks` (source, chunk) on `con` (a `validation_cursor`) as a batch is validated before its
    commit, leaving its rows in staging tables that `Ingestor` commits and drops."""
    last = max((c.last_position for _, c in chunks), default=0)
    plain, split = small_batch(con, chunks, catalog)
    if plain is not None:  # no table to create and drop: the rows wait in memory
        return StagedBatch(None, plain.hashes, None, plain.rows.num_rows, plain.uncatalogued, last, fmt,
                           rows=plain.rows)
    name = f"{STAGE_DB}.b{uuid.uuid4().hex}"
    with validated(con, chunks, source_tz, catalog, split) as (valid, records, uncatalogued):
        con.execute(f"CREATE TABLE {name}_v AS SELECT * FROM {valid}")
        try:
            hashes = record_hashes(con, f"{name}_v")
            bad = None
            if con.execute("SELECT count(*) FROM _bad_rows").fetchall()[0][0]:
                bad = f"{name}_q"
                con.execute(f"CREATE TABLE {bad} AS SELECT * FROM _bad_rows")
        except BaseException:
            con.execute(f"DROP TABLE {name}_v")
            raise
    return StagedBatch(f"{name}_v", hashes, bad, records, uncatalogued, last, fmt)


def _is_text(c: Chunk) -> bool:
    """Whether a chunk is validated as JSON text (typed columns only when the typed feeder reads them)."""
    return c.schema is None or not typed_ok(c.schema)


def _source_column(src: str, n: int) -> pa.Array:
    """The `_src` column of `n` records of source `src`, built in Arrow: a Python list of n references to one
    string cost 0.079 s per 245,760-line batch, this 0.018 s."""
    return pa.repeat(pa.scalar(src, pa.string()), n)


def _lines_table(chunks: list[tuple[str, Chunk]]) -> pa.Table:
    # One Arrow chunk, not one per reader block (see `_one_chunk`).
    return _one_chunk(pa.Table.from_batches([
        pa.RecordBatch.from_arrays([_source_column(src, len(c.lines)), c.positions, c.lines],
                                   schema=_LINES_SCHEMA)
        for src, c in chunks], schema=_LINES_SCHEMA))


def _one_chunk(table: pa.Table) -> pa.Table:
    """`table` as a single Arrow chunk. DuckDB stages a batch (`_fast`) from each Arrow chunk in parallel
    and the insert keeps that layout: a batch handed over in its reader's blocks (8 MB of NDJSON, 50,000
    Parquet or Arrow rows) became row groups of odd sizes, which every checkpoint then rewrote whole (2.0 s
    and half the store file per 2 million NDJSON events, docs/BENCHMARKS.md). One chunk gives whole row
    groups; the copy costs far less."""
    return table.combine_chunks() if any(col.num_chunks > 1 for col in table.columns) else table


def small_batch(con: duckdb.DuckDBPyConnection, chunks: list[tuple[str, Chunk]],
                catalog: Catalog | None) -> tuple[plainlane.PlainBatch | None, tuple[pa.Table, pa.Table] | None]:
    """For a batch of at most COMPACT_MAX_LINES lines of JSON text (an HTTP request): (the plain lane's
    validated rows when it takes the whole batch, else None; else the compact lane's split of it, which
    `validated` then reuses). (None, None) for any other batch."""
    if any(c.rejects or not _is_text(c) for _, c in chunks):
        return None, None
    text = [(src, c) for src, c in chunks if c.rows]
    if not 0 < sum(c.rows for _, c in text) <= compactlane.COMPACT_MAX_LINES:
        return None, None
    split = compactlane.split_compact(_lines_table(text))
    if not split[1].num_rows:
        plain = plainlane.plain_batch(con, split[0], catalog)
        if plain is not None:
            return plain, None
    return None, split


@contextlib.contextmanager
def validated(con: duckdb.DuckDBPyConnection, chunks: list[tuple[str, Chunk]], zone: SourceZone | None,
              catalog: Catalog | None, split: tuple[pa.Table, pa.Table] | None = None, skip: str | None = None,
              files: str | None = None) -> Iterator[tuple[str, int, int]]:
    """Validate one batch of (source, chunk) on `con`; inside the block, yields (the relation of its valid
    rows, the number of records handed in, the access records no catalog route matched) and `_bad_rows`
    holds its quarantine rows. `split` is `small_batch`'s compact split of the same chunks, if it made one.
    `skip`: the records a direct insert has stored already are left out (`Ingestor._commit_direct`).
    `files`: the batch's relation when all of it is read in place, in one schema (`_in_place_sql`), built
    and checked already."""
    text = [(src, c) for src, c in chunks if c.rows and _is_text(c)]
    in_files: dict[pa.Schema, list[tuple[str, FileRows]]] = {}
    for src, c in chunks:
        if c.rows and c.file_rows is not None and not _is_text(c):
            in_files.setdefault(c.file_rows.schema, []).append((src, c.file_rows))
    lines = _lines_table(text)
    typed_views = {f"_typed_in{k}": t for k, t in enumerate(_typed_tables(chunks))}
    whole = files if len(in_files) == 1 else None
    file_views = {f"_file_in{k}": (whole or _file_rows_sql(parts), _with_position(schema))
                  for k, (schema, parts) in enumerate(in_files.items())}
    if 0 < len(lines) <= compactlane.COMPACT_MAX_LINES:  # a small batch: spare it the JSON feeder's planning
        compact, lines = split or compactlane.split_compact(lines)
        if compact.num_rows:
            typed_views["_compact_in"] = compact
    early = [(src, pos, raw, r) for src, c in chunks for pos, raw, r in c.rejects]
    rejects = pa.Table.from_pydict({
        "quarantine_id": [quarantine_id(src, pos, raw) for src, pos, raw, _ in early],
        "source": [e[0] for e in early], "position": [e[1] for e in early],
        "reason": [e[3].reason for e in early], "detail": [e[3].detail for e in early],
        "raw": [e[2] for e in early], "event_id": [None] * len(early)}, schema=QUARANTINE_SCHEMA)
    # Only what the batch holds is registered: each registration is a catalog change to undo.
    # A batch of rejects only (say, one line of broken UTF-8) still validates its empty text table.
    text_in = len(lines) > 0 or not (typed_views or file_views)
    views = {"_early_rejects": rejects, **typed_views}
    views = {k: v for k, v in views.items() if v.num_rows} | ({"_lines_in": lines} if text_in else {})
    with arrow_views(con, **views), sql_views(con, **{k: sql for k, (sql, _) in file_views.items()}):
        try:
            validate_batch(con, zone, "_lines_in" if text_in else None,
                           [(name, t.schema) for name, t in typed_views.items()]
                           + [(name, schema) for name, (_, schema) in file_views.items()], skip=skip)
        except duckdb.Error as e:
            if skip is not None:  # inside the direct commit's transaction, which its caller probes after
                raise
            raise _unreadable(con, chunks, [sql for sql, _ in file_views.values()]) or e
        valid = "_valid_rows"
        uncatalogued = 0
        if catalog:
            uncatalogued, valid = enrich_batch(con, catalog, valid)
        if early:
            con.execute("INSERT INTO _bad_rows SELECT * FROM _early_rejects")
        records = (len(lines) + sum(t.num_rows for t in typed_views.values()) + len(early)
                   + sum(f.count for parts in in_files.values() for _, f in parts))
        yield valid, records, uncatalogued


def _unreadable(con: duckdb.DuckDBPyConnection, chunks: list[tuple[str, Chunk]], relations: list[str]
                ) -> UnreadableInput | None:
    """After a statement over a batch's file rows (`relations`) failed: the error to raise if those rows
    cannot be read, else None (the error is not the files'). DuckDB names damage by no exception class
    of its own (a broken page header is a plain duckdb.Error), so every column of the rows is read again."""
    for sql in relations:
        try:
            con.sql(sql).to_arrow_table()
        except (duckdb.InterruptException, duckdb.OutOfMemoryException):
            raise
        except duckdb.Error as damage:
            src, first = next((src, c.file_rows.start) for src, c in chunks if c.file_rows is not None)
            return UnreadableInput(src, f"from row {first + 1:,} on", damage, stored_upto=first)
    return None


def _typed_tables(chunks: list[tuple[str, Chunk]]) -> list[pa.Table]:
    """The typed rows held in memory by `chunks` (not text, not read in place), one table per schema, each
    with `_src` and `_pos` first and in one Arrow chunk."""
    typed: dict[pa.Schema, list[pa.Table]] = {}
    for src, c in chunks:
        if c.rows and c.typed is not None and not _is_text(c):
            typed.setdefault(c.typed.schema, []).append(
                c.typed.add_column(0, "_src", _source_column(src, c.rows)).add_column(1, "_pos",
                                                                                         c.positions))
    return [_one_chunk(pa.concat_tables(ts)) for ts in typed.values()]


def _in_place_sql(chunks: list[tuple[str, Chunk]]) -> str | None:
    """The relation of a batch whose every chunk is rows of a Parquet file read in place (`_file_rows_sql`,
    which checks the file once), else None."""
    if not chunks or any(c.file_rows is None or not c.rows or _is_text(c) for _, c in chunks):
        return None
    return _file_rows_sql([(src, c.file_rows) for src, c in chunks])  # type: ignore[misc]


def _direct_keys(con: duckdb.DuckDBPyConnection, chunks: list[tuple[str, Chunk]], writer: ChainWriter,
                 files: str | None) -> tuple[IdKeys | None, list[str] | None]:
    """For a batch of typed rows of one schema, all read in place (`files`, their relation) or all in memory:
    (the keys of its event_ids when every one is present, distinct and not stored, so that the batch can be
    inserted directly; else None, and the stored ones among them when they were looked up). (None, None) for
    any other batch. Only the id column is read."""
    if not chunks or any(not c.rows or c.rejects or _is_text(c) for _, c in chunks):
        return None, None
    first = chunks[0][1]
    in_place = files is not None
    if ("event_id" not in first.schema.names
            or any(c.schema != first.schema or (c.file_rows is not None) != in_place for _, c in chunks)):
        return None, None
    con.complete()  # a result left unread (fetchone) would refuse the reads below
    if in_place:
        try:
            ids = con.sql(f"SELECT event_id FROM ({files})").to_arrow_table().column(0)
        except duckdb.Error:
            return None, None  # unreadable: validation reports it as it does for any batch
    else:
        ids = pa.chunked_array([part for _, c in chunks for part in c.typed.column("event_id").chunks],
                               first.schema.field("event_id").type)
    if ids.null_count or pc.any(pc.equal(ids, "")).as_py():
        return None, None  # derived ids are known only after validation
    keys = id_keys(con, ids)
    if keys.repeats(ids):
        return None, None
    stored = writer.lookup_stored(con, ids, keys)
    if stored is None:  # too many stored ids to keep their keys: these ids joined against them, once
        stored = stored_ids(con, ids)
    return (keys, None) if not stored else (None, stored)


def _file_rows_sql(parts: list[tuple[str, FileRows]]) -> str:
    """The rows of `parts` (source, rows of a file) as one relation; the consecutive pieces of a file that
    the batch cut its chunks into are read as one range, so DuckDB skips the file's other row groups once."""
    merged: list[tuple[str, FileRows]] = []
    for src, f in parts:
        if merged and merged[-1][0] == src:
            last = merged[-1][1]
            if last.path == f.path and last.start + last.count == f.start:
                merged[-1] = (src, replace(last, count=last.count + f.count))
                continue
        merged.append((src, f))
    for src, f in merged:
        try:
            f.check()
        except FileChanged as e:
            raise UnreadableInput(src, f"from row {merged[0][1].start + 1:,} on", e, stored_upto=merged[0][1].start,
                                  fix="ingest a copy that nothing writes to, or wait until its writer is done, "
                                      "and run again") from None
    return " UNION ALL ".join(f.select_sql(src) for src, f in merged)


def _with_position(schema: pa.Schema) -> pa.Schema:
    """A typed schema with the `_src` and `_pos` columns every staged relation starts with."""
    return schema.insert(0, pa.field("_src", pa.string())).insert(1, pa.field("_pos", pa.int64()))


def ingest_sources(con: duckdb.DuckDBPyConnection, db_path: str, sources: list[Source], *,
                   catalog: Catalog | None = None, source_tz: SourceZone | None = None,
                   batch_size: int = DEFAULT_BATCH, max_line: int = DEFAULT_MAX_LINE,
                   anchor_path: str | None = None,
                   progress: Callable[[str, int, int | None], None] | None = None,
                   on_batch: Callable[[IngestSummary], None] | None = None) -> IngestSummary:
    ing = Ingestor(con, db_path, catalog=catalog, source_tz=source_tz, batch_size=batch_size,
                   anchor_path=anchor_path, on_batch=on_batch)
    for src in sources:
        report = (lambda n, s=src: progress(s.name, n, s.size)) if progress else None
        ing.feed(src.name, src.fmt, read_source(src.path, src.fmt, src.stream, max_line, batch_size), report)
    return ing.summary


def ingest_paths(con: duckdb.DuckDBPyConnection, db_path: str, paths: Iterable[str], *, fmt: str | None = None,
                 **kwargs: Any) -> IngestSummary:
    sources, skipped = expand_paths(paths, fmt)
    summary = ingest_sources(con, db_path, sources, **kwargs)
    summary.skipped_files = skipped
    return summary


def ingest_records(con: duckdb.DuckDBPyConnection, records: Iterable[dict], source: str, *,
                   db_path: str | None = None, **kwargs: Any) -> IngestSummary:
    """Ingest in-memory records (dicts in Contract 1 form), e.g. from the simulator or an HTTP body."""
    path = db_path or _db_file(con)
    ing = Ingestor(con, path, **kwargs)
    ing.feed(source, "records", chunk_records((i, None, r) for i, r in enumerate(records, 1)))
    return ing.summary


def ingest_tables(con: duckdb.DuckDBPyConnection, tables: Iterable[pa.Table], source: str, *,
                  db_path: str | None = None, **kwargs: Any) -> IngestSummary:
    """Ingest Arrow tables in Contract 1 columns (e.g. a simulator's batches), validated like any file."""
    ing = Ingestor(con, db_path or _db_file(con), **kwargs)
    ing.feed(source, "arrow", chunk_tables(tables))
    return ing.summary


def _db_file(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    if not row or not row[0]:
        raise ValueError("an in-memory store has no file to anchor its chain next to. Fix: pass db_path.")
    return os.fspath(row[0])
