"""When the company became aware, which duties that triggers, and which deadlines were missed.

The clocks run from `aware_at`. It defaults to the incident's first
high-severity alert, because the authorities, not the company, decide when it
became aware; it moves only through `set_aware_at`, which records who moved it
and why, and every report shows the history.

Duties (Korean law first, then the GDPR equivalents):
- PIPA Art. 34(1) and decree Art. 39: notify every affected person within 72 hours.
- PIPA Art. 34(3) and decree Art. 40: report to the PIPC or KISA within 72 hours when
  1,000 or more people are affected, unique identifiers (or sensitive data) are involved,
  or the access came from outside.
- Network Act Art. 48-3: report an intrusion to the science ministry or KISA within 24 hours.
- GDPR Art. 33: notify the supervisory authority within 72 hours; Art. 34: tell the people
  without undue delay when the risk to them is high (applies when `policy.gdpr_applies`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from breachwatch.contract.catalog import Catalog

PIPA_THRESHOLD = 1000


@dataclass(frozen=True)
class Duty:
    id: str
    law: str
    title: str
    title_ko: str
    hours: int | None          # None: "without undue delay", shown against the 72-hour mark
    applies: bool
    why: str
    why_ko: str


@dataclass
class DutyStatus:
    duty: Duty
    deadline: datetime
    done_at: datetime | None
    state: str                 # done, late, missed, pending, not_required

    @property
    def missed(self) -> bool:
        return self.state in ("late", "missed")

    def as_dict(self) -> dict[str, Any]:
        d = self.duty
        return {"id": d.id, "law": d.law, "title": d.title, "title_ko": d.title_ko, "applies": d.applies,
                "why": d.why, "why_ko": d.why_ko, "hours": d.hours, "deadline": _iso(self.deadline),
                "done_at": _iso(self.done_at), "state": self.state, "missed": self.missed}


@dataclass
class Awareness:
    aware_at: datetime
    source: str                # incident (first high-severity alert) or recorded
    history: list[dict[str, Any]] = field(default_factory=list)


def _iso(t: datetime | None) -> str | None:
    return t.replace(tzinfo=timezone.utc).isoformat(timespec="seconds") if t else None


def parse_time(text: str, what: str) -> datetime:
    """An instant written as RFC 3339 with its UTC offset (a time without one is ambiguous here: refused)."""
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} '{text}' is not a time. Fix: write RFC 3339 with an offset, "
                         "e.g. 2025-11-17T16:00:00+09:00.") from None
    if t.tzinfo is None:
        raise ValueError(f"{what} '{text}' has no UTC offset. Fix: add one, e.g. 2025-11-17T16:00:00+09:00.")
    return t.astimezone(timezone.utc)


def _naive_utc(t: datetime | str) -> datetime:
    if isinstance(t, str):
        t = datetime.fromisoformat(t.replace("Z", "+00:00"))
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc).replace(tzinfo=None)
    return t


def default_aware_at(incident: dict[str, Any]) -> datetime:
    """The incident's own `aware_at` (its first high-severity alert), else when it was detected."""
    for key in ("aware_at", "detected_at", "first_seen"):
        if incident.get(key):
            return _naive_utc(incident[key])
    raise ValueError(f"incident {incident.get('id')!r} has no aware_at, detected_at or first_seen. "
                     "Fix: pass an incident in Contract 5 shape.")


def awareness(con: duckdb.DuckDBPyConnection, incident: dict[str, Any]) -> Awareness:
    rows = con.execute("SELECT aware_at, previous, reason, changed_by, changed_at FROM scope_aware_at "
                       "WHERE incident_id = ? ORDER BY changed_at, aware_at", [incident["id"]]).fetchall()
    history = [{"aware_at": _iso(a), "previous": _iso(p), "reason": r, "changed_by": b, "changed_at": _iso(c)}
               for a, p, r, b, c in rows]
    if rows:
        return Awareness(rows[-1][0], "recorded", history)
    return Awareness(default_aware_at(incident), "incident", history)


def set_aware_at(con: duckdb.DuckDBPyConnection, incident: dict[str, Any], at: datetime | str, *, reason: str,
                 by: str, now: datetime | None = None) -> Awareness:
    """Move the awareness time, recording the reason and who decided it."""
    if not reason or not reason.strip():
        raise ValueError("aware_at can only be changed with a reason. Fix: pass --reason \"...\" saying why "
                         "(e.g. the regulator's finding).")
    if not by or not by.strip():
        raise ValueError("aware_at changes must name who made them. Fix: pass --by NAME.")
    new = _naive_utc(at)
    current = awareness(con, incident)
    changed = _naive_utc(now or datetime.now(timezone.utc))
    con.execute("INSERT INTO scope_aware_at VALUES (?, ?, ?, ?, ?, ?)",
                [incident["id"], new, current.aware_at, reason.strip(), by.strip(), changed])
    return awareness(con, incident)


