"""Login rate limits: failed attempts per account and per client address in a sliding window.

Counting failures (not attempts) keeps a legitimate user who types correctly
unaffected, while guessing stops after a handful of tries per account and a
few more per address (one address trying many accounts).
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class LoginLimiter:
    def __init__(self, per_account: int, window_s: float, per_client: int | None = None) -> None:
        self.per_account = per_account
        self.per_client = per_client or per_account * 4
        self.window = window_s
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails[key]
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, account: str, client: str) -> int:
        """Seconds until a login may be tried again; 0 when allowed now."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key, limit in ((f"a:{account.lower()}", self.per_account), (f"c:{client}", self.per_client)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(q[0] + self.window - now)
            return max(1, int(max(waits)) + 1) if waits else 0

    def failed(self, account: str, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._fails[f"a:{account.lower()}"].append(now)
            self._fails[f"c:{client}"].append(now)

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._fails.pop(f"a:{account.lower()}", None)
