"""Events done by an actor (a session, a token holder): logins, token issuance and page views.

Actor columns are the per-actor facts every event of that actor repeats
(principal, session, token and its claims, source address, client), kept as
arrays indexed by actor so events are assembled with one `take` per column.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from breachwatch.simulate import frames
from breachwatch.simulate.pages import LOGIN_ROUTE, Page, render
from breachwatch.simulate.world import World

ACTOR_FIELDS = ("principal_id", "principal_type", "session_id", "token_id", "key_id", "token_issued_at",
                "token_expires_at", "src_ip", "src_asn", "src_country", "user_agent", "client_fingerprint")
_NO_TOKEN = ("token_id", "key_id", "token_issued_at", "token_expires_at")


def login_events(actors: dict[str, Any], idx: np.ndarray, times: np.ndarray, label: int = 0,
                 method: str | pa.Array = "password", issue_delay_us: int = 30_000) -> list[pa.Table]:
    """A successful login and the token it issued, for the actors at `idx`."""
    n = len(idx)
    cols = frames.take_rows(actors, idx)
    login = {k: v for k, v in cols.items() if k not in _NO_TOKEN}
    attrs = (f'{{"method":"{method}"}}' if isinstance(method, str) else method)
    return [
        frames.events(n, label, time=times, kind="login", endpoint=LOGIN_ROUTE, status=200, attributes=attrs,
                      **login),
        frames.events(n, label, time=np.asarray(times) + issue_delay_us, kind="token_issued", **cols),
    ]


def failed_login_events(actors: dict[str, Any], idx: np.ndarray, times: np.ndarray, label: int = 0,
                        reason: str | pa.Array = "bad_password") -> pa.Table:
    cols = {k: v for k, v in frames.take_rows(actors, idx).items() if k not in _NO_TOKEN and k != "session_id"}
    attrs = f'{{"reason":"{reason}"}}' if isinstance(reason, str) else reason
    return frames.events(len(idx), label, time=times, kind="login_failed", endpoint=LOGIN_ROUTE, status=401,
                         attributes=attrs, **cols)


def page_events(world: World, actors: dict[str, Any], idx: np.ndarray, pages: np.ndarray, times: np.ndarray,
                member: np.ndarray, r: np.random.Generator, label: int = 0,
                target_id: np.ndarray | None = None) -> list[pa.Table]:
    """Views of customer pages, one table per page type.

    `member` is the member position whose /me pages are shown (-1 where the
    token's subject is no member); `target_id` the path id of member-profile views.
    """
    out = []
    for p in np.unique(pages):
        sel = np.flatnonzero(pages == p)
        page = Page(int(p))
        cols = frames.take_rows(actors, idx[sel])
        tid = None if target_id is None else np.asarray(target_id)[sel]
        cols.update(render(world, page, np.asarray(member)[sel], r, target_id=tid))
        out.append(frames.events(len(sel), label, time=np.asarray(times)[sel], kind="access", **cols))
    return out
