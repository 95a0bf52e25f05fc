"""The issuance ledger in Redis: every token a login, refresh, SSO, partner OAuth
or service-token path issued, bound to its subject, key and expiry.

Layout (all under one prefix, default `bw:guard:`):

    tok:<token id>   JSON {sub, kid, exp, iat, src, th}   expires when the token does
    rev:<token id>   revocation reason                     expires when the token does
    revsub:<sub>     epoch s: tokens of this subject issued at or before it are revoked
    kids:retired     set of retired or revoked kids

The token id is the JWT `jti`, or `sha256:<hex>` of the compact token when it
has none (`th` marks such entries, so a forged token cannot put a real token's
hash in its `jti`). A check reads `tok`, `rev` and `revsub` in one MGET, so it
costs one round trip whatever it finds.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Iterable

import orjson
import redis
import redis.asyncio as aredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from breachwatch.guard.tokens import TOKEN_HASH_PREFIX

ISSUANCE_SOURCES = ("login", "refresh", "sso", "partner_oauth", "service", "events", "api")
DEFAULT_SUBJECT_REVOCATION_TTL_S = 7 * 86400


@dataclass(frozen=True)
class LedgerEntry:
    token_id: str
    subject: str | None
    key_id: str | None
    expires_at: int
    issued_at: int | None = None
    source: str = "api"

    @property
    def hashed(self) -> bool:
        return self.token_id.startswith(TOKEN_HASH_PREFIX)

    def encode(self) -> bytes:
        return orjson.dumps({"sub": self.subject, "kid": self.key_id, "exp": self.expires_at,
                             "iat": self.issued_at, "src": self.source, "th": self.hashed})

    @classmethod
    def decode(cls, token_id: str, raw: bytes) -> "LedgerEntry":
        d = orjson.loads(raw)
        return cls(token_id, d.get("sub"), d.get("kid"), int(d["exp"]), d.get("iat"), d.get("src", "api"))

    def binds(self, subject: str | None, key_id: str | None, expires_at: float, hashed: bool) -> bool:
        """Does this entry belong to a token with these claims? (A forged token reusing a real jti does not.)"""
        return (self.subject == subject and self.key_id == key_id
                and abs(self.expires_at - int(expires_at)) <= 1 and self.hashed == hashed)


@dataclass(frozen=True)
class LedgerLookup:
    entry: LedgerEntry | None
    revoked: str | None          # reason, when the token itself is revoked
    subject_revoked_before: float | None


class LedgerUnavailable(RuntimeError):
    """Redis could not be reached or answered in time."""


def _retry() -> Retry:
    # One immediate reconnect covers a connection dropped by a Redis restart;
    # anything longer would hold every request of a fail-closed route hostage.
    return Retry(NoBackoff(), 1)


class _Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.retired_key = f"{prefix}kids:retired"

    def tok(self, token_id: str) -> str:
        return f"{self.prefix}tok:{token_id}"

    def rev(self, token_id: str) -> str:
        return f"{self.prefix}rev:{token_id}"

    def revsub(self, subject: str) -> str:
        return f"{self.prefix}revsub:{subject}"

    def lookup_keys(self, token_id: str, subject: str | None) -> list[str]:
        return [self.tok(token_id), self.rev(token_id), self.revsub(subject or "")]

    @staticmethod
    def parse_lookup(token_id: str, values: list[Any]) -> LedgerLookup:
        tok, rev, revsub = values
        entry = LedgerEntry.decode(token_id, tok) if tok is not None else None
        return LedgerLookup(entry, rev.decode() if rev is not None else None,
                            float(revsub) if revsub is not None else None)


class IssuanceLedger(_Keys):
    """Blocking client: issuers, the loader, the CLI, the WSGI middleware and tests."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", prefix: str = "bw:guard:",
                 timeout_ms: int = 100, leeway_s: int = 30) -> None:
        super().__init__(prefix)
        self.url = url
        self.leeway_s = leeway_s
        timeout = timeout_ms / 1000.0
        self.redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                          retry=_retry(), health_check_interval=0)

    def close(self) -> None:
        self.redis.close()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (redis.RedisError, OSError) as e:
            raise LedgerUnavailable(f"issuance ledger at {self.url} unavailable: {e}") from e

    def lookup(self, token_id: str, subject: str | None) -> LedgerLookup:
        return self.parse_lookup(token_id, self._call(self.redis.mget, self.lookup_keys(token_id, subject)))

    def record(self, entry: LedgerEntry) -> bool:
        """Record one issuance; False (and nothing written) when the token has already expired."""
        return self.record_many([entry]) == 1

    def record_many(self, entries: Iterable[LedgerEntry], now: float | None = None) -> int:
        """Record issuances in pipelined chunks; return how many were written (expired ones are skipped)."""
        now = time.time() if now is None else now
        written = 0
        pipe = self.redis.pipeline(transaction=False)
        pending = 0
        for e in entries:
            expire_at = e.expires_at + self.leeway_s
            if expire_at <= now:
                continue
            pipe.set(self.tok(e.token_id), e.encode(), exat=expire_at)
            pending += 1
            if pending >= 1000:
                self._call(pipe.execute)
                written += pending
                pending = 0
        if pending:
            self._call(pipe.execute)
            written += pending
        return written

    def revoke(self, token_id: str, reason: str = "revoked", expires_at: float | None = None,
               now: float | None = None) -> None:
        """Revoke one token. Without its expiry the revocation is kept for a week."""
        now = time.time() if now is None else now
        if expires_at is None:
            raw = self._call(self.redis.get, self.tok(token_id))
            expires_at = LedgerEntry.decode(token_id, raw).expires_at if raw else now + DEFAULT_SUBJECT_REVOCATION_TTL_S
        expire_at = int(max(expires_at, now) + self.leeway_s + 1)
        self._call(self.redis.set, self.rev(token_id), reason or "revoked", exat=expire_at)

    def revoke_subject(self, subject: str, issued_before: float | None = None,
                       ttl_s: int = DEFAULT_SUBJECT_REVOCATION_TTL_S) -> None:
        """Revoke every token of a subject issued at or before a time (default: now)."""
        before = time.time() if issued_before is None else issued_before
        self._call(self.redis.set, self.revsub(subject), repr(float(before)), ex=ttl_s)

    def retire_kid(self, kid: str) -> None:
        self._call(self.redis.sadd, self.retired_key, kid)

    def retired_kids(self) -> set[str]:
        return {k.decode() for k in self._call(self.redis.smembers, self.retired_key)}

    def clear(self) -> int:
        """Delete every key under this ledger's prefix (tests, and resetting a drill)."""
        n = 0
        for key in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            n += self.redis.delete(key)
        return n

    def count(self) -> dict[str, int]:
        out = {"tokens": 0, "revoked": 0, "subjects_revoked": 0}
        names = {"tok": "tokens", "rev": "revoked", "revsub": "subjects_revoked"}
        for key in self.redis.scan_iter(match=f"{self.prefix}*", count=1000):
            kind = key.decode()[len(self.prefix):].split(":", 1)[0]
            if kind in names:
                out[names[kind]] += 1
        out["retired_kids"] = len(self.retired_kids())
        return out


