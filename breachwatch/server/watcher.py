"""Watched folders: ingest each new, complete file once (e.g. the guard's denial spool).

A file counts as complete when its format is known from its name (the guard
writes `*.ndjson.open` and renames it to `*.ndjson` when done) and it has not
changed for `settle_s` seconds. What was ingested is recorded as (path, size,
modification time) in `watched_files`; the record is written after the file's
events are committed, so a crash in between re-reads the file and dedup on
`event_id` adds nothing.
"""
from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path
from typing import Any

from breachwatch.ingest.pipeline import Ingestor
from breachwatch.ingest.readers import detect_format, read_source
from breachwatch.server.apikeys import now_utc
from breachwatch.server.metrics import Metrics
from breachwatch.server.store import ServerStore
from breachwatch.server.writer import StoreWriter


class FolderWatcher:
    def __init__(self, store: ServerStore, writer: StoreWriter, folders: list[str], *, interval_s: float = 5.0,
                 settle_s: float = 2.0, metrics: Metrics) -> None:
        self.store = store
        self.writer = writer
        self.folders = [Path(f) for f in folders]
        self.interval = interval_s
        self.settle = settle_s
        self.metrics = metrics
        self.last_error: str | None = None
        self.files = 0
        self._stop = threading.Event()
        self._scan_lock = threading.Lock()  # one scan at a time, or two could take the same file
        self._thread = threading.Thread(target=self._loop, name="breachwatch-watch", daemon=True)

    def start(self) -> None:
        if self.folders:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _seen(self) -> set[tuple[str, int, int]]:
        with self.store.reading() as cur:
            return {(p, s, m) for p, s, m in cur.execute("SELECT path, size, mtime_ns FROM watched_files").fetchall()}

    def candidates(self) -> list[tuple[Path, str, int, int]]:
        """Complete files not yet ingested: (path, format, size, mtime_ns)."""
        seen = self._seen()
        now = time.time()
        out = []
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for f in sorted(folder.rglob("*")):
                if not f.is_file() or f.name.startswith("."):
                    continue
                fmt = detect_format(f.name)
                if fmt is None:
                    continue
                st = f.stat()
                if now - st.st_mtime < self.settle or (str(f), st.st_size, st.st_mtime_ns) in seen:
                    continue
                out.append((f, fmt, st.st_size, st.st_mtime_ns))
        return out

    def scan_once(self) -> list[dict[str, Any]]:
        """Ingest every complete new file now; return what each gave."""
        with self._scan_lock:
            return self._scan()

    def _scan(self) -> list[dict[str, Any]]:
        done = []
        for path, fmt, size, mtime in self.candidates():
            fut = self.writer.run_job(lambda ing, p=path, f=fmt: self._ingest(ing, p, f))
            summary = fut.result()
            with self.store.changing() as cur:
                cur.execute("INSERT INTO watched_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [str(path), size, mtime, now_utc(), summary["records"], summary["loaded"],
                             summary["duplicates"], summary["quarantined"]])
            self.files += 1
            self.metrics.watched_files.inc()
            done.append({"path": str(path), **summary})
        return done

    @staticmethod
    def _ingest(ing: Ingestor, path: Path, fmt: str) -> dict[str, Any]:
        s = ing.summary
        before = (s.records, s.loaded, s.duplicates, s.quarantined_total)
        ing.feed(str(path), fmt, read_source(path, fmt, batch_rows=ing.batch_size))
        s = ing.summary
        return {"records": s.records - before[0], "loaded": s.loaded - before[1],
                "duplicates": s.duplicates - before[2], "quarantined": s.quarantined_total - before[3]}

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan_once()
                self.last_error = None
            except Exception as e:  # noqa: BLE001 - reported at /v1/health, retried next tick
                self.last_error = f"{type(e).__name__}: {e}"
                traceback.print_exc()
            self._stop.wait(self.interval)

    def status(self) -> dict[str, Any]:
        return {"folders": [str(f) for f in self.folders], "files_ingested": self.files, "last_error": self.last_error}
