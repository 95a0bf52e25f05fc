"""Login rate limits: failed attempts per account and per client address in a sliding window.

Counting failures (not attempts) keeps a legitimate user who types correctly
unaffected, while guessing stops after a handful of tries per account and a
few more per address (one address trying many accounts).

The counts come from the audit trail, not from memory: every failed login is
already an append-only `login.failed` row with the account and the caller's
address, so a restart (or a crash an attacker provokes) does not hand out a
fresh set of guesses, and the limiter has no state of its own to keep in step.
A successful login starts its account's count afresh; the address count runs
on regardless.
"""
from __future__ import annotations

from datetime import timedelta

from breachwatch.server.apikeys import now_utc
from breachwatch.server.store import ServerStore

# One pass over the window's login rows: the account's failures since its last success, and the address's.
_COUNTS = """
WITH recent AS (
    SELECT recorded_at, action, lower(actor) AS actor, client FROM audit_log
    WHERE action IN ('login', 'login.failed') AND recorded_at > $since
), reset AS (
    SELECT coalesce(max(recorded_at), $since) AS after FROM recent WHERE action = 'login' AND actor = $actor
)
SELECT count(*) FILTER (WHERE actor = $actor AND recorded_at > (SELECT after FROM reset)),
       min(recorded_at) FILTER (WHERE actor = $actor AND recorded_at > (SELECT after FROM reset)),
       count(*) FILTER (WHERE client = $client),
       min(recorded_at) FILTER (WHERE client = $client)
FROM recent WHERE action = 'login.failed'
"""


class LoginLimiter:
    def __init__(self, store: ServerStore, per_account: int, window_s: float, per_client: int | None = None) -> None:
        self.store = store
        self.per_account = per_account
        self.per_client = per_client or per_account * 4
        self.window = timedelta(seconds=window_s)

    def retry_after(self, account: str, client: str | None) -> int:
        """Seconds until a login may be tried again; 0 when allowed now."""
        now = now_utc()
        with self.store.reading() as cur:
            n_account, first_account, n_client, first_client = cur.execute(_COUNTS, {
                "since": now - self.window, "actor": f"user:{account.lower()}", "client": client}).fetchone()
        waits = [first + self.window - now for n, first, limit in ((n_account, first_account, self.per_account),
                                                                   (n_client, first_client, self.per_client))
                 if n >= limit]
        return max(1, int(max(waits).total_seconds()) + 1) if waits else 0
