"""credential_stuffing: leaked e-mail/password pairs from other sites tried at the login page.

In bursts at night, a tool behind residential proxies tries thousands of
logins; most fail (wrong password, or no such account), a few succeed because
those members reused a leaked password. The tool then reads each taken-over
account's profile and address list (and sometimes its orders) to harvest what
it can.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from breachwatch.simulate import frames, network
from breachwatch.simulate.actors import failed_login_events, login_events, page_events
from breachwatch.simulate.clients import CUSTOMER_CLIENTS, fingerprint
from breachwatch.simulate.pages import Page
from breachwatch.simulate.randomness import ids_for, rng, unique_ids
from breachwatch.simulate.scenarios.base import PlannedScenario, when
from breachwatch.simulate.timebase import HOUR, MINUTE, SECOND
from breachwatch.simulate.world import WEB_KEY

TOOL_AGENTS = tuple(c.user_agent for c in CUSTOMER_CLIENTS["web-pc"][:3])
TOOL_FINGERPRINTS = (fingerprint("headless-chrome-124"), fingerprint("headless-chrome-125"))


@dataclass
class Params:
    rate_per_minute: float = 130.0    # login attempts per minute during a burst (x --rate-scale)
    bursts: int = 3
    burst_minutes: float = 15.0
    gap_minutes: float = 40.0         # quiet time between bursts
    ips: int = 700                    # proxy exits
    takeovers: int = 12               # accounts whose password was right
    unknown_share: float = 0.45       # tried e-mails with no account here
    start_h: float | None = None      # hours after the warm-up (default: 02:00 KST)


class CredentialStuffing(PlannedScenario):
    name = "credential_stuffing"
    summary = "bursts of failed logins over hundreds of proxy IPs, then takeovers that read victims' data"
    Params = Params
    at_fraction = 0.15
    kst_hour = 2.0

    def plan(self) -> list[pa.Table]:
        ctx, p, w = self.ctx, self.p, self.ctx.world
        if p.bursts < 1 or p.burst_minutes <= 0 or p.ips < 1 or p.takeovers < 0 or p.rate_per_minute <= 0:
            raise ValueError(f"--param {self.name}: bursts, burst_minutes, ips and rate_per_minute must be positive, "
                             f"takeovers not negative. Fix: e.g. {self.name}.bursts=3.")
        r = rng(ctx.seed, self.name)
        length = int((p.bursts * p.burst_minutes + (p.bursts - 1) * p.gap_minutes) * MINUTE)
        self.start = self.start_at(p.start_h, length)
        burst_starts = self.start + np.arange(p.bursts) * int((p.burst_minutes + p.gap_minutes) * MINUTE)
        per_burst = max(1, int(p.rate_per_minute * self.rate_scale * p.burst_minutes))
        times = np.sort(np.concatenate([b + r.integers(0, int(p.burst_minutes * MINUTE), per_burst)
                                        for b in burst_starts]))
        times = times[times < ctx.end]
        n = len(times)
        proxies = network.Pool(network.RESIDENTIAL_PROXIES)
        nets = proxies.pick_networks(r.random(p.ips))
        pool_ip = network.dotted(proxies.addresses(nets, r.integers(0, 2**62, p.ips).astype(np.uint64)))
        pool_asn, pool_cc = proxies.asn.take(pa.array(nets)), proxies.country.take(pa.array(nets))
        via = r.integers(0, p.ips, n)

        unknown = r.random(n) < p.unknown_share
        tried = w.member_id[r.integers(0, w.size, n)]
        principal = frames.null_where(frames.pa_str(tried), unknown)
        reasons = pa.array(np.where(unknown, '{"reason":"unknown_user"}', '{"reason":"bad_password"}'))
        ua = pa.array(np.array(TOOL_AGENTS)[r.integers(0, len(TOOL_AGENTS), n)])
        fp = pa.array(np.array(TOOL_FINGERPRINTS)[r.integers(0, len(TOOL_FINGERPRINTS), n)])
        vp = pa.array(via)
        attempts = {"principal_id": principal,
                    "principal_type": pa.array(np.where(unknown, "anonymous", "customer")),
                    "src_ip": pool_ip.take(vp), "src_asn": pool_asn.take(vp), "src_country": pool_cc.take(vp),
                    "user_agent": ua, "client_fingerprint": fp}
        out = [failed_login_events(attempts, np.arange(n), times, self.label, reason=reasons)]

        # Victims: members with a live account and a password reused elsewhere.
        live = np.flatnonzero(w.activity > 0)
        k = min(p.takeovers, len(live), n)
        self.victims: list[str] = []
        if k:
            victim = np.sort(r.choice(live, size=k, replace=False))
            self.victims = [str(v) for v in w.member_id[victim]]
            at = np.sort(r.choice(times, size=k, replace=False)) + SECOND
            slot = r.integers(0, p.ips, k)
            sp = pa.array(slot)
            issued = at + 30_000
            actors = {"principal_id": frames.pa_str(w.member_id[victim]), "principal_type": "customer",
                      "session_id": unique_ids(ctx.seed, 128 + self.code, 0, 0, k, "s-"),
                      "token_id": ids_for(ctx.seed, 64 + self.code, np.arange(k)), "key_id": WEB_KEY,
                      "token_issued_at": issued, "token_expires_at": issued + 2 * HOUR,
                      "src_ip": pool_ip.take(sp), "src_asn": pool_asn.take(sp), "src_country": pool_cc.take(sp),
                      "user_agent": TOOL_AGENTS[0], "client_fingerprint": TOOL_FINGERPRINTS[0]}
            out += login_events(actors, np.arange(k), at, self.label)
            views = [Page.ME_PROFILE, Page.ME_ADDRESSES, Page.ME_ORDERS]
            who = np.repeat(np.arange(k), len(views))
            pages = np.tile(np.array([int(v) for v in views]), k)
            keep = (pages != Page.ME_ORDERS) | (r.random(len(pages)) < 0.5)
            who, pages = who[keep], pages[keep]
            vt = at[who] + r.integers(20, 600, len(who)) * SECOND
            out += page_events(w, actors, who, pages, vt, victim[who], r, label=self.label)
        return out

    def context(self) -> dict:
        return {"start": when(self.start), "victims": self.victims}
