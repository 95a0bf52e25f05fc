"""The key inventory: which signing keys exist, who holds or held them, when they
were made and last rotated.

Three inputs are merged by `kid`: the JWKS (what verifiers trust right now), an
owners file kept by people (CSV or YAML), and key lifecycle events from the
store (`key_created`, `key_rotated`, `key_retired`, `key_revoked`, each with
the key's `owner_id`). Every person that appears as a key's owner at any time
is kept as one of its holders, because a key that changed hands is still in
the hands of everyone who ever had a copy.

Owners file columns (CSV header or YAML keys; `keys:` list or a bare list):

    kid, owner, holders (| separated in CSV), created, rotated, retired,
    status (active|retired|revoked), location (kms, hsm, vault, file, laptop, ...)

Dates are RFC 3339 with an offset, or plain YYYY-MM-DD (taken as UTC).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import orjson
import yaml

STATUSES = ("active", "retired", "revoked")
_COLUMNS = {"kid", "owner", "holders", "created", "rotated", "retired", "status", "location"}


class InventoryError(ValueError):
    """An inventory input that cannot be used; the message names the file, the row and the fix."""


@dataclass
class KeyRecord:
    kid: str
    owner: str | None = None
    holders: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    rotated_at: datetime | None = None
    retired_at: datetime | None = None
    status: str = "active"
    location: str | None = None
    in_jwks: bool = False
    thumbprint: str | None = None
    sources: set[str] = field(default_factory=set)

    def add_holder(self, who: str | None) -> None:
        if who and who not in self.holders:
            self.holders.append(who)

    @property
    def material_since(self) -> datetime | None:
        """When the key material in use now was made: the last rotation, else creation."""
        return self.rotated_at or self.created_at

    @property
    def active(self) -> bool:
        return self.status == "active"

    def as_dict(self) -> dict[str, Any]:
        return {"kid": self.kid, "owner": self.owner, "holders": self.holders, "status": self.status,
                "created_at": _iso(self.created_at), "rotated_at": _iso(self.rotated_at),
                "retired_at": _iso(self.retired_at), "location": self.location, "in_jwks": self.in_jwks,
                "thumbprint": self.thumbprint, "sources": sorted(self.sources)}


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def parse_when(value: Any, where: str) -> datetime | None:
    """RFC 3339 with offset, or a date; returned as aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    else:
        s = str(value).strip()
        try:
            if len(s) == 10:
                d = date.fromisoformat(s)
                return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError as e:
            raise InventoryError(f"{where}: {value!r} is not a date. Fix: write YYYY-MM-DD or an RFC 3339 "
                                 "time with an offset.") from e
    if dt.tzinfo is None:
        raise InventoryError(f"{where}: {value!r} has no UTC offset. Fix: add one (e.g. +09:00) or give a date.")
    return dt.astimezone(timezone.utc)