class AsyncIssuanceLedger(_Keys):
    """Non-blocking reads for the guard's HTTP server and ASGI middleware.

    Lookups made while a request to Redis is being prepared are coalesced: every
    check pending in one event-loop turn shares a single MGET. Under load that
    turns dozens of round trips into one, and with one request in flight it
    costs nothing but a loop turn.
    """

    MAX_BATCH = 256  # lookups per MGET (3 keys each)

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", prefix: str = "bw:guard:",
                 timeout_ms: int = 100) -> None:
        super().__init__(prefix)
        self.url = url
        timeout = timeout_ms / 1000.0
        self.redis = aredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           retry=_retry(), health_check_interval=0)
        self._pending: list[tuple[str, str | None, asyncio.Future[LedgerLookup]]] = []
        self._scheduled = False
        self.round_trips = 0

    async def close(self) -> None:
        await self.redis.aclose()

    async def lookup(self, token_id: str, subject: str | None) -> LedgerLookup:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[LedgerLookup] = loop.create_future()
        self._pending.append((token_id, subject, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        self._scheduled = False
        while self._pending:
            batch, self._pending = self._pending[:self.MAX_BATCH], self._pending[self.MAX_BATCH:]
            asyncio.ensure_future(self._run(batch))

    async def _run(self, batch: list[tuple[str, str | None, asyncio.Future[LedgerLookup]]]) -> None:
        keys = [k for token_id, subject, _ in batch for k in self.lookup_keys(token_id, subject)]
        self.round_trips += 1
        try:
            values = await self.redis.mget(keys)
        except (redis.RedisError, OSError) as e:
            err = LedgerUnavailable(f"issuance ledger at {self.url} unavailable: {e}")
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_exception(err)
            return
        for i, (token_id, _, fut) in enumerate(batch):
            if not fut.done():
                fut.set_result(self.parse_lookup(token_id, values[3 * i:3 * i + 3]))

    async def retired_kids(self) -> set[str]:
        try:
            return {k.decode() for k in await self.redis.smembers(self.retired_key)}
        except (redis.RedisError, OSError) as e:
            raise LedgerUnavailable(f"issuance ledger at {self.url} unavailable: {e}") from e
