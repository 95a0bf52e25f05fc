"""Shared by the server tests: a store with one key per role, events, and a real server process."""
from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from breachwatch.server import accounts, apikeys
from breachwatch.store.db import connect

ROLES = ("ingest", "analyst", "dpo", "admin")
PASSWORD = "correct horse battery staple"


def make_store(tmp: Path) -> tuple[str, dict[str, str]]:
    """A fresh store with one API key per role, a revoked key, and one dashboard user per role."""
    db = str(tmp / "store.duckdb")
    return db, add_people(db)


def add_people(db: str) -> dict[str, str]:
    """One API key per role (and 'all', and a revoked one) and one dashboard user per role, in store `db`."""
    con = connect(db)
    keys = {}
    for role in ROLES:
        keys[role], _ = apikeys.create_key(con, f"test-{role}", [role], by="test")
        accounts.create_user(con, f"{role}-user", [role], PASSWORD, by="test")
    keys["all"], _ = apikeys.create_key(con, "test-all", list(ROLES), by="test")
    keys["revoked"], row = apikeys.create_key(con, "test-revoked", list(ROLES), by="test")
    apikeys.revoke_key(con, row["key_id"], by="test")
    con.close()
    return keys


def event(i: int, prefix: str = "e", **extra: Any) -> dict[str, Any]:
    return {"event_id": f"{prefix}{i}", "time": "2025-06-01T00:00:00Z", "kind": "access", "principal_id": "p1",
            "principal_type": "customer", "endpoint": "GET /api/members/{id}", "subject_ids": [str(1000 + i)],
            "fields": ["name"], "src_ip": "10.0.0.1", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`breachwatch serve` as a child process, on a free loopback port.

    With `tls` (an SSL context trusting the server's certificate; pass --tls-cert and --tls-key in `args`)
    the server is reached over HTTPS.
    """

    def __init__(self, db: str, *args: str, env: dict[str, str] | None = None, log: Path | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.verify: ssl.SSLContext | bool = tls or True
        self.log = open(log or Path(db).with_suffix(".log"), "ab")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "breachwatch"), "serve", "--db", db, "--port", str(self.port),
             "--log-level", "warning", *args],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1, verify=self.verify).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not come up within 60 s")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
