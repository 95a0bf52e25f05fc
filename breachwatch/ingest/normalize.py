"""Validate one raw record against Contract 1 and normalise it to a store row.

Every reader (NDJSON, CSV, Parquet, HTTP bodies) hands its records here, so a
record means the same thing whatever format it came in, and a record derived
without an `event_id` gets the same stable id from any format.
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from breachwatch.contract.event import (ACTIONS, FIELD_BY_NAME, FIELD_NAMES, FIELDS, KINDS,
                                        PRINCIPAL_TYPES, STATUS_VALUES)

_EPOCH = datetime(1970, 1, 1)
_MIN_TIME = datetime(1990, 1, 1)
_MAX_TIME = datetime(2100, 1, 1)
_NUMERIC = re.compile(r"-?\d+(\.\d+)?")
_COUNTRY = re.compile(r"[A-Z]{2}")
_ENUMS = {"principal_type": PRINCIPAL_TYPES, "action": ACTIONS, "status_value": STATUS_VALUES}
_POS = {name: i for i, name in enumerate(FIELD_NAMES)}
_KIND_POS = _POS["kind"]


class Rejected(Exception):
    """A record that breaks the contract: `reason` is a short code counted in summaries."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    if name.upper() in ("UTC", "Z"):
        return timezone.utc
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return timezone(delta if m.group(1) == "+" else -delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"--source-tz '{name}': unknown time zone. Fix: use an IANA name such as "
                         "Asia/Seoul, or an offset such as +09:00.") from e


def _epoch(value: float, name: str) -> datetime:
    # Seconds and milliseconds are told apart by magnitude: 1e11 seconds is the year 5138.
    seconds = value / 1000.0 if abs(value) >= 1e11 else float(value)
    try:
        return _EPOCH + timedelta(seconds=seconds)
    except OverflowError as e:
        raise Rejected("bad_timestamp", f"{name}={value!r} is out of range") from e


def parse_time(value: Any, name: str, source_tz: tzinfo | None) -> datetime:
    """Any accepted time form to a naive UTC datetime (microseconds)."""
    if isinstance(value, bool):
        raise Rejected("wrong_type", f"{name} must be an RFC 3339 string or epoch number, got a boolean")
    if isinstance(value, (int, float)):
        dt = _epoch(value, name)
    elif isinstance(value, datetime):
        if value.tzinfo is None:
            # Columnar sources (Parquet) store instants without a zone: by convention UTC.
            dt = value
        else:
            dt = value.astimezone(timezone.utc).replace(tzinfo=None)
    elif isinstance(value, str):
        s = value.strip()
        if _NUMERIC.fullmatch(s):
            dt = _epoch(float(s), name)
        else:
            try:
                parsed = datetime.fromisoformat(s)
            except ValueError as e:
                raise Rejected("bad_timestamp", f"{name}={value!r} is not RFC 3339 or epoch seconds/milliseconds") from e
            if parsed.tzinfo is None:
                if source_tz is None:
                    raise Rejected("naive_timestamp", f"{name}={value!r} has no UTC offset; "
                                   "add one (e.g. +09:00) or declare the source's zone with --source-tz")
                parsed = parsed.replace(tzinfo=source_tz)
            dt = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    else:
        raise Rejected("wrong_type", f"{name} must be an RFC 3339 string or epoch number, got {type(value).__name__}")
    if not (_MIN_TIME <= dt < _MAX_TIME):
        raise Rejected("bad_timestamp", f"{name}={value!r} is outside 1990-2100")
    return dt


