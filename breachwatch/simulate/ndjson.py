"""Contract 1 events as NDJSON text, rendered column-wise with Arrow compute.

Per-row JSON encoding would cap the simulator at a few hundred thousand events
a second; here each column becomes a string fragment ("key":value, or null
where the value is null), the fragments are joined skipping nulls, and the
file's bytes are the joined array's data buffer. Absent values are omitted
rather than written as null. Every string the simulator produces is plain
(ids, routes, addresses, user agents) and needs no JSON escaping; the tests
parse every line back to check it.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.contract.event import ARROW_SCHEMA
from breachwatch.simulate.frames import lit
from breachwatch.simulate.timebase import rfc3339_array

_EMPTY, _QUOTE = lit(""), lit('"')
_ZERO = pa.scalar(0, pa.int32())
_CLOSE = lit("}\n")


def _fragment(name: str, arr: pa.Array, first: bool) -> pa.Array | None:
    """',"name":value' per row (the first column opens the object instead), null where the value is null."""
    if arr.null_count == len(arr):
        return None
    t = arr.type
    key = ("{" if first else ",") + f'"{name}":'
    if pa.types.is_timestamp(t):
        us = arr.cast(pa.int64()).fill_null(0).to_numpy()
        text = rfc3339_array(us)
        if arr.null_count:
            text = pc.if_else(arr.is_valid(), text, lit(None))
        return pc.binary_join_element_wise(lit(key + '"'), text, _QUOTE, _EMPTY)
    if name == "attributes":
        return pc.binary_join_element_wise(lit(key), arr, _EMPTY)
    if pa.types.is_string(t):
        return pc.binary_join_element_wise(lit(key + '"'), arr, _QUOTE, _EMPTY)
    if pa.types.is_integer(t):
        return pc.binary_join_element_wise(lit(key), arr.cast(pa.string()), _EMPTY)
    if pa.types.is_map(t):
        entries = pc.binary_join_element_wise(_QUOTE, arr.keys, lit('":'), _string_lists(arr.items), _EMPTY)
        rows = pa.ListArray.from_arrays(arr.offsets, entries, mask=arr.is_null())
        return pc.binary_join_element_wise(lit(key + "{"), pc.binary_join(rows, lit(",")), lit("}"), _EMPTY)
    if pa.types.is_list(t):
        return pc.binary_join_element_wise(lit(key), _string_lists(arr), _EMPTY)
    raise TypeError(f"no NDJSON rendering for column {name} of type {t}")


def _string_lists(arr: pa.Array) -> pa.Array:
    """'["a","b"]' per list ('[]' for an empty one, null for null)."""
    joined = pc.binary_join_element_wise(lit('["'), pc.binary_join(arr, lit('","')), lit('"]'), _EMPTY)
    empty = pc.equal(pc.list_value_length(arr), _ZERO)
    if not pc.any(empty).as_py():
        return joined
    return pc.if_else(empty, lit("[]"), joined)


def render(table: pa.Table) -> pa.Array:
    """One JSON object per event, each ending in a newline, as a string array."""
    if table.num_rows == 0:
        return pa.array([], pa.string())
    parts = []
    for i, f in enumerate(ARROW_SCHEMA):
        frag = _fragment(f.name, table.column(f.name).combine_chunks(), first=i == 0)
        if frag is not None:
            parts.append(frag)
    if table.column(0).null_count:
        raise ValueError("every event needs an event_id before it is written")
    # One pass: each fragment carries its own leading comma, so nulls are simply skipped.
    return pc.binary_join_element_wise(*parts, _CLOSE, _EMPTY, null_handling="skip")


def to_bytes(table: pa.Table) -> memoryview:
    """The NDJSON text of a table: the rendered lines' data buffer, without copying it."""
    lines = render(table)
    if len(lines) == 0:
        return memoryview(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=4 * lines.offset)
    return memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]]
