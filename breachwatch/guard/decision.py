"""What the guard is asked and what it answers.

A `CheckRequest` is what every adapter (Envoy, nginx, middleware, the JSON
API) reduces its gateway's request to; a `Decision` is allow or deny with one
reason code from `REASONS`, so dashboards, tests and the `token_denied` events
all speak the same small vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Reason codes. Deny codes name the failed check; allow codes say why a request
# passed without every check (so a log can tell "fully checked" from "let through").
REASONS: dict[str, str] = {
    # allow
    "ok": "signature, key, lifetime and issuance ledger all check out",
    "anonymous": "no bearer token on a route that allows anonymous requests",
    "pre_cutover": "issued before the enforcement cut-over; ledger presence not required",
    "shadow": "would be denied, but the guard (or this route) is in shadow mode",
    "fail_open": "the ledger could not be consulted and this route fails open",
    # deny
    "no_token": "no bearer token",
    "malformed": "not a compact JWS/JWT",
    "alg_not_allowed": "the token's alg is none, symmetric, not allowed, or not the key's pinned alg",
    "no_kid": "the token names no signing key (kid)",
    "unknown_kid": "the kid is not in the active key set",
    "kid_retired": "the kid was retired or revoked",
    "bad_signature": "the signature does not verify with the named key",
    "no_expiry": "the token has no exp",
    "no_issued_at": "the token has no iat, so its lifetime cannot be checked",
    "expired": "the token has expired",
    "not_yet_valid": "the token's nbf is in the future",
    "issued_in_future": "the token's iat is in the future",
    "lifetime_exceeds_policy": "exp - iat is longer than the policy allows",
    "not_in_ledger": "no login, refresh, SSO or service issuance recorded this token",
    "ledger_mismatch": "the ledger entry for this token id names another subject, key or expiry",
    "revoked": "the token was revoked",
    "subject_revoked": "all tokens of this subject issued before a time were revoked",
    "ledger_unavailable": "the issuance ledger could not be consulted and this route fails closed",
}
ALLOW_REASONS = frozenset({"ok", "anonymous", "pre_cutover", "shadow", "fail_open"})
DENY_REASONS = frozenset(REASONS) - ALLOW_REASONS


@dataclass(frozen=True)
class CheckRequest:
    """The parts of a gateway request the guard looks at."""
    authorization: str | None
    method: str = "GET"
    path: str = "/"
    src_ip: str | None = None
    user_agent: str | None = None


@dataclass
class Decision:
    allow: bool
    reason: str
    # The deny reason a shadow or fail-open allow stands in for; None when fully checked.
    would_deny: str | None = None
    mode: str = "enforce"  # "shadow" when nothing was denied because of rollout or route policy
    token_id: str | None = None
    key_id: str | None = None
    subject: str | None = None
    detail: str = ""
    signature_verified: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def logged_reason(self) -> str | None:
        """The reason a `token_denied` event records, or None when nothing is to be recorded."""
        if not self.allow:
            return self.reason
        return self.would_deny

    def as_dict(self) -> dict[str, Any]:
        return {
            "allow": self.allow,
            "reason": self.reason,
            "would_deny": self.would_deny,
            "mode": self.mode,
            "token_id": self.token_id,
            "key_id": self.key_id,
            "subject": self.subject,
            "detail": self.detail,
            "signature_verified": self.signature_verified,
        }
