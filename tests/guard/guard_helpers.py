"""Shared pieces for the guard tests: real keys, real signed tokens, a real Redis.

Imported by the test modules of this folder (pytest puts the folder on sys.path).
"""
from __future__ import annotations

import socket
import subprocess
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest
import redis
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from cli_runner import CliResult, run_group_cli

from breachwatch.guard.config import GuardConfig, parse_guard_config
from breachwatch.guard.ledger import IssuanceLedger, LedgerEntry

SHARED_REDIS = "redis://127.0.0.1:6379/0"

ALG_OF = {"RSA": "RS256", "EC": "ES256", "OKP": "EdDSA"}


def make_key(kty: str, kid: str) -> Any:
    if kty == "RSA":
        return RSAKey.generate_key(2048, parameters={"kid": kid})
    if kty == "EC":
        return ECKey.generate_key("P-256", parameters={"kid": kid})
    return OKPKey.generate_key("Ed25519", parameters={"kid": kid})


def sign(key: Any, claims: dict[str, Any], alg: str | None = None, header: dict[str, Any] | None = None) -> str:
    alg = alg or ALG_OF[key.key_type]
    h = {"alg": alg, "kid": key.kid, **(header or {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(h, claims, key, algorithms=[alg])


@dataclass
class Issuer:
    """A login service: it signs tokens and records each in the ledger, as a real issuer would."""
    keys: dict[str, Any]
    ledger: IssuanceLedger
    lifetime_s: int = 900
    issued: list[str] = field(default_factory=list)

    def claims(self, sub: str, now: float | None = None, jti: str | None = "auto", **extra: Any) -> dict[str, Any]:
        now = time.time() if now is None else now
        c: dict[str, Any] = {"sub": sub, "iat": int(now), "exp": int(now) + self.lifetime_s}
        if jti == "auto":
            c["jti"] = uuid.uuid4().hex
        elif jti is not None:
            c["jti"] = jti
        c.update(extra)
        return c

    def login(self, sub: str, kid: str, now: float | None = None, record: bool = True, **extra: Any) -> str:
        key = self.keys[kid]
        claims = self.claims(sub, now, **extra)
        token = sign(key, claims)
        if record:
            from breachwatch.guard.tokens import parse_token
            p = parse_token(token)
            self.ledger.record(LedgerEntry(p.token_id, sub, kid, claims["exp"], claims["iat"], "login"))
        self.issued.append(token)
        return token


def write_jwks(path: Path, keys: list[Any]) -> Path:
    path.write_bytes(orjson.dumps({"keys": [k.as_dict(private=False) for k in keys]}))
    return path


def unique_prefix() -> str:
    return f"bwtest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def shared_ledger() -> Iterator[IssuanceLedger]:
    """A ledger on the shared Redis under a prefix no other test uses; removed afterwards."""
    ledger = IssuanceLedger(SHARED_REDIS, prefix=unique_prefix(), timeout_ms=500)
    yield ledger
    ledger.clear()
    ledger.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayRedis:
    """A private redis-server on a free port, so a test can stop it without touching the shared one."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "ThrowawayRedis":
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=0.2).ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    r = ThrowawayRedis().start()
    yield r
    r.stop()


def config(**kw: Any) -> GuardConfig:
    return parse_guard_config(kw, "<test>")


def run_cli(*args: str) -> CliResult:
    """Run `breachwatch ARGS` in this process (only this area's command group is loaded)."""
    return run_group_cli(("guard",), *args)
