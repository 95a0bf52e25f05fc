"""Readers: NDJSON, CSV and Parquet, gzip or not, from files or streams.

Each reader yields `(position, raw, record)` where position is the 1-based line
(NDJSON, CSV) or row (Parquet), raw is the source text (None when it can be
rebuilt from the record) and record is a dict or a `Rejected` saying why the
input could not even be read as a record. Reading is streamed so memory stays
bounded for any file size.
"""
from __future__ import annotations

import csv
import gzip
import io
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from breachwatch.contract.event import FIELD_BY_NAME
from breachwatch.ingest.normalize import Rejected

DEFAULT_MAX_LINE = 1 << 20  # 1 MiB: longer lines are quarantined, never read whole into memory
RAW_KEEP = 4096  # how much of an oversized line is kept as evidence
FORMATS = ("ndjson", "csv", "parquet")
_SUFFIXES = {".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "ndjson", ".csv": "csv",
             ".parquet": "parquet", ".pq": "parquet"}

Item = tuple[int, Any, Any]


def detect_format(name: str) -> str | None:
    p = name.lower()
    if p.endswith(".gz"):
        p = p[:-3]
    return _SUFFIXES.get(os.path.splitext(p)[1])


class CountingReader(io.RawIOBase):
    """Counts bytes read from the underlying (possibly compressed) file, for progress bars."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)  # type: ignore[attr-defined]
        self.count += n or 0
        return n or 0


class GzipStream(io.RawIOBase):
    """Streaming gzip decompression that hands out every byte it could decompress.

    The standard GzipFile drops the data decompressed in the read that meets a
    truncated end; here the lines before the damage are still ingested, and the
    damage itself is reported (`TruncatedInput`). Concatenated members are read too.
    """

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.d = zlib.decompressobj(wbits=31)
        self.pending = b""
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.pending and not self.done:
            chunk = self.src.read(1 << 16)
            if not chunk:
                self.pending = self.d.flush()
                self.done = True
                if not self.d.eof:
                    self._truncated = True
                break
            try:
                out = self.d.decompress(chunk)
            except zlib.error as e:
                raise TruncatedInput(-1, f"damaged gzip data: {e}") from e
            while self.d.eof and self.d.unused_data:
                rest = self.d.unused_data
                self.d = zlib.decompressobj(wbits=31)
                out += self.d.decompress(rest)
            self.pending = out
        if not self.pending:
            if getattr(self, "_truncated", False):
                self._truncated = False
                raise TruncatedInput(-1, "compressed stream ended before its end marker")
            return 0
        n = min(len(b), len(self.pending))
        b[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def open_binary(stream: BinaryIO) -> io.BufferedReader:
    """Wrap a byte stream, transparently decompressing gzip (detected by its magic bytes)."""
    buf = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[arg-type]
    if buf.peek(2)[:2] == b"\x1f\x8b":
        return io.BufferedReader(GzipStream(buf), buffer_size=1 << 20)
    return buf


def _lines(stream: io.BufferedReader, max_line: int) -> Iterator[tuple[int, bytes | None, bytes]]:
    """Yield (line number, line without newline or None if oversized, evidence bytes)."""
    pos = 0
    while True:
        try:
            line = stream.readline(max_line + 1)
        except TruncatedInput as t:
            raise TruncatedInput(pos, t.detail) from t
        except (EOFError, OSError) as e:
            raise TruncatedInput(pos, str(e)) from e
        if not line:
            return
        pos += 1
        if len(line) > max_line and not line.endswith(b"\n"):
            head = line[:RAW_KEEP]
            while True:  # skip the rest of the line in bounded chunks
                chunk = stream.readline(1 << 20)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield pos, None, head
            continue
        yield pos, line.rstrip(b"\r\n"), line


class TruncatedInput(Exception):
    """The stream ended early or its compression is damaged after `position` lines."""

    def __init__(self, position: int, detail: str) -> None:
        super().__init__(detail)
        self.position = position
        self.detail = detail


def _decode(line: bytes) -> tuple[str, Rejected | None]:
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return line.decode("utf-8", "backslashreplace"), Rejected("invalid_utf8", f"byte {e.start}: {e.reason}")


def read_ndjson(stream: io.BufferedReader, max_line: int = DEFAULT_MAX_LINE) -> Iterator[Item]:
    for pos, line, evidence in _lines(stream, max_line):
        if line is None:
            yield pos, evidence.decode("utf-8", "backslashreplace"), Rejected(
                "oversized_line", f"line is longer than {max_line} bytes; first {RAW_KEEP} kept")
            continue
        if not line.strip():
            continue
        text, bad = _decode(line)
        if bad:
            yield pos, text, bad
            continue
        try:
            yield pos, text, orjson.loads(line)
        except orjson.JSONDecodeError as e:
            yield pos, text, Rejected("invalid_json", str(e))


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


def read_csv(stream: io.BufferedReader, max_line: int = DEFAULT_MAX_LINE) -> Iterator[Item]:
    state: dict[str, Any] = {"raw": [], "bad": None, "oversized": None, "start": 0}

    def feed() -> Iterator[str]:
        for pos, line, evidence in _lines(stream, max_line):
            if not state["raw"]:
                state["start"] = pos
            if line is None:
                state["oversized"] = evidence.decode("utf-8", "backslashreplace")
                state["raw"].append(state["oversized"])
                yield ""
                continue
            text, bad = _decode(line)
            state["bad"] = state["bad"] or bad
            state["raw"].append(text)
            yield text + "\n"

    rows = csv.reader(feed())
    header: list[str] | None = None
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            return
        except csv.Error as e:
            cells, err = None, str(e)
        else:
            err = None
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
                                     f"row has {len(cells)} cells, header has {len(header)}")
        else:
            try:
                yield pos, raw, {h: _csv_value(h, c) for h, c in zip(header, cells)}
            except Rejected as r:
                yield pos, raw, r


def read_parquet(path: str, batch_rows: int = 65_536) -> Iterator[Item]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    pos = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        for rec in batch.to_pylist():
            pos += 1
            yield pos, None, rec


def _decompressed_copy(path: Path) -> str:
    """Parquet needs random access, so a gzipped Parquet file is unpacked to a temp file first."""
    fd, tmp = tempfile.mkstemp(suffix=".parquet")
    with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)
    return tmp


def read_source(path: Path | None, fmt: str, stream: BinaryIO | None = None,
                max_line: int = DEFAULT_MAX_LINE, counter: CountingReader | None = None) -> Iterator[Item]:
    """Read one file (or a byte stream when `path` is None) in the given format."""
    if fmt == "parquet":
        if path is None:
            fd, tmp = tempfile.mkstemp(suffix=".parquet")
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(open_binary(stream), out, 1 << 20)  # type: ignore[arg-type]
            target, cleanup = tmp, True
        elif str(path).lower().endswith(".gz"):
            target, cleanup = _decompressed_copy(path), True
        else:
            target, cleanup = str(path), False
        try:
            yield from read_parquet(target)
        finally:
            if cleanup:
                os.unlink(target)
        return
    if stream is None:
        assert path is not None
        raw: BinaryIO = open(path, "rb")
    else:
        raw = stream
    try:
        src: BinaryIO = raw
        if counter is not None:
            counter.raw = raw
            src = counter  # type: ignore[assignment]
        buf = open_binary(src)
        reader = read_ndjson if fmt == "ndjson" else read_csv
        yield from reader(buf, max_line)
    finally:
        if stream is None:
            raw.close()
