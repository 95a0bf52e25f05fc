"""Who may do what: four roles, named permissions, and default deny.

A key or account holds one or more roles; a route asks for one permission.
Anything not granted here is refused, so a new route is closed until it is
added to this table (the authorisation matrix test reads the same table).
"""
from __future__ import annotations

ROLES = ("ingest", "analyst", "dpo", "admin")

# permission -> roles that hold it
PERMISSIONS: dict[str, frozenset[str]] = {
    "events:write": frozenset({"ingest"}),
    "overview:read": frozenset({"analyst", "dpo"}),
    "incidents:read": frozenset({"analyst", "dpo"}),
    "incidents:act": frozenset({"analyst"}),
    "alerts:read": frozenset({"analyst"}),
    "entities:read": frozenset({"analyst"}),
    "scope:read": frozenset({"dpo"}),
    "scope:decide": frozenset({"dpo"}),
    "subjects:lookup": frozenset({"dpo"}),
    "datamap:read": frozenset({"analyst", "dpo"}),
    "datamap:write": frozenset({"admin"}),  # the operator who runs discovery against the databases
    "keyfindings:read": frozenset({"analyst", "admin"}),
    "drill:read": frozenset({"analyst", "dpo"}),
    "metrics:read": frozenset(ROLES),
    "store:verify": frozenset({"analyst", "dpo", "admin"}),  # counts and a verdict, no personal data
    "admin:apikeys": frozenset({"admin"}),
    "admin:users": frozenset({"admin"}),
    "admin:audit": frozenset({"admin"}),
    "admin:settings": frozenset({"admin"}),
}


def check_roles(roles: list[str] | tuple[str, ...], option: str = "--role") -> list[str]:
    """Validate a list of role names; return it de-duplicated in the canonical order."""
    if not roles:
        raise ValueError(f"{option}: at least one role is needed. Fix: pass {option} with one of "
                         f"{', '.join(ROLES)}.")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"{option} {bad[0]}: unknown role. Fix: use one of {', '.join(ROLES)}.")
    return [r for r in ROLES if r in roles]


def allowed(roles: list[str] | tuple[str, ...] | frozenset[str], permission: str) -> bool:
    granted = PERMISSIONS.get(permission)
    if granted is None:  # an unknown permission is a bug, and a bug must not open a door
        return False
    return any(r in granted for r in roles)