class Inventory:
    def __init__(self) -> None:
        self.keys: dict[str, KeyRecord] = {}

    def get(self, kid: str) -> KeyRecord:
        if kid not in self.keys:
            self.keys[kid] = KeyRecord(kid)
        return self.keys[kid]

    def by_thumbprint(self) -> dict[str, str]:
        return {k.thumbprint: k.kid for k in self.keys.values() if k.thumbprint}

    # -- inputs ---------------------------------------------------------------------------

    def add_jwks(self, path: str | Path) -> None:
        from joserfc.jwk import JWKRegistry

        p = Path(path)
        if not p.exists():
            raise InventoryError(f"{p}: JWKS not found. Fix: pass the issuer's JWKS file with --jwks.")
        try:
            data = orjson.loads(p.read_bytes())
        except orjson.JSONDecodeError as e:
            raise InventoryError(f"{p}: not valid JSON ({e}). Fix: pass a JWKS document.") from e
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise InventoryError(f"{p}: not a JWKS (no 'keys' list). Fix: pass a JWKS document.")
        for i, jwk in enumerate(data["keys"]):
            if not isinstance(jwk, dict) or "kty" not in jwk:
                raise InventoryError(f"{p}: keys[{i}] is not a JWK. Fix: remove or correct it.")
            public = {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "k")}
            try:
                key = JWKRegistry.import_key(public) if jwk["kty"] != "oct" else None
            except Exception as e:  # noqa: BLE001 - any import failure is bad input here
                raise InventoryError(f"{p}: keys[{i}] cannot be read ({e}). Fix: correct or remove it.") from e
            kid = jwk.get("kid") or (key.thumbprint() if key else f"oct-{i}")
            rec = self.get(kid)
            rec.in_jwks = True
            rec.thumbprint = key.thumbprint() if key else None
            rec.sources.add("jwks")

    def add_owners_file(self, path: str | Path) -> None:
        p = Path(path)
        if not p.exists():
            raise InventoryError(f"{p}: key owners file not found. Fix: pass a CSV or YAML with --inventory.")
        if p.suffix.lower() in (".yaml", ".yml"):
            try:
                data = yaml.safe_load(p.read_text("utf-8"))
            except yaml.YAMLError as e:
                raise InventoryError(f"{p}: not valid YAML ({e}). Fix: correct the YAML syntax.") from e
            rows = data.get("keys") if isinstance(data, dict) else data
            if not isinstance(rows, list):
                raise InventoryError(f"{p}: expected a list of keys (or 'keys:' with one). "
                                     "Fix: write '- kid: login-2019' items.")
            for i, row in enumerate(rows):
                self._owner_row(row, f"{p}: keys[{i}]")
        elif p.suffix.lower() == ".csv":
            with p.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                if not reader.fieldnames or "kid" not in reader.fieldnames:
                    raise InventoryError(f"{p}: no 'kid' column. Fix: the header needs kid and owner "
                                         f"(optional: {', '.join(sorted(_COLUMNS - {'kid', 'owner'}))}).")
                for n, row in enumerate(reader, 2):
                    holders = row.get("holders")
                    self._owner_row({**row, "holders": holders.split("|") if holders else []}, f"{p}: line {n}")
        else:
            raise InventoryError(f"{p}: unknown format. Fix: use .csv or .yaml.")

    def _owner_row(self, row: Any, where: str) -> None:
        if not isinstance(row, dict) or not row.get("kid"):
            raise InventoryError(f"{where}: no kid. Fix: give every key its kid.")
        unknown = set(row) - _COLUMNS
        if unknown:
            raise InventoryError(f"{where}: unknown column {sorted(unknown)[0]!r}. Fix: use {sorted(_COLUMNS)}.")
        rec = self.get(str(row["kid"]).strip())
        rec.sources.add("inventory")
        if row.get("owner"):
            rec.owner = str(row["owner"]).strip()
            rec.add_holder(rec.owner)
        holders = row.get("holders") or []
        if not isinstance(holders, list):
            raise InventoryError(f"{where}: holders must be a list. Fix: write 'holders: [emp-1, emp-2]'.")
        for h in holders:
            rec.add_holder(str(h).strip())
        for col, attr in (("created", "created_at"), ("rotated", "rotated_at"), ("retired", "retired_at")):
            when = parse_when(row.get(col), f"{where} {col}")
            if when is not None:
                setattr(rec, attr, when)
        status = (row.get("status") or "").strip() if isinstance(row.get("status"), str) else row.get("status")
        if status:
            if status not in STATUSES:
                raise InventoryError(f"{where}: status {status!r}. Fix: use one of {list(STATUSES)}.")
            rec.status = status
        elif rec.retired_at is not None:
            rec.status = "retired"
        if row.get("location"):
            rec.location = str(row["location"]).strip()

    def add_key_events(self, events: Iterable[tuple[str, datetime, str | None, str | None]]) -> None:
        """(kind, time, key_id, owner_id) from the store, oldest first."""
        for kind, when, kid, owner in events:
            if not kid:
                continue
            rec = self.get(kid)
            rec.sources.add("events")
            rec.add_holder(owner)
            if kind == "key_created":
                rec.created_at = min(filter(None, [rec.created_at, when]))
                if owner:
                    rec.owner = rec.owner or owner
            elif kind == "key_rotated":
                rec.rotated_at = max(filter(None, [rec.rotated_at, when]))
                if owner:
                    rec.owner = owner
            elif kind in ("key_retired", "key_revoked"):
                rec.retired_at = min(filter(None, [rec.retired_at, when]))
                rec.status = "revoked" if kind == "key_revoked" else ("revoked" if rec.status == "revoked" else "retired")


def key_events_from_store(con: Any) -> list[tuple[str, datetime, str | None, str | None]]:
    """Key lifecycle events, oldest first.

    A `key_created` event written when logging began (a snapshot of keys that already
    existed) carries the real creation time in `attributes.created_at`; that one counts.
    """
    rows = con.execute(
        "SELECT kind, time, key_id, owner_id, json_extract_string(attributes, '$.created_at') FROM events "
        "WHERE kind IN ('key_created', 'key_rotated', 'key_retired', 'key_revoked') ORDER BY time").fetchall()
    out = []
    for kind, t, kid, owner, created in rows:
        when = t.replace(tzinfo=timezone.utc)
        if kind == "key_created" and created:
            try:
                when = parse_when(created, f"key_created event for {kid}: attributes.created_at") or when
            except InventoryError:
                pass  # an unreadable claim falls back to the event's own time
        out.append((kind, when, kid, owner))
    return out
