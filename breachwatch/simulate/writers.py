"""Writing event batches to NDJSON, gzip-compressed NDJSON or Parquet, byte-identically for a seed.

gzip headers carry no file name or time, Parquet gets fixed row groups, and
files appear under their final names only once complete. Rendering,
compression and disk writes run on one background thread (Arrow and zlib
release the GIL) while the caller generates the next batch; the queue between
them is short, so memory stays bounded.
"""
from __future__ import annotations

import gzip
import os
import queue
import threading
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from breachwatch.contract.event import ARROW_SCHEMA
from breachwatch.simulate import ndjson
from breachwatch.simulate.config import FORMATS
from breachwatch.store.db import ROW_GROUP_ROWS

EVENT_FILES = {"ndjson": "events.ndjson", "ndjson.gz": "events.ndjson.gz", "parquet": "events.parquet"}
# Level 1 keeps compression from dominating a run; higher levels save little on event logs.
GZIP_LEVEL = 1
QUEUE_BATCHES = 3


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt}: unknown. Fix: use one of {', '.join(FORMATS)}.")


class TableWriter:
    """Appends tables to one file; NDJSON(.gz) rows via `render`, Parquet via Arrow."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema, row_group: int, render: Any = None) -> None:
        check_format(fmt)
        self.path, self.fmt, self.schema, self.row_group = path, fmt, schema, row_group
        self.partial = path.with_name(path.name + ".partial")
        self.render = render or _json_rows
        self._raw: BinaryIO = open(self.partial, "wb")
        self._out: Any = self._raw
        self._pq: pq.ParquetWriter | None = None
        self._held: list[pa.Table] = []
        self._held_rows = 0
        self.rows = 0
        if fmt == "ndjson.gz":
            self._out = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=GZIP_LEVEL)
        elif fmt == "parquet":
            self._pq = pq.ParquetWriter(self._raw, schema, compression="zstd")
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name=f"write {path.name}", daemon=True)
        self._thread.start()

    def write(self, table: pa.Table) -> None:
        self._check()
        self.rows += table.num_rows
        self._queue.put(table)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        while True:
            table = self._queue.get()
            if table is None:
                return
            if self._error is not None:
                continue  # keep consuming so the producer never blocks
            try:
                self._sink(table)
            except BaseException as e:  # surfaced to the caller on its next write or at close
                self._error = e

    def _sink(self, table: pa.Table) -> None:
        if self._pq is None:
            self._out.write(self.render(table))
            return
        self._held.append(table)
        self._held_rows += table.num_rows
        if self._held_rows >= self.row_group:
            self._flush()

    def _flush(self, whole: bool = True) -> None:
        """Write the held rows as row groups of exactly `row_group` rows, keeping back the rest; `whole=False`
        (closing) writes the rest too, as the file's last, smaller group."""
        if not self._held or self._pq is None:
            return
        table = pa.concat_tables(self._held).combine_chunks()
        n = table.num_rows - table.num_rows % self.row_group if whole else table.num_rows
        if n:
            self._pq.write_table(table.slice(0, n), row_group_size=self.row_group)
        rest = table.slice(n)
        self._held, self._held_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def close(self) -> None:
        self._stop()
        self._check()
        if self._pq is not None:
            self._flush(whole=False)
            self._pq.close()
        elif self._out is not self._raw:
            self._out.close()
        self._raw.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        """Stop and remove the unfinished file (a finished one keeps its final name)."""
        try:
            self._stop()
            if self._pq is not None and not self._raw.closed:
                self._pq.close()
            self._raw.close()
        finally:
            self.partial.unlink(missing_ok=True)


def event_writer(path: Path, fmt: str) -> TableWriter:
    """The events file. Its Parquet row groups are DuckDB's own, so ingest reads it in place (readers.py)."""
    return TableWriter(path, fmt, ARROW_SCHEMA, ROW_GROUP_ROWS, render=ndjson.to_bytes)


def _json_rows(table: pa.Table) -> bytes:
    opts = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
    return b"".join(orjson.dumps(row, option=opts) + b"\n" for row in table.to_pylist())

