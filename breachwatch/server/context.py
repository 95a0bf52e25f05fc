"""Everything one running server holds: the store, the writer, the loops, the limits."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breachwatch.contract.catalog import Catalog, load_catalog
from breachwatch.server import audit
from breachwatch.server.apikeys import KeyInfo, VerifiedKeys, authenticate_key, touch_key
from breachwatch.server.config import ServerConfig
from breachwatch.server.detection import DetectionLoop
from breachwatch.server.metrics import Metrics
from breachwatch.server.ratelimit import LoginLimiter
from breachwatch.server.store import ServerStore
from breachwatch.server.watcher import FolderWatcher
from breachwatch.server.writer import StoreWriter


@dataclass(frozen=True)
class Principal:
    actor: str                    # 'key:<id>', 'user:<name>' or 'anonymous'
    name: str
    roles: tuple[str, ...]
    csrf_token: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.actor == "anonymous"


ANONYMOUS = Principal("anonymous", "anonymous", ())


class AuditUnavailable(RuntimeError):
    """The audit trail could not be written, so the read it would record is refused."""


class ServerContext:
    def __init__(self, config: ServerConfig) -> None:
        config.validate()
        self.config = config
        self.catalog: Catalog = load_catalog(config.catalog)
        self.metrics = Metrics()
        self.store = ServerStore(config.db, db_key_file=config.db_key_file, checkpoint_mb=config.checkpoint_mb)
        self.writer = StoreWriter(self.store, self.catalog, anchor_path=config.anchor,
                                  max_pending_records=config.max_pending_records,
                                  max_group_records=config.max_group_records, metrics=self.metrics)
        self.detection = DetectionLoop(self.store, self.catalog, interval_s=config.detect_interval_s,
                                       metrics=self.metrics)
        self.watcher = FolderWatcher(self.store, self.writer, config.watch, interval_s=config.watch_interval_s,
                                     settle_s=config.watch_settle_s, metrics=self.metrics)
        self.limiter = LoginLimiter(self.store, config.login_attempts, config.login_window_s)
        self.data_dir = Path(config.data_dir or f"{config.db}.server")
        self.started_at = time.time()
        self.audit_trail = audit.VerifiedTrail()  # the audit page's chain check
        self.verified_keys = VerifiedKeys()  # a revoke through the API must call its forget()
        self._touched: dict[str, float] = {}
        self._touch_lock = threading.Lock()
        self.metrics.gauge("breachwatch_ingest_queue_records", "Records waiting for the writer.",
                           lambda: float(self.writer.pending))
        self.metrics.gauge("breachwatch_uptime_seconds", "Seconds since the server started.",
                           lambda: time.time() - self.started_at)

    def start(self) -> None:
        old = os.umask(0o077)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        finally:
            os.umask(old)
        self.writer.start()
        self.detection.start()
        self.watcher.start()

    def stop(self) -> None:
        self.watcher.stop()
        self.detection.stop()
        self.writer.stop()
        self.store.close()

    # -- who is calling ------------------------------------------------------------
    def _look_up_key(self, token: str) -> KeyInfo | None:
        with self.store.reading() as cur:
            return authenticate_key(cur, token)

    def key_principal(self, token: str) -> Principal:
        info = self.verified_keys.verify(token, self._look_up_key)
        if info is None:
            return ANONYMOUS
        now = time.monotonic()
        with self._touch_lock:
            due = now - self._touched.get(info.key_id, 0.0) > 60
            if due:
                self._touched[info.key_id] = now
        if due:  # last-used time to the minute, not a write per request, and never waiting for detection
            with self.store.changing_if_free() as cur:
                if cur is not None:
                    touch_key(cur, info.key_id)
                else:
                    with self._touch_lock:
                        self._touched.pop(info.key_id, None)  # busy: the next request stamps it
        return Principal(f"key:{info.key_id}", info.name, info.roles)

    # -- the audit trail -------------------------------------------------------------
    def audit(self, who: Principal, action: str, *, resource: str | None = None, outcome: str = "ok",
              client: str | None = None, detail: dict[str, Any] | None = None) -> None:
        try:
            with self.store.reading() as cur:
                audit.record(cur, actor=who.actor, roles=list(who.roles), action=action, resource=resource,
                             outcome=outcome, client=client, detail=detail)
        except Exception as e:  # noqa: BLE001 - fail closed: no trail, no data
            raise AuditUnavailable(f"the audit trail cannot be written ({e})") from e
