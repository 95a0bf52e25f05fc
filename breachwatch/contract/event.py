"""Contract 1: the event record every source is mapped to.

The field list here is the single definition used by ingest (validation and
Arrow conversion), the store (DDL) and the chain (canonical record text), so
that adding a field is one edit, not four.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

KINDS: frozenset[str] = frozenset({
    "access", "login", "login_failed", "token_issued", "token_revoked",
    "token_denied", "key_created", "key_rotated", "key_retired", "key_revoked",
    "principal_created", "principal_offboarded", "subject_status",
})
PRINCIPAL_TYPES: frozenset[str] = frozenset({"customer", "employee", "service", "partner", "anonymous"})
ACTIONS: frozenset[str] = frozenset({"read", "create", "update", "delete", "download", "print"})
STATUS_VALUES: frozenset[str] = frozenset({"active", "dormant", "withdrawn", "deleted"})


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # one of: str, time, int, strlist, fieldmap, attrs
    duck: str  # DuckDB column type
    arrow: pa.DataType


_STR = ("str", "VARCHAR", pa.string())
_TIME = ("time", "TIMESTAMP", pa.timestamp("us"))
_INT = ("int", "BIGINT", pa.int64())
_LIST = ("strlist", "VARCHAR[]", pa.list_(pa.string()))

FIELDS: tuple[Field, ...] = tuple(Field(n, *t) for n, t in [
    ("event_id", _STR),
    ("time", _TIME),
    ("kind", _STR),
    ("principal_id", _STR),
    ("principal_type", _STR),
    ("session_id", _STR),
    ("token_id", _STR),
    ("key_id", _STR),
    ("token_issued_at", _TIME),
    ("token_expires_at", _TIME),
    ("owner_id", _STR),
    ("src_ip", _STR),
    ("src_asn", _STR),
    ("src_country", _STR),
    ("user_agent", _STR),
    ("client_fingerprint", _STR),
    ("service", _STR),
    ("endpoint", _STR),
    ("action", _STR),
    ("reason_ref", _STR),
    ("status", _INT),
    ("bytes_out", _INT),
    ("subject_ids", _LIST),
    ("fields", _LIST),
    ("subject_fields", ("fieldmap", "MAP(VARCHAR, VARCHAR[])",
                        pa.map_(pa.string(), pa.list_(pa.string())))),
    ("record_count", _INT),
    ("status_value", _STR),
    # Free-form extras are kept as JSON text: DuckDB can query them with
    # json_extract, and their shape differs from source to source.
    ("attributes", ("attrs", "JSON", pa.string())),
])

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}

ARROW_SCHEMA: pa.Schema = pa.schema([pa.field(f.name, f.arrow) for f in FIELDS])


def canonical_record_sql(alias: str = "") -> str:
    """SQL expression giving one record's canonical text.

    Ingest and verify hash exactly this text, so a chain digest computed at
    commit time can be recomputed from the stored columns later.
    """
    p = f"{alias}." if alias else ""
    # JSON columns are hashed as their text, so a staged VARCHAR and a stored JSON agree.
    parts = ", ".join(f"'{f.name}': {p}\"{f.name}\"" + ("::VARCHAR" if f.kind == "attrs" else "")
                      for f in FIELDS)
    return f"to_json({{{parts}}})::VARCHAR"
