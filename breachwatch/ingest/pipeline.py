"""Ingest: read sources, normalise, and commit chained batches to the store.

Records stream through in batches of `batch_size`, so memory is bounded by the
batch, not the file. Each batch commits atomically (events, quarantine, ingest
log and chain link in one transaction), so a crash loses at most the batch in
flight, and re-running the same input adds nothing (dedup on `event_id`).
"""
from __future__ import annotations

import glob
import hashlib
import os
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import orjson
import pyarrow as pa

from breachwatch.contract.catalog import Catalog
from breachwatch.contract.event import ARROW_SCHEMA, FIELDS
from breachwatch.ingest.enrich import CatalogEnricher
from breachwatch.ingest.normalize import Normalizer, Rejected
from breachwatch.ingest.readers import (DEFAULT_MAX_LINE, CountingReader, TruncatedInput, detect_format,
                                        read_source)
from breachwatch.store.chain import QUARANTINE_SCHEMA, ChainWriter

DEFAULT_BATCH = 100_000
_STAGE_SCHEMA = ARROW_SCHEMA.append(pa.field("_src", pa.string())).append(pa.field("_pos", pa.int64()))


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
                    ff = fmt or detect_format(f.name)
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


def _qid(source: str, pos: int, raw: str) -> str:
    return hashlib.sha256(f"{source}|{pos}|{raw}".encode("utf-8", "backslashreplace")).hexdigest()[:32]


class Ingestor:
    """Accumulates normalised rows and rejects, and commits them batch by batch."""

    def __init__(self, con: duckdb.DuckDBPyConnection, db_path: str, *, catalog: Catalog | None = None,
                 source_tz: tzinfo | None = None, batch_size: int = DEFAULT_BATCH,
                 anchor_path: str | None = None,
                 on_batch: Callable[[IngestSummary], None] | None = None) -> None:
        self.con = con
        self.writer = ChainWriter(con, db_path, anchor_path)
        self.normalizer = Normalizer(source_tz)
        self.enricher = CatalogEnricher(catalog) if catalog else None
        self.batch_size = batch_size
        self.summary = IngestSummary()
        self.on_batch = on_batch
        self.run_id = uuid.uuid4().hex[:12]
        self._cols: list[list[Any]] = [[] for _ in range(len(FIELDS) + 2)]
        self._rejects: list[tuple] = []
        self._pending = 0
        self._source = ""
        self._last_pos = 0

    def feed(self, source: str, fmt: str, items: Iterator[tuple[int, Any, Any]]) -> None:
        self.summary.sources += 1
        self._source = source
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        self.con.execute("INSERT INTO ingest_log (run_id, source, format, started_at, status) "
                         "VALUES (?, ?, ?, ?, 'running')", [self.run_id, source, fmt, now])
        status = "complete"
        try:
            for pos, raw, rec in items:
                self._last_pos = pos
                self._take(source, pos, raw, rec)
        except TruncatedInput as t:
            pos = t.position + 1
            self._reject(source, pos, "", Rejected("truncated_input",
                         f"input ends early or is damaged after line {t.position}: {t.detail}"))
            status = "truncated"
        self.flush()
        self.con.execute("UPDATE ingest_log SET finished_at = ?, status = ?, records = ? "
                         "WHERE run_id = ? AND source = ?",
                         [datetime.now(timezone.utc).replace(tzinfo=None), status, self._last_pos,
                          self.run_id, source])

    def _take(self, source: str, pos: int, raw: Any, rec: Any) -> None:
        self.summary.records += 1
        if isinstance(rec, Rejected):
            self._reject(source, pos, raw, rec)
            return
        try:
            row = self.normalizer.normalize(rec)
        except Rejected as r:
            self._reject(source, pos, raw, r, rec)
            return
        if self.enricher:
            self.enricher.apply(row)
        cols = self._cols
        for i, v in enumerate(row):
            cols[i].append(v)
        cols[-2].append(source)
        cols[-1].append(pos)
        self._pending += 1
        if self._pending >= self.batch_size:
            self.flush()

    def _reject(self, source: str, pos: int, raw: Any, r: Rejected, rec: Any = None) -> None:
        if raw is None:
            raw = orjson.dumps(rec, default=str).decode()
        eid = rec.get("event_id") if isinstance(rec, dict) and isinstance(rec.get("event_id"), str) else None
        self._rejects.append((_qid(source, pos, raw), source, pos, r.reason, r.detail, raw, eid))
        self._pending += 1
        if self._pending >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        events = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(self._cols, _STAGE_SCHEMA)],
                                      schema=_STAGE_SCHEMA)
        rejects = pa.Table.from_arrays([pa.array(list(c), type=f.type) for c, f in
                                        zip(zip(*self._rejects), QUARANTINE_SCHEMA)] if self._rejects else
                                       [pa.array([], type=f.type) for f in QUARANTINE_SCHEMA],
                                       schema=QUARANTINE_SCHEMA)
        res = self.writer.commit(events, rejects, self._source, (self.run_id, self._source, self._last_pos))
        s = self.summary
        s.loaded += res.loaded
        # A bad line already quarantined by an earlier run of the same input is a duplicate too.
        s.duplicates += res.duplicates + len(self._rejects) - (res.quarantined - res.conflicts)
        # Counted from what this batch really added: a reject already quarantined by an
        # earlier run of the same file is not counted again.
        s.quarantined.update(res.reasons)
        if res.seq is not None:
            s.batches += 1
        if self.enricher:
            s.uncatalogued = self.enricher.uncatalogued
        self._cols = [[] for _ in range(len(FIELDS) + 2)]
        self._rejects = []
        self._pending = 0
        if self.on_batch:
            self.on_batch(s)


def ingest_sources(con: duckdb.DuckDBPyConnection, db_path: str, sources: list[Source], *,
                   catalog: Catalog | None = None, source_tz: tzinfo | None = None,
                   batch_size: int = DEFAULT_BATCH, max_line: int = DEFAULT_MAX_LINE,
                   anchor_path: str | None = None,
                   progress: Callable[[str, int, int | None], None] | None = None,
                   on_batch: Callable[[IngestSummary], None] | None = None) -> IngestSummary:
    ing = Ingestor(con, db_path, catalog=catalog, source_tz=source_tz, batch_size=batch_size,
                   anchor_path=anchor_path, on_batch=on_batch)
    for src in sources:
        counter = CountingReader(None) if progress else None  # type: ignore[arg-type]
        items = read_source(src.path, src.fmt, src.stream, max_line, counter)
        if progress and counter is not None:
            items = _reporting(items, counter, src, progress)
        ing.feed(src.name, src.fmt, items)
    return ing.summary


def _reporting(items: Iterator, counter: CountingReader, src: Source,
               progress: Callable[[str, int, int | None], None]) -> Iterator:
    for n, item in enumerate(items):
        if n % 20_000 == 0:
            progress(src.name, counter.count, src.size)
        yield item
    progress(src.name, counter.count, src.size)


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
    ing.feed(source, "records", ((i, None, r) for i, r in enumerate(records, 1)))
    return ing.summary


def _db_file(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    if not row or not row[0]:
        raise ValueError("an in-memory store has no file to anchor its chain next to. Fix: pass db_path.")
    return os.fspath(row[0])
