"""Readers: NDJSON, CSV and Parquet, gzip or not, from files or streams.

Each reader turns its input into `Chunk`s: a column of JSON text (one record
per row), or for columnar input the typed columns themselves, with the line or
row number of each, plus the input that could not even be read as a record
(invalid UTF-8, an oversized line, a broken CSV row). Validation then happens
once, in SQL, with one semantics for every format (validate.py).
Reading is streamed in blocks, so memory is bounded by the block, not the file.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
import pyarrow as pa
# ISA-L's inflate, with zlib's interface: about five times zlib's speed on this machine (1.3 GB of NDJSON
# in 0.6 s against 3.0-3.4 s); in a 2-million-event NDJSON.gz ingest 0.86 s against 1.7 s (docs/BENCHMARKS.md).
from isal import isal_zlib as inflate

from breachwatch.contract.event import FIELD_BY_NAME
from breachwatch.ingest.fastlane import json_text_sql, typed_ok
from breachwatch.ingest.normalize import Rejected
from breachwatch.store.db import ROW_GROUP_ROWS, arrow_views, sql_views

DEFAULT_MAX_LINE = 1 << 20  # 1 MiB: longer lines are quarantined, never read whole into memory
RAW_KEEP = 4096  # how much of an oversized line is kept as evidence
BLOCK = 8 << 20  # bytes read per block of NDJSON
ROWS_PER_CHUNK = 50_000  # records per chunk for CSV, Parquet and in-memory records
FORMATS = ("ndjson", "csv", "parquet")
_SUFFIXES = {".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "ndjson", ".csv": "csv",
             ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class FileRows:
    """Rows `start` to `start + count` (0-based) of a Parquet file whose columns DuckDB reads straight from
    the file at validation, skipping the file's other row groups: half the cost of decoding them into
    Arrow first (docs/BENCHMARKS.md). `schema` is the file's Arrow schema, which `typed_ok` accepts."""
    path: str
    start: int
    count: int
    schema: pa.Schema
    stamp: tuple[int, int, int]  # `file_stamp` when the reader opened the file

    def check(self) -> None:
        """Raise FileChanged if the file is no longer the one the reader opened: its rows are read only when
        their batch is validated, and a file replaced or rewritten meanwhile (an export run again under
        the same name) would mix two files' rows."""
        if file_stamp(self.path) != self.stamp:
            raise FileChanged("the file changed while it was being read: its size or modification time is not "
                              "what it was when ingest opened it")

    def select_sql(self, source: str) -> str:
        """The rows, numbered by line like every reader's records (`_src` = `source`, `_pos`), as SQL."""
        cols = ", ".join('"' + n.replace('"', '""') + '"' for n in self.schema.names)
        return (f"SELECT {_sql_text(source)} AS _src, file_row_number + 1 AS _pos, {cols} "
                f"FROM read_parquet({_sql_text(self.path)}, file_row_number = true) "
                f"WHERE file_row_number >= {int(self.start)} AND file_row_number < {int(self.start + self.count)}")

class FileChanged(OSError):
    """A file read in place changed after the reader opened it (`FileRows.check`)."""


