"""The key hygiene audit: signing keys and tokens checked against policy, people
and evidence.

It asks the questions that would have caught the 2025 retailer breach years
early: is any key older than policy or never rotated; did anyone who ever held
a key leave without the key being rotated; did a key sign tokens that no login
issued; do tokens live longer than policy; and is private key material lying
in a folder or repository. Each finding carries its evidence and the fix.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from breachwatch.keys.findings import ACTIONABLE, SEVERITIES, Finding
from breachwatch.keys.inventory import Inventory, KeyRecord
from breachwatch.keys.lifecycle import Departure, earliest
from breachwatch.keys.secret_scan import SecretHit
from breachwatch.keys.token_stats import TokenStats


@dataclass(frozen=True)
class AuditPolicy:
    max_key_age_days: int = 90
    max_token_lifetime_s: int = 3600
    rotation_grace_days: float = 1.0  # how soon after a holder leaves their keys must be rotated

    def as_dict(self) -> dict[str, Any]:
        return {"max_key_age_days": self.max_key_age_days, "max_token_lifetime_s": self.max_token_lifetime_s,
                "rotation_grace_days": self.rotation_grace_days}


@dataclass
class AuditReport:
    generated_at: datetime
    policy: AuditPolicy
    inputs: dict[str, Any]
    findings: list[Finding]
    keys: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def actionable(self) -> bool:
        return any(f.severity in ACTIONABLE for f in self.findings)

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in reversed(SEVERITIES)}
        for f in self.findings:
            out[f.severity] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"generated_at": _d(self.generated_at), "policy": self.policy.as_dict(), "inputs": self.inputs,
                "summary": {"keys": len(self.keys), "findings": len(self.findings), "by_severity": self.counts(),
                            "actionable": self.actionable},
                "findings": [f.as_dict() for f in self.findings], "keys": self.keys, "notes": self.notes}


def _d(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z") if dt else None


def _day(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d") if dt else "unknown"


def _rotate_fix(kid: str) -> str:
    return (f"Rotate {kid}: generate a new key inside the KMS/HSM under a new kid, sign new tokens with it, "
            f"retire {kid} in the guard now (`breachwatch guard ledger retire-key {kid}`) so tokens it signs are "
            "denied, and remove it from the JWKS once the tokens it legitimately signed have expired.")


def audit(inventory: Inventory, departures: list[Departure], stats: TokenStats | None, secrets: list[SecretHit],
          policy: AuditPolicy, now: datetime, retired_use: dict[str, tuple[int, datetime | None]] | None = None,
          inventory_given: bool = True) -> list[Finding]:
    findings: list[Finding] = []
    left = earliest(departures)
    unissued = {u.key_id: u for u in (stats.unissued if stats else [])}
    grace = timedelta(days=policy.rotation_grace_days)
    max_age = timedelta(days=policy.max_key_age_days)

    for key in sorted(inventory.keys.values(), key=lambda k: k.kid):
        findings += _holder_left(key, left, grace, now, unissued)
        if key.active:
            findings += _age(key, now, max_age, policy)
            if not key.owner and not key.holders:
                findings.append(Finding(
                    "key_without_owner", "medium", key.kid, f"Nobody is recorded as holding key {key.kid}",
                    [f"{key.kid} is active ({'in the JWKS' if key.in_jwks else 'per the key events'}) but has no "
                     "owner or holder in the inventory or the key events"],
                    f"Record an owner for {key.kid}; a key nobody owns is a key nobody rotates."))
            elif inventory_given and key.in_jwks and "inventory" not in key.sources:
                findings.append(Finding(
                    "key_not_in_inventory", "medium", key.kid, f"Key {key.kid} is trusted but not in the inventory",
                    [f"{key.kid} is in the JWKS; the owners file does not list it"],
                    f"Add {key.kid} to the key inventory with its owner, creation and rotation dates."))
        elif key.in_jwks:
            findings.append(Finding(
                "retired_key_still_trusted", "high", key.kid, f"Retired key {key.kid} is still in the JWKS",
                [f"{key.kid} was {key.status} on {_day(key.retired_at)} but verifiers still accept its signatures"],
                f"Remove {key.kid} from the published JWKS and retire it in the guard "
                f"(`breachwatch guard ledger retire-key {key.kid}`)."))
        if key.retired_at is not None and retired_use and retired_use.get(key.kid, (0, None))[0]:
            n, last = retired_use[key.kid]
            findings.append(Finding(
                "retired_key_still_used", "high", key.kid, f"Tokens signed by retired key {key.kid} are still used",
                [f"{n} access events carried tokens signed by {key.kid} after it was {key.status} on "
                 f"{_day(key.retired_at)}; the last on {_d(last)}"],
                f"Deny {key.kid} at the gateway (`breachwatch guard ledger retire-key {key.kid}`) and investigate "
                "who still holds its private key.", {"events": n, "last": _d(last)}))

    for u in (stats.unissued if stats else []):
        findings.append(Finding(
            "forged_tokens", "critical", u.key_id, f"Key {u.key_id} signed tokens that no login issued",
            [f"{u.tokens} distinct tokens signed by {u.key_id} were used on {u.access_events} requests with no "
             "token_issued event from any login, refresh, SSO or service issuance",
             f"they claimed {u.principals} different principals and read data of {u.subjects} subjects, "
             f"from {u.src_ips} IP addresses ({', '.join(u.countries) or 'countries unknown'}), "
             f"between {_d(u.first_seen)} and {_d(u.last_seen)}",
             f"sample tokens: {', '.join(u.sample_tokens)}; sample principals: {', '.join(u.sample_principals)}"],
            "Treat the private key as stolen. " + _rotate_fix(u.key_id) + " Switch the guard to enforce so "
            "unissued tokens are denied, and open an incident to scope the subjects these tokens read.",
            {"tokens": u.tokens, "principals": u.principals, "subjects": u.subjects, "access_events": u.access_events,
             "src_ips": u.src_ips, "countries": u.countries, "first_seen": _d(u.first_seen),
             "last_seen": _d(u.last_seen), "sample_tokens": u.sample_tokens}))

    if stats is not None and stats.issuance_log_start is None and stats.access_with_tokens:
        findings.append(Finding(
            "no_issuance_log", "medium", None, "Forged tokens cannot be told from issued ones",
            [f"the store holds {stats.access_with_tokens} token-bearing access events but no token_issued event"],
            "Log a token_issued event from every issuance path (login, refresh, SSO, partner OAuth, service "
            "tokens), or feed the guard's ledger, so tokens no login issued stand out."))

    for x in (stats.long_lived if stats else []):
        sev = "high" if x.max_lifetime_s > 24 * policy.max_token_lifetime_s else "medium"
        findings.append(Finding(
            "token_lifetime_exceeds_policy", sev, x.key_id,
            f"Tokens signed by {x.key_id} live longer than policy",
            [f"{x.tokens} tokens live longer than {policy.max_token_lifetime_s} s; the longest "
             f"{x.max_lifetime_s:.0f} s ({x.max_lifetime_s / 86400:.1f} days)",
             f"sample tokens: {', '.join(x.sample_tokens)}"],
            f"Cap access-token lifetime at {policy.max_token_lifetime_s} s in every issuer (use refresh tokens "
            "for longer sessions) and set the guard's max_lifetime_s to the same value.",
            {"tokens": x.tokens, "max_lifetime_s": x.max_lifetime_s}))

    findings += _exposures(secrets, inventory)
    findings.sort(key=lambda f: (-f.rank, f.key_id or "", f.code))
    return findings


def _holder_left(key: KeyRecord, left: dict[str, Departure], grace: timedelta, now: datetime,
                 unissued: dict[str, Any]) -> list[Finding]:
    gone = []
    for who in key.holders:
        dep = left.get(who)
        if dep is None:
            continue
        if key.created_at is not None and key.created_at > dep.left_at:
            continue  # made after they left: they never had it
        material = key.material_since
        if material is not None and material >= dep.left_at:
            continue  # rotated after they left: what they copied is dead
        if key.retired_at is not None and key.retired_at <= dep.left_at + grace:
            continue
        gone.append(dep)
    if not gone:
        return []
    gone.sort(key=lambda d: d.left_at)
    first = gone[0]
    people = "; ".join(f"{d.principal_id} (left {_day(d.left_at)}, per {d.source})" for d in gone)
    evidence = [f"holders who left: {people}",
                f"key material in use since {_day(key.material_since)}; status {key.status}"
                + (f", retired {_day(key.retired_at)}" if key.retired_at else "")
                + (f"; stored at: {key.location}" if key.location else "")]
    if key.kid in unissued:
        evidence.append(f"{unissued[key.kid].tokens} tokens signed by this key were never issued by a login "
                        "(see the forged_tokens finding)")
    data = {"holders_left": [d.principal_id for d in gone], "left_at": [_d(d.left_at) for d in gone]}
    if key.active:
        days = (now - first.left_at).days
        return [Finding("holder_left", "critical", key.kid,
                        f"Key {key.kid} was not rotated when {first.principal_id} left ({days} days ago)",
                        evidence, _rotate_fix(key.kid) + " Then review every token it signed since "
                        f"{_day(first.left_at)}.", data)]
    window = (key.retired_at - first.left_at).days if key.retired_at else None
    return [Finding("holder_left", "medium", key.kid,
                    f"Key {key.kid} stayed active {window} days after {first.principal_id} left",
                    evidence, f"Review tokens {key.kid} signed between {_day(first.left_at)} and "
                    f"{_day(key.retired_at)}; rotate keys on the day a holder leaves.", data)]


def _age(key: KeyRecord, now: datetime, max_age: timedelta, policy: AuditPolicy) -> list[Finding]:
    since = key.material_since
    if since is None:
        return [Finding("key_age_unknown", "medium", key.kid, f"The age of key {key.kid} is unknown",
                        [f"{key.kid} has no creation or rotation date in the inventory or the key events"],
                        f"Record when {key.kid} was created and last rotated; rotate it now if nobody knows.")]
    age = now - since
    if age <= max_age:
        return []
    days = age.days
    if key.rotated_at is None:
        return [Finding("key_never_rotated", "high", key.kid, f"Key {key.kid} was never rotated in {days} days",
                        [f"created {_day(key.created_at)}, never rotated; policy rotates every "
                         f"{policy.max_key_age_days} days"], _rotate_fix(key.kid), {"age_days": days})]
    sev = "high" if age > 4 * max_age else "medium"
    return [Finding("key_rotation_overdue", sev, key.kid, f"Key {key.kid} was last rotated {days} days ago",
                    [f"last rotated {_day(key.rotated_at)}; policy rotates every {policy.max_key_age_days} days"],
                    _rotate_fix(key.kid), {"age_days": days})]


_PRIVATE_KINDS = frozenset({"pem_private_key", "jwk_private_key", "jwk_symmetric_key", "keystore"})


def dedupe_history(tree: list[SecretHit], history: list[SecretHit]) -> list[SecretHit]:
    """History hits whose secret is still in the working tree are reported once, where it is now."""
    present = {h.fingerprint for h in tree}
    return tree + [h for h in history if h.fingerprint not in present]


def _exposures(secrets: list[SecretHit], inventory: Inventory) -> list[Finding]:
    by_thumb = inventory.by_thumbprint()
    groups: dict[str, list[SecretHit]] = defaultdict(list)
    for h in secrets:
        groups[h.fingerprint].append(h)
    out = []
    for fp, hits in sorted(groups.items()):
        h = hits[0]
        where = [x.location + (" (git history only)" if x.in_history_only else "") for x in hits]
        kid = by_thumb.get(h.thumbprint or "") or (h.kid_hint if h.kid_hint in inventory.keys else None)
        if h.kind in _PRIVATE_KINDS:
            if kid is not None:
                rec = inventory.keys[kid]
                sev = "critical" if rec.active else "high"
                title = f"The private key of {kid} is lying in {len(where)} place(s) outside the key vault"
                fix = _rotate_fix(kid) + " Delete every copy (and purge it from git history), then find out who read them."
            else:
                sev = "high"
                title = f"Private key material ({h.kind.replace('_', ' ')}) found in {len(where)} place(s)"
                fix = ("Find which system trusts this key; rotate it there, delete every copy and purge it from "
                       "git history. Keep private keys only in a KMS/HSM.")
        else:
            sev = h.severity
            title = f"A credential ({h.kind.replace('_', ' ')}) found in {len(where)} place(s)"
            fix = "Revoke the credential at its provider, issue a new one into a secret store, delete every copy."
        evidence = [f"found at: {', '.join(where[:10])}" + (f" and {len(where) - 10} more" if len(where) > 10 else ""),
                    f"secret fingerprint sha256:{fp} (the secret itself is not reported)"]
        if h.detail:
            evidence.append(h.detail)
        code = "private_key_exposed" if h.kind in _PRIVATE_KINDS else "secret_exposed"
        out.append(Finding(code, sev, kid, title, evidence, fix,
                           {"kind": h.kind, "locations": where, "fingerprint": fp, "thumbprint": h.thumbprint}))
    return out


def key_summaries(inventory: Inventory, stats: TokenStats | None, findings: list[Finding],
                  now: datetime) -> list[dict[str, Any]]:
    per_key: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.key_id:
            per_key[f.key_id].append(f)
    out = []
    for key in sorted(inventory.keys.values(), key=lambda k: k.kid):
        usage = stats.usage.get(key.kid) if stats else None
        since = key.material_since
        worst = max((f.rank for f in per_key[key.kid]), default=-1)
        out.append({**key.as_dict(),
                    "age_days": (now - since).days if since else None,
                    "tokens_issued": usage.issued if usage else None,
                    "tokens_used": usage.used_tokens if usage else None,
                    "last_used": _d(usage.last_used) if usage else None,
                    "findings": len(per_key[key.kid]),
                    "worst_severity": SEVERITIES[worst] if worst >= 0 else None})
    return out


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def run_audit(*, jwks: list[str], inventory_files: list[str], hr_files: list[str], con: Any | None,
              store_label: str | None, scan_paths: list[str], history_repos: list[str], policy: AuditPolicy,
              now: datetime | None = None) -> AuditReport:
    """Gather every input, audit, and build the report. `con` is a read-only store connection or None."""
    from breachwatch.keys.inventory import key_events_from_store
    from breachwatch.keys.lifecycle import departures_from_hr_csv, departures_from_store
    from breachwatch.keys.secret_scan import scan_git_history, scan_path
    from breachwatch.keys.token_stats import collect, used_after

    now = now or now_utc()
    inv = Inventory()
    for j in jwks:
        inv.add_jwks(j)
    for f in inventory_files:
        inv.add_owners_file(f)
    departures: list[Departure] = []
    for f in hr_files:
        departures += departures_from_hr_csv(f)
    stats = None
    retired_use: dict[str, tuple[int, datetime | None]] = {}
    notes = []
    if con is not None:
        inv.add_key_events(key_events_from_store(con))
        departures += departures_from_store(con)
        stats = collect(con, policy.max_token_lifetime_s)
        for key in inv.keys.values():
            if key.retired_at is not None:
                retired_use[key.kid] = used_after(con, key.kid, key.retired_at)
    else:
        notes.append("no store: token statistics (forgery evidence, lifetimes, use after retirement) not checked")
    if not departures:
        notes.append("no departures known (no HR file, no principal_offboarded events): holder checks found nothing to check")
    tree: list[SecretHit] = []
    history: list[SecretHit] = []
    files_scanned = 0
    for p in scan_paths:
        hits, n = scan_path(p)
        tree += hits
        files_scanned += n
    for r in history_repos:
        hits, n = scan_git_history(r)
        history += hits
        files_scanned += n
    findings = audit(inv, departures, stats, dedupe_history(tree, history), policy, now, retired_use,
                     inventory_given=bool(inventory_files))
    inputs = {"jwks": jwks, "inventory": inventory_files, "hr": hr_files, "store": store_label,
              "scanned": scan_paths, "git_history": history_repos, "files_scanned": files_scanned,
              "departures": len(earliest(departures)),
              "issuance_log_start": _d(stats.issuance_log_start) if stats else None}
    return AuditReport(now, policy, inputs, findings, key_summaries(inv, stats, findings, now), notes)
