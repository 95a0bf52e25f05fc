"""What every scanner provides: tables, a row estimate and a bounded sample.

Scanners only read. Each opens its source read-only where the database
allows it (a read-only transaction, `mode=ro`, `query_only`), bounds every
query by a timeout, and reports what it could not read as an error naming
the source or table, so the scan moves on to the next one.
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

# Column types that cannot hold personal data as text (flags, measures, binary blobs).
SKIP_TYPES = re.compile(r"^(bool|boolean|bit|float|double|real|decimal|numeric|money|bytea|blob|binary|varbinary|"
                        r"longblob|mediumblob|tinyblob|geometry|point|polygon|tsvector|interval|year)\b", re.I)


class SourceError(RuntimeError):
    """The source cannot be reached or read at all."""


class TableError(RuntimeError):
    """One table cannot be read (no permission, timed out, vanished)."""


@dataclass
class Column:
    name: str
    type: str = ""

    @property
    def scannable(self) -> bool:
        return not SKIP_TYPES.match(self.type or "")


@dataclass
class Table:
    name: str                                  # as the source names it, e.g. "public.customers"
    columns: list[Column] = field(default_factory=list)
    estimated_rows: int | None = None
    note: str = ""                             # why it will be skipped, when known up front


@dataclass
class Sample:
    columns: list[str]
    rows: list[tuple]
    method: str                                # how the rows were picked, for the report

    def values(self, index: int) -> list[object]:
        return [r[index] for r in self.rows]


class Source(Protocol):
    label: str

    def tables(self) -> list[Table]: ...
    def sample(self, table: Table, rows: int, timeout_s: float) -> Sample: ...
    def close(self) -> None: ...


def redact_url(url: str) -> str:
    """The URL without its password, for reports and the data map."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def quote_ident(name: str, quote: str = '"') -> str:
    return quote + name.replace(quote, quote * 2) + quote


def key_range_sample(run: Callable[[str, tuple], list], select: str, target: str, key: str, lo: int, hi: int,
                     rows: int, seed: str, ph: str = "?", range_name: str = "key") -> tuple[list[tuple], str]:
    """Up to `rows` rows of `target` (columns `select`) from ten random points of its integer `key` range
    [lo, hi], and how they were picked: a fair sample without ORDER BY RAND(), the same for the same
    `seed` (the table) and range.

    `run(sql, args)` returns a query's rows; `ph` is the driver's placeholder; `range_name` names the range
    in the method. Rows are kept by key, since two starts closer than a slice read some rows twice; slices
    near the end of the range or overlapping run short, and are topped up from its start, whose first
    `rows` rows hold at least as many not yet taken as are missing.
    """
    rng = random.Random(f"{seed}:{lo}:{hi}")
    per = max(1, rows // 10)
    got: dict = {}
    for start in sorted(rng.randint(lo, hi) for _ in range(10)):
        for r in run(f"SELECT {key}, {select} FROM {target} WHERE {key} >= {ph} ORDER BY {key} LIMIT {ph}",
                     (start, per)):
            got.setdefault(r[0], tuple(r[1:]))
    if len(got) < rows:
        for r in run(f"SELECT {key}, {select} FROM {target} ORDER BY {key} LIMIT {ph}", (rows,)):
            if len(got) >= rows:
                break
            got.setdefault(r[0], tuple(r[1:]))
    return list(got.values()), f"10 {range_name}-range slices of {per} rows"
