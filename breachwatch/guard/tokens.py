"""Reading a bearer token: the header, the claims and the id the ledger knows it by.

Nothing here trusts the token; it only takes it apart. Signature checks live
in `check.py`, with the key the guard chose, never one the token names itself
(`jwk`, `jku` and `x5u` header members are ignored).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jws import CompactSignature

TOKEN_HASH_PREFIX = "sha256:"


class MalformedToken(ValueError):
    pass


def token_hash(token: str | bytes) -> str:
    """The ledger id of a token that carries no `jti`: SHA-256 of its compact form."""
    raw = token.encode() if isinstance(token, str) else token
    return TOKEN_HASH_PREFIX + hashlib.sha256(raw).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None


@dataclass(frozen=True)
class ParsedToken:
    raw: bytes
    obj: CompactSignature
    header: dict[str, Any]
    claims: dict[str, Any]
    token_id: str
    has_jti: bool

    @property
    def alg(self) -> str | None:
        return self.header.get("alg")

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) and kid else None

    @property
    def subject(self) -> str | None:
        sub = self.claims.get("sub")
        return None if sub is None else str(sub)

    def numeric(self, claim: str) -> float | None:
        v = self.claims.get(claim)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        return float(v)


def parse_token(token: str | bytes) -> ParsedToken:
    """Split a compact JWS into header and claims; raise `MalformedToken` with the reason."""
    raw = token.encode() if isinstance(token, str) else token
    try:
        obj = jws.extract_compact(raw)
    except (JoseError, ValueError, TypeError) as e:
        raise MalformedToken(f"not a compact JWS: {e}") from e
    header = obj.headers()
    if header.get("b64") is False:
        raise MalformedToken("unencoded (b64: false) payloads are not JWTs")
    try:
        claims = orjson.loads(obj.payload)
    except orjson.JSONDecodeError as e:
        raise MalformedToken(f"claims are not JSON: {e}") from e
    if not isinstance(claims, dict):
        raise MalformedToken("claims are not a JSON object")
    jti = claims.get("jti")
    if isinstance(jti, str) and jti:
        return ParsedToken(raw, obj, header, claims, jti, True)
    return ParsedToken(raw, obj, header, claims, token_hash(raw), False)
