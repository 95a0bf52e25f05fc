"""A second, differently-shaped service for detection tests: a telecom self-care API.

Nothing here resembles the retail simulator: account ids are opaque tokens,
not sequential numbers; endpoints, principals, networks and clients have other
names; the home country is AU. Benign traffic has the surprises a naive
detector flags (a promotion day with triple traffic, an app release that
changes every client at once, a carrier renumbering its ranges, customers
travelling, a new batch job); attacks are injected on request, each labelled
so a test can ask whether its events ended up in an incident.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from breachwatch.contract.catalog import parse_catalog
from breachwatch.contract.event import ARROW_SCHEMA

START = datetime(2025, 3, 3, 0, 0, 0)   # a Monday, UTC (10:00 in Sydney)
HOME_ASNS = ("AS1221", "AS4804", "AS7545")
HOME_NETS = ("58.160", "101.160", "120.148")
RENUMBERED_NETS = ("49.180", "110.140", "1.144")
TRAVEL = (("AS2516", "JP", "106.130"), ("AS7922", "US", "73.44"), ("AS3215", "FR", "90.12"))
HOSTING = (("AS14061", "NL", "188.166"), ("AS24940", "DE", "95.217"), ("AS16276", "FR", "51.77"))
CLIENTS = (("SelfCare/4.2.0 (iOS 17.4)", "ja4_ios_selfcare_42"), ("SelfCare/4.2.0 (Android 14)", "ja4_and_selfcare_42"),
           ("Mozilla/5.0 (Macintosh) Safari/17.3", "ja4_safari_17"))
NEW_CLIENTS = (("SelfCare/5.0.0 (iOS 17.5)", "ja4_ios_selfcare_50"), ("SelfCare/5.0.0 (Android 14)", "ja4_and_selfcare_50"),
               ("Mozilla/5.0 (Macintosh) Safari/17.3", "ja4_safari_17"))
TOOL = ("Go-http-client/1.1", "ja4_go_stdlib_121")
SCRIPT = ("python-requests/2.31.0", "ja4_py_requests_231")

CATALOG = """
version: 1
company: {name: TeleCare Pty Ltd, customer_base_country: AU}
fields:
  name: {category: personal}
  phone: {category: personal}
  address: {category: personal}
  plan: {category: personal}
endpoints:
  - route: GET /v3/self/overview
    audience: customer
    fields: [name, plan]
    subjects: {from: principal}
  - route: GET /v3/accounts/{acct}/contact
    audience: customer
    fields: [name, phone, address]
    subjects: {from: path, param: acct}
  - route: GET /ops/accounts/{acct}
    audience: back_office
    fields: [name, phone, address, plan]
    subjects: {from: path, param: acct}
  - route: GET /jobs/billing/export
    audience: service
    fields: [name, address, plan]
canaries: ["acc_c4n4ry00c4n4ry00"]
detectors:
  engine:
    feeds:
      issuance: {kinds: [token_issued, token_revoked, login, login_failed], allowed_lateness: 2s, silent_after: 15m}
      gateway: {kinds: [access, token_denied], allowed_lateness: 10s, silent_after: 15m}
      directory: {kinds: [principal_created, principal_offboarded, subject_status, key_created, key_rotated,
                          key_retired, key_revoked]}
