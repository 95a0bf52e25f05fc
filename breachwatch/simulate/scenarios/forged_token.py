"""forged_token: the 2025 retailer breach, replayed at simulator scale.

An engineer who built part of the login system kept a copy of the key that
signs customers' web tokens. He left (principal_offboarded) and the key was
never rotated. Later he mints tokens offline, one per member id, whose subject
is that member: no login ever issued them (no token_issued), their claimed
issue time is months old and their lifetime a year. After a short test phase
he walks the member ids in order, active, dormant, withdrawn, never-issued and
beyond the last, from 2,313 foreign addresses behind one client stack, about
ten views a second, reading each member's profile (name, e-mail), address list
(names, phones, addresses, masked entrance codes of every recipient, non-members
included) and, rarely, an address's edit page (entrance code in clear) and the
order list, in the proportions the investigation counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from breachwatch.simulate import frames, network
from breachwatch.simulate.actors import page_events
from breachwatch.simulate.clients import fingerprint
from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.pages import Page
from breachwatch.simulate.randomness import ids_for, rng
from breachwatch.simulate.scenarios.base import Scenario, when
from breachwatch.simulate.timebase import DAY, HOUR, MINUTE, SECOND, next_kst_hour
from breachwatch.simulate.world import MEMBER_ID_BASE, WEB_KEY

TOOL_AGENTS = ("okhttp/4.9.3", "okhttp/4.9.2", "okhttp/4.9.1")
TOOL_FINGERPRINT = fingerprint("okhttp-4.9-jvm-headless", "1714")
WALK_BLOCK = 4096
TEST_DOMAIN_BIT = 1 << 40


@dataclass
class Params:
    ips: int = 2313                   # distinct foreign source addresses, rotated
    rate: float = 10.0                # page views per second (x --rate-scale)
    start_h: float | None = None      # campaign start, hours after the warm-up (default: 15:00 KST on day 1)
    max_hours: float = 24.0           # the campaign stops after this long, or when the walk ends
    test_requests: int = 6            # views in the test phase
    test_lead_h: float = 5.0          # the test phase comes this many hours before the campaign
    key_id: str = WEB_KEY             # the leaked signing key
    start_id: int | None = None       # first member id walked (default: the first id ever issued)
    overshoot: int = 300              # ids walked past the last issued member id before giving up
    address_views: float = 4.4        # address-list views per readable account (148.1 M / 33.7 M)
    edit_share: float = 0.0015        # address-edit views per readable account (50,474 / 33.7 M)
    orders_share: float = 0.003       # order-list views per readable account (102,682 / 33.7 M)
    token_age_days: float = 150.0     # minted tokens claim to be issued this long before the campaign
    token_lifetime_days: float = 365.0


class ForgedToken(Scenario):
    name = "forged_token"
    summary = "leaked signing key of an offboarded engineer; forged tokens walk member ids from 2,313 foreign IPs"
    Params = Params
    kst_hour = 10.0

    def __init__(self, ctx: SimContext, overrides: dict[str, Any], label: int, code: int) -> None:
        super().__init__(ctx, overrides, label, code)
        p, w = self.p, ctx.world
        if p.ips < 1 or p.rate <= 0 or p.max_hours <= 0 or p.test_requests < 0:
            raise ValueError(f"--param {self.name}: ips, rate, max_hours must be positive and test_requests "
                             "not negative. Fix: e.g. forged_token.ips=2313.")
        self.key = w.key(p.key_id)
        self._schedule()
        self.first_id = MEMBER_ID_BASE if p.start_id is None else int(p.start_id)
        self.end_id = w.last_issued_id + p.overshoot
        if self.first_id > self.end_id:
            raise ValueError(f"--param {self.name}.start_id={p.start_id}: beyond the last member id "
                             f"{w.last_issued_id}. Fix: start at or below it.")
        self.rate = p.rate * self.rate_scale
        self.iat = (self.campaign_start - int(p.token_age_days * DAY)) // HOUR * HOUR
        self.exp = self.iat + int(p.token_lifetime_days * DAY)
        self._pool(ctx)
        self._walk_state()
        self._test = self._test_phase()

    # -- schedule ------------------------------------------------------------
    def _schedule(self) -> None:
        ctx, p = self.ctx, self.p
        lead = int(p.test_lead_h * HOUR)
        if p.start_h is not None:
            self.campaign_start = self.start_at(p.start_h)
            self.test_start = max(ctx.attack_start, self.campaign_start - lead)
        else:
            test = next_kst_hour(ctx.attack_start, self.kst_hour)
            period = ctx.end - ctx.attack_start
            if test + lead + period // 4 > ctx.end:
                test, lead = ctx.attack_start, min(lead, period // 10)
            self.test_start, self.campaign_start = test, test + lead
        self.campaign_end = self.fit(self.campaign_start, int(p.max_hours * HOUR))
        owner = self.key.owner_id
        self.offboarded_at = None
        if owner.startswith("emp-"):
            # A day before the test phase, or as early as the log goes when it begins later than that.
            self.offboarded_at = max(ctx.start, self.test_start - DAY)
            ctx.departures[owner] = self.offboarded_at

    # -- source addresses ----------------------------------------------------
    def _pool(self, ctx: SimContext) -> None:
        r = rng(ctx.seed, self.name, "ips")
        pool = network.Pool(network.FOREIGN_HOSTING)
        chosen = np.zeros(0, dtype=np.int64)
        nets = np.zeros(0, dtype=np.int64)
        while len(chosen) < self.p.ips:
            k = int(self.p.ips * 1.3) + 16
            net = pool.pick_networks(r.random(k))
            ip = pool.addresses(net, r.integers(0, 2**63 - 1, k, dtype=np.int64).astype(np.uint64))
            allip, allnet = np.concatenate([chosen, ip]), np.concatenate([nets, net])
            _, first = np.unique(allip, return_index=True)
            keep = np.sort(first)
            chosen, nets = allip[keep], allnet[keep]
        chosen, nets = chosen[:self.p.ips], nets[:self.p.ips]
        order = r.permutation(self.p.ips)
        self.ip_text = network.dotted(chosen[order])
        netp = pa.array(nets[order])
        self.ip_asn, self.ip_country = pool.asn.take(netp), pool.country.take(netp)

    # -- the walk ------------------------------------------------------------
    def _walk_state(self) -> None:
        w, p = self.ctx.world, self.p
        ids = np.arange(self.first_id, self.end_id + 1)
        readable = w.readable(w.index_of(ids)).mean() if len(ids) else 0.0
        per_id = readable * (1 + p.address_views + p.edit_share + p.orders_share) + (1 - readable) * 2
        expected = min(self.rate * (self.campaign_end - self.campaign_start) / SECOND, len(ids) * per_id)
        # Consecutive requests share an address for a while, then the proxy rotates; block length is set
        # so each address is used about eight times over the campaign.
        self.block_mean = float(np.clip(expected / (p.ips * 8), 1.0, 60.0))
        self.walk_rng = rng(self.ctx.seed, self.name, "walk")
        self.ip_rng = rng(self.ctx.seed, self.name, "rotation")
        self.next_id = self.first_id
        self.q_ids = np.zeros(0, np.int64)
        self.q_pages = np.zeros(0, np.int64)
        self.block = -1
        self.block_left = 0
        self.done_at: int | None = None
        self.last_walked: int | None = None

    def _plan_ids(self) -> None:
        w, p, r = self.ctx.world, self.p, self.walk_rng
        ids = np.arange(self.next_id, min(self.next_id + WALK_BLOCK, self.end_id + 1))
        self.next_id += len(ids)
        ok = w.readable(w.index_of(ids))
        n = len(ids)
        addr = np.where(ok, 1 + r.poisson(max(p.address_views - 1, 0.0), n), 1)
        edit = ok & (r.random(n) < p.edit_share)
        orders = ok & (r.random(n) < p.orders_share)
        count = 1 + addr + edit + orders
        row = np.repeat(np.arange(n), count)
        pos = np.arange(count.sum()) - (np.cumsum(count) - count)[row]
        a = addr[row]
        pages = np.where(pos == 0, Page.ME_PROFILE,
                         np.where(pos <= a, Page.ME_ADDRESSES,
                                  np.where((pos == a + 1) & edit[row], Page.ME_ADDRESS, Page.ME_ORDERS)))
        self.q_ids = np.concatenate([self.q_ids, ids[row]])
        self.q_pages = np.concatenate([self.q_pages, pages.astype(np.int64)])

    def _take_views(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        while len(self.q_ids) < n and self.next_id <= self.end_id:
            self._plan_ids()
        n = min(n, len(self.q_ids))
        ids, pages = self.q_ids[:n], self.q_pages[:n]
        self.q_ids, self.q_pages = self.q_ids[n:], self.q_pages[n:]
        if n:
            self.last_walked = int(ids[-1])
        return ids, pages

    def _rotate(self, n: int) -> np.ndarray:
        """Pool position of each of the next n requests' source address."""
        out = np.empty(n, dtype=np.int64)
        filled = 0
        while filled < n:
            if self.block_left == 0:
                self.block += 1
                self.block_left = int(self.ip_rng.geometric(1.0 / self.block_mean))
            k = min(self.block_left, n - filled)
            out[filled:filled + k] = self.block % self.p.ips
            filled += k
            self.block_left -= k
        return out

    def _views(self, times: np.ndarray, ids: np.ndarray, pages: np.ndarray, ip_pos: np.ndarray,
               r: np.random.Generator, token_values: np.ndarray) -> list[pa.Table]:
        n = len(times)
        ipp = pa.array(ip_pos)
        actors = {
            "principal_id": frames.pa_str(ids), "principal_type": "customer",
            "token_id": ids_for(self.ctx.seed, 64 + self.code, token_values), "key_id": self.key.key_id,
            "token_issued_at": self.iat, "token_expires_at": self.exp,
            "src_ip": self.ip_text.take(ipp), "src_asn": self.ip_asn.take(ipp),
            "src_country": self.ip_country.take(ipp),
            "user_agent": pa.array(np.array(TOOL_AGENTS)[ip_pos % len(TOOL_AGENTS)]),
            "client_fingerprint": TOOL_FINGERPRINT,
        }
        member = self.ctx.world.index_of(ids)
        return page_events(self.ctx.world, actors, np.arange(n), pages, times, member, r, label=self.label)

    def _test_phase(self) -> list[pa.Table]:
        p, w = self.p, self.ctx.world
        if p.test_requests == 0:
            return []
        r = rng(self.ctx.seed, self.name, "test")
        candidates = np.flatnonzero(w.readable(np.arange(w.size)) & ~w.canary)
        ids = w.member_id[r.choice(candidates, size=p.test_requests, replace=len(candidates) < p.test_requests)]
        times = np.sort(self.test_start + r.integers(0, 20 * MINUTE, p.test_requests))
        pages = np.where(np.arange(p.test_requests) % 2 == 0, Page.ME_PROFILE, Page.ME_ADDRESSES)
        return self._views(times, ids, pages, np.arange(p.test_requests) % 2, r, ids + TEST_DOMAIN_BIT)

    # -- generator interface -------------------------------------------------
    def peak_rate(self) -> float:
        return self.rate * 1.2

    def window(self, w: Window) -> list[pa.Table]:
        out: list[pa.Table] = []
        if self.offboarded_at is not None and w.start <= self.offboarded_at < w.end:
            out.append(frames.events(1, 0, time=self.offboarded_at, kind="principal_offboarded",
                                     principal_id=self.key.owner_id, principal_type="employee",
                                     attributes='{"reason":"resigned"}'))
        if w.start <= self.test_start < w.end:
            out += self._test
        span = w.overlap(self.campaign_start, self.campaign_end)
        if span is None or self.done_at is not None:
            return out
        r = rng(self.ctx.seed, self.name, w.index)
        n = int(r.poisson(self.rate * (span[1] - span[0]) / SECOND))
        times = np.sort(r.integers(span[0], span[1], n))
        ids, pages = self._take_views(n)
        if len(ids) < n:
            times = times[:len(ids)]
            self.done_at = int(times[-1]) if len(times) else span[0]
        if len(ids):
            out += self._views(times, ids, pages, self._rotate(len(ids)), r, ids)
        return out

    def context(self) -> dict[str, Any]:
        return {
            "leaked_key": self.key.key_id,
            "key_owner": self.key.owner_id,
            "key_created_at": when(self.key.created_us),
            "owner_offboarded_at": when(self.offboarded_at),
            "test_phase_start": when(self.test_start),
            "campaign_start": when(self.campaign_start),
            "campaign_scheduled_end": when(self.campaign_end),
            "walk_first_id": self.first_id,
            "walk_last_id": self.last_walked,
            "last_issued_member_id": self.ctx.world.last_issued_id,
            "token_issued_at_claimed": when(self.iat),
            "token_expires_at_claimed": when(self.exp),
            "views_per_second": self.rate,
            "ip_pool": self.p.ips,
        }
