"""A small client for a running `breachwatch serve`: what `--server URL` uses in the CLI.

It posts events in batches (gzip NDJSON) and honours 429 Retry-After, so a
command never drops what it read; the API key comes from BREACHWATCH_API_KEY.
"""
from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from breachwatch.ingest.readers import detect_format, read_source

API_KEY_ENV = "BREACHWATCH_API_KEY"
DEFAULT_BATCH = 5_000


class ServerError(RuntimeError):
    """The server refused or failed; the message says what it answered."""


def api_key(explicit: str | None = None) -> str:
    key = explicit or os.environ.get(API_KEY_ENV)
    if not key:
        raise ValueError(f"--server needs an API key. Fix: set {API_KEY_ENV} to a key from "
                         "'breachwatch apikeys create' with the role the command needs.")
    return key


class ServerClient:
    def __init__(self, url: str, key: str | None = None, *, timeout: float = 120.0, verify: bool | str = True,
                 max_retries: int = 20) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=timeout, verify=verify,
                                 headers={"Authorization": f"Bearer {api_key(key)}"})
        self.max_retries = max_retries

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "ServerClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(self.max_retries + 1):
            try:
                r = self.http.request(method, path, **kwargs)
            except httpx.TransportError as e:
                raise ServerError(f"{self.url}: cannot reach the server ({e}). Fix: check the URL and that "
                                  "'breachwatch serve' is running.") from e
            if r.status_code in (429, 503) and attempt < self.max_retries:
                time.sleep(min(60.0, float(r.headers.get("Retry-After", "1") or 1)))
                continue
            if r.status_code >= 400:
                try:
                    msg = r.json().get("message", r.text)
                except ValueError:
                    msg = r.text
                raise ServerError(f"{self.url}{path}: {r.status_code} {msg}")
            return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text
        raise ServerError(f"{self.url}{path}: still overloaded after {self.max_retries} retries")

    def post_events(self, ndjson_lines: bytes) -> dict[str, Any]:
        return self.request("POST", "/v1/events", content=gzip.compress(ndjson_lines, 1),
                            headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})

    def ingest_lines(self, lines: Iterable[bytes], batch: int = DEFAULT_BATCH) -> dict[str, Any]:
        """Send NDJSON lines in batches; return the summed receipts."""
        total: dict[str, Any] = {"records": 0, "loaded": 0, "duplicates": 0, "quarantined": 0,
                                 "quarantined_by_reason": {}, "requests": 0}
        buf: list[bytes] = []
        for line in lines:
            buf.append(line if line.endswith(b"\n") else line + b"\n")
            if len(buf) >= batch:
                _add(total, self.post_events(b"".join(buf)))
                buf = []
        if buf:
            _add(total, self.post_events(b"".join(buf)))
        return total

    def ingest_paths(self, paths: Iterable[str], batch: int = DEFAULT_BATCH) -> dict[str, Any]:
        """Read files with the same readers as local ingest and send their records to the server."""
        total: dict[str, Any] = {}
        for p in paths:
            fmt = detect_format(p)
            if fmt is None:
                raise ValueError(f"{p}: cannot tell the format from the name. Fix: name it .ndjson, .jsonl, .csv or "
                                 ".parquet (optionally .gz).")
            got = self.ingest_lines(_lines_of(Path(p), fmt), batch)
            total = got if not total else _merged(total, got)
        return total


def _lines_of(path: Path, fmt: str) -> Iterator[bytes]:
    for chunk in read_source(path, fmt):
        for line in chunk.lines.to_pylist():
            yield line.encode()
        for _, raw, _ in chunk.rejects:  # unreadable input goes to the server's quarantine as it is
            yield raw.encode()


def _add(total: dict[str, Any], receipt: dict[str, Any]) -> None:
    for k in ("records", "loaded", "duplicates", "quarantined"):
        total[k] += receipt[k]
    for reason, n in receipt["quarantined_by_reason"].items():
        total["quarantined_by_reason"][reason] = total["quarantined_by_reason"].get(reason, 0) + n
    total["requests"] += 1


def _merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k in ("records", "loaded", "duplicates", "quarantined", "requests"):
        out[k] = a[k] + b[k]
    out["quarantined_by_reason"] = dict(a["quarantined_by_reason"])
    for reason, n in b["quarantined_by_reason"].items():
        out["quarantined_by_reason"][reason] = out["quarantined_by_reason"].get(reason, 0) + n
    return out
