"""app_release: a new app version, forced on every app user at once.

The retailer ships a release and raises the minimum supported version, so
from the release on every session of the Android and iOS apps (about 70 % of
members) shows the new version in its User-Agent. The release also changes
the apps' TLS fingerprints: the Android build bundles a newer okhttp, and the
iOS build switches to HTTP/3 (QUIC), so JA4 fingerprints start with 'q' and
carry 'h3'. Thousands of customers thus move to a user agent and fingerprint
never seen before within minutes, all reading only their own data. Browsers
are the users' own software and keep their user agents.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.simulate import clients
from breachwatch.simulate.context import SimContext
from breachwatch.simulate.scenarios.base import when
from breachwatch.simulate.surprises.base import Surprise

_APP_CLASSES = ("app-android", "app-ios")


@dataclass
class Params:
    version: str = "7.15.0"           # the released app version
    okhttp: str = "5.0.0"             # the HTTP stack the Android build bundles
    start_h: float | None = None      # hours after the warm-up (default: 10:00 KST on the first day)


class AppRelease(Surprise):
    name = "app_release"
    summary = "a forced app update: every app session's user agent and TLS fingerprint change at once"
    Params = Params
    kst_hour = 10.0

    def __init__(self, ctx: SimContext, overrides: dict[str, Any], code: int) -> None:
        super().__init__(ctx, overrides, code)
        p = self.p
        if p.version in clients.APP_VERSIONS:
            raise ValueError(f"--param {self.name}.version={p.version}: members already run that version. "
                             "Fix: choose a new one, e.g. 7.15.0.")
        self.start, self.end = self.schedule(p.start_h)
        android, ios = clients.app_clients((p.version,), okhttp=p.okhttp, ios_http3=True)
        self.released = {"app-android": android, "app-ios": ios}
        # For every customer client, its build after the release: the same device's new build for app
        # clients (apps are built per device), itself for browsers.
        ua, fp, is_app = [], [], []
        for d in clients.DEVICE_CLASSES:
            builds = clients.CUSTOMER_CLIENTS[d]
            for j, c in enumerate(builds):
                new = self.released[d][j % len(self.released[d])] if d in _APP_CLASSES else c
                ua.append(new.user_agent)
                fp.append(new.fingerprint)
                is_app.append(d in _APP_CLASSES)
        self.ua, self.fp, self.is_app = pa.array(ua), pa.array(fp), np.array(is_app)

    def clients(self, client: np.ndarray, start: np.ndarray, ua: pa.Array, fp: pa.Array) -> tuple[pa.Array, pa.Array]:
        after = (start >= self.start) & self.is_app[client]
        if not after.any():
            return ua, fp
        mask, idx = pa.array(after), pa.array(client)
        return pc.if_else(mask, self.ua.take(idx), ua), pc.if_else(mask, self.fp.take(idx), fp)

    def entities(self) -> dict[str, list[str]]:
        new = [c for d in _APP_CLASSES for c in self.released[d]]
        return {"user_agents": sorted({c.user_agent for c in new}), "fingerprints": sorted({c.fingerprint for c in new})}

    def context(self) -> dict[str, Any]:
        return {"released_at": when(self.start), "old_versions": list(clients.APP_VERSIONS),
                "new_version": self.p.version}
