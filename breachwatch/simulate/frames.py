"""Building Contract 1 event tables column by column.

Generators describe a group of similar events with numpy arrays and
constants; `events()` turns that into an Arrow table in the contract's schema
plus one internal column, `_label`, which says which scenario (0 = none) made
each event. The label never leaves the simulator: it feeds the ground truth
and is dropped before events are written or handed out.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.contract.event import ARROW_SCHEMA, FIELD_BY_NAME

LABEL = "_label"
INTERNAL_SCHEMA = ARROW_SCHEMA.append(pa.field(LABEL, pa.int16()))
_TS = pa.timestamp("us")


@lru_cache(maxsize=4096)
def lit(text: str | None) -> pa.Scalar:
    """A cached Arrow string scalar.

    Passing Python strings to Arrow compute converts them on every call, and
    that conversion retries an optional import each time, which costs more
    than the kernel on small arrays; hot paths pass these instead.
    """
    return pa.scalar(text, pa.string())


def const_list(values: tuple[str, ...] | list[str], n: int, valid: np.ndarray | None = None) -> pa.Array:
    """The same list of strings in every row (null where `valid` is False)."""
    k = len(values)
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * k)
    flat = pa.array(list(values) * n, pa.string()) if k else pa.array([], pa.string())
    if valid is None:
        return pa.ListArray.from_arrays(offsets, flat)
    # Null rows keep their (unused) values so offsets stay regular; Arrow allows that.
    return pa.ListArray.from_arrays(offsets, flat, mask=pa.array(~np.asarray(valid, dtype=bool)))


def list_column(counts: np.ndarray, values: pa.Array, valid: np.ndarray | None = None) -> pa.Array:
    """Variable-length lists: row i holds the next counts[i] items of `values`."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    mask = None if valid is None else pa.array(~np.asarray(valid, dtype=bool))
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


def _column(name: str, value: Any, n: int) -> pa.Array:
    f = FIELD_BY_NAME[name]
    if value is None:
        return pa.nulls(n, f.arrow)
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        arr = value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value
        if len(arr) != n:
            raise ValueError(f"column {name} has {len(arr)} rows, expected {n}")
        return arr if arr.type == f.arrow else arr.cast(f.arrow)
    if f.kind == "time":
        arr = np.full(n, value, dtype=np.int64) if np.isscalar(value) else np.asarray(value, dtype=np.int64)
        return pa.array(arr, _TS)
    if f.kind == "int":
        arr = np.full(n, value, dtype=np.int64) if np.isscalar(value) else np.asarray(value, dtype=np.int64)
        return pa.array(arr, pa.int64())
    if f.kind in ("str", "attrs"):
        if isinstance(value, str):
            return pa.repeat(lit(value), n)
        return pa.array(value, pa.string())
    if f.kind == "strlist" and isinstance(value, tuple):
        return const_list(value, n)
    return pa.array(value, f.arrow)


def events(n: int, label: int = 0, **columns: Any) -> pa.Table:
    """A table of n events; columns not given are null. `event_id` is filled in by the engine."""
    unknown = set(columns) - set(FIELD_BY_NAME)
    if unknown:
        raise ValueError(f"unknown event fields {sorted(unknown)}")
    nulls: dict[pa.DataType, pa.Array] = {}  # Arrow arrays are immutable: one all-null array per type will do
    arrays = []
    for f in ARROW_SCHEMA:
        value = None if f.name == "event_id" else columns.get(f.name)
        if value is None:
            if f.type not in nulls:
                nulls[f.type] = pa.nulls(n, f.type)
            arrays.append(nulls[f.type])
        else:
            arrays.append(_column(f.name, value, n))
    arrays.append(pa.array(np.full(n, label, dtype=np.int16)))
    return pa.Table.from_arrays(arrays, schema=INTERNAL_SCHEMA)


def empty() -> pa.Table:
    return INTERNAL_SCHEMA.empty_table()


def time_us(table: pa.Table) -> np.ndarray:
    col = table.column("time")
    if table.num_rows == 0:
        return np.zeros(0, dtype=np.int64)
    return col.combine_chunks().cast(pa.int64()).to_numpy()


def take_rows(columns: dict[str, Any], idx: np.ndarray) -> dict[str, Any]:
    """Per-actor columns (arrays or constants) repeated for the events at actor positions `idx`."""
    out: dict[str, Any] = {}
    pidx = None
    for name, value in columns.items():
        if isinstance(value, pa.Array):
            if pidx is None:
                pidx = pa.array(np.asarray(idx, dtype=np.int64))
            out[name] = value.take(pidx)
        elif isinstance(value, np.ndarray):
            out[name] = value[idx]
        else:
            out[name] = value
    return out


def pa_str(values: np.ndarray) -> pa.Array:
    """Integers as decimal strings."""
    return pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())


def json_attr(key: str, text: pa.Array, prefix: str = "", suffix: str = "") -> pa.Array:
    """'{"key":"<prefix><text><suffix>"}' per row; text must need no JSON escaping (ids, paths)."""
    return pc.binary_join_element_wise(lit(f'{{"{key}":"{prefix}'), text, lit(f'{suffix}"}}'), lit(""))


def prefixed(prefix: str, text: pa.Array, pad: int = 0) -> pa.Array:
    """prefix + text, text left-padded with zeros to `pad` characters."""
    if pad:
        text = pc.utf8_lpad(text, width=pad, padding="0")
    return pc.binary_join_element_wise(lit(prefix), text, lit(""))


def null_where(values: pa.Array, mask: np.ndarray) -> pa.Array:
    """values with nulls where mask is True."""
    return pc.if_else(pa.array(~np.asarray(mask, dtype=bool)), values, pa.nulls(1, values.type)[0])
