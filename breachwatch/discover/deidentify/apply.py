"""Applying a de-identification method to text, records, files and streams.

Two modes:

- spans (default): the recognizers find personal data inside every string
  value and only those spans are replaced, so a log line keeps its shape;
- columns (`columns=[...]`): the named columns are replaced whole, whatever
  they hold (the entity is taken from what the recognizers see in the cell;
  a cell in which they see nothing is treated as generic text).

Values are analysed in blocks, the same vectorised way a scan does.
"""
from __future__ import annotations

import csv
import io
import select
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

import orjson

from breachwatch.discover.column_names import name_signal
from breachwatch.discover.deidentify.methods import GENERIC
from breachwatch.discover.engine import Analyzer, Hit

Transform = Callable[[str, str], str]
BLOCK = 2000
FORMATS = ("text", "ndjson", "csv", "parquet")


class Deidentifier:
    def __init__(self, transform: Transform, *, analyzer: Analyzer | None = None,
                 columns: Sequence[str] = (), min_score: float = 0.5) -> None:
        self.transform = transform
        self.analyzer = analyzer or Analyzer(min_score=min_score)
        self.columns = tuple(columns)
        self.replaced = 0

    # Text ------------------------------------------------------------------

    def texts(self, values: Sequence[str]) -> list[str]:
        """Replace the personal-data spans in each value."""
        hits = self.analyzer.analyze(values)
        by_row: dict[int, list[Hit]] = {}
        for h in hits:
            by_row.setdefault(h.row, []).append(h)
        out = list(values)
        for row, row_hits in by_row.items():
            text = out[row]
            for h in sorted(row_hits, key=lambda h: -h.start):
                text = text[:h.start] + self.transform(text[h.start:h.end], h.entity) + text[h.end:]
                self.replaced += 1
            out[row] = text
        return out

    def whole(self, values: Sequence[object], column: str = "") -> list[object]:
        """Replace each non-empty value whole, typed by the best hit inside it (the column's name is context)."""
        strings = ["" if v is None else str(v) for v in values]
        fixed = getattr(self.transform, "whole_entity", None)
        if fixed is not None:
            out_fixed: list[object] = []
            for v, s in zip(values, strings):
                out_fixed.append(v if v is None or s == "" else self.transform(s, fixed))
                self.replaced += v is not None and s != ""
            return out_fixed
        signal = name_signal(column) if column else None
        best: dict[int, Hit] = {}
        for h in self.analyzer.analyze(strings, context_entities={signal.entity} if signal and signal.entity else ()):
            if h.row not in best or (h.end - h.start, h.score) > (best[h.row].end - best[h.row].start,
                                                                  best[h.row].score):
                best[h.row] = h
        out: list[object] = []
        for i, (v, s) in enumerate(zip(values, strings)):
            if v is None or s == "":
                out.append(v)
                continue
            out.append(self.transform(s, best[i].entity if i in best else GENERIC))
            self.replaced += 1
        return out

    # Records (NDJSON objects, CSV rows, exports of other stages) -----------

    def records(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        block: list[dict[str, Any]] = []
        for r in records:
            block.append(r)
            if len(block) >= BLOCK:
                yield from self._records_block(block)
                block = []
        if block:
            yield from self._records_block(block)

    def _records_block(self, block: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.columns:
            for col in self.columns:
                present = [r for r in block if col in r]
                for r, v in zip(present, self.whole([_as_text(r[col]) for r in present], col)):
                    r[col] = v
            return block
        # Every string leaf of every record, analysed together.
        slots: list[tuple[Any, Any]] = []
        for r in block:
            _collect_strings(r, slots)
        new = self.texts([container[k] for container, k in slots])
        for (container, k), v in zip(slots, new):
            container[k] = v
        return block


def _as_text(v: Any) -> Any:
    return v if v is None or isinstance(v, str) else orjson.dumps(v).decode() if isinstance(v, (dict, list)) else str(v)


def _collect_strings(node: Any, slots: list[tuple[Any, Any]]) -> None:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        if isinstance(v, str):
            slots.append((node, k))
        elif isinstance(v, (dict, list)):
            _collect_strings(v, slots)


# Files and streams ----------------------------------------------------------

def detect_format(path: str, explicit: str | None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise ValueError(f"unknown --format '{explicit}'. Fix: use one of {', '.join(FORMATS)}.")
        return explicit
    if path == "-":
        return "text"
    name = path.lower().removesuffix(".gz")
    for suffix, fmt in ((".ndjson", "ndjson"), (".jsonl", "ndjson"), (".json", "ndjson"), (".csv", "csv"),
                        (".tsv", "csv"), (".parquet", "parquet")):
        if name.endswith(suffix):
            return fmt
    return "text"


def run_file(deid: Deidentifier, src: str, dst: str, fmt: str) -> int:
    """De-identify `src` into `dst` ('-' is stdin/stdout); return the number of values replaced."""
    if fmt == "parquet":
        _parquet(deid, src, dst)
        return deid.replaced
    if src != "-" and not Path(src).is_file():
        raise FileNotFoundError(f"{src}: no such file. Fix: give an existing file, or - for standard input.")
    fin = sys.stdin if src == "-" else _open(src, "r")
    fout = sys.stdout if dst == "-" else _open(dst, "w")
    try:
        if fmt == "csv":
            _csv(deid, fin, fout, delimiter="\t" if src.lower().removesuffix(".gz").endswith(".tsv") else ",")
        else:
            for block in _line_blocks(fin, live=src == "-"):
                if fmt == "ndjson":
                    out = _ndjson_block(deid, block)
                else:
                    out = deid.texts([line.rstrip("\n") for line in block])
                fout.write("".join(line + "\n" for line in out))
                fout.flush()
    finally:
        if fin is not sys.stdin:
            fin.close()
        if fout is not sys.stdout:
            fout.close()
    return deid.replaced


def _open(path: str, mode: str) -> TextIO:
    if path.lower().endswith(".gz"):
        import gzip
        handle: TextIO = gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[assignment]
        return handle
    return open(path, mode, encoding="utf-8", newline="" if path.lower().endswith((".csv", ".tsv")) else None)


def _line_blocks(fin: TextIO, *, live: bool) -> Iterator[list[str]]:
    """Blocks of lines; from a live stream a partial block goes out as soon as input pauses."""
    block: list[str] = []
    while True:
        if live and block and not _ready(fin):
            yield block
            block = []
        line = fin.readline()
        if not line:
            break
        block.append(line)
        if len(block) >= BLOCK:
            yield block
            block = []
    if block:
        yield block


def _ready(fin: TextIO, wait_s: float = 0.2) -> bool:
    try:
        return bool(select.select([fin], [], [], wait_s)[0])
    except (ValueError, OSError, io.UnsupportedOperation):
        return True


def _ndjson_block(deid: Deidentifier, lines: list[str]) -> list[str]:
    parsed: list[Any] = []
    for line in lines:
        stripped = line.strip()
        try:
            parsed.append(orjson.loads(stripped) if stripped else None)
        except orjson.JSONDecodeError:
            parsed.append(stripped)  # not JSON: treated as a text line
    records = [p for p in parsed if isinstance(p, dict)]
    list(deid.records(records))
    texts = [p for p in parsed if isinstance(p, str)]
    new_texts = iter(deid.texts(texts)) if texts else iter(())
    out = []
    for p in parsed:
        if p is None:
            out.append("")
        elif isinstance(p, str):
            out.append(next(new_texts))
        else:
            out.append(orjson.dumps(p).decode())
    return out


def _csv(deid: Deidentifier, fin: TextIO, fout: TextIO, delimiter: str) -> None:
    reader = csv.reader(fin, delimiter=delimiter)
    writer = csv.writer(fout, delimiter=delimiter, lineterminator="\n")
    header = next(reader, None)
    if header is None:
        return
    missing = [c for c in deid.columns if c not in header]
    if missing:
        raise ValueError(f"--columns names {missing}, not in the CSV header {header}. Fix: use the header's names.")
    writer.writerow(header)
    block: list[list[str]] = []

    def flush() -> None:
        records = [dict(zip(header, row)) for row in block]
        for r in deid.records(records):
            writer.writerow([r.get(h, "") for h in header])

    for row in reader:
        block.append(row)
        if len(block) >= BLOCK:
            flush()
            block = []
    if block:
        flush()


def _parquet(deid: Deidentifier, src: str, dst: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if src == "-" or dst == "-":
        raise ValueError("Parquet cannot be streamed through stdin/stdout. Fix: give file paths.")
    if not Path(src).is_file():
        raise FileNotFoundError(f"{src}: no such file. Fix: give an existing Parquet file.")
    pf = pq.ParquetFile(src)
    missing = [c for c in deid.columns if c not in pf.schema_arrow.names]
    if missing:
        raise ValueError(f"--columns names {missing}, not columns of {src}. Fix: use {pf.schema_arrow.names}.")
    writer = None
    try:
        for batch in pf.iter_batches(batch_size=BLOCK * 5):
            arrays = []
            fields = []
            for name, column in zip(batch.schema.names, batch.columns):
                target = name in deid.columns if deid.columns else pa.types.is_string(column.type) or \
                    pa.types.is_large_string(column.type)
                if target:
                    values = column.to_pylist()
                    if deid.columns:
                        new = deid.whole(values, name)
                    else:
                        idx = [i for i, v in enumerate(values) if isinstance(v, str)]
                        replaced = deid.texts([values[i] for i in idx])
                        new = list(values)
                        for i, v in zip(idx, replaced):
                            new[i] = v
                    column = pa.array([None if v is None else str(v) for v in new], type=pa.string())
                arrays.append(column)
                fields.append(pa.field(name, column.type))
            table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
            if writer is None:
                writer = pq.ParquetWriter(dst, table.schema)
            writer.write_table(table)
        if writer is None:
            pq.write_table(pf.schema_arrow.empty_table(), dst)
    finally:
        if writer is not None:
            writer.close()
