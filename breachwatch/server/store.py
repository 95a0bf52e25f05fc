"""The server's hold on the store: one DuckDB database, one cursor per thread.

The server is the store's only writing process. Inside it, the event chain has
one writer thread (`writer.py`); changes to incidents, scope and accounts take
`state_lock`, so detection and an analyst's click never race on the same rows;
reads use their own cursors and see committed data only.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from breachwatch.store import encryption
from breachwatch.store.db import connect


class ServerStore:
    def __init__(self, path: str | os.PathLike[str], *, db_key_file: str | None = None,
                 checkpoint_mb: int | None = None) -> None:
        self.path = str(Path(path))
        key = encryption.load_key(db_key_file)
        self.encrypted = key is not None
        self.con = encryption.connect_encrypted(self.path, key) if key else connect(self.path)
        if checkpoint_mb is not None:  # see ServerConfig.checkpoint_mb
            self.con.execute(f"SET checkpoint_threshold = '{int(checkpoint_mb)}MB'")
        self.state_lock = threading.RLock()
        self._closed = False

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur = self.con.cursor()
        if self.encrypted:
            cur.execute(f"USE {encryption.ALIAS}")
        return cur

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def changing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for changes to incidents, scope, keys or accounts, one change at a time."""
        with self.state_lock, self.reading() as cur:
            yield cur

    @contextmanager
    def changing_if_free(self) -> Iterator[duckdb.DuckDBPyConnection | None]:
        """Like `changing`, but yields None at once while another change (a detection run) holds the store.

        For best-effort bookkeeping on a request's path (a key's last-used time): a detection run can take
        seconds, and an ingest request must not wait behind it for a timestamp.
        """
        if not self.state_lock.acquire(blocking=False):
            yield None
            return
        try:
            with self.reading() as cur:
                yield cur
        finally:
            self.state_lock.release()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.con.close()
