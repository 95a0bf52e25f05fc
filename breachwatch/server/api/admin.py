"""Administration: API keys, dashboard accounts, and the audit trail."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from breachwatch.server import accounts, apikeys, audit
from breachwatch.server.api.common import CONFLICT, NOT_FOUND, responses
from breachwatch.server.api.models import ApiKey, ApiKeyCreated, AuditRow, AuditVerify, NewApiKey, NewUser, User
from breachwatch.server.auth import ApiError, audited, client_of, ctx_of, require
from breachwatch.server.context import Principal

router = APIRouter(tags=["admin"])


def _utc(text: str) -> datetime:
    from datetime import timezone
    try:
        t = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "invalid_request", f"since={text!r} is not an RFC 3339 time. Fix: write e.g. "
                       "2025-06-01T00:00:00Z.") from None
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t.tzinfo else t


def _by(who: Principal) -> str:
    return f"{who.actor} ({who.name})"


@router.get("/v1/admin/apikeys", response_model=list[ApiKey], responses=responses())
def list_keys(request: Request, who: Principal = require("admin:apikeys")) -> list[dict[str, Any]]:
    with ctx_of(request).store.reading() as cur:
        return apikeys.list_keys(cur)


@router.post("/v1/admin/apikeys", response_model=ApiKeyCreated, status_code=201, responses=responses())
def create_key(request: Request, body: NewApiKey, who: Principal = require("admin:apikeys")) -> dict[str, Any]:
    """Make a key; its secret is in this answer only."""
    ctx = ctx_of(request)
    with ctx.store.changing() as cur:
        try:
            token, row = apikeys.create_key(cur, body.name, list(body.roles), by=_by(who))
        except ValueError as e:
            raise ApiError(409, "conflict", str(e)) from None
    ctx.audit(who, "apikey.create", resource=f"apikey/{row['key_id']}", client=client_of(request),
              detail={"name": row["name"], "roles": row["roles"]})
    return {**row, "token": token}


@router.delete("/v1/admin/apikeys/{key_id}", response_model=ApiKey, responses=responses(NOT_FOUND))
def revoke_key(request: Request, key_id: str = Path(..., min_length=1, max_length=64),
               who: Principal = require("admin:apikeys")) -> dict[str, Any]:
    """Revoke a key at once; every later request with it gets 401."""
    ctx = ctx_of(request)
    with ctx.store.changing() as cur:
        try:
            row = apikeys.revoke_key(cur, key_id, by=_by(who))
        except ValueError as e:
            raise ApiError(404, "not_found", str(e)) from None
    ctx.verified_keys.forget()  # after the commit: no request accepts the key from here on
    ctx.audit(who, "apikey.revoke", resource=f"apikey/{key_id}", client=client_of(request))
    return row


@router.get("/v1/admin/users", response_model=list[User], responses=responses())
def list_users(request: Request, who: Principal = require("admin:users")) -> list[dict[str, Any]]:
    with ctx_of(request).store.reading() as cur:
        return accounts.list_users(cur)


@router.post("/v1/admin/users", response_model=User, status_code=201, responses=responses(CONFLICT))
def create_user(request: Request, body: NewUser, who: Principal = require("admin:users")) -> dict[str, Any]:
    ctx = ctx_of(request)
    with ctx.store.changing() as cur:
        try:
            row = accounts.create_user(cur, body.username, list(body.roles), body.password, by=_by(who))
        except ValueError as e:
            raise ApiError(409, "conflict", str(e)) from None
    ctx.audit(who, "user.create", resource=f"user/{body.username}", client=client_of(request),
              detail={"roles": row["roles"]})
    return row


@router.post("/v1/admin/users/{username}/disable", response_model=User, responses=responses(NOT_FOUND))
def disable_user(request: Request, username: str = Path(..., min_length=1, max_length=64),
                 who: Principal = require("admin:users")) -> dict[str, Any]:
    """Disable an account and end its sessions."""
    ctx = ctx_of(request)
    with ctx.store.changing() as cur:
        try:
            row = accounts.disable_user(cur, username, by=_by(who))
        except ValueError as e:
            raise ApiError(404, "not_found", str(e)) from None
    ctx.audit(who, "user.disable", resource=f"user/{username}", client=client_of(request))
    return row


@router.get("/v1/admin/audit", response_model=list[AuditRow], responses=responses())
def get_audit(request: Request, action: Optional[str] = Query(None, max_length=100),
              actor: Optional[str] = Query(None, max_length=200),
              since: Optional[str] = Query(None, max_length=40, json_schema_extra={"format": "date-time"},
                                           description="RFC 3339 time, e.g. 2025-06-01T00:00:00Z."),
              after_seq: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=5000),
              who: Principal = require("admin:audit")) -> list[dict[str, Any]]:
    """The audit trail, oldest first; page on with `after_seq` set to the last `seq` seen."""
    since_utc = _utc(since) if since is not None else None
    audited(request, who, "audit.view")
    with ctx_of(request).store.reading() as cur:
        return audit.list_audit(cur, action=action, actor=actor, since=since_utc, after_seq=after_seq, limit=limit)


@router.get("/v1/admin/audit/export", response_class=StreamingResponse,
            responses=responses({200: {"description": "The audit trail as NDJSON, with each row's hashes.",
                                       "content": {"application/x-ndjson": {}}}}))
def export_audit(request: Request, action: Optional[str] = Query(None, max_length=100),
                 fmt: Literal["ndjson"] = Query("ndjson", alias="format"),
                 who: Principal = require("admin:audit")) -> StreamingResponse:
    """The whole audit trail (or one action's rows) for archiving or a SIEM."""
    ctx = ctx_of(request)
    audited(request, who, "audit.export", "audit", only=action)

    def rows() -> Any:
        with ctx.store.reading() as cur:
            yield from audit.export_ndjson(cur, action=action)
    return StreamingResponse(rows(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="breachwatch-audit.ndjson"'})


@router.get("/v1/admin/audit/verify", response_model=AuditVerify, responses=responses())
def verify_audit(request: Request, who: Principal = require("admin:audit")) -> dict[str, Any]:
    """Check the trail's hash chain; names the first edited, deleted or reordered row."""
    with ctx_of(request).store.reading() as cur:
        bad = audit.verify_audit(cur)
        n = cur.execute("SELECT count(*) FROM audit_log").fetchall()[0][0]
    return {"intact": bad is None, "rows": n, "first_bad_seq": bad}
