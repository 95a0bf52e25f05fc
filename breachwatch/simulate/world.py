"""The retailer's world: members, their address books, staff, partner sellers, services and signing keys.

Everything an event needs about a member is an array indexed by member
position, so traffic for a million sessions is drawn without Python loops.
Names, e-mails, phones and addresses are not needed by the events (which carry
ids and field names only); `people.py` generates them on demand, block by
block, for the customer files a run writes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.simulate import clients, network
from breachwatch.simulate.randomness import hash64, rng, unit
from breachwatch.simulate.timebase import DAY, HOUR, kst_midnight, to_us

MEMBER_ID_BASE = 1_000_001
# Ids that were handed out to sign-ups never completed: a sequential walk meets them as misses.
ID_GAP_RATE = 0.015
ACTIVE, DORMANT, WITHDRAWN = 0, 1, 2
STATUS_NAMES = ("active", "dormant", "withdrawn")
STATUS_SHARE = (0.80, 0.15, 0.05)
ADDRESS_ID_BASE = 50_000_001


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    owner_id: str
    created: str
    purpose: str

    @property
    def created_us(self) -> int:
        return to_us(datetime.fromisoformat(self.created).replace(tzinfo=timezone.utc))


# Long-lived keys, as the 2025 case reported (five to ten years): the web-token
# key's owner is an engineer, who kept a copy.
SIGNING_KEYS = (
    SigningKey("k-2019-07", "emp-30004", "2019-07-15T02:00:00", "customer access tokens (web)"),
    SigningKey("k-2022-03", "team-auth", "2022-03-02T01:30:00", "customer access tokens (app)"),
    SigningKey("k-bo-2021-01", "team-platform", "2021-01-11T05:00:00", "back-office session tokens"),
)
WEB_KEY, APP_KEY, BACK_OFFICE_KEY = (k.key_id for k in SIGNING_KEYS)
ENGINEERS = tuple(f"emp-{30001 + i}" for i in range(6))
SERVICES = ("svc-shipping-label", "svc-marketing-mailer")


@dataclass
class Principal:
    principal_id: str
    principal_type: str
    role: str
    created_us: int
    ip: str | None = None
    asn: str | None = None
    country: str | None = None
    client: clients.Client | None = None


@dataclass
class World:
    seed: int
    start_us: int
    member_id: np.ndarray            # int64, sorted
    status: np.ndarray               # int8: ACTIVE, DORMANT, WITHDRAWN
    canary: np.ndarray               # bool
    signup_us: np.ndarray
    activity: np.ndarray             # relative session rate; 0 for members who never log in
    client: np.ndarray               # index into clients.ALL_CUSTOMER_CLIENTS
    home_net: np.ndarray
    home_ip: np.ndarray
    mobile_net: np.ndarray
    has_self: np.ndarray             # bool: the member's own address is in the book
    n_recip: np.ndarray              # non-member recipients in the book
    recip_start: np.ndarray          # index of the member's first recipient
    book_start: np.ndarray           # index of the member's first address-book entry
    marketing_opt_in: np.ndarray     # bool
    abroad_from: np.ndarray          # -1, or the instant a travelling member left Korea
    abroad_to: np.ndarray
    agents: list[Principal] = field(default_factory=list)
    engineers: list[Principal] = field(default_factory=list)
    partners: list[Principal] = field(default_factory=list)
    services: list[Principal] = field(default_factory=list)
    keys: tuple[SigningKey, ...] = SIGNING_KEYS
    partner_share: np.ndarray = field(default_factory=lambda: np.ones(1))
    member_str: pa.Array = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def size(self) -> int:
        return len(self.member_id)

    @property
    def n_recipients(self) -> int:
        return int(self.n_recip.sum())

    @property
    def max_member_id(self) -> int:
        return int(self.member_id[-1])

    @property
    def last_issued_id(self) -> int:
        """The highest id handed out at sign-up (canaries from the catalog may sit above it)."""
        regular = self.member_id[~self.canary]
        return int(regular[-1]) if len(regular) else self.max_member_id

    @property
    def book_size(self) -> np.ndarray:
        return self.has_self.astype(np.int64) + self.n_recip

    def index_of(self, ids: np.ndarray) -> np.ndarray:
        """Member position for each numeric id, or -1 where no member has that id."""
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(self.member_id, ids)
        pos_c = np.minimum(pos, self.size - 1)
        return np.where(self.member_id[pos_c] == ids, pos_c, -1)

    def readable(self, idx: np.ndarray) -> np.ndarray:
        """Members whose pages return data: existing and not withdrawn (a withdrawn account is closed)."""
        idx = np.asarray(idx)
        ok = idx >= 0
        ok[ok] = self.status[idx[ok]] != WITHDRAWN
        return ok

    def key(self, key_id: str) -> SigningKey:
        for k in self.keys:
            if k.key_id == key_id:
                return k
        raise ValueError(f"signing key '{key_id}' does not exist. Fix: use one of "
                         f"{[k.key_id for k in self.keys]}.")

    def principal(self, principal_id: str) -> Principal:
        for p in self.agents + self.engineers + self.partners + self.services:
            if p.principal_id == principal_id:
                return p
        raise KeyError(principal_id)


_R_PREFIX, _EMPTY = pa.scalar("r-", pa.string()), pa.scalar("", pa.string())


def subject_strings(codes: np.ndarray) -> pa.Array:
    """Subject codes as ids: a member id (positive) as itself, recipient k (code -k) as 'r-k'."""
    codes = np.asarray(codes, dtype=np.int64)
    text = pc.cast(pa.array(np.abs(codes)), pa.string())
    if not (codes < 0).any():
        return text
    return pc.if_else(pa.array(codes < 0), pc.binary_join_element_wise(_R_PREFIX, text, _EMPTY), text)


def canary_ids(canaries: frozenset[str]) -> list[int]:
    out = []
    for c in sorted(canaries):
        if not c.isdigit():
            raise ValueError(f"canary '{c}' is not a numeric member id; the simulator makes canaries into "
                             "members, whose ids are numbers. Fix: use numeric ids under 'canaries:' in the catalog.")
        out.append(int(c))
    return out


def _member_ids(r: np.random.Generator, n: int, canaries: list[int]) -> tuple[np.ndarray, np.ndarray]:
    slots = int(n / (1 - ID_GAP_RATE) * 1.01) + 64
    while True:
        taken = np.flatnonzero(r.random(slots) >= ID_GAP_RATE)
        if len(taken) >= n:
            break
        slots *= 2
    ids = MEMBER_ID_BASE + taken[:n].astype(np.int64)
    all_ids = np.union1d(ids, np.array(canaries, dtype=np.int64))
    return all_ids, np.isin(all_ids, canaries)


def build_world(customers: int, seed: int, start_us: int, canaries: frozenset[str]) -> World:
    if customers < 100:
        raise ValueError(f"--customers {customers} is too small for a retailer. Fix: use at least 100.")
    r = rng(seed, "world")
    ids, canary = _member_ids(r, customers, canary_ids(canaries))
    n = len(ids)
    age = 1.0 - np.arange(n) / max(n - 1, 1)   # 1 = oldest account, 0 = newest
    first = to_us(datetime(2014, 3, 1, tzinfo=timezone.utc))
    signup = first + np.sort(r.random(n)) * (start_us - DAY - first)
    # Older accounts are more often dormant or withdrawn; the means stay at 80/15/5 %.
    u = r.random(n)
    p_withdrawn = STATUS_SHARE[2] * 2 * age
    p_dormant = STATUS_SHARE[1] * (0.5 + age)
    status = np.where(u < p_withdrawn, WITHDRAWN, np.where(u < p_withdrawn + p_dormant, DORMANT, ACTIVE))
    status = np.where(canary, ACTIVE, status).astype(np.int8)
    live = (status == ACTIVE) & ~canary
    activity = np.where(live, r.lognormal(0.0, 1.0, n), 0.0)

    device = np.minimum(np.searchsorted(np.cumsum(clients.DEVICE_SHARE), unit(seed, "device", ids), side="right"), 3)
    client = clients.CLASS_FIRST[device] + (hash64(seed, "client", ids) % clients.CLASS_COUNT[device].astype(
        np.uint64)).astype(np.int64)
    broadband = network.Pool(network.KR_BROADBAND)
    mobile = network.Pool(network.KR_MOBILE)
    home_net = broadband.pick_networks(unit(seed, "home-net", ids))
    home_ip = broadband.addresses(home_net, hash64(seed, "home-ip", ids))
    mobile_net = mobile.pick_networks(unit(seed, "mobile-net", ids))

    has_self = (r.random(n) < 0.85) | canary
    n_recip = np.where(canary, 0, r.choice(4, size=n, p=[0.82, 0.12, 0.04, 0.02])).astype(np.int64)
    recip_start = np.cumsum(n_recip) - n_recip
    book = has_self.astype(np.int64) + n_recip
    opt_in = live & (r.random(n) < 0.45)

    abroad_from = np.full(n, -1, dtype=np.int64)
    abroad_to = np.full(n, -1, dtype=np.int64)
    travellers = np.flatnonzero(live & (unit(seed, "traveller", ids) < 0.004))
    leave = kst_midnight(start_us) + r.integers(0, 4, len(travellers)) * DAY + r.integers(6, 20, len(travellers)) * HOUR
    abroad_from[travellers] = leave
    abroad_to[travellers] = leave + r.integers(3, 10, len(travellers)) * DAY

    world = World(seed=seed, start_us=start_us, member_id=ids, status=status, canary=canary,
                  signup_us=signup.astype(np.int64), activity=activity, client=client, home_net=home_net,
                  home_ip=home_ip, mobile_net=mobile_net, has_self=has_self, n_recip=n_recip,
                  recip_start=recip_start, book_start=np.cumsum(book) - book, marketing_opt_in=opt_in,
                  abroad_from=abroad_from, abroad_to=abroad_to)
    world.member_str = pc.cast(pa.array(ids), pa.string())
    _add_principals(world, r, customers)
    return world


def _add_principals(world: World, r: np.random.Generator, customers: int) -> None:
    start = world.start_us
    n_agents = int(np.clip(round(customers / 2500), 8, 4000))
    for i in range(n_agents):
        world.agents.append(Principal(f"emp-{20001 + i}", "employee", "customer-service",
                                      start - int(r.integers(60, 2500)) * DAY,
                                      ip=f"10.12.{i // 250}.{i % 250 + 1}", country="KR",
                                      client=clients.OFFICE_BROWSER))
    for i, eid in enumerate(ENGINEERS):
        world.engineers.append(Principal(eid, "employee", "engineer", start - int(r.integers(400, 3000)) * DAY,
                                         ip=f"10.12.40.{i + 1}", country="KR", client=clients.OFFICE_BROWSER))
    n_partners = int(np.clip(round(customers / 4000), 5, 2000))
    pool = network.Pool(network.KR_BROADBAND + network.KR_CLOUD)
    nets = pool.pick_networks(r.random(n_partners))
    ips = network.dotted(pool.addresses(nets, r.integers(0, 2**62, n_partners).astype(np.uint64))).to_pylist()
    for i in range(n_partners):
        net = pool.networks[nets[i]]
        world.partners.append(Principal(f"p-{1001 + i}", "partner", "seller", start - int(r.integers(90, 2000)) * DAY,
                                        ip=ips[i], asn=net.asn, country=net.country,
                                        client=clients.SELLER_TOOLS[int(r.integers(0, len(clients.SELLER_TOOLS)))]))
    # A few big sellers take most orders (Zipf-like), as on any marketplace.
    world.partner_share = 1.0 / np.arange(1, n_partners + 1) ** 1.1
    world.partner_share /= world.partner_share.sum()
    client = {"svc-shipping-label": clients.SHIPPING_LABEL, "svc-marketing-mailer": clients.MAILER}
    for i, sid in enumerate(SERVICES):
        world.services.append(Principal(sid, "service", sid.removeprefix("svc-"), start - (900 + 300 * i) * DAY,
                                        ip=f"10.30.1.{15 + i}", country="KR", client=client[sid]))