def file_stamp(path: str) -> tuple[int, int, int]:
    """What tells one version of a file from another: its inode, size and modification time."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Chunk:
    """A block of records: JSON text (one record per row), typed columns (Parquet, Arrow), or rows of a
    Parquet file not read yet (`file_rows`); the latter two are only turned into JSON text if someone
    asks for `lines`."""

    def __init__(self, lines: pa.Array | None, positions: pa.Array,
                 rejects: list[tuple[int, str, Rejected]] | None = None, last_position: int = 0,
                 bytes_read: int = 0, typed: pa.Table | None = None, file_rows: FileRows | None = None) -> None:
        if lines is None and typed is None and file_rows is None:
            raise ValueError("a chunk needs JSON text lines, typed columns or a file's rows")
        self._lines = lines
        self.typed = None if lines is not None else typed
        self.file_rows = None if lines is not None or typed is not None else file_rows
        self.positions = positions  # int64: 1-based line or row number of each record
        self.rejects = rejects if rejects is not None else []  # (position, raw, why)
        self.last_position = last_position
        self.bytes_read = bytes_read  # of the underlying (possibly compressed) input, for progress

    @property
    def lines(self) -> pa.Array:
        """JSON text of each record (computed from typed columns on first use)."""
        if self._lines is None:
            self._lines = typed_as_json(self.typed if self.typed is not None
                                        else self.file_rows)  # type: ignore[arg-type]
        return self._lines

    @property
    def schema(self) -> pa.Schema | None:
        """The Arrow schema of typed rows (in memory or in a file); None for JSON text."""
        if self.typed is not None:
            return self.typed.schema
        return self.file_rows.schema if self.file_rows is not None else None

    @property
    def rows(self) -> int:
        if self._lines is not None:
            return len(self._lines)
        return self.typed.num_rows if self.typed is not None else self.file_rows.count  # type: ignore[union-attr]

    def __len__(self) -> int:
        return self.rows + len(self.rejects)

    def slice(self, start: int, n: int, rejects: list[tuple[int, str, Rejected]], last_position: int) -> "Chunk":
        positions = self.positions.slice(start, n)
        if self._lines is not None:
            return Chunk(self._lines.slice(start, n), positions, rejects, last_position, self.bytes_read)
        if self.typed is not None:
            return Chunk(None, positions, rejects, last_position, self.bytes_read, typed=self.typed.slice(start, n))
        f = self.file_rows
        return Chunk(None, positions, rejects, last_position, self.bytes_read,
                     file_rows=replace(f, start=f.start + start, count=n))  # type: ignore[arg-type, union-attr]


def typed_as_json(rows: pa.Table | FileRows) -> pa.Array:
    """Typed rows, in memory or read from their file as validation reads them, as the JSON text a JSON
    source would have written (for the full validator and for sending them on to a server)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        if isinstance(rows, FileRows):
            rows.check()
            view = sql_views(con, _rows=rows.select_sql(""))
        else:
            view = arrow_views(con, _rows=rows)
        with view:
            out = con.sql(json_text_sql(rows.schema, "_rows")).to_arrow_table()
    finally:
        con.close()
    return out.column("line").combine_chunks().cast(pa.large_string())


def detect_format(name: str, in_directory: bool = False) -> str | None:
    """The format a file name implies. In a directory walk, `.json` files are passed over:
    there they are usually single documents (a manifest, a simulator's truth.json), not events."""
    p = name.lower()
    if p.endswith(".gz"):
        p = p[:-3]
    ext = os.path.splitext(p)[1]
    if in_directory and ext == ".json":
        return None
    return _SUFFIXES.get(ext)


