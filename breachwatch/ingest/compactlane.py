"""The compact lane: a small batch's compact JSON lines staged as typed columns in Python.

For a batch of a few hundred records (one HTTP request) DuckDB spends about 10 ms
planning the JSON feeder's statement, however few lines it reads, and an
acknowledgement waits for that. A line that is exactly what orjson writes for
the object it holds (compact, no repeated key, no escape written another way) is
unambiguous: orjson reads the same keys and values from it that DuckDB's JSON
reader does. Such lines, when every key is a Contract 1 field and every value
has a type the typed feeder reads exactly, are handed to the typed feeder as
columns, with their text kept, so a record that then fails a value check meets
the full validator as its original line. Every other line stays JSON text for
the JSON feeder. Either way the full validator's rules decide; this lane only
chooses the cheaper feeder (tests/ingest/test_fast_lane.py runs every edge case
through it).
"""
from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa

from breachwatch.contract.event import FIELDS

# Batches up to this many lines go through this lane. Per line it costs about 20 microseconds of Python
# against DuckDB's fraction of one; the planning it saves is fixed, so beyond about a thousand lines the
# JSON feeder is cheaper (`bench/ingest.py --compact-crossover` measures both sides).
COMPACT_MAX_LINES = 1_000
_MAX_EXACT = 9007199254740991  # 2**53 - 1, as the JSON feeder: larger integers go to the full validator

_TYPES = {"str": pa.string(), "time": pa.string(), "int": pa.int64(), "strlist": pa.list_(pa.string()),
          "fieldmap": pa.map_(pa.string(), pa.list_(pa.string())), "attrs": pa.string()}
SCHEMA = pa.schema([("_src", pa.string()), ("_pos", pa.int64())]
                   + [(f.name, _TYPES[f.kind]) for f in FIELDS] + [("_line", pa.large_string())])
_KIND = {f.name: f.kind for f in FIELDS}


def _is_str_list(v: object) -> bool:
    return type(v) is list and all(type(x) is str for x in v)


_REJECT = object()  # a value the typed feeder would not read exactly: the line stays JSON text


def _typed(kind: str, v: object) -> object:
    """The column value of value `v` (not None) of a field of `kind`, or _REJECT."""
    t = type(v)
    if kind == "str" or kind == "time":  # a time stays text: the typed feeder parses it as the JSON one does
        return v if t is str else _REJECT
    if kind == "int":
        return v if t is int and -_MAX_EXACT <= v <= _MAX_EXACT else _REJECT  # type: ignore[operator]
    if kind == "strlist":
        return v if _is_str_list(v) else _REJECT
    if kind == "fieldmap":
        ok = t is dict and all(_is_str_list(x) for x in v.values())  # type: ignore[union-attr]
        return list(v.items()) if ok else _REJECT  # type: ignore[union-attr]
    if kind == "attrs":
        return orjson.dumps(v).decode() if t is dict else _REJECT
    raise AssertionError(kind)


def split_compact(lines: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Split a table of JSON text (`_src`, `_pos`, `line`) into (typed rows, the other lines). The typed rows
    have the columns of SCHEMA that any of them holds."""
    text = lines.column("line").combine_chunks().cast(pa.large_string())
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset:text.offset + len(text) + 1].tolist()
    valid = text.is_valid().to_pylist() if text.null_count else None
    data = memoryview(text.buffers()[2] or b"")
    n = len(text)
    cols: dict[str, list] = {f.name: [None] * n for f in FIELDS}
    taken: list[int] = []
    loads, dumps = orjson.loads, orjson.dumps
    for i in range(n):
        if valid is not None and not valid[i]:
            continue
        start, end = offsets[i], offsets[i + 1]
        # Readers keep a line's end; orjson writes none (any other whitespace sends the line on).
        if end > start and data[end - 1] == 10:
            end -= 1 + (end - 1 > start and data[end - 2] == 13)
        raw = bytes(data[start:end])  # comparing bytes with a memoryview goes item by item: 20x slower
        try:
            obj = loads(raw)
        except orjson.JSONDecodeError:
            continue
        if type(obj) is not dict or dumps(obj) != raw:
            continue
        row = []
        for k, v in obj.items():
            kind = _KIND.get(k)
            if kind is None:
                break  # an unknown key: the JSON feeder keeps it in `attributes`
            if v is None:
                continue
            value = _typed(kind, v)
            if value is _REJECT:
                break
            row.append((k, value))
        else:
            j = len(taken)
            for k, value in row:
                cols[k][j] = value
            taken.append(i)
    if not taken:
        return SCHEMA.empty_table(), lines
    idx = pa.array(taken, pa.int64())
    k = len(taken)
    arrays = [lines.column("_src").take(idx).cast(pa.string()), lines.column("_pos").take(idx).cast(pa.int64())]
    arrays += [pa.array(cols[f.name][:k], _TYPES[f.kind]) for f in FIELDS]
    arrays.append(text.take(idx))
    typed = pa.Table.from_arrays(arrays, schema=SCHEMA)
    # Fields no line holds are left out (the typed feeder reads them as absent): a smaller statement to plan.
    typed = typed.drop_columns([f.name for f, a in zip(FIELDS, arrays[2:]) if a.null_count == k])
    if k == n:
        return typed, lines.slice(0, 0)
    keep = np.ones(n, dtype=bool)
    keep[taken] = False
    return typed, lines.filter(pa.array(keep))