"""


def catalog():
    return parse_catalog(CATALOG, "<telecare catalog>")


def _opaque(prefix: str, n: int, salt: str) -> list[str]:
    return [f"{prefix}_{hashlib.sha256(f'{salt}{i}'.encode()).hexdigest()[:16]}" for i in range(n)]


@dataclass
class World:
    users: int = 1500
    seed: int = 7
    accounts: list[str] = field(init=False)
    rng: np.random.Generator = field(init=False)
    rows: list[dict] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)   # event_id -> attack name
    _n: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.accounts = _opaque("acc", self.users, "acct")
        self.home = self.rng.integers(0, len(HOME_ASNS), self.users)
        self.host = self.rng.integers(1, 250, (self.users, 2))
        self.client = self.rng.integers(0, len(CLIENTS), self.users)
        self.rows.append(self._ev(START - timedelta(days=30), "key_created", key_id="kid-2024a", owner_id="team-identity"))

    # -- events --------------------------------------------------------------------------
    def _ev(self, t: datetime, kind: str, label: str | None = None, **cols) -> dict:
        self._n += 1
        eid = f"tc-{self._n:08d}"
        row = {"event_id": eid, "time": t, "kind": kind, **cols}
        self.rows.append(row)
        if label:
            self.labels[eid] = label
        return row

    def session(self, t: datetime, u: int, *, renumbered: bool = False, clients=CLIENTS, abroad=None,
                reads: int = 4, label: str | None = None) -> None:
        acct = self.accounts[u]
        if abroad:
            asn, cc, net = abroad
            ip = f"{net}.{self.host[u, 0]}.{self.host[u, 1]}"
        else:
            net = (RENUMBERED_NETS if renumbered else HOME_NETS)[self.home[u]]
            asn, cc, ip = HOME_ASNS[self.home[u]], "AU", f"{net}.{self.host[u, 0]}.{self.host[u, 1]}"
        ua, fp = clients[self.client[u]]
        token = hashlib.sha256(f"{acct}{t.isoformat()}".encode()).hexdigest()[:20]
        common = dict(principal_id=acct, principal_type="customer", src_ip=ip, src_asn=asn, src_country=cc,
                      user_agent=ua, client_fingerprint=fp)
        self._ev(t, "login", label, **common)
        self._ev(t + timedelta(milliseconds=40), "token_issued", label, token_id=token, key_id="kid-2024a",
                 token_issued_at=t, token_expires_at=t + timedelta(hours=1), **common)
        for k in range(reads):
            at = t + timedelta(seconds=5 + 20 * k)
            own = self.rng.random() < 0.5
            self._ev(at, "access", label, token_id=token, key_id="kid-2024a", token_issued_at=t,
                     token_expires_at=t + timedelta(hours=1), status=200, bytes_out=900,
                     endpoint="GET /v3/self/overview" if own else f"GET /v3/accounts/{acct}/contact",
                     subject_ids=[acct], fields=["name", "plan"] if own else ["name", "phone", "address"], **common)

    def benign_day(self, day: int, *, scale: float = 1.0, renumbered: bool = False, clients=CLIENTS,
                   travellers: float = 0.0, batch_job: str | None = None) -> None:
        base = START + timedelta(days=day)
        n = int(self.users * 0.6 * scale)
        who = self.rng.integers(0, self.users, n)
        when = np.sort(self.rng.integers(0, 86_400, n))
        away = set(self.rng.choice(self.users, int(self.users * travellers), replace=False)) if travellers else set()
        for u, s in zip(who, when):
            self.session(base + timedelta(seconds=int(s)), int(u), renumbered=renumbered, clients=clients,
                         abroad=TRAVEL[int(u) % len(TRAVEL)] if int(u) in away else None)
        self._staff(base)
        self._billing(base, "svc:billing-export", 300, hour=2)
        if batch_job:
            self._billing(base, batch_job, 400, hour=3)

    def _staff(self, base: datetime) -> None:
        for a in range(4):
            agent = f"agent.{['mia', 'noah', 'ava', 'liam'][a]}"
            t = base + timedelta(hours=1)
            for k in range(40):
                u = int(self.rng.integers(0, self.users))
                self._ev(t + timedelta(minutes=12 * k), "access", principal_id=agent, principal_type="employee",
                         src_ip=f"10.4.0.{10 + a}", src_country="AU", user_agent="Mozilla/5.0 Edge/122",
                         client_fingerprint="ja4_edge_122", endpoint=f"GET /ops/accounts/{self.accounts[u]}",
                         subject_ids=[self.accounts[u]], fields=["name", "phone", "address", "plan"],
                         reason_ref=f"CASE-{u:05d}", status=200, bytes_out=1500)

    def _billing(self, base: datetime, job: str, n: int, hour: int) -> None:
        t = base + timedelta(hours=hour)
        picks = self.rng.choice(self.users, n, replace=False)
        for k in range(0, n, 100):
            self._ev(t + timedelta(seconds=k), "access", principal_id=job, principal_type="service",
                     src_ip="10.9.0.5", src_country="AU", user_agent="batch/2.1", client_fingerprint="ja4_py_batch",
                     endpoint="GET /jobs/billing/export", subject_ids=[self.accounts[int(i)] for i in picks[k:k + 100]],
                     fields=["name", "address", "plan"], status=200, bytes_out=90_000)

    # -- attacks -------------------------------------------------------------------------
    def forged(self, day: int, hour: float, *, reads: int = 120, rate_s: float = 2.0, label: str = "forged") -> datetime:
        """Tokens minted with a stolen key for many accounts, from rented servers abroad; no login issued them."""
        t0 = START + timedelta(days=day, hours=hour)
        victims = self.rng.choice(self.users, reads, replace=False)
        for k, u in enumerate(victims):
            t = t0 + timedelta(seconds=k * rate_s)
            asn, cc, net = HOSTING[k % len(HOSTING)]
            acct = self.accounts[int(u)]
            tok = hashlib.sha256(f"forged{acct}".encode()).hexdigest()[:20]
            self._ev(t, "access", label, principal_id=acct, principal_type="customer", token_id=tok,
                     key_id="kid-2024a", token_issued_at=t - timedelta(minutes=3),
                     token_expires_at=t + timedelta(minutes=57), src_ip=f"{net}.{k % 200}.{7 + k % 40}", src_asn=asn,
                     src_country=cc, user_agent=TOOL[0], client_fingerprint=TOOL[1],
                     endpoint=f"GET /v3/accounts/{acct}/contact", subject_ids=[acct],
                     fields=["name", "phone", "address"], status=200, bytes_out=900)
        return t0

    def bola(self, day: int, hour: float, *, reads: int = 200, label: str = "bola", client=TOOL) -> datetime:
        """One customer's valid token reading other customers' contact details, ids picked from a leaked list."""
        t0 = START + timedelta(days=day, hours=hour)
        me = 11
        self.session(t0, me, label=label, reads=1)
        acct = self.accounts[me]
        token = hashlib.sha256(f"{acct}{t0.isoformat()}".encode()).hexdigest()[:20]
        for k, u in enumerate(self.rng.choice(self.users, reads, replace=False)):
            other = self.accounts[int(u)]
            self._ev(t0 + timedelta(seconds=60 + 3 * k), "access", label, principal_id=acct, principal_type="customer",
                     token_id=token, key_id="kid-2024a", token_issued_at=t0, token_expires_at=t0 + timedelta(hours=1),
                     src_ip=f"{HOME_NETS[self.home[me]]}.{self.host[me, 0]}.{self.host[me, 1]}",
                     src_asn=HOME_ASNS[self.home[me]], src_country="AU", user_agent=client[0],
                     client_fingerprint=client[1], endpoint=f"GET /v3/accounts/{other}/contact", subject_ids=[other],
                     fields=["name", "phone", "address"], status=200, bytes_out=900)
        return t0

    def canary(self, day: int, hour: float, label: str = "canary") -> datetime:
        t = START + timedelta(days=day, hours=hour)
        self._ev(t, "access", label, principal_id="agent.noah", principal_type="employee", src_ip="10.4.0.11",
                 src_country="AU", user_agent="Mozilla/5.0 Edge/122", client_fingerprint="ja4_edge_122",
                 endpoint="GET /ops/accounts/acc_c4n4ry00c4n4ry00", subject_ids=["acc_c4n4ry00c4n4ry00"],
                 fields=["name", "phone", "address", "plan"], reason_ref="CASE-77777", status=200, bytes_out=1500)
        return t

    # -- output --------------------------------------------------------------------------
    def tables(self, *, drop_kinds: tuple[str, ...] = (), chunk: int = 50_000) -> list[pa.Table]:
        rows = sorted((r for r in self.rows if r["kind"] not in drop_kinds), key=lambda r: (r["time"], r["event_id"]))
        cols = {f.name: [r.get(f.name) for r in rows] for f in ARROW_SCHEMA}
        table = pa.Table.from_pydict(cols, schema=ARROW_SCHEMA)
        return [table.slice(i, chunk) for i in range(0, table.num_rows, chunk)]

