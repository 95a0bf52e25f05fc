"""The token-provenance check.

A token passes only if its signature verifies with an active key pinned to its
algorithm, its `kid` is not retired, its lifetime is within policy, and a login,
refresh, SSO or service issuance recorded it in the ledger with the same
subject, key and expiry, and nobody revoked it. The last check is the one the
2025 retailer's gateway lacked: a key kept by a departed engineer signs tokens
that verify perfectly, but no login ever issued them.

The work is split so the same rules serve blocking and async callers:
`GuardCore.inspect` does everything that needs no I/O (parsing, signature,
claims) and `GuardCore.decide` turns a ledger lookup into a decision; `Guard`
and `AsyncGuard` only differ in how they wait for Redis.

    >>> guard = Guard(config, KeyRing("jwks.json"), IssuanceLedger())   # doctest: +SKIP
    >>> guard.check(CheckRequest("Bearer eyJ...", "GET", "/api/me")).reason  # doctest: +SKIP
    'ok'
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from joserfc import jws
from joserfc.errors import JoseError

from breachwatch.guard.config import GuardConfig, RoutePolicy
from breachwatch.guard.decision import CheckRequest, Decision
from breachwatch.guard.keyset import KeyRing
from breachwatch.guard.ledger import AsyncIssuanceLedger, IssuanceLedger, LedgerLookup, LedgerUnavailable
from breachwatch.guard.tokens import MalformedToken, ParsedToken, bearer_token, parse_token

_CACHE_MAX = 50_000
_LAG_POLL_S = 0.02


@dataclass
class _Verified:
    """What is known about a token string independent of the clock and the ledger."""
    parsed: ParsedToken | None
    reason: str | None       # a deny reason found without the clock, or None
    detail: str
    key_version: int
    signature_verified: bool


@dataclass
class Pending:
    """A token that passed every local check and now needs the ledger."""
    request: CheckRequest
    route: RoutePolicy
    parsed: ParsedToken
    signature_verified: bool
    enforcing: bool
    pre_cutover: bool
    lag_s: float             # how long to keep re-reading the ledger for a missing entry (issuer lag)


Recorder = Callable[[Decision, CheckRequest], None]


class GuardCore:
    def __init__(self, config: GuardConfig, keyring: KeyRing, recorder: Recorder | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.keyring = keyring
        self.recorder = recorder
        self.clock = clock
        self.counts: Counter[tuple[bool, str, str | None]] = Counter()
        self._cache: dict[bytes, _Verified] = {}
        self._registries = {alg: jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
                            for alg in config.algorithms}

    # -- decisions -------------------------------------------------------------------------

    def enforcing(self, now: float) -> bool:
        cut = self.config.enforce_from_ts
        return self.config.mode == "enforce" and cut is not None and now >= cut

    def _deny(self, reason: str, *, enforcing: bool, route: RoutePolicy | None = None,
              parsed: ParsedToken | None = None, detail: str = "", verified: bool = False) -> Decision:
        shadow = not enforcing or (reason == "not_in_ledger" and route is not None and route.on_unknown == "allow")
        d = Decision(allow=shadow, reason="shadow" if shadow else reason, would_deny=reason if shadow else None,
                     mode="shadow" if shadow else "enforce", detail=detail, signature_verified=verified)
        return _with_token(d, parsed)

    # -- local checks ----------------------------------------------------------------------

    def verify_token(self, token: str) -> _Verified:
        raw = token.encode()
        snap = self.keyring.snapshot
        hit = self._cache.get(raw)
        if hit is not None and hit.key_version == snap.version:
            return hit
        v = self._verify_uncached(raw, snap.version)
        if len(self._cache) >= _CACHE_MAX:
            # Drop the oldest entry; a flood of distinct forged tokens cannot grow memory without bound.
            try:
                self._cache.pop(next(iter(self._cache)))
            except (KeyError, RuntimeError, StopIteration):
                pass  # another thread (WSGI servers) evicted at the same moment
        self._cache[raw] = v
        return v

    def _verify_uncached(self, raw: bytes, version: int) -> _Verified:
        try:
            parsed = parse_token(raw)
        except MalformedToken as e:
            return _Verified(None, "malformed", str(e), version, False)
        alg = parsed.alg
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            return _Verified(parsed, "alg_not_allowed", f"alg {alg!r} is not accepted", version, False)
        kid = parsed.kid
        if kid is None:
            return _Verified(parsed, "no_kid", "the token header has no kid", version, False)
        if not self.config.verify_signatures:
            # Ledger-only mode: the gateway verified the signature; the kid is still checked
            # against the key set when one is loaded.
            if self.keyring.location is not None and self.keyring.snapshot.get(kid) is None:
                return _Verified(parsed, "unknown_kid", f"kid {kid!r} is not in the active key set", version, False)
            return _Verified(parsed, None, "", version, False)
        key = self.keyring.snapshot.get(kid)
        if key is None:
            return _Verified(parsed, "unknown_kid", f"kid {kid!r} is not in the active key set", version, False)
        if alg not in key.algorithms:
            return _Verified(parsed, "alg_not_allowed",
                             f"key {kid!r} is pinned to {sorted(key.algorithms)}, the token says {alg!r}", version, False)
        registry = self._registries[alg]
        try:
            registry.check_header(parsed.header)
        except JoseError as e:
            return _Verified(parsed, "malformed", f"header rejected: {e}", version, False)
        try:
            ok = jws.validate_compact(parsed.obj, key.key, registry=registry)
        except (JoseError, ValueError, TypeError) as e:
            return _Verified(parsed, "bad_signature", f"verification failed: {e}", version, False)
        if not ok:
            return _Verified(parsed, "bad_signature", f"signature does not verify with key {kid!r}", version, False)
        return _Verified(parsed, None, "", version, True)

    def inspect(self, request: CheckRequest, now: float | None = None) -> Decision | Pending:
        """Every check that needs no ledger; a `Decision` when one of them already settles it."""
        now = self.clock() if now is None else now
        cfg = self.config
        route = cfg.route_for(request.method, request.path)
        enforcing = self.enforcing(now)
        token = bearer_token(request.authorization)
        if token is None:
            if route.allow_anonymous:
                return Decision(True, "anonymous")
            return self._deny("no_token", enforcing=enforcing, route=route)
        v = self.verify_token(token)
        p = v.parsed
        if v.reason is not None:
            return self._deny(v.reason, enforcing=enforcing, route=route, parsed=p, detail=v.detail)
        assert p is not None
        kid = p.kid
        if kid in self.keyring.retired:
            return self._deny("kid_retired", enforcing=enforcing, route=route, parsed=p,
                              detail=f"kid {kid!r} is retired", verified=v.signature_verified)
        reason, detail = self._claims_problem(p, now)
        if reason is not None:
            return self._deny(reason, enforcing=enforcing, route=route, parsed=p, detail=detail,
                              verified=v.signature_verified)
        iat = p.numeric("iat") or now
        cut = cfg.enforce_from_ts
        # Only a token younger than the lag may be waited for: an old forged token is denied at
        # once, a fresh one after at most the lag, never let through on the issuer's behalf.
        age = max(0.0, now - iat)
        return Pending(request, route, p, v.signature_verified, enforcing,
                       pre_cutover=cut is not None and iat < cut,
                       lag_s=max(0.0, cfg.ledger_lag_ms / 1000.0 - age))

    def _claims_problem(self, p: ParsedToken, now: float) -> tuple[str | None, str]:
        leeway = self.config.leeway_s
        exp, iat, nbf = p.numeric("exp"), p.numeric("iat"), p.numeric("nbf")
        if exp is None:
            return "no_expiry", "the token has no numeric exp"
        if exp + leeway <= now:
            return "expired", f"expired {int(now - exp)} s ago"
        if nbf is not None and nbf - leeway > now:
            return "not_yet_valid", f"valid only in {int(nbf - now)} s"
        if iat is None:
            return "no_issued_at", "the token has no numeric iat"
        if iat - leeway > now:
            return "issued_in_future", f"iat is {int(iat - now)} s ahead of the guard's clock"
        if exp - iat > self.config.max_lifetime_s:
            return ("lifetime_exceeds_policy",
                    f"lifetime {int(exp - iat)} s exceeds the policy of {self.config.max_lifetime_s} s")
        return None, ""

    # -- ledger ------------------------------------------------------------------------------

    def _deny_pending(self, pending: Pending, reason: str, detail: str) -> Decision:
        return self._deny(reason, enforcing=pending.enforcing, route=pending.route, parsed=pending.parsed,
                          detail=detail, verified=pending.signature_verified)

    def decide(self, pending: Pending, found: LedgerLookup, can_wait: bool = False) -> Decision | None:
        """Decide from a ledger lookup; None means "not there yet, read again" (issuer lag)."""
        p = pending.parsed
        if found.revoked is not None:
            return self._deny_pending(pending, "revoked", f"revoked: {found.revoked}")
        iat = p.numeric("iat") or 0.0
        if found.subject_revoked_before is not None and iat <= found.subject_revoked_before:
            return self._deny_pending(pending, "subject_revoked", "all tokens of this subject issued before "
                                      f"{found.subject_revoked_before:.0f} are revoked")
        entry = found.entry
        if entry is not None:
            if not entry.binds(p.subject, p.kid, p.numeric("exp") or 0.0, not p.has_jti):
                return self._deny_pending(pending, "ledger_mismatch", (
                    f"the ledger binds token id {entry.token_id!r} to subject {entry.subject!r}, key "
                    f"{entry.key_id!r}, exp {entry.expires_at}; the token claims {p.subject!r}, {p.kid!r}, "
                    f"{p.numeric('exp')}"))
            return _with_token(Decision(True, "ok", signature_verified=pending.signature_verified), p)
        if pending.pre_cutover and pending.enforcing:
            return _with_token(Decision(True, "pre_cutover", signature_verified=pending.signature_verified), p)
        if can_wait:
            return None
        return self._deny_pending(pending, "not_in_ledger", "no issuance recorded this token")

    def unavailable(self, pending: Pending, error: Exception) -> Decision:
        if pending.enforcing and pending.route.fail_open:
            d = Decision(True, "fail_open", would_deny="ledger_unavailable", mode="shadow", detail=str(error),
                         signature_verified=pending.signature_verified)
            return _with_token(d, pending.parsed)
        return self._deny_pending(pending, "ledger_unavailable", str(error))

    def record(self, decision: Decision, request: CheckRequest) -> Decision:
        self.counts[(decision.allow, decision.reason, decision.would_deny)] += 1
        if self.recorder is not None and decision.logged_reason is not None:
            self.recorder(decision, request)
        return decision


def _with_token(d: Decision, p: ParsedToken | None) -> Decision:
    if p is not None:
        d.token_id, d.key_id, d.subject = p.token_id, p.kid, p.subject
        d.extra = {"iat": p.numeric("iat"), "exp": p.numeric("exp")}
    return d


class Guard(GuardCore):
    """Blocking guard: the WSGI middleware, the CLI's `guard check`, tests and benchmarks."""

    def __init__(self, config: GuardConfig, keyring: KeyRing, ledger: IssuanceLedger,
                 recorder: Recorder | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, keyring, recorder, clock)
        self.ledger = ledger

    def check(self, request: CheckRequest, now: float | None = None) -> Decision:
        pending = self.inspect(request, now)
        if isinstance(pending, Decision):
            return self.record(pending, request)
        deadline = time.monotonic() + pending.lag_s
        while True:
            try:
                found = self.ledger.lookup(pending.parsed.token_id, pending.parsed.subject)
            except LedgerUnavailable as e:
                return self.record(self.unavailable(pending, e), request)
            left = deadline - time.monotonic()
            decision = self.decide(pending, found, can_wait=left > 0)
            if decision is not None:
                return self.record(decision, request)
            time.sleep(min(_LAG_POLL_S, left))

    def refresh_retired(self) -> None:
        """Re-read retired kids from Redis (keys retired through the API or from events)."""
        try:
            self.keyring.set_retired(self.ledger.retired_kids())
        except LedgerUnavailable:
            pass  # keep the last known set; the next reload tries again


class AsyncGuard(GuardCore):
    """Async guard: the HTTP server and the ASGI middleware."""

    def __init__(self, config: GuardConfig, keyring: KeyRing, ledger: AsyncIssuanceLedger,
                 recorder: Recorder | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, keyring, recorder, clock)
        self.ledger = ledger

    async def check(self, request: CheckRequest, now: float | None = None) -> Decision:
        pending = self.inspect(request, now)
        if isinstance(pending, Decision):
            return self.record(pending, request)
        deadline = time.monotonic() + pending.lag_s
        while True:
            try:
                found = await self.ledger.lookup(pending.parsed.token_id, pending.parsed.subject)
            except LedgerUnavailable as e:
                return self.record(self.unavailable(pending, e), request)
            left = deadline - time.monotonic()
            decision = self.decide(pending, found, can_wait=left > 0)
            if decision is not None:
                return self.record(decision, request)
            await asyncio.sleep(min(_LAG_POLL_S, left))

    async def refresh_retired(self) -> None:
        try:
            self.keyring.set_retired(await self.ledger.retired_kids())
        except LedgerUnavailable:
            pass
