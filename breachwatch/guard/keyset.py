"""The active signing keys: a JWKS loaded from a file or URL and refreshed in place.

Each key is pinned to the algorithms its type allows (an RSA key verifies only
RS256 unless its JWK says otherwise, an Ed25519 key only EdDSA/Ed25519), so a
token cannot pick its own algorithm: `alg: none`, HS256 signed with the public
key as the secret, or RS256 against an EC key are all refused before any
signature is checked. A JWKS that carries private or symmetric key material is
refused outright: the guard needs public keys only, and a private key in its
configuration is exactly the leak this project exists to stop.
"""
from __future__ import annotations

import os
import threading
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from breachwatch.guard.config import ASYMMETRIC_ALGS

# joserfc warns on every EdDSA verification because RFC 9864 renames it "Ed25519";
# deployed issuers still send "EdDSA", which the guard pins per key, so the warning is noise.
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

_EC_ALG = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}
_OKP_ALGS = {"Ed25519": frozenset({"EdDSA", "Ed25519"}), "Ed448": frozenset({"EdDSA", "Ed448"})}


class KeySetError(ValueError):
    """A JWKS that cannot be used; the message names the source, the key and the fix."""


PublicKey = RSAKey | ECKey | OKPKey


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    key: PublicKey
    algorithms: frozenset[str]
    thumbprint: str


@dataclass(frozen=True)
class KeySnapshot:
    """One loaded JWKS. Replaced whole on reload, so a check never sees half a key set."""
    keys: dict[str, ActiveKey]
    source: str
    version: int
    loaded_at: float
    fingerprint: bytes = b""

    def get(self, kid: str) -> ActiveKey | None:
        return self.keys.get(kid)


EMPTY = KeySnapshot({}, "<none>", 0, 0.0)


def _pinned_algs(jwk: dict[str, Any], kid: str, source: str) -> frozenset[str]:
    kty = jwk.get("kty")
    if "alg" in jwk:
        alg = jwk["alg"]
        if alg not in ASYMMETRIC_ALGS:
            raise KeySetError(f"{source}: key '{kid}' declares alg {alg!r}, which the guard never accepts. "
                              "Fix: publish only asymmetric signing keys (RS256, ES256, EdDSA, ...).")
        if kty == "OKP" and alg in ("EdDSA", "Ed25519", "Ed448"):
            return _OKP_ALGS.get(jwk.get("crv", ""), frozenset({alg}))
        return frozenset({alg})
    if kty == "RSA":
        return frozenset({"RS256"})
    if kty == "EC":
        alg = _EC_ALG.get(jwk.get("crv", ""))
        if alg:
            return frozenset({alg})
    if kty == "OKP" and jwk.get("crv") in _OKP_ALGS:
        return _OKP_ALGS[jwk["crv"]]
    raise KeySetError(f"{source}: key '{kid}' (kty {kty!r}, crv {jwk.get('crv')!r}) is not a signing key the "
                      "guard can pin to one algorithm. Fix: add an 'alg' member or remove the key.")


