"""Files and folders: CSV/TSV, Parquet and NDJSON (optionally .gz), read
through DuckDB. Each file is a table; a folder is walked for such files.

Large files are sampled by reservoir over at most `read_rows` rows from
their start, so a scan stays bounded however large the file; Parquet row
counts come from the file's metadata, text files are estimated from their
size and the average row length.

An NDJSON file of captured API responses (records with `endpoint` and
`response` or `body`) is read as one table per endpoint whose columns are
the JSON paths of the response (`$.addresses[].phone`), so the data map can
say what each endpoint returns.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any, Iterator

import duckdb
import orjson

from breachwatch.discover.scanners.base import Column, Sample, SourceError, Table, TableError

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".ndjson": "ndjson", ".jsonl": "ndjson",
            ".json": "ndjson"}
READ_ROWS = 1_000_000
CAPTURE_BODY_KEYS = ("response", "body", "response_body")
ENDPOINT_PREFIX = "endpoint:"


def file_format(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return SUFFIXES.get(suffixes[-1]) if suffixes else None


def _open_text(path: Path):  # type: ignore[no-untyped-def]
    return gzip.open(path, "rt", encoding="utf-8", errors="replace") if path.suffix.lower() == ".gz" \
        else open(path, encoding="utf-8", errors="replace")


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class FileSource:
    def __init__(self, path: str, read_rows: int = READ_ROWS) -> None:
        self.root = Path(path)
        self.label = str(self.root)
        self.read_rows = read_rows
        if not self.root.exists():
            raise SourceError(f"{path}: no such file or folder. Fix: give a CSV, Parquet or NDJSON file, "
                              "a folder of them, or a database URL.")
        if self.root.is_file() and file_format(self.root) is None:
            raise SourceError(f"{path}: not a CSV, TSV, Parquet or NDJSON file (.csv, .tsv, .parquet, .ndjson, "
                              ".jsonl, .json, optionally .gz). Fix: convert it, or give a folder.")
        self.con = duckdb.connect()
        self._captures: dict[str, dict[str, list[Any]]] = {}

    def _files(self) -> Iterator[Path]:
        if self.root.is_file():
            yield self.root
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath) / name
                if file_format(p):
                    yield p

    def _name(self, path: Path) -> str:
        return path.name if self.root.is_file() else str(path.relative_to(self.root))

    def tables(self) -> list[Table]:
        out = []
        for path in self._files():
            fmt = file_format(path)
            if fmt == "ndjson" and self._is_capture(path):
                out.extend(self._capture_tables(path))
                continue
            try:
                cols = self.con.execute(f"DESCRIBE SELECT * FROM {self._reader(path, fmt)}").fetchall()
            except duckdb.Error as e:
                out.append(Table(self._name(path), [], None, f"cannot read as {fmt}: {str(e).splitlines()[0]}"))
                continue
            out.append(Table(self._name(path), [Column(c[0], c[1]) for c in cols], self._estimate(path, fmt)))
        return out

    def _reader(self, path: Path, fmt: str | None) -> str:
        p = _sql_str(str(path))
        if fmt == "parquet":
            return f"read_parquet({p})"
        if fmt == "csv":
            return f"read_csv({p}, all_varchar = true, sample_size = 20000)"
        return f"read_json({p}, format = 'newline_delimited', sample_size = 20000)"

    def _estimate(self, path: Path, fmt: str | None) -> int | None:
        if fmt == "parquet":
            return int(self.con.execute(f"SELECT count(*) FROM {self._reader(path, fmt)}").fetchone()[0])
        size = path.stat().st_size
        lines = nbytes = 0
        with _open_text(path) as f:
            for line in f:
                lines += 1
                nbytes += len(line.encode("utf-8"))
                if lines >= 2000:
                    break
        if lines == 0:
            return 0
        if lines < 2000:
            return max(lines - (1 if fmt == "csv" else 0), 0)
        ratio = size / nbytes if path.suffix.lower() != ".gz" else 4.0 * size / nbytes
        return int(lines * ratio)

    def sample(self, table: Table, rows: int, timeout_s: float) -> Sample:
        if table.name.startswith(ENDPOINT_PREFIX):
            return self._capture_sample(table, rows)
        path = self.root if self.root.is_file() else self.root / table.name
        fmt = file_format(path)
        cols = [c for c in table.columns if c.scannable]
        if not cols:
            return Sample([], [], "no text columns")
        select = ", ".join(
            (f"to_json({_q(c.name)})::VARCHAR" if any(t in c.type.upper() for t in ("STRUCT", "[]", "MAP", "JSON"))
             else f"CAST({_q(c.name)} AS VARCHAR)") for c in cols)
        source = f"(SELECT * FROM {self._reader(path, fmt)} LIMIT {self.read_rows})"
        if (table.estimated_rows or 0) > rows:
            query = f"SELECT {select} FROM {source} USING SAMPLE reservoir({rows} ROWS) REPEATABLE (7)"
            method = f"reservoir of {rows} from the first {self.read_rows} rows"
        else:
            query = f"SELECT {select} FROM {source} LIMIT {rows}"
            method = "all rows"
        try:
            got = self.con.execute(query).fetchall()
        except duckdb.Error as e:
            raise TableError(f"{path}: cannot read ({str(e).splitlines()[0]}). Fix: check the file's format.") from e
        return Sample([c.name for c in cols], got, method)

    # Captured API responses -------------------------------------------------

    def _is_capture(self, path: Path) -> bool:
        with _open_text(path) as f:
            first = f.readline()
        try:
            record = orjson.loads(first)
        except orjson.JSONDecodeError:
            return False
        return isinstance(record, dict) and "endpoint" in record and any(k in record for k in CAPTURE_BODY_KEYS)

    def _capture_tables(self, path: Path) -> list[Table]:
        by_endpoint: dict[str, dict[str, list[Any]]] = {}
        counts: dict[str, int] = {}
        with _open_text(path) as f:
            for i, line in enumerate(f):
                if i >= self.read_rows:
                    break
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                body = next((record[k] for k in CAPTURE_BODY_KEYS if k in record), None)
                if isinstance(body, (str, bytes)):
                    try:
                        body = orjson.loads(body)
                    except orjson.JSONDecodeError:
                        pass
                endpoint = str(record.get("endpoint"))
                counts[endpoint] = counts.get(endpoint, 0) + 1
                columns = by_endpoint.setdefault(endpoint, {})
                for json_path, value in _leaves(body, "$"):
                    columns.setdefault(json_path, []).append(value)
        tables = []
        for endpoint, columns in by_endpoint.items():
            name = f"{ENDPOINT_PREFIX}{endpoint}"
            self._captures[name] = columns
            tables.append(Table(name, [Column(c, "VARCHAR") for c in columns], counts[endpoint]))
        return tables

    def _capture_sample(self, table: Table, rows: int) -> Sample:
        columns = self._captures[table.name]
        names = list(columns)
        length = max((len(v) for v in columns.values()), default=0)
        # Columns of one endpoint have different lengths (lists vary), so rows are padded.
        padded = [columns[n][:rows] + [None] * (min(length, rows) - len(columns[n][:rows])) for n in names]
        return Sample(names, list(zip(*padded)), "captured responses")

    def close(self) -> None:
        self.con.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, f"{path}[]")
    elif value is not None:
        yield path, value
