"""POST /v1/events: HTTP ingest, acknowledged only once the batch is durably committed."""
from __future__ import annotations

import asyncio
import functools

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from breachwatch.server.api.common import responses
from breachwatch.server.api.models import Error, IngestReceipt
from breachwatch.server.auth import ApiError, ctx_of, require
from breachwatch.server.bodies import BadBody, BodyTooLarge, parse_body
from breachwatch.server.context import Principal, ServerContext
from breachwatch.server.writer import Overloaded, WriterStopped

router = APIRouter(tags=["ingest"])

_BODY = {
    "required": True,
    "content": {
        "application/x-ndjson": {"schema": {"type": "string", "description": "One Contract 1 event per line."}},
        "application/json": {"schema": {"type": "array", "items": {},
                                        "description": "An array of Contract 1 events. Elements that are not "
                                                       "valid events (not objects, missing fields) are "
                                                       "quarantined with their reason, as in file ingest."}},
    },
    "description": "NDJSON or a JSON array of events, optionally gzip (Content-Encoding: gzip, or gzip bytes).",
}


@router.post("/v1/events", status_code=202, response_model=IngestReceipt, openapi_extra={"requestBody": _BODY},
             responses=responses({400: {"model": Error, "description": "Not NDJSON, a JSON array or gzip; "
                                                                         "nothing stored."},
                                  413: {"model": Error, "description": "Over the size limit; nothing stored."},
                                  429: {"model": Error, "description": "Overloaded; retry after the "
                                                                       "Retry-After seconds. Nothing stored."}}))
async def post_events(request: Request, who: Principal = require("events:write")) -> IngestReceipt:
    """Store a batch of events with the same validation, dedup and quarantine as file ingest.

    202 means every record is durably committed (or quarantined with its reason);
    any other answer means none of the batch was stored.
    """
    ctx = ctx_of(request)
    limit = ctx.config.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        ctx.metrics.rejected.inc(label="too_large")
        raise ApiError(413, "too_large", f"the body is larger than {limit} bytes. Fix: send smaller batches.")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            ctx.metrics.rejected.inc(label="too_large")
            raise ApiError(413, "too_large", f"the body is larger than {limit} bytes. Fix: send smaller batches.")
    if not body:
        raise ApiError(400, "empty_body", "the body is empty. Fix: send NDJSON or a JSON array of events.")
    gz = "gzip" in request.headers.get("content-encoding", "").lower()
    as_array = request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
    parse = functools.partial(parse_body, bytes(body), limit=limit, max_line=ctx.config.max_line_bytes,
                              gzip_encoded=gz, ids_up_to=ctx.config.max_group_records, array_only=as_array)
    try:
        # Parsing and validation run in a worker thread: the event loop keeps answering others, and
        # this request's validation overlaps the writer's commit of the requests before it.
        staged = await run_in_threadpool(lambda: ctx.writer.stage(parse()))
    except BodyTooLarge as e:
        ctx.metrics.rejected.inc(label="too_large")
        raise ApiError(413, "too_large", str(e)) from None
    except BadBody as e:
        ctx.metrics.rejected.inc(label="bad_body")
        raise ApiError(400, "bad_body", str(e)) from None
    except Overloaded as e:
        raise _overloaded(ctx, e) from None
    except WriterStopped as e:
        raise ApiError(503, "unavailable", str(e), {"Retry-After": "5"}) from None
    try:
        fut = ctx.writer.submit(staged, who.name)
    except Overloaded as e:
        raise _overloaded(ctx, e) from None
    except WriterStopped as e:
        raise ApiError(503, "unavailable", str(e), {"Retry-After": "5"}) from None
    try:
        receipt = await asyncio.wrap_future(fut)
    except Exception as e:  # noqa: BLE001 - the commit failed: nothing of the batch is stored
        raise ApiError(503, "not_stored", f"the batch could not be committed ({type(e).__name__}: {e}); nothing of "
                       "it was stored. Fix: retry; if it persists, check the server log.",
                       {"Retry-After": "5"}) from None
    return IngestReceipt(**receipt)


def _overloaded(ctx: ServerContext, e: Overloaded) -> ApiError:
    ctx.metrics.rejected.inc(label="overloaded")
    return ApiError(429, "overloaded", f"{e}. Nothing of this batch was stored. Fix: retry after "
                    f"{e.retry_after} s.", {"Retry-After": str(e.retry_after)})
