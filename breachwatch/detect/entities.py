"""Who or what an event can be attributed to, as SQL over an event row.

An entity is (type, principal type, value): the same IP used by customers and
by staff is two entities, so each is compared with peers that behave alike.
Every entity gets a 64-bit key `ek` so state tables join on one column.
"""
from __future__ import annotations

from breachwatch.detect.config import ENTITY_TYPES

# IPv4 to its /24, IPv6 to its /48: the granularity at which carriers hand out
# and renumber ranges, and at which a rented block shows up.
_PREFIX = ("CASE WHEN {p}src_ip LIKE '%.%.%.%' THEN regexp_extract({p}src_ip, '^(\\d+\\.\\d+\\.\\d+)\\.', 1) || '.0/24' "
           "WHEN {p}src_ip LIKE '%:%' THEN array_to_string(string_split({p}src_ip, ':')[1:3], ':') || '::/48' END")

_VALUE = {
    "principal": "{p}principal_id",
    "key": "{p}key_id",
    "ip": "{p}src_ip",
    "prefix": _PREFIX,
    "asn": "{p}src_asn",
    "country": "{p}src_country",
    "fingerprint": "{p}client_fingerprint",
    "user_agent": "{p}user_agent",
}

# The event columns the values above (and ptype_sql) read.
VALUE_COLUMNS = ("principal_id", "principal_type", "key_id", "src_ip", "src_asn", "src_country", "client_fingerprint",
                 "user_agent")

LABEL = {"principal": "principal", "key": "signing key", "ip": "IP", "prefix": "IP range", "asn": "network (ASN)",
         "country": "country", "fingerprint": "client fingerprint", "user_agent": "user agent"}

# Contract 5 names the entity lists by these plural keys.
CONTRACT_KEY = {"principal": "principals", "token": "tokens", "key": "keys", "ip": "ips", "prefix": "ips",
                "asn": "asns", "country": "countries", "fingerprint": "fingerprints", "user_agent": "user_agents"}


def value_sql(etype: str, alias: str = "") -> str:
    if etype not in _VALUE:
        raise ValueError(f"entity type '{etype}' is not known. Fix: use one of {', '.join(ENTITY_TYPES)}.")
    return _VALUE[etype].format(p=f"{alias}." if alias else "")


def ptype_sql(alias: str = "") -> str:
    p = f"{alias}." if alias else ""
    return f"coalesce({p}principal_type, 'anonymous')"


def combo_sql(alias: str = "") -> str:
    """The key `cid` of an event's combo of sources: its principal type and every entity value, hashed
    (64 bits, as an entity's own key). Events with the same combo have the same entities."""
    p = f"{alias}." if alias else ""
    return f"hash({ptype_sql(alias)}, {', '.join(p + c for c in VALUE_COLUMNS)})"


def ek_sql(etype: str, ptype: str, value: str) -> str:
    """The entity key: one hash over type, principal type and value."""
    return f"hash('{etype}', {ptype}, {value})"


def entity_rows_sql(source: str, etypes: list[str] | tuple[str, ...], columns: str = "seq",
                    where: str = "TRUE", names: bool = True) -> str:
    """One row per (event, entity type) with a non-null value: columns, etype, ptype, entity, ek.

    `source` is a table or subquery of events; `columns` are carried through. With `names=False`
    the rows leave out ptype and entity (columns, etype, ek): cheaper to keep for many events, and
    `value_by_type_sql` recovers them for the few rows that need them.
    """
    parts = []
    for et in etypes:
        v = value_sql(et)
        named = f"{ptype_sql()} AS ptype, {v} AS entity, " if names else ""
        parts.append(f"SELECT {columns}, '{et}' AS etype, {named}"
                     f"{ek_sql(et, ptype_sql(), v)} AS ek FROM {source} WHERE ({where}) AND {v} IS NOT NULL")
    return "\nUNION ALL\n".join(parts)


def value_by_type_sql(etypes: list[str] | tuple[str, ...], etype_col: str, alias: str) -> str:
    """The entity value of event `alias` for the entity type named in column `etype_col`."""
    whens = " ".join(f"WHEN '{et}' THEN {value_sql(et, alias)}" for et in etypes)
    return f"CASE {etype_col} {whens} END"
