"""HTTP request bodies to the readers' chunks: NDJSON or a JSON array, gzip or not.

The body becomes exactly what a file would: NDJSON goes through the NDJSON
reader (line numbers are positions), a JSON array through the in-memory
records reader (array index is the position); validation and quarantine then
happen in the ingest pipeline as for any file. Decompression is bounded, so a
small gzip bomb cannot fill memory.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.ingest.readers import Chunk, chunk_records, inflate, read_ndjson

GZIP_MAGIC = b"\x1f\x8b"


class BodyTooLarge(ValueError):
    """The body (or what it decompresses to) is over the size limit."""


class BadBody(ValueError):
    """A body that is not NDJSON, a JSON array or gzip of either; nothing of it was stored."""


@dataclass
class ParsedBody:
    chunks: list[Chunk]
    records: int            # positions used: lines of NDJSON or elements of the array
    bytes: int              # decompressed size
    ids: list[str | None] | None  # each position's own event_id where it states one; None: not computed


def decompress(body: bytes, limit: int) -> bytes:
    out = io.BytesIO()
    d = inflate.decompressobj(wbits=31)
    data = body
    while data:
        try:
            piece = d.decompress(data, limit + 1 - out.tell())
        except inflate.error as e:
            raise BadBody(f"the gzip body is damaged ({e}). Fix: resend the batch; nothing of it was stored.") from e
        out.write(piece)
        if out.tell() > limit:
            raise BodyTooLarge(f"the body decompresses to more than {limit} bytes. Fix: send smaller batches.")
        if d.eof:
            data = d.unused_data
            if data:
                d = inflate.decompressobj(wbits=31)  # concatenated gzip members
        else:
            data = d.unconsumed_tail
    if not d.eof:
        raise BadBody("the gzip body ends before its end marker. Fix: resend the batch; nothing of it was stored.")
    return out.getvalue()


def _first_char(data: bytes) -> bytes:
    stripped = data.lstrip(b" \t\r\n\xef\xbb\xbf")
    return stripped[:1]


def parse_body(body: bytes, *, limit: int, max_line: int, gzip_encoded: bool = False,
               ids_up_to: int = 0, array_only: bool = False) -> ParsedBody:
    """Parse one body; the per-position event ids are worked out only for bodies of at most `ids_up_to`
    records (those are the ones that may share a commit with others)."""
    if gzip_encoded or body[:2] == GZIP_MAGIC:
        body = decompress(body, limit)
    elif len(body) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes. Fix: send smaller batches.")
    if array_only and _first_char(body) != b"[":
        raise BadBody("with Content-Type application/json the body must be a JSON array of events. Fix: wrap "
                      "the events in [...], or send NDJSON as application/x-ndjson; nothing of it was stored.")
    if _first_char(body) == b"[":
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise BadBody(f"the body starts like a JSON array but is not valid JSON ({e}). Fix: send a JSON array "
                          "of event objects, or NDJSON (one object per line); nothing of it was stored.") from e
        chunks = list(chunk_records((i, None, r) for i, r in enumerate(items, 1)))
        ids = [r.get("event_id") if isinstance(r, dict) and isinstance(r.get("event_id"), str) else None
               for r in items] if len(items) <= ids_up_to else None
        return ParsedBody(chunks, len(items), len(body), ids)
    chunks = list(read_ndjson(io.BufferedReader(io.BytesIO(body)), max_line))  # type: ignore[arg-type]
    records = chunks[-1].last_position if chunks else 0
    return ParsedBody(chunks, records, len(body), _ndjson_ids(chunks, records) if records <= ids_up_to else None)


def _ndjson_ids(chunks: list[Chunk], records: int) -> list[str | None]:
    """Each line's own event_id; None where the line is blank, broken or states none."""
    ids: list[str | None] = [None] * records
    for c in chunks:
        for pos, line in zip(c.positions.to_pylist(), c.lines.to_pylist()):
            if '"event_id"' not in line:
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("event_id"), str):
                ids[pos - 1] = rec["event_id"]
    return ids


def shift(chunk: Chunk, offset: int) -> Chunk:
    """The same chunk with every position moved by `offset` (requests share one commit)."""
    if not offset:
        return chunk
    positions = pc.add(chunk.positions, pa.scalar(offset, pa.int64()))
    return Chunk(chunk.lines, positions, [(p + offset, raw, r) for p, raw, r in chunk.rejects],
                 chunk.last_position + offset, chunk.bytes_read)