def parse_jwks(data: Any, source: str, version: int = 1) -> KeySnapshot:
    """Validate a JWKS document and import its public signing keys."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeySetError(f"{source}: not a JWKS (expected an object with a 'keys' list). "
                          "Fix: point --jwks at the issuer's JWKS document.")
    keys: dict[str, ActiveKey] = {}
    for i, jwk in enumerate(data["keys"]):
        if not isinstance(jwk, dict) or "kty" not in jwk:
            raise KeySetError(f"{source}: keys[{i}] is not a JWK (no 'kty'). Fix: remove or correct it.")
        if jwk.get("use") == "enc":
            continue  # encryption keys never sign tokens
        label = jwk.get("kid") or f"keys[{i}]"
        if jwk["kty"] == "oct":
            raise KeySetError(f"{source}: key '{label}' is a symmetric (oct) key. Fix: the guard verifies "
                              "asymmetric signatures only; remove shared secrets from the JWKS.")
        if "d" in jwk or any(p in jwk for p in ("p", "q", "dp", "dq", "qi")):
            raise KeySetError(f"{source}: key '{label}' contains private key material ('d'). Fix: give the "
                              "guard the public JWKS only, and treat this file as a leaked private key: rotate it.")
        try:
            key = JWKRegistry.import_key(jwk)
        except (JoseError, ValueError, TypeError) as e:
            raise KeySetError(f"{source}: key '{label}' cannot be imported ({e}). Fix: correct or remove it.") from e
        kid = jwk.get("kid") or key.thumbprint()
        if kid in keys:
            raise KeySetError(f"{source}: kid '{kid}' appears twice. Fix: give every key its own kid.")
        keys[kid] = ActiveKey(kid, key, _pinned_algs(jwk, kid, source), key.thumbprint())  # type: ignore[arg-type]
    return KeySnapshot(keys, source, version, time.time(), orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def fetch_jwks(location: str, timeout_s: float = 5.0) -> Any:
    """Read a JWKS document from a file path or an http(s) URL."""
    if _is_url(location):
        req = urllib.request.Request(location, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 (http(s) only, checked above)
                body = resp.read(4 << 20)
        except OSError as e:
            raise KeySetError(f"{location}: cannot fetch the JWKS ({e}). Fix: check the URL and that the "
                              "issuer is reachable from the guard.") from e
    else:
        p = Path(location)
        if not p.exists():
            raise KeySetError(f"{location}: JWKS file not found. Fix: pass the issuer's public JWKS with --jwks.")
        body = p.read_bytes()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise KeySetError(f"{location}: the JWKS is not valid JSON ({e}). Fix: point --jwks at a JWKS document.") from e


@dataclass
class KeyRing:
    """The current key snapshot plus retired kids, reloadable without a restart.

    `refresh()` is cheap to call often: a file is re-read only when its mtime
    changes, a URL only when `refresh_s` has passed. A failed reload keeps the
    last good key set and records the error, so a broken deploy of the JWKS
    never takes every key away.
    """
    location: str | None
    refresh_s: float = 300.0
    static_retired: frozenset[str] = frozenset()
    snapshot: KeySnapshot = EMPTY
    retired: frozenset[str] = frozenset()
    last_error: str | None = None
    _checked_at: float = 0.0
    _mtime: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.retired = frozenset(self.static_retired)

    def load(self) -> KeySnapshot:
        """First load: errors propagate, so a guard never starts without its keys."""
        if self.location is None:
            return self.snapshot
        self._reload()
        return self.snapshot

    def _reload(self) -> bool:
        assert self.location is not None
        mtime = None if _is_url(self.location) else os.stat(self.location).st_mtime
        data = fetch_jwks(self.location)
        snap = parse_jwks(data, self.location, self.snapshot.version + 1)
        with self._lock:
            self._checked_at = time.monotonic()
            self._mtime = mtime
            changed = snap.fingerprint != self.snapshot.fingerprint
            if changed:
                self.snapshot = snap
            self.last_error = None
        return changed

    def refresh(self, force: bool = False) -> bool:
        """Reload if due; return True when the key set changed."""
        if self.location is None:
            return False
        now = time.monotonic()
        if not force:
            if _is_url(self.location):
                if now - self._checked_at < self.refresh_s:
                    return False
            else:
                try:
                    if os.stat(self.location).st_mtime == self._mtime:
                        return False
                except OSError as e:
                    self.last_error = f"{self.location}: {e}"
                    return False
        try:
            return self._reload()
        except KeySetError as e:
            self.last_error = str(e)
            self._checked_at = now
            return False

    def set_retired(self, dynamic: set[str] | frozenset[str]) -> None:
        self.retired = frozenset(self.static_retired) | frozenset(dynamic)
