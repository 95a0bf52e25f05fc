"""How each gateway asks and how it wants the answer.

Envoy's ext_authz HTTP service sends the original method and path (behind a
configured `path_prefix`) with the allowed headers and no body, and reads any
200 as allow; any other status is sent to the client with our body and
headers. nginx `auth_request` sends a GET subrequest with the headers the
location sets (`X-Original-URI`, `X-Original-Method`, `X-Real-IP`) and reads
2xx as allow, 401/403 as deny with that status, anything else as an error. So
a denial is 401 (403 when the ledger is unreachable, since a fresh login would
not help) and never a 5xx, which nginx would turn into a 500.
"""
from __future__ import annotations

from typing import Any, Mapping

from breachwatch.guard.decision import CheckRequest, Decision

ENVOY_PREFIX = "/envoy/ext_authz"
NGINX_PATH = "/nginx/auth"


def client_ip(headers: Mapping[str, str], peer: str | None) -> str | None:
    """The client address as the gateway saw it.

    The rightmost X-Forwarded-For entry is the one the gateway itself appended;
    entries left of it are whatever the client claimed.
    """
    for name in ("x-envoy-external-address", "x-real-ip"):
        v = headers.get(name)
        if v:
            return v.strip()
    xff = headers.get("x-forwarded-for")
    if xff:
        return xff.split(",")[-1].strip() or peer
    return peer


def envoy_request(method: str, path: str, headers: Mapping[str, str], peer: str | None) -> CheckRequest:
    original = path[len(ENVOY_PREFIX):] if path.startswith(ENVOY_PREFIX) else path
    return CheckRequest(headers.get("authorization"), method.upper(), original or "/",
                        client_ip(headers, peer), headers.get("user-agent"))


def nginx_request(headers: Mapping[str, str], peer: str | None) -> CheckRequest:
    uri = headers.get("x-original-uri") or "/"
    method = (headers.get("x-original-method") or "GET").upper()
    return CheckRequest(headers.get("authorization"), method, uri.split("?", 1)[0],
                        client_ip(headers, peer), headers.get("user-agent"))


def response_for(decision: Decision) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body: the same for Envoy, nginx and the middleware."""
    headers = {"x-breachwatch-decision": "allow" if decision.allow else "deny",
               "x-breachwatch-reason": decision.reason}
    if decision.allow:
        if decision.would_deny:
            headers["x-breachwatch-would-deny"] = decision.would_deny
        # Always set, empty unless the ledger (or the cut-over rule) vouches for it, so the gateway
        # overwrites any x-breachwatch-subject a client sent itself.
        confirmed = decision.subject is not None and decision.reason in ("ok", "pre_cutover")
        headers["x-breachwatch-subject"] = (decision.subject or "") if confirmed else ""
        return 200, headers, b""
    if decision.reason == "ledger_unavailable":
        status = 403
    else:
        status = 401
        headers["www-authenticate"] = ('Bearer' if decision.reason == "no_token" else
                                       f'Bearer error="invalid_token", error_description="{decision.reason}"')
    headers["content-type"] = "application/json"
    body = b'{"error":"%s","reason":"%s"}' % (
        b"invalid_token" if status == 401 else b"access_denied", decision.reason.encode())
    return status, headers, body


def asgi_headers(scope: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    """Lower-cased request headers and the peer address of an ASGI HTTP scope."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    peer = scope.get("client")
    return headers, (peer[0] if peer else None)


async def asgi_send_decision(send: Any, decision: Decision) -> None:
    status, hdrs, body = response_for(decision)
    raw = [(k.encode(), v.encode()) for k, v in hdrs.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
