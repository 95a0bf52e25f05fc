"""What `breachwatch serve` is told: every option in one place, with its default."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


def default_drill_report(db: str) -> str:
    """Where `drill --db STORE` leaves its scores and `serve --db STORE` looks for them."""
    return f"{db}.drill.json"


@dataclass
class ServerConfig:
    db: str
    anchor: str | None = None                 # chain-head anchor file (default: STORE.anchor)
    catalog: str | None = None                # breachwatch.yaml (default: the built-in catalog)
    db_key_file: str | None = None            # store encryption key file (or env BREACHWATCH_DB_KEY)
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: str | None = None
    tls_key: str | None = None
    max_body_bytes: int = 64 << 20            # per request, after decompression
    max_line_bytes: int = 1 << 20
    max_pending_records: int = 500_000        # queued, not yet committed; beyond it: 429
    max_group_records: int = 20_000           # records one group commit may join from many requests
    # DuckDB checkpoints its write-ahead log into the store when the log passes this size, inside the
    # commit that crosses it: a stall of a few hundred milliseconds for every request waiting on that commit.
    # DuckDB's 16 MB made that every few seconds under steady HTTP ingest (the p99 of 100-event requests at
    # 30 per second: 350-500 ms; with 256 MB, 39 ms; docs/BENCHMARKS.md). A larger log takes longer to
    # replay after a crash, and is checkpointed at a clean shutdown.
    checkpoint_mb: int = 256
    detect_interval_s: float = 0.5            # polls for new events (paced as detect --follow); 0: off
    watch: list[str] = field(default_factory=list)
    watch_interval_s: float = 5.0
    watch_settle_s: float = 2.0
    session_lifetime: timedelta = timedelta(hours=8)
    session_idle: timedelta = timedelta(minutes=30)
    login_attempts: int = 5                   # failed logins per account (and x4 per address) ...
    login_window_s: float = 900.0             # ... within this window before logins are refused
    data_dir: str | None = None               # scope runs' manifests and reports (default: STORE.server/)
    keys_jwks: list[str] = field(default_factory=list)       # for the key-hygiene page
    keys_inventory: list[str] = field(default_factory=list)
    keys_hr: list[str] = field(default_factory=list)
    drill_report: str | None = None           # the last drill's --json output (default: STORE.drill.json)

    @property
    def drill_report_path(self) -> str:
        """Where the drill page reads the last drill's scores: --drill-report, else next to the store, where
        `breachwatch drill --db STORE --report STORE.drill.json` leaves them."""
        return self.drill_report or default_drill_report(self.db)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    def validate(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("--tls-cert and --tls-key go together. Fix: pass both (PEM files), or neither for "
                             "plain HTTP behind a TLS-terminating proxy.")
        if not 16 <= self.checkpoint_mb <= 65536:
            raise ValueError(f"--checkpoint-mb {self.checkpoint_mb}: out of range. Fix: use 16 (DuckDB's own "
                             "default) to 65536.")
        if self.max_body_bytes < 1024:
            raise ValueError(f"--max-body-bytes {self.max_body_bytes}: too small. Fix: use at least 1024.")
        if self.max_group_records < 1 or self.max_pending_records < self.max_group_records:
            raise ValueError("--max-pending-records must be at least --max-group-records. Fix: raise it.")
