"""bola_enumeration: a customer's own valid token reading other customers' profiles.

A member logs in normally, then points a script at the member-profile
endpoint, which checks the token but not that the path id is the token's
subject (broken object-level authorisation). The script counts up through
member ids from near the member's own: every existing account's name and
e-mail comes back; gaps and closed accounts give 404.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from breachwatch.simulate import clients, network
from breachwatch.simulate.actors import login_events, page_events
from breachwatch.simulate.clients import Client, fingerprint
from breachwatch.simulate.pages import Page
from breachwatch.simulate.randomness import ids_for, rng, unique_ids
from breachwatch.simulate.scenarios.base import PlannedScenario, when
from breachwatch.simulate.timebase import HOUR, MINUTE, SECOND
from breachwatch.simulate.world import WEB_KEY

SCRIPT = Client("python-requests", "python-requests/2.32.3", fingerprint("python-requests-2.32-openssl3"))
TOKEN_LIFETIME = 2 * HOUR
RELOGIN_EVERY = 100 * MINUTE


@dataclass
class Params:
    rate: float = 2.0                 # requests per second (x --rate-scale)
    duration_h: float = 0.75
    start_h: float | None = None      # hours after the warm-up (default: 20:00 KST)
    step: int = 1                     # id increment per request


class BolaEnumeration(PlannedScenario):
    name = "bola_enumeration"
    summary = "a customer's token reads other members' profiles by counting through ids"
    Params = Params
    at_fraction = 0.25
    kst_hour = 20.0

    def plan(self) -> list[pa.Table]:
        ctx, p, w = self.ctx, self.p, self.ctx.world
        if p.rate <= 0 or p.duration_h <= 0 or p.step < 1:
            raise ValueError(f"--param {self.name}: rate, duration_h and step must be positive. Fix: e.g. "
                             f"{self.name}.rate=2.")
        r = rng(ctx.seed, self.name)
        pool = np.flatnonzero((w.activity > 0) & (w.abroad_from < 0))
        me = int(pool[r.integers(0, len(pool))])
        self.attacker = str(w.member_id[me])
        self.start, self.end = self.schedule(p.start_h, int(p.duration_h * HOUR))
        rate = p.rate * self.rate_scale
        span = (self.end - self.start - MINUTE) / SECOND
        n = max(1, int(r.poisson(rate * span)))
        times = np.sort(self.start + MINUTE + r.integers(0, max(1, int(span * SECOND)), n))
        first = max(1, int(w.member_id[me]) - int(r.integers(200, 2000)))
        targets = first + p.step * np.arange(n + 1)
        targets = targets[targets != w.member_id[me]][:n]
        # One login per token lifetime: the script reuses the browser's token until it expires.
        logins = self.start + np.arange(0, self.end - self.start, RELOGIN_EVERY)
        session_of = np.searchsorted(logins, times, side="right") - 1
        home = network.Pool(network.KR_BROADBAND)
        ip = network.dotted(w.home_ip[[me]])[0].as_py()
        k = len(logins)
        issued = logins + 30_000
        actors = {
            "principal_id": self.attacker, "principal_type": "customer",
            "session_id": unique_ids(ctx.seed, 128 + self.code, 0, 0, k, "s-"),
            "token_id": ids_for(ctx.seed, 64 + self.code, np.arange(k)), "key_id": WEB_KEY,
            "token_issued_at": issued, "token_expires_at": issued + TOKEN_LIFETIME,
            "src_ip": ip, "src_asn": home.networks[int(w.home_net[me])].asn, "src_country": "KR",
            "user_agent": clients.HOME_BROADBAND_BROWSER.user_agent,
            "client_fingerprint": clients.HOME_BROADBAND_BROWSER.fingerprint,
        }
        out = login_events(actors, np.arange(k), logins, label=self.label)
        actors.update(user_agent=SCRIPT.user_agent, client_fingerprint=SCRIPT.fingerprint)
        out += page_events(w, actors, session_of, np.full(n, int(Page.MEMBER_PROFILE)), times,
                           np.full(n, me), r, label=self.label, target_id=targets)
        self.first_target, self.last_target = int(targets[0]), int(targets[-1])
        return out

    def context(self) -> dict:
        return {"attacker_member": self.attacker, "first_target_id": self.first_target,
                "last_target_id": self.last_target, "start": when(self.start)}
