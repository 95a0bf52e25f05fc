"""A small retail history for scope tests: legitimate traffic plus a forged-token campaign,
a BOLA walk, an offboarded account and an insider, with the exact truth of each."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

T0 = datetime(2025, 4, 1, 0, 0, tzinfo=timezone.utc)
KEY = "k-2019-07"
APP_FP = "t13d1516h2_app"
TOOL_FP = "t13d1516h2_tool"
BOOK_FIELDS = ["name", "phone", "address", "entrance_code_masked"]


def _t(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


class World:
    """Builds events and remembers, per scenario, which (subject, field) pairs were exposed."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.truth: dict[str, set[tuple[str, str]]] = {}
        self.malicious: dict[str, list[str]] = {}
        self.n = 0

    def add(self, scenario: str | None = None, **e) -> dict:
        self.n += 1
        e.setdefault("event_id", f"ev{self.n:06d}")
        e.setdefault("kind", "access")
        e.setdefault("status", 200)
        self.events.append(e)
        if scenario:
            self.malicious.setdefault(scenario, []).append(e["event_id"])
            pairs = self.truth.setdefault(scenario, set())
            sf = e.get("subject_fields")
            for s in e.get("subject_ids") or []:
                for f in (sf or {}).get(s, e.get("fields") or []):
                    pairs.add((s, f))
        return e

    def login(self, member: str, token: str, minute: float, fp: str = APP_FP, ip: str = "121.130.0.1",
              asn: str = "AS4766", country: str = "KR") -> None:
        self.add(kind="token_issued", time=_t(minute), principal_id=member, principal_type="customer",
                 token_id=token, key_id=KEY, src_ip=ip, src_asn=asn, src_country=country, client_fingerprint=fp,
                 session_id=f"s-{token}")

    def read_book(self, member: str, recipients: list[str], token: str, minute: float, scenario: str | None = None,
                  fp: str = APP_FP, ip: str = "121.130.0.1", asn: str = "AS4766", country: str = "KR",
                  session: str | None = None) -> dict:
        sf = {member: ["name"], **{r: BOOK_FIELDS for r in recipients}}
        return self.add(scenario, time=_t(minute), principal_id=member, principal_type="customer", token_id=token,
                        key_id=KEY, src_ip=ip, src_asn=asn, src_country=country, client_fingerprint=fp,
                        session_id=session, endpoint="GET /api/me/addresses", subject_ids=[member, *recipients],
                        fields=BOOK_FIELDS, subject_fields=sf)

    def read_profile(self, member: str, token: str, minute: float, scenario: str | None = None, fp: str = APP_FP,
                     ip: str = "121.130.0.1", asn: str = "AS4766", country: str = "KR",
                     session: str | None = None) -> dict:
        return self.add(scenario, time=_t(minute), principal_id=member, principal_type="customer", token_id=token,
                        key_id=KEY, src_ip=ip, src_asn=asn, src_country=country, client_fingerprint=fp,
                        session_id=session, endpoint="GET /api/me/profile", subject_ids=[member],
                        fields=["name", "email"])


