"""Customers' own sessions: log in, browse products, now and then look at their profile, addresses, orders.

Sessions follow the Korean daily cycle (night trough, evening peak) and each
member's own rate (a few heavy shoppers, many occasional ones). Members use the
app or a browser, from their home broadband address or a mobile carrier; a few
travel abroad and appear from foreign hotel networks. Dormant, withdrawn and
canary members never log in.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from breachwatch.simulate import clients, frames, network
from breachwatch.simulate.actors import failed_login_events, login_events, page_events
from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.pages import Page
from breachwatch.simulate.randomness import rng, unique_ids, unit
from breachwatch.simulate.timebase import DAY, HOUR, KST_HOURLY_SHARE, MINUTE, SECOND, kst_hour, kst_weekday
from breachwatch.simulate.world import APP_KEY, WEB_KEY, World

SESSIONS_PER_MEMBER_DAY = 0.35
WEEKEND_FACTOR = 1.12
MEAN_PAGES = 9.0
MAX_PAGES = 40
MAX_SESSION = 55 * MINUTE
FAILED_LOGIN_SHARE = 0.04
APP_TOKEN_LIFETIME = 14 * DAY
WEB_TOKEN_LIFETIME = 2 * HOUR
# What a page view is, by share of views. Personal pages are a small minority.
PAGE_MIX = {
    Page.PRODUCT: 0.47, Page.SEARCH: 0.21, Page.CATEGORY: 0.15, Page.ORDER_CREATE: 0.009,
    Page.ME_ORDERS: 0.06, Page.ME_PROFILE: 0.03, Page.ME_ADDRESSES: 0.03, Page.ME_ADDRESS: 0.005,
    Page.MEMBER_PROFILE: 0.016,
}

_ALL = clients.ALL_CUSTOMER_CLIENTS
_CLIENT_UA = pa.array([c.user_agent for c in _ALL])
_CLIENT_FP = pa.array([c.fingerprint for c in _ALL])
_CLIENT_CLASS = np.repeat(np.arange(len(clients.DEVICE_CLASSES)), clients.CLASS_COUNT)
_CLIENT_IS_APP = clients.IS_APP[_CLIENT_CLASS]
_MOBILE_CAPABLE = _CLIENT_CLASS != clients.DEVICE_CLASSES.index("web-pc")


def peak_event_rate(world: World) -> float:
    """Customer events per second in the busiest hour (with margin for chance)."""
    per_day = SESSIONS_PER_MEMBER_DAY * int((world.activity > 0).sum())
    per_session = MEAN_PAGES + 2 + FAILED_LOGIN_SHARE
    return per_day * KST_HOURLY_SHARE.max() * WEEKEND_FACTOR / 3600 * per_session * 1.3


class CustomerSessions:
    """Members' sessions; a subclass may draw extra ones (a sale day) with its own mix, weights and scale."""
    code = 1
    name = "customer_sessions"

    def __init__(self, ctx: SimContext, page_mix: dict[Page, float] = PAGE_MIX,
                 weight: np.ndarray | None = None) -> None:
        self.ctx = ctx
        w = ctx.world
        self.eligible = np.flatnonzero(w.activity > 0)
        # Who logs in, by relative rate: each member's own activity unless a subclass weighs them otherwise.
        self.cum = np.cumsum(w.activity[self.eligible] if weight is None else weight[self.eligible])
        self.per_day = SESSIONS_PER_MEMBER_DAY * len(self.eligible)
        self.pages = np.array([int(p) for p in page_mix])
        self.page_p = np.array(list(page_mix.values())) / sum(page_mix.values())
        self.home = network.Pool(network.KR_BROADBAND)
        self.mobile = network.Pool(network.KR_MOBILE)
        self.abroad = network.Pool(network.FOREIGN_CONSUMER)
        pools = (self.home, self.mobile, self.abroad)
        self.networks = tuple(n for p in pools for n in p.networks)
        self.net_asn = pa.concat_arrays([p.asn for p in pools])
        self.net_country = pa.concat_arrays([p.country for p in pools])
        self.net_offset = np.cumsum([0] + [len(p.networks) for p in pools])[:-1]

    def peak_rate(self) -> float:
        return peak_event_rate(self.ctx.world)

    def scale(self, w: Window) -> float:
        """How many sessions window w has, relative to an ordinary day's."""
        return 1.0

    def window(self, w: Window) -> list[pa.Table]:
        ctx, world = self.ctx, self.ctx.world
        scale = self.scale(w)
        if scale <= 0:
            return []
        r = rng(ctx.seed, self.name, w.index)
        factor = WEEKEND_FACTOR if kst_weekday(w.start) >= 5 else 1.0
        mean = self.per_day * KST_HOURLY_SHARE[kst_hour(w.start)] * factor * (w.end - w.start) / HOUR * scale
        n = int(r.poisson(mean))
        if n == 0 or len(self.eligible) == 0:
            return []
        member = self.eligible[np.searchsorted(self.cum, r.random(n) * self.cum[-1], side="right")
                               .clip(0, len(self.eligible) - 1)]
        start = np.sort(w.start + r.integers(0, w.end - w.start, n))
        client = world.client[member]
        app = _CLIENT_IS_APP[client]
        actors = self._actors(w, r, member, start, client, app)

        failed = r.random(n) < FAILED_LOGIN_SHARE
        login_at = start + np.where(failed, r.integers(5, 40, n) * SECOND, 0)
        out = []
        if failed.any():
            out.append(failed_login_events(actors, np.flatnonzero(failed), start[failed]))
        actors["token_issued_at"] = login_at + 30_000
        actors["token_expires_at"] = login_at + 30_000 + np.where(app, APP_TOKEN_LIFETIME, WEB_TOKEN_LIFETIME)
        method = pa.array(np.where(app, '{"method":"app_refresh"}', '{"method":"password"}'))
        out += login_events(actors, np.arange(n), login_at, method=method)

        pages_per = np.minimum(r.geometric(1.0 / MEAN_PAGES, n), MAX_PAGES)
        sess = np.repeat(np.arange(n), pages_per)
        gaps = (r.exponential(30.0, len(sess)) * SECOND).astype(np.int64) + 2 * SECOND
        csum = np.cumsum(gaps)
        first = np.cumsum(pages_per) - pages_per
        since_login = csum - (csum[first] - gaps[first])[sess] + SECOND
        keep = since_login <= MAX_SESSION
        sess, since_login = sess[keep], since_login[keep]
        times = login_at[sess] + since_login
        pages = r.choice(self.pages, size=len(sess), p=self.page_p)
        # Only members with an address can check out.
        no_address = world.book_size[member[sess]] == 0
        pages[(pages == Page.ORDER_CREATE) & no_address] = Page.PRODUCT
        out += self._orders(r, actors, sess, pages, times, member)
        rest = pages != Page.ORDER_CREATE
        out += page_events(world, actors, sess[rest], pages[rest], times[rest], member[sess[rest]], r,
                           target_id=world.member_id[member[sess[rest]]])
        return out

    def _actors(self, w: Window, r: np.random.Generator, member: np.ndarray, start: np.ndarray,
                client: np.ndarray, app: np.ndarray) -> dict:
        world, n = self.ctx.world, len(member)
        effects = self.ctx.effects
        away = effects.abroad(member, start, (world.abroad_from[member] <= start) & (start < world.abroad_to[member]))
        foreign = away & (r.random(n) < 0.6)
        # Abroad on a Korean SIM, traffic is home-routed: the member still shows a Korean mobile address.
        mobile = ~foreign & (away | (_MOBILE_CAPABLE[client] & (r.random(n) < 0.55)))
        home = ~foreign & ~mobile
        net = np.empty(n, dtype=np.int64)
        ip = np.empty(n, dtype=np.int64)
        h = r.integers(0, 2**63 - 1, n, dtype=np.int64).astype(np.uint64)
        net[home] = world.home_net[member[home]] + self.net_offset[0]
        ip[home] = world.home_ip[member[home]]
        mnet = world.mobile_net[member[mobile]]
        net[mobile] = mnet + self.net_offset[1]
        ip[mobile] = self.mobile.addresses(mnet, h[mobile])
        fnet = self.abroad.pick_networks(unit(self.ctx.seed, "abroad-net", world.member_id[member[foreign]]))
        net[foreign] = fnet + self.net_offset[2]
        ip[foreign] = self.abroad.addresses(fnet, h[foreign])
        ip = effects.addresses(self.networks, net, ip, home, member, start, h)
        netp = pa.array(net)
        cp = pa.array(client)
        ua, fp = effects.clients(client, start, _CLIENT_UA.take(cp), _CLIENT_FP.take(cp))
        return {
            "principal_id": world.member_str.take(pa.array(member)),
            "principal_type": "customer",
            "session_id": unique_ids(self.ctx.seed, 128 + self.code, w.index, 0, n, "s-"),
            "token_id": unique_ids(self.ctx.seed, 64 + self.code, w.index, 0, n),
            "key_id": pa.array(np.where(app, APP_KEY, WEB_KEY)),
            "src_ip": network.dotted(ip),
            "src_asn": self.net_asn.take(netp),
            "src_country": self.net_country.take(netp),
            "user_agent": ua,
            "client_fingerprint": fp,
        }

    def _orders(self, r: np.random.Generator, actors: dict, sess: np.ndarray, pages: np.ndarray,
                times: np.ndarray, member: np.ndarray) -> list[pa.Table]:
        sel = np.flatnonzero(pages == Page.ORDER_CREATE)
        if len(sel) == 0:
            return []
        sel = sel[np.argsort(times[sel], kind="stable")]
        k = self.ctx.orders.place(times[sel], member[sess[sel]], r)
        oid = frames.pa_str(self.ctx.orders.order_id(k))
        cols = frames.take_rows(actors, sess[sel])
        return [frames.events(len(sel), 0, time=times[sel], kind="access", endpoint="POST /api/orders",
                              action="create", status=201, bytes_out=r.integers(900, 1600, len(sel)),
                              attributes=frames.json_attr("order_id", oid), **cols)]
