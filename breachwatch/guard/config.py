"""The guard's policy file (`guard.yaml`), validated on load.

Every key is optional; the defaults are the safe rollout start: shadow mode,
signatures verified, one-hour token lifetime, routes fail closed.

    mode: shadow                      # shadow | enforce
    enforce_from: 2025-07-01T00:00:00+09:00   # the cut-over (required for enforce)
    verify_signatures: true           # false: ledger-only, the gateway verifies (jwt_authn, Kong)
    algorithms: [RS256, ES256, EdDSA]
    max_lifetime_s: 3600
    leeway_s: 30                      # clock skew allowed on exp, nbf and iat
    ledger_lag_ms: 500                # wait this long for a fresh token's ledger entry
    jwks: /etc/breachwatch/jwks.json  # file or http(s) URL
    jwks_refresh_s: 300
    retired_kids: [login-2019]
    redis_url: redis://127.0.0.1:6379/0
    redis_prefix: "bw:guard:"
    redis_timeout_ms: 100
    reload_s: 5                       # how often retired kids are re-read from Redis
    spool_dir: /var/spool/breachwatch/guard
    spool_rotate_s: 60
    spool_rotate_bytes: 16777216
    catalog: breachwatch.yaml         # maps denied paths to route templates ('default': the built-in one)
    routes:                           # longest matching prefix wins
      - prefix: /api/catalog/
        fail_open: true               # ledger down: allow (signature and lifetime still checked)
      - prefix: /api/public/
        allow_anonymous: true
      - prefix: /api/partner/
        methods: [GET]
        on_unknown: allow             # tokens absent from the ledger: log only (shadow for this route)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

MODES = ("shadow", "enforce")
# Only asymmetric algorithms: the guard holds public keys, and accepting an HS*
# token would let anyone who has a public key (everyone) forge one.
ASYMMETRIC_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                             "ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed25519", "Ed448"})


class GuardConfigError(ValueError):
    """A guard policy that cannot be used; the message names the key and the fix."""


@dataclass(frozen=True)
class RoutePolicy:
    prefix: str = "/"
    methods: frozenset[str] | None = None
    fail_open: bool = False
    on_unknown: str = "deny"  # deny | allow
    allow_anonymous: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method.upper() not in self.methods:
            return False
        return path.startswith(self.prefix)


DEFAULT_ROUTE = RoutePolicy()


@dataclass(frozen=True)
class GuardConfig:
    mode: str = "shadow"
    enforce_from: datetime | None = None
    verify_signatures: bool = True
    algorithms: frozenset[str] = frozenset({"RS256", "ES256", "EdDSA", "Ed25519"})
    max_lifetime_s: int = 3600
    leeway_s: int = 30
    ledger_lag_ms: int = 500
    jwks: str | None = None
    jwks_refresh_s: int = 300
    retired_kids: frozenset[str] = frozenset()
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "bw:guard:"
    redis_timeout_ms: int = 100
    reload_s: int = 5
    spool_dir: str | None = None
    spool_rotate_s: int = 60
    spool_rotate_bytes: int = 16 << 20
    catalog: str | None = None
    routes: tuple[RoutePolicy, ...] = field(default=())

    @property
    def enforce_from_ts(self) -> float | None:
        return self.enforce_from.timestamp() if self.enforce_from else None

    def route_for(self, method: str, path: str) -> RoutePolicy:
        best = DEFAULT_ROUTE
        for r in self.routes:
            if r.matches(method, path) and len(r.prefix) >= len(best.prefix):
                best = r
        return best

    def replace(self, **changes: Any) -> "GuardConfig":
        """A copy with CLI overrides applied (None values are ignored), validated again."""
        changes = {k: v for k, v in changes.items() if v is not None}
        cfg = dataclasses.replace(self, **changes)
        _check_consistency(cfg, "<command line>")
        return cfg


def _fail(source: str, key: str, problem: str, fix: str) -> GuardConfigError:
    return GuardConfigError(f"{source}: key '{key}': {problem}. Fix: {fix}.")


def parse_time_with_offset(value: Any, source: str, key: str) -> datetime:
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError as e:
            raise _fail(source, key, f"{value!r} is not an RFC 3339 time", "write e.g. 2025-07-01T00:00:00+09:00") from e
    if dt.tzinfo is None:
        raise _fail(source, key, f"{value!r} has no UTC offset", "add one, e.g. +09:00 or Z")
    return dt.astimezone(timezone.utc)


def _int(data: dict[str, Any], key: str, default: int, source: str, minimum: int = 0) -> int:
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise _fail(source, key, f"{v!r} is not a whole number >= {minimum}", f"write e.g. '{key}: {default}'")
    return v


def _bool(data: dict[str, Any], key: str, default: bool, source: str) -> bool:
    v = data.get(key, default)
    if not isinstance(v, bool):
        raise _fail(source, key, f"{v!r} is not true or false", f"write '{key}: true' or '{key}: false'")
    return v


def _str(data: dict[str, Any], key: str, default: str | None, source: str) -> str | None:
    v = data.get(key, default)
    if v is not None and not isinstance(v, str):
        raise _fail(source, key, f"{v!r} is not text", f"quote the value of '{key}'")
    return v


def _route(spec: Any, i: int, source: str) -> RoutePolicy:
    key = f"routes[{i}]"
    if not isinstance(spec, dict) or not isinstance(spec.get("prefix"), str) or not spec["prefix"].startswith("/"):
        raise _fail(source, key, "needs a 'prefix' that starts with /", "write '- prefix: /api/orders/'")
    unknown = set(spec) - {"prefix", "methods", "fail_open", "on_unknown", "allow_anonymous"}
    if unknown:
        raise _fail(source, f"{key}.{sorted(unknown)[0]}", "unknown route setting",
                    "use prefix, methods, fail_open, on_unknown, allow_anonymous")
    methods = spec.get("methods")
    if methods is not None:
        if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
            raise _fail(source, f"{key}.methods", "must be a list of HTTP methods", "write 'methods: [GET, POST]'")
        methods = frozenset(m.upper() for m in methods)
    on_unknown = spec.get("on_unknown", "deny")
    if on_unknown not in ("deny", "allow"):
        raise _fail(source, f"{key}.on_unknown", f"{on_unknown!r} is not deny or allow", "write 'on_unknown: deny'")
    return RoutePolicy(prefix=spec["prefix"], methods=methods,
                       fail_open=_bool(spec, "fail_open", False, f"{source} {key}"),
                       on_unknown=on_unknown,
                       allow_anonymous=_bool(spec, "allow_anonymous", False, f"{source} {key}"))


_KNOWN = {f.name for f in dataclasses.fields(GuardConfig)}


def parse_guard_config(data: dict[str, Any] | None, source: str = "<guard config>") -> GuardConfig:
    data = data or {}
    if not isinstance(data, dict):
        raise GuardConfigError(f"{source}: the guard config must be a mapping. Fix: start with 'mode: shadow'.")
    for k in data:
        if k not in _KNOWN:
            raise _fail(source, str(k), "unknown setting", f"use one of {sorted(_KNOWN)}")
    d = GuardConfig()
    algs = data.get("algorithms", sorted(d.algorithms))
    if not isinstance(algs, list) or not algs or not all(isinstance(a, str) for a in algs):
        raise _fail(source, "algorithms", "must be a non-empty list", "write 'algorithms: [RS256, ES256, EdDSA]'")
    retired = data.get("retired_kids", [])
    if not isinstance(retired, list):
        raise _fail(source, "retired_kids", "must be a list of key ids", "write 'retired_kids: [old-kid]'")
    routes = data.get("routes", [])
    if not isinstance(routes, list):
        raise _fail(source, "routes", "must be a list", "write '- prefix: /api/'")
    enforce_from = data.get("enforce_from")
    cfg = GuardConfig(
        mode=_str(data, "mode", d.mode, source) or d.mode,
        enforce_from=parse_time_with_offset(enforce_from, source, "enforce_from") if enforce_from is not None else None,
        verify_signatures=_bool(data, "verify_signatures", d.verify_signatures, source),
        algorithms=frozenset(algs),
        max_lifetime_s=_int(data, "max_lifetime_s", d.max_lifetime_s, source, 1),
        leeway_s=_int(data, "leeway_s", d.leeway_s, source),
        ledger_lag_ms=_int(data, "ledger_lag_ms", d.ledger_lag_ms, source),
        jwks=_str(data, "jwks", d.jwks, source),
        jwks_refresh_s=_int(data, "jwks_refresh_s", d.jwks_refresh_s, source, 1),
        retired_kids=frozenset(str(k) for k in retired),
        redis_url=_str(data, "redis_url", d.redis_url, source) or d.redis_url,
        redis_prefix=_str(data, "redis_prefix", d.redis_prefix, source) or d.redis_prefix,
        redis_timeout_ms=_int(data, "redis_timeout_ms", d.redis_timeout_ms, source, 1),
        reload_s=_int(data, "reload_s", d.reload_s, source, 1),
        spool_dir=_str(data, "spool_dir", d.spool_dir, source),
        spool_rotate_s=_int(data, "spool_rotate_s", d.spool_rotate_s, source, 1),
        spool_rotate_bytes=_int(data, "spool_rotate_bytes", d.spool_rotate_bytes, source, 1024),
        catalog=_str(data, "catalog", d.catalog, source),
        routes=tuple(_route(r, i, source) for i, r in enumerate(routes)),
    )
    _check_consistency(cfg, source)
    return cfg


def _check_consistency(cfg: GuardConfig, source: str) -> None:
    if cfg.mode not in MODES:
        raise _fail(source, "mode", f"{cfg.mode!r} is not one of {list(MODES)}", "start with 'mode: shadow'")
    bad = sorted(a for a in cfg.algorithms if a not in ASYMMETRIC_ALGS)
    if bad:
        raise _fail(source, "algorithms", f"{bad} cannot be accepted (none and HS* let anyone forge tokens)",
                    f"list only asymmetric algorithms, e.g. {sorted(ASYMMETRIC_ALGS)[:4]}")
    if cfg.mode == "enforce" and cfg.enforce_from is None:
        raise _fail(source, "enforce_from", "enforce mode needs the cut-over time",
                    "set 'enforce_from' to when enforcement starts; tokens issued before it keep working "
                    "until they expire, so switching on never logs everybody out")


def load_guard_config(path: str | Path | None) -> GuardConfig:
    """Load `guard.yaml`; None gives the defaults (shadow mode)."""
    if path is None:
        return GuardConfig()
    p = Path(path)
    if not p.exists():
        raise GuardConfigError(f"{p}: guard config not found. Fix: pass an existing file with --config, "
                               "or omit --config to start in shadow mode with the defaults.")
    try:
        data = yaml.safe_load(p.read_text("utf-8"))
    except yaml.YAMLError as e:
        raise GuardConfigError(f"{p}: not valid YAML ({e}). Fix: correct the YAML syntax.") from e
    return parse_guard_config(data, str(p))
