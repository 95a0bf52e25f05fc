"""An append-only spool of NDJSON events for `breachwatch ingest DIR` to load.

The store has one writer, so the guard never opens it: it appends its
`token_denied` events here instead. A background thread writes them in groups
and fsyncs each group (one fsync per burst, not per event, so a flood of
forged tokens costs the check path nothing but a queue put). The open file is
named `*.ndjson.open`; on rotation (by size or age) it is fsynced, closed and
renamed to `*.ndjson`, and the directory is fsynced, so a reader only ever
sees complete files.

If the writer falls behind by more than `max_queue` events, further events
are counted in `dropped` and reported on stderr and at /metrics rather than
slowing every gateway request down.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

OPEN_SUFFIX = ".ndjson.open"
DONE_SUFFIX = ".ndjson"


class EventSpool:
    def __init__(self, directory: str | os.PathLike[str], prefix: str = "token_denied",
                 rotate_bytes: int = 16 << 20, rotate_s: float = 60.0, max_queue: int = 100_000) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.prefix = prefix
        self.rotate_bytes = rotate_bytes
        self.rotate_s = rotate_s
        self.written = 0
        self.dropped = 0
        self.files_closed = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max_queue)
        self._seq = 0
        self._fh: Any = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._size = 0
        self._idle = threading.Event()
        self._idle.set()
        self._last_drop_report = 0.0
        self._recover_open_files()
        self._thread = threading.Thread(target=self._run, name="breachwatch-spool", daemon=True)
        self._thread.start()

    def append(self, record: dict[str, Any]) -> None:
        """Queue one event; never blocks the caller."""
        line = orjson.dumps(record) + b"\n"
        try:
            self._idle.clear()
            self._queue.put_nowait(line)
        except queue.Full:
            self.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_report > 10:
                self._last_drop_report = now
                print(f"breachwatch guard: event spool {self.directory} is behind; {self.dropped} events "
                      "dropped so far. Fix: give the spool a faster disk or raise max_queue.", file=sys.stderr)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written and fsynced."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.empty() and self._idle.wait(0.01) and self._queue.empty():
                return True
        return False

    def close(self) -> None:
        """Write what is queued, close and publish the open file."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    # -- writer thread ------------------------------------------------------------------------

    def _recover_open_files(self) -> None:
        # A file left open by a crashed writer holds events that were fsynced: publish it as it is
        # (a torn last line, if any, is quarantined by ingest, never lost silently). Files of
        # writers still running (other guards sharing the folder) are theirs to publish.
        for p in self.directory.glob(f"*{OPEN_SUFFIX}"):
            if _writer_alive(p.name):
                continue
            p.rename(p.with_name(p.name[: -len(OPEN_SUFFIX)] + DONE_SUFFIX))

    def _open(self) -> None:
        self._seq += 1
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        self._path = self.directory / f"{self.prefix}-{stamp}-{os.getpid()}-{self._seq:06d}{OPEN_SUFFIX}"
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._fh = os.fdopen(fd, "ab", buffering=0)
        self._opened_at = time.monotonic()
        self._size = 0

    def _publish(self) -> None:
        if self._fh is None or self._path is None:
            return
        os.fsync(self._fh.fileno())
        self._fh.close()
        done = self._path.with_name(self._path.name[: -len(OPEN_SUFFIX)] + DONE_SUFFIX)
        os.rename(self._path, done)
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self._fh, self._path = None, None
        self.files_closed += 1

    def _write(self, lines: list[bytes]) -> None:
        if self._fh is None:
            self._open()
        data = b"".join(lines)
        self._fh.write(data)
        os.fsync(self._fh.fileno())
        self._size += len(data)
        self.written += len(lines)

    def _run(self) -> None:
        stop = False
        while not stop:
            timeout = None
            if self._fh is not None:
                timeout = max(0.05, self.rotate_s - (time.monotonic() - self._opened_at))
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                first = b""
            batch: list[bytes] = []
            item: bytes | None = first
            while True:
                if item is None:
                    stop = True
                elif item:
                    batch.append(item)
                if len(batch) >= 10_000:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            try:
                if batch:
                    self._write(batch)
                if self._fh is not None and (stop or self._size >= self.rotate_bytes
                                             or time.monotonic() - self._opened_at >= self.rotate_s):
                    self._publish()
            except OSError as e:
                self.dropped += len(batch)
                print(f"breachwatch guard: cannot write the event spool {self.directory} ({e}); "
                      f"{len(batch)} events lost. Fix: check the disk and the directory's permissions.",
                      file=sys.stderr)
                self._fh, self._path = None, None
            if self._queue.empty():
                self._idle.set()


def _writer_alive(name: str) -> bool:
    """Is the process named in a spool file name (`prefix-stamp-PID-seq.ndjson.open`) still running?"""
    parts = name[: -len(OPEN_SUFFIX)].rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