def record_duty_done(con: duckdb.DuckDBPyConnection, incident_id: str, duty_id: str, done_at: datetime | str, *,
                     by: str, note: str | None = None, now: datetime | None = None) -> None:
    if duty_id not in DUTY_IDS:
        raise ValueError(f"unknown duty '{duty_id}'. Fix: use one of {', '.join(DUTY_IDS)}.")
    con.execute("INSERT INTO scope_duties VALUES (?, ?, ?, ?, ?, ?)",
                [incident_id, duty_id, _naive_utc(done_at), by, note,
                 _naive_utc(now or datetime.now(timezone.utc))])


DUTY_IDS = ("pipa_notice", "pipa_regulator", "network_act_intrusion", "gdpr_art33", "gdpr_art34")


def duties(facts: dict[str, Any], catalog: Catalog) -> list[Duty]:
    """Which duties apply, each with the reason in plain words.

    `facts`: subjects (int), unique_identifiers (bool), sensitive (bool), external (bool).
    """
    n, uid, sens, ext = facts["subjects"], facts["unique_identifiers"], facts["sensitive"], facts["external"]
    reasons, reasons_ko = [], []
    if n >= PIPA_THRESHOLD:
        reasons.append(f"{n:,} people (1,000 or more)")
        reasons_ko.append(f"정보주체 {n:,}명(1천명 이상)")
    if uid:
        reasons.append("unique identifiers involved")
        reasons_ko.append("고유식별정보 포함")
    if sens:
        reasons.append("sensitive data involved")
        reasons_ko.append("민감정보 포함")
    if ext:
        reasons.append("access from outside")
        reasons_ko.append("외부로부터의 불법적인 접근")
    report = bool(reasons)
    gdpr = bool(catalog.policy.get("gdpr_applies", False))
    none, none_ko = "none of: 1,000 or more people, unique identifiers, access from outside", \
        "1천명 이상·고유식별정보·외부 접근 중 해당 없음"
    return [
        Duty("pipa_notice", "PIPA Art. 34(1)", "Notify every affected person", "정보주체에게 유출 통지",
             72, n > 0, f"{n:,} people affected", f"정보주체 {n:,}명"),
        Duty("pipa_regulator", "PIPA Art. 34(3)", "Report to the PIPC or KISA", "개인정보보호위원회 또는 KISA 신고",
             72, report, "; ".join(reasons) or none, ", ".join(reasons_ko) or none_ko),
        Duty("network_act_intrusion", "Network Act Art. 48-3", "Report the intrusion to the science ministry or KISA",
             "과학기술정보통신부 또는 KISA에 침해사고 신고", 24, ext,
             "access from outside (an intrusion)" if ext else "no access from outside",
             "외부로부터의 침해" if ext else "외부 침해 아님"),
        Duty("gdpr_art33", "GDPR Art. 33", "Notify the supervisory authority", "감독기관 통지 (GDPR)", 72, gdpr,
             "policy.gdpr_applies is set" if gdpr else "GDPR not applicable (policy.gdpr_applies is false)",
             "GDPR 적용" if gdpr else "GDPR 적용 대상 아님"),
        Duty("gdpr_art34", "GDPR Art. 34", "Tell the people affected (high risk)", "정보주체 통지 (GDPR)", None,
             gdpr and n > 0, "high risk to the people affected" if gdpr else "GDPR not applicable",
             "정보주체에 대한 높은 위험" if gdpr else "GDPR 적용 대상 아님"),
    ]


def duty_status(con: duckdb.DuckDBPyConnection, incident_id: str, aware: Awareness, ds: list[Duty],
                now: datetime | None = None) -> list[DutyStatus]:
    now_n = _naive_utc(now or datetime.now(timezone.utc))
    done = dict(con.execute("SELECT duty, min(done_at) FROM scope_duties WHERE incident_id = ? GROUP BY 1",
                            [incident_id]).fetchall())
    out = []
    for d in ds:
        deadline = aware.aware_at + timedelta(hours=d.hours or 72)
        at = done.get(d.id)
        if not d.applies:
            state = "not_required"
        elif at is not None:
            state = "done" if at <= deadline else "late"
        else:
            state = "missed" if now_n > deadline else "pending"
        out.append(DutyStatus(d, deadline, at, state))
    return out