def build() -> World:
    w = World()
    members = [str(1000001 + i) for i in range(60)]
    # Legitimate customers: log in, read their profile and address book, all through the day.
    for i, m in enumerate(members[:40]):
        tok = f"tok-legit-{m}"
        w.login(m, tok, i * 7)
        w.read_profile(m, tok, i * 7 + 1, session=f"s-{tok}")
        w.read_book(m, [f"r-{i}"], tok, i * 7 + 2, session=f"s-{tok}")
        # a traveller: same app, abroad
        if i == 3:
            w.read_profile(m, tok, 600, ip="73.1.2.3", asn="AS7922", country="US", session=f"s-{tok}")
    # Forged tokens with the leaked key, from foreign hosting, walking member ids over ten hours.
    ips = [(f"3.80.0.{k}", "AS16509", "US") for k in range(1, 6)] + [(f"47.74.0.{k}", "AS45102", "SG")
                                                                   for k in range(1, 6)]
    for j, m in enumerate(members[10:50]):
        ip, asn, country = ips[j % len(ips)]
        tok = f"tok-forged-{m}"
        w.read_profile(m, tok, 300 + j * 15, "forged_token", fp=TOOL_FP, ip=ip, asn=asn, country=country)
        if j % 3 == 0:
            w.read_book(m, [f"r-{10 + j}", f"rx-{j}"], tok, 301 + j * 15, "forged_token", fp=TOOL_FP, ip=ip,
                        asn=asn, country=country)
    # BOLA: one customer walks other members' profiles through the path id.
    attacker = members[55]
    w.login(attacker, "tok-bola", 100)
    w.read_profile(attacker, "tok-bola", 101, session="s-tok-bola")
    for j, victim in enumerate(members[:12]):
        w.add("bola_enumeration", time=_t(110 + j), principal_id=attacker, principal_type="customer",
              token_id="tok-bola", key_id=KEY, src_ip="121.130.9.9", src_asn="AS4766", src_country="KR",
              client_fingerprint=APP_FP, session_id="s-tok-bola", endpoint="GET /api/members/{memberId}/profile",
              subject_ids=[victim], fields=["name", "email"],
              attributes=f'{{"path": "/api/members/{victim}/profile"}}')
    # An engineer's account used after offboarding; its earlier, legitimate admin reads stay out.
    w.add(kind="principal_offboarded", time=_t(200), principal_id="emp-30004", principal_type="employee")
    for j in range(5):
        w.add(time=_t(50 + j), principal_id="emp-30004", principal_type="employee", src_ip="10.12.40.4",
              client_fingerprint="office", endpoint="GET /admin/customers/{customerId}", reason_ref=f"T-{j}",
              subject_ids=[members[j]], fields=["name", "email", "phone", "address"])
    for j in range(6):
        w.add("stale_credential", time=_t(400 + j * 30), principal_id="emp-30004", principal_type="employee",
              src_ip="88.198.1.1", src_asn="AS24940", src_country="DE", client_fingerprint="office",
              endpoint="GET /admin/customers/{customerId}", subject_ids=[members[20 + j]],
              fields=["name", "email", "phone", "address"])
    # Insider: an agent who states tickets for real work (and now and then forgets one) opens a second
    # session and reads customers without any.
    w.add(time=_t(40), principal_id="emp-20001", principal_type="employee", src_ip="10.12.0.1",
          client_fingerprint="office", endpoint="GET /admin/customers/{customerId}", token_id="tok-desk",
          subject_ids=[members[35]], fields=["name", "email", "phone", "address"])
    for j in range(4):
        w.add(time=_t(30 + j), principal_id="emp-20001", principal_type="employee", src_ip="10.12.0.1",
              client_fingerprint="office", endpoint="GET /admin/customers/{customerId}", reason_ref=f"CS-{j}",
              token_id="tok-desk", subject_ids=[members[30 + j]], fields=["name", "email", "phone", "address"])
    for j in range(7):
        w.add("insider_browsing", time=_t(500 + j), principal_id="emp-20001", principal_type="employee",
              src_ip="10.12.0.1", client_fingerprint="office", token_id="tok-second", session_id="s-second",
              endpoint="GET /admin/customers/{customerId}",
              subject_ids=[members[40 + j]], fields=["name", "email", "phone", "address"])
    w.events.sort(key=lambda e: e["time"])
    return w


def incident_of(w: World, scenario: str, seed: int = 3) -> tuple[dict, list[str]]:
    """A Contract 5 incident holding the scenario's first `seed` malicious events, and their ids."""
    ids = w.malicious[scenario][:seed]
    first = next(e for e in w.events if e["event_id"] == ids[0])
    return ({"id": f"INC-{scenario}", "severity": "high", "status": "open", "first_seen": first["time"],
             "last_seen": first["time"], "detected_at": "2025-04-01T06:00:00+00:00",
             "aware_at": "2025-04-01T06:00:00+00:00", "detectors": [scenario], "entities": {}, "subjects": 0,
             "fields": [], "summary": f"{scenario} in a test history", "evidence": [], "sample_event_ids": ids},
            ids)
