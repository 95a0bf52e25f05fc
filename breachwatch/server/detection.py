"""Continuous detection inside the server, paced as `detect --follow`.

Every tick (0.5 s by default) the loop looks for new events: the provenance
detectors take them at once, each tier committing on its own, and the
behavioural ones every `engine.behaviour_every` (engine.py), so a forged
token's alert follows its event within a second or two, not a whole interval.

Detection reads the events the writer has committed and changes incidents, so
it runs under the store's state lock (an analyst's acknowledge waits for the
run in progress, never interleaves with it). A failed run is recorded for
/v1/health and retried at the next tick; ingestion goes on regardless.
"""
from __future__ import annotations

import threading
import time
import traceback
from datetime import datetime, timezone
from typing import Any

from breachwatch.contract.catalog import Catalog
from breachwatch.server.metrics import Metrics
from breachwatch.server.store import ServerStore


class DetectionLoop:
    def __init__(self, store: ServerStore, catalog: Catalog, *, interval_s: float, metrics: Metrics) -> None:
        self.store = store
        self.catalog = catalog
        self.interval = interval_s
        self.metrics = metrics
        self.last_run_at: str | None = None
        self.last_result: dict[str, Any] | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="breachwatch-detect", daemon=True)
        self._cfg: Any = None

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self, pace: str = "always") -> dict[str, Any]:
        """Detection over the events not yet processed: every tier with "always", as due with "auto"."""
        from breachwatch.detect.config import load_detect_config
        from breachwatch.detect.engine import run_detect
        if self._cfg is None:
            self._cfg = load_detect_config(self.catalog)
        started = time.perf_counter()
        with self.store.changing() as cur:
            threads = int(cur.execute("SELECT current_setting('threads')").fetchone()[0])
            # A pass leaves one core to ingest and the API, so acknowledgements do not queue for CPU behind
            # detection. DuckDB's thread count is per database, not per cursor, so it is put back after.
            cur.execute(f"SET threads = {max(1, threads - 1)}")
            try:
                result = run_detect(cur, self._cfg, pace=pace).as_dict()
            finally:
                cur.execute(f"SET threads = {threads}")
        self.last_error = None
        self.last_run_at = datetime.now(timezone.utc).isoformat()
        if result["segments"]:  # a tick that found nothing due is no run: it would only dilute the metrics
            self.metrics.detect_seconds.observe(time.perf_counter() - started)
            self.metrics.detect_runs.inc(label="ok")
            self.last_result = result
        return result

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once(pace="auto")
            except Exception as e:  # noqa: BLE001 - reported at /v1/health and retried next tick
                self.metrics.detect_runs.inc(label="failed")
                self.last_error = f"{type(e).__name__}: {e}"
                self.last_run_at = datetime.now(timezone.utc).isoformat()
                traceback.print_exc()

    def status(self) -> dict[str, Any]:
        return {"enabled": self.interval > 0, "interval_s": self.interval, "last_run_at": self.last_run_at,
                "last_error": self.last_error,
                "last_result": {k: self.last_result[k] for k in ("events", "alerts_new", "incidents_opened",
                                                                 "seconds") if k in self.last_result}
                if self.last_result else None}
