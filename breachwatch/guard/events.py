"""Turning a denial (or a shadow-mode would-deny) into a Contract 1 `token_denied` event.

Everything in a denied token is attacker-controlled, so values are bounded
before they are written: long strings are cut, and claimed times outside what
the store accepts (1990-2100) move to `attributes` instead of making ingest
quarantine the whole event.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from breachwatch.contract.catalog import Catalog
from breachwatch.guard.decision import CheckRequest, Decision

_MAX_TEXT = 512
_MIN_TS, _MAX_TS = 631152000.0, 4102444800.0  # 1990-01-01, 2100-01-01


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _bounded(value: str | None, limit: int = _MAX_TEXT) -> str | None:
    if value is None:
        return None
    return value if len(value) <= limit else value[:limit]


class EndpointNamer:
    """Maps a concrete path to its catalog route template, as ingest does for access logs."""

    def __init__(self, catalog: Catalog | None) -> None:
        self.catalog = catalog
        self._cache: dict[str, str | None] = {}

    def name(self, method: str, path: str) -> tuple[str, bool]:
        """(endpoint, templated): the route template when the catalog knows the path."""
        logged = f"{method.upper()} {path}"
        if self.catalog is None:
            return logged, False
        if logged not in self._cache:
            hit = self.catalog.resolve(logged)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[logged] = hit[0].route if hit else None
        route = self._cache[logged]
        return (route, route != logged) if route else (logged, False)


def denial_event(decision: Decision, request: CheckRequest, now: float,
                 namer: EndpointNamer | None = None) -> dict[str, Any]:
    reason = decision.logged_reason
    path = request.path.split("?", 1)[0]  # query strings can carry tokens; they never go into events
    endpoint, templated = (namer or EndpointNamer(None)).name(request.method, path)
    attrs: dict[str, Any] = {
        "reason": reason,
        "mode": decision.mode,
        "decision": "allow" if decision.allow else "deny",
        "signature_verified": decision.signature_verified,
    }
    if decision.detail:
        attrs["detail"] = _bounded(decision.detail, 1024)
    if templated:
        attrs["path"] = _bounded(path, 2048)
    event: dict[str, Any] = {
        "event_id": "gd-" + uuid.uuid4().hex,
        "time": rfc3339(now),
        "kind": "token_denied",
        "principal_id": _bounded(decision.subject),
        "token_id": _bounded(decision.token_id),
        "key_id": _bounded(decision.key_id),
        "src_ip": _bounded(request.src_ip, 64),
        "user_agent": _bounded(request.user_agent, 1024),
        "endpoint": _bounded(endpoint, 2048),
        "attributes": attrs,
    }
    for claim, field in (("iat", "token_issued_at"), ("exp", "token_expires_at")):
        v = decision.extra.get(claim)
        if v is None:
            continue
        if _MIN_TS <= v < _MAX_TS:
            event[field] = rfc3339(v)
        else:
            attrs[f"claimed_{claim}"] = v
    return {k: v for k, v in event.items() if v is not None}


class DenialRecorder:
    """The guard's recorder: every deny and would-deny becomes a `token_denied` event in a spool."""

    def __init__(self, sink: Callable[[dict[str, Any]], None], namer: EndpointNamer | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.sink = sink
        self.namer = namer or EndpointNamer(None)
        self.clock = clock

    def __call__(self, decision: Decision, request: CheckRequest) -> None:
        self.sink(denial_event(decision, request, self.clock(), self.namer))