def _as_str(value: Any, name: str) -> str | None:
    if isinstance(value, str):
        return value or None
    raise Rejected("wrong_type", f"{name} must be a string, got {type(value).__name__}")


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise Rejected("wrong_type", f"{name} must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise Rejected("wrong_type", f"{name} must be an integer, got {type(value).__name__} {value!r}")


def _as_strlist(value: Any, name: str) -> list[str]:
    if not isinstance(value, (list, tuple)):
        raise Rejected("wrong_type", f"{name} must be a list of strings, got {type(value).__name__}")
    out = []
    for v in value:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append(str(v))  # numeric ids are common in JSON logs; they mean the same id
        else:
            raise Rejected("wrong_type", f"{name} must hold strings, found {type(v).__name__} {v!r}")
    return out


def _as_fieldmap(value: Any, name: str) -> dict[str, list[str]]:
    if isinstance(value, list):  # Arrow map columns arrive as a list of (key, value) pairs
        try:
            value = dict(value)
        except (TypeError, ValueError) as e:
            raise Rejected("wrong_type", f"{name} must be an object of lists") from e
    if not isinstance(value, dict):
        raise Rejected("wrong_type", f"{name} must be an object mapping subject id to a list of fields")
    return {str(k): _as_strlist(v, f"{name}.{k}") for k, v in value.items()}


class Normalizer:
    """Turns raw records (dicts) into row tuples in `FIELDS` order, or raises `Rejected`."""

    def __init__(self, source_tz: tzinfo | None = None) -> None:
        self.source_tz = source_tz

    def normalize(self, raw: Any) -> list[Any]:
        if not isinstance(raw, dict):
            raise Rejected("not_an_object", f"a record must be a JSON object, got {type(raw).__name__}")
        row: list[Any] = [None] * len(FIELDS)
        extra: dict[str, Any] = {}
        for key, value in raw.items():
            f = FIELD_BY_NAME.get(key)
            if f is None:
                # Unknown top-level keys are kept under attributes rather than lost.
                extra[key] = value
                continue
            if value is None:
                continue
            row[_POS[key]] = self._convert(f.kind, key, value)
        kind = row[_KIND_POS]
        if kind is None:
            raise Rejected("missing_field", "'kind' is required")
        if kind not in KINDS:
            raise Rejected("unknown_kind", f"kind {kind!r} is not one of {sorted(KINDS)}")
        if row[1] is None:
            raise Rejected("missing_field", "'time' is required")
        for name, allowed in _ENUMS.items():
            v = row[_POS[name]]
            if v is not None and v not in allowed:
                raise Rejected("bad_value", f"{name} {v!r} is not one of {sorted(allowed)}")
        ci = _POS["src_country"]
        if row[ci] is not None:
            row[ci] = row[ci].upper()
            if not _COUNTRY.fullmatch(row[ci]):
                raise Rejected("bad_value", f"src_country {raw.get('src_country')!r} is not an ISO 3166 alpha-2 code")
        if kind == "access" and row[_POS["action"]] is None:
            row[_POS["action"]] = "read"
        ai = _POS["attributes"]
        if extra:
            attrs = dict(extra)
            if row[ai] is not None:
                attrs.update(orjson.loads(row[ai]))
            row[ai] = orjson.dumps(attrs, option=orjson.OPT_SORT_KEYS, default=str).decode()
        if row[0] is None:
            row[0] = derive_event_id(row)
        return row

    def _convert(self, kind: str, name: str, value: Any) -> Any:
        if kind == "str":
            if name == "src_asn" and isinstance(value, int) and not isinstance(value, bool):
                return f"AS{value}"
            return _as_str(value, name)
        if kind == "time":
            return parse_time(value, name, self.source_tz)
        if kind == "int":
            return _as_int(value, name)
        if kind == "strlist":
            return _as_strlist(value, name)
        if kind == "fieldmap":
            return _as_fieldmap(value, name)
        if kind == "attrs":
            if isinstance(value, str):  # already JSON text (CSV, Parquet)
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError as e:
                    raise Rejected("wrong_type", f"attributes is not valid JSON text: {e}") from e
            if not isinstance(value, dict):
                raise Rejected("wrong_type", f"attributes must be an object, got {type(value).__name__}")
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
        raise AssertionError(kind)


def derive_event_id(row: list[Any]) -> str:
    """A stable id for a record that came without one: a hash of its normalised content."""
    body = orjson.dumps(row[1:], option=orjson.OPT_SORT_KEYS | orjson.OPT_NAIVE_UTC, default=str)
    return "h-" + hashlib.sha256(body).hexdigest()[:32]