class GzipStream(io.RawIOBase):
    """Streaming gzip decompression that hands out every byte it could decompress.

    The standard GzipFile drops the data decompressed in the read that meets a
    truncated end; here the input simply ends where the damage starts, every
    line before it is still ingested, and `damage` says what went wrong so the
    reader can quarantine it. Concatenated members are read too.
    """

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.d = inflate.decompressobj(wbits=31)
        self.pending = memoryview(b"")
        self.done = False
        self.damage: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.pending and not self.done:
            chunk = self.src.read(1 << 18)
            if not chunk:
                self.pending = memoryview(self.d.flush())
                self.done = True
                if not self.d.eof:
                    self.damage = "compressed stream ended before its end marker"
                break
            try:
                out = self.d.decompress(chunk)
                while self.d.eof and self.d.unused_data:
                    rest = self.d.unused_data
                    self.d = inflate.decompressobj(wbits=31)
                    out += self.d.decompress(rest)
            except inflate.error as e:
                self.done, self.damage, out = True, f"damaged gzip data: {e}", b""
            self.pending = memoryview(out)
        n = min(len(b), len(self.pending))
        b[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def damage_of(stream: io.BufferedReader) -> str | None:
    raw = getattr(stream, "raw", None)
    return raw.damage if isinstance(raw, GzipStream) else None


class _Counted(io.RawIOBase):
    """Counts bytes read from the underlying file, for progress bars."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b) or 0  # type: ignore[attr-defined]
        self.count += n
        return n


def open_binary(stream: BinaryIO) -> io.BufferedReader:
    """Wrap a byte stream, transparently decompressing gzip (detected by its magic bytes)."""
    buf = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[arg-type]
    if buf.peek(2)[:2] == b"\x1f\x8b":
        return io.BufferedReader(GzipStream(buf), buffer_size=1 << 20)
    return buf


def _split_block(data: bytes, first_pos: int, max_line: int) -> Chunk:
    """Cut a block of whole lines into a string column without making a Python object per line."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    n = len(ends)
    positions = np.arange(first_pos, first_pos + n, dtype=np.int64)
    lengths = np.diff(offsets)
    rejects: list[tuple[int, str, Rejected]] = []
    keep = lengths <= max_line + 1
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        keep = keep.copy()
        for i in range(n):  # rare: find the lines that are not UTF-8
            line = data[offsets[i]:offsets[i + 1]]
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                keep[i] = False
                if lengths[i] <= max_line + 1:
                    rejects.append((int(positions[i]), line.rstrip(b"\r\n").decode("utf-8", "backslashreplace"),
                                    Rejected("invalid_utf8", f"byte {e.start}: {e.reason}")))
        arr = pa.array([data[offsets[i]:offsets[i + 1]].decode("utf-8", "replace") if keep[i] else ""
                        for i in range(n)], pa.large_string())
    for i in np.flatnonzero(lengths > max_line + 1):
        rejects.append((int(positions[i]), data[offsets[i]:offsets[i] + RAW_KEEP].decode("utf-8", "backslashreplace"),
                        Rejected("oversized_line", f"line is longer than {max_line} bytes; first {RAW_KEEP} kept")))
    if not keep.all():
        mask = pa.array(keep)
        arr, positions = arr.filter(mask), positions[keep]
    return Chunk(arr, pa.array(positions), sorted(rejects, key=lambda r: r[0]), first_pos + n - 1)


def read_ndjson(stream: io.BufferedReader, max_line: int = DEFAULT_MAX_LINE,
                counted: _Counted | None = None) -> Iterator[Chunk]:
    pos = 1  # number of the next line
    carry = b""
    skipping: tuple[int, bytes] | None = None  # an oversized line being skipped: (its number, evidence)
    while True:
        data = stream.read(BLOCK)
        if not data:
            break
        if skipping is not None:
            nl = data.find(b"\n")
            if nl < 0:
                continue
            data = data[nl + 1:]
            yield Chunk(pa.array([], pa.large_string()), pa.array([], pa.int64()),
                        [(skipping[0], skipping[1].decode("utf-8", "backslashreplace"),
                          Rejected("oversized_line", f"line is longer than {max_line} bytes; first {RAW_KEEP} kept"))],
                        skipping[0], counted.count if counted else 0)
            pos = skipping[0] + 1
            skipping = None
        data = carry + data
        cut = data.rfind(b"\n") + 1
        whole, carry = data[:cut], data[cut:]
        if whole:
            chunk = _split_block(whole, pos, max_line)
            pos = chunk.last_position + 1
            chunk.bytes_read = counted.count if counted else 0
            yield chunk
        if len(carry) > max_line:
            skipping, carry = (pos, carry[:RAW_KEEP]), b""
    damage = damage_of(stream)
    if damage:
        # The last, cut-off line is evidence of where the input broke, not a record.
        yield Chunk(pa.array([], pa.large_string()), pa.array([], pa.int64()),
                    [(pos, carry[:RAW_KEEP].decode("utf-8", "backslashreplace"),
                      Rejected("truncated_input", f"input ends early or is damaged at line {pos}: {damage}"))],
                    pos, counted.count if counted else 0)
    elif skipping is not None:
        yield Chunk(pa.array([], pa.large_string()), pa.array([], pa.int64()),
                    [(skipping[0], skipping[1].decode("utf-8", "backslashreplace"),
                      Rejected("oversized_line", f"line is longer than {max_line} bytes; first {RAW_KEEP} kept"))],
                    skipping[0], counted.count if counted else 0)
    elif carry:
        chunk = _split_block(carry + b"\n", pos, max_line)
        chunk.bytes_read = counted.count if counted else 0
        yield chunk


def _csv_value(name: str, text: str) -> Any:
    """CSV cells are text: convert them to the types Contract 1 gives the column."""
    if text == "":
        return None
    f = FIELD_BY_NAME.get(name)
    if f is None or f.kind in ("str", "time"):
        return text
    if f.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise Rejected("wrong_type", f"{name} must be an integer, got {text!r}") from None
    if f.kind == "strlist":
        return text.split("|")
    try:  # fieldmap and attrs are JSON text in CSV
        return orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise Rejected("wrong_type", f"{name} must be JSON text: {e}") from None


def _csv_rows(stream: io.BufferedReader, max_line: int) -> Iterator[tuple[int, str, Any]]:
    """(line number, raw text, dict or Rejected) per CSV data row; quoted newlines are kept together."""
    state: dict[str, Any] = {"raw": [], "bad": None, "oversized": None, "start": 0, "pos": 0}

    def feed() -> Iterator[str]:
        while True:
            line = stream.readline(max_line + 1)
            if not line:
                return
            state["pos"] += 1
            if not state["raw"]:
                state["start"] = state["pos"]
            if len(line) > max_line and not line.endswith(b"\n"):
                while True:  # skip the rest of the line in bounded chunks
                    more = stream.readline(1 << 20)
                    if not more or more.endswith(b"\n"):
                        break
                state["oversized"] = line[:RAW_KEEP].decode("utf-8", "backslashreplace")
                state["raw"].append(state["oversized"])
                yield "\n"
                continue
            line = line.rstrip(b"\r\n")
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                text = line.decode("utf-8", "backslashreplace")
                state["bad"] = state["bad"] or Rejected("invalid_utf8", f"byte {e.start}: {e.reason}")
            state["raw"].append(text)
            yield text + "\n"

    rows = csv.reader(feed())
    header: list[str] | None = None
    while True:
        try:
            cells: list[str] | None = next(rows)
            err = None
        except StopIteration:
            return
        except csv.Error as e:
            cells, err = None, str(e)
        raw = "\n".join(state["raw"])
        pos, bad, oversized = state["start"], state["bad"], state["oversized"]
        state.update(raw=[], bad=None, oversized=None)
        if header is None:
            if cells:
                header = [c.strip() for c in cells]
            continue
        if oversized is not None:
            yield pos, oversized, Rejected("oversized_line", f"line is longer than {max_line} bytes")
        elif bad:
            yield pos, raw, bad
        elif err is not None or cells is None:
            yield pos, raw, Rejected("invalid_csv", err or "unreadable row")
        elif not cells or cells == [""]:
            continue
        elif len(cells) != len(header):
            yield pos, raw, Rejected("missing_columns" if len(cells) < len(header) else "extra_columns",
                                     f"row has {len(cells)} cells, the header has {len(header)}")
        else:
            try:
                yield pos, raw, {h: _csv_value(h, c) for h, c in zip(header, cells)}
            except Rejected as r:
                yield pos, raw, r


def chunk_records(items: Iterable[tuple[int, str | None, Any]], counted: _Counted | None = None,
                  rows: int = ROWS_PER_CHUNK) -> Iterator[Chunk]:
    """Group (position, raw, record or Rejected) into chunks of JSON text."""
    texts: list[str] = []
    positions: list[int] = []
    rejects: list[tuple[int, str, Rejected]] = []
    last = 0
    for pos, raw, rec in items:
        last = pos
        if isinstance(rec, Rejected):
            rejects.append((pos, raw or "", rec))
        else:
            texts.append(orjson.dumps(rec, option=orjson.OPT_NAIVE_UTC, default=str).decode())
            positions.append(pos)
        if len(texts) + len(rejects) >= rows:
            yield Chunk(pa.array(texts, pa.large_string()), pa.array(positions, pa.int64()), rejects, last,
                        counted.count if counted else 0)
            texts, positions, rejects = [], [], []
    if texts or rejects:
        yield Chunk(pa.array(texts, pa.large_string()), pa.array(positions, pa.int64()), rejects, last,
                    counted.count if counted else 0)


def chunk_tables(tables: Iterable[pa.Table | pa.RecordBatch]) -> Iterator[Chunk]:
    """Columnar rows (Parquet row groups, a simulator's Arrow tables) as typed chunks: validation reads
    the columns directly where their types allow (fastlane.py), else their JSON text."""
    pos = 0
    for table in tables:
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        n = table.num_rows
        yield Chunk(None, pa.array(np.arange(pos + 1, pos + n + 1, dtype=np.int64)), [], pos + n, typed=table)
        pos += n


def read_parquet(path: str, rows: int | None = None, in_place: bool = False) -> Iterator[Chunk]:
    """A Parquet file in chunks of `rows` rows. `in_place` (the file stays where it is until the ingest is
    over): chunks of columns the fast lane reads exactly name the file's rows (`FileRows`) instead of
    holding them, and DuckDB reads them at validation."""
    import pyarrow.parquet as pq

    rows = rows or ROWS_PER_CHUNK
    stamp = file_stamp(path)
    pf = pq.ParquetFile(path)
    if in_place and typed_ok(pf.schema_arrow) and _whole_row_groups(pf):
        total, size = pf.metadata.num_rows, stamp[1]
        for start in range(0, total, rows):
            n = min(rows, total - start)
            yield Chunk(None, pa.array(np.arange(start + 1, start + n + 1, dtype=np.int64)), [], start + n,
                        size * (start + n) // total, file_rows=FileRows(path, start, n, pf.schema_arrow, stamp))
        return
    # One thread: on 2 shared cores, pyarrow's decoding threads cost more CPU (0.37 against 0.22 s per
    # 200,000 rows) and were no faster (docs/BENCHMARKS.md).
    yield from chunk_tables(pf.iter_batches(batch_size=rows, use_threads=False))


def _whole_row_groups(pf: Any) -> bool:
    """Whether a Parquet file's row groups (all but its last) are DuckDB's own (`ROW_GROUP_ROWS`), as DuckDB
    and the simulator write them. Only then is reading it in place the cheap way: a batch's row range is
    read by its whole row groups, so bigger groups are decoded once per batch they hold (2 million events
    in row groups of a million rows, the pyarrow default: 7.6 s against 4.8 s), and groups of other sizes
    are inserted as partial row groups that the next checkpoint rewrites (1.5-2.0 s more per 2 million
    events, docs/BENCHMARKS.md)."""
    md = pf.metadata
    return all(md.row_group(i).num_rows == ROW_GROUP_ROWS for i in range(md.num_row_groups - 1))


def _decompressed_copy(src: BinaryIO) -> str:
    """Parquet needs random access: a gzipped file or a stream is copied to a temp file first."""
    fd, tmp = tempfile.mkstemp(suffix=".parquet")
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(open_binary(src), out, 1 << 20)  # type: ignore[arg-type]
    return tmp


def read_source(path: Path | None, fmt: str, stream: BinaryIO | None = None,
                max_line: int = DEFAULT_MAX_LINE, batch_rows: int | None = None) -> Iterator[Chunk]:
    """Read one file (or a byte stream when `path` is None) in the given format. `batch_rows`: the records
    per batch it is read for; a Parquet file is read in place only for batches of at least one of its row
    groups (smaller ones would each decode the whole group they fall in)."""
    if fmt == "parquet":
        if path is not None and not str(path).lower().endswith(".gz"):
            yield from read_parquet(str(path), in_place=batch_rows is None or batch_rows >= ROW_GROUP_ROWS)
            return
        src = stream if stream is not None else open(path, "rb")  # type: ignore[arg-type]
        tmp = _decompressed_copy(src)
        try:
            yield from read_parquet(tmp)
        finally:
            os.unlink(tmp)
            if stream is None:
                src.close()
        return
    raw: BinaryIO = stream if stream is not None else open(path, "rb")  # type: ignore[arg-type]
    try:
        counted = _Counted(raw)
        buf = open_binary(counted)  # type: ignore[arg-type]
        if fmt == "ndjson":
            yield from read_ndjson(buf, max_line, counted)
        else:
            yield from chunk_records(_csv_rows_guarded(buf, max_line), counted)
    finally:
        if stream is None:
            raw.close()


def _csv_rows_guarded(buf: io.BufferedReader, max_line: int) -> Iterator[tuple[int, str, Any]]:
    last = 0
    for item in _csv_rows(buf, max_line):
        last = item[0]
        yield item
    damage = damage_of(buf)
    if damage:
        yield last + 1, "", Rejected("truncated_input", f"input ends early or is damaged after line {last}: {damage}")
