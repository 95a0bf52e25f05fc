"""The full validator: every Contract 1 rule on JSON text, a whole batch at a time, in DuckDB.

One set of SQL rules decides, for every row at once, whether it is a valid
event and, if not, the first rule it breaks, so a record means the same thing
whatever format it came in, a record without an `event_id` gets the same
stable id from any format, and validation runs vectorised instead of record by
record in Python. Records the fast lane (fastlane.py) can vouch for skip this
pass; the expressions both lanes need are defined here once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from breachwatch.contract.event import ACTIONS, FIELDS, KINDS, PRINCIPAL_TYPES, STATUS_VALUES, Field

# Fields whose value, when given, must be one of a fixed set (kind aside: it is required).
ENUM_FIELDS = {"principal_type": PRINCIPAL_TYPES, "action": ACTIONS, "status_value": STATUS_VALUES}
_OFFSET = r"'.*([Zz]|[+-]\d{2}(:?\d{2})?)'"
_NUMERIC = r"'\s*-?\d+(\.\d+)?\s*'"


class Rejected(Exception):
    """A record that breaks the contract before it reaches SQL (unreadable bytes, a bad CSV row)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SourceZone:
    """The zone a source declares for timestamps written without an offset."""
    iana: str | None = None
    offset_minutes: int | None = None

    def localize_sql(self, naive_ts: str) -> str:
        if self.iana:
            return f"CAST(timezone('{self.iana}', {naive_ts}) AS TIMESTAMP)"
        return f"({naive_ts} - to_minutes({self.offset_minutes or 0}))"


def parse_zone(name: str | None) -> SourceZone | None:
    if not name:
        return None
    if name.upper() in ("UTC", "Z"):
        return SourceZone(offset_minutes=0)
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name)
    if m:
        minutes = int(m.group(2)) * 60 + int(m.group(3))
        return SourceZone(offset_minutes=minutes if m.group(1) == "+" else -minutes)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"--source-tz '{name}': unknown time zone. Fix: use an IANA name such as "
                         "Asia/Seoul, or an offset such as +09:00.") from e
    if not re.fullmatch(r"[A-Za-z0-9_+\-/]+", name):
        raise ValueError(f"--source-tz '{name}': not a zone name. Fix: use e.g. Asia/Seoul.")
    return SourceZone(iana=name)


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _in(values: frozenset[str]) -> str:
    return "(" + ", ".join(_q(v) for v in sorted(values)) + ")"


# JSON text as DuckDB's json_extract returns it is minified, so an element's type is
# told by its first character, without parsing it again.
def _type_of(e: str) -> str:
    return (f"CASE WHEN {e} IS NULL THEN NULL ELSE CASE left({e}, 1) WHEN '\"' THEN 'VARCHAR' WHEN '[' THEN 'ARRAY' WHEN '{{' THEN 'OBJECT' "
            f"WHEN 't' THEN 'BOOLEAN' WHEN 'f' THEN 'BOOLEAN' WHEN 'n' THEN 'NULL' "
            f"ELSE CASE WHEN regexp_matches({e}, '[.eE]') THEN 'DOUBLE' ELSE 'BIGINT' END END END")


_JSTR = r'"([^"\\]|\\.)*"'
_SCALAR_ID = rf'({_JSTR}|-?\d+)'
_ID_LIST = rf'\[({_SCALAR_ID}(,{_SCALAR_ID})*)?\]'
_FIELD_MAP = rf'\{{({_JSTR}:{_ID_LIST}(,{_JSTR}:{_ID_LIST})*)?\}}'


class _Rules:
    """Builds the SQL for each field: its value, and the checks that reject a record, with reasons."""

    def __init__(self, zone: SourceZone | None) -> None:
        self.zone = zone
        # (condition true when bad, reason, detail SQL); conditions read the per-field columns.
        self.checks: list[tuple[str, str, str]] = []
        self.values: list[str] = []  # SQL of each field's normalised value, over `_v{i}` and `_t{i}`

    def add(self, f: Field, i: int) -> None:
        t, v, n = f"_t{i}", f"_v{i}", f.name
        present = f"{t} IS NOT NULL AND {t} <> 'NULL'"
        got = f"' got ' || lower({t})"
        if f.kind == "str":
            ok = f"{t} = 'VARCHAR'" + (f" OR {t} = 'BIGINT'" if n == "src_asn" else "")
            self.checks.append((f"{present} AND NOT ({ok})", "wrong_type", f"'{n} must be a string,' || {got}"))
            text = f"({v}->>'$')"
            value = f"CASE WHEN {t} = 'VARCHAR' THEN {str_value(f, text)} END"
            if n == "src_asn":  # numeric ASNs are common and mean the same thing
                value = f"CASE WHEN {t} = 'BIGINT' THEN 'AS' || {v} ELSE {value} END"
            self.values.append(value)
        elif f.kind == "int":
            ok = f"{t} = 'BIGINT' OR ({t} = 'DOUBLE' AND TRY_CAST({v} AS DOUBLE) = floor(TRY_CAST({v} AS DOUBLE)))"
            self.checks.append((f"{present} AND NOT ({ok})", "wrong_type", f"'{n} must be an integer,' || {got}"))
            self.values.append(f"CASE WHEN {t} IN ('BIGINT', 'DOUBLE') THEN "
                               f"TRY_CAST(TRY_CAST({v} AS DOUBLE) AS BIGINT) END")
        elif f.kind == "strlist":
            ok = f"{t} = 'ARRAY' AND regexp_full_match({v}, '{_ID_LIST}')"
            self.checks.append((f"{present} AND NOT ({ok})", "wrong_type",
                                f"'{n} must be a list of strings,' || {got}"))
            self.values.append(f"CASE WHEN {t} = 'ARRAY' THEN json_transform({v}, '[\"VARCHAR\"]') END")
        elif f.kind == "fieldmap":
            ok = f"{t} = 'OBJECT' AND regexp_full_match({v}, '{_FIELD_MAP}')"
            self.checks.append((f"{present} AND NOT ({ok})", "wrong_type",
                                f"'{n} must be an object mapping subject id to a list of fields,' || {got}"))
            self.values.append(f"CASE WHEN {t} = 'OBJECT' THEN "
                               f"try(json_transform({v}, '\"MAP(VARCHAR, VARCHAR[])\"')) END")
        elif f.kind == "attrs":
            # Columnar sources carry attributes as JSON text; JSON sources as an object.
            text_obj = f"({t} = 'VARCHAR' AND json_valid({v}->>'$') AND left(ltrim({v}->>'$'), 1) = '{{')"
            ok = f"{t} = 'OBJECT' OR {text_obj}"
            self.checks.append((f"{present} AND NOT ({ok})", "wrong_type", f"'{n} must be an object,' || {got}"))
            self.values.append(f"CASE WHEN {t} = 'OBJECT' THEN {v} "
                               f"WHEN {text_obj} THEN try(json({v}->>'$'))::VARCHAR END")
        elif f.kind == "time":
            self.add_time(f, i)
        else:
            raise AssertionError(f.kind)

    def add_time(self, f: Field, i: int) -> None:
        t, v, n = f"_t{i}", f"_v{i}", f.name
        s = f"({v}->>'$')"
        is_num = f"({t} IN ('BIGINT', 'DOUBLE') OR ({t} = 'VARCHAR' AND regexp_full_match({s}, {_NUMERIC})))"
        naive = f"TRY_CAST({s} AS TIMESTAMP)"
        local = self.zone.localize_sql(naive) if self.zone else "NULL::TIMESTAMP"
        # The common case first: a string with an offset is one cast.
        value = (f"CASE WHEN {t} = 'VARCHAR' AND {has_offset(s)} THEN {with_offset(s)} WHEN {is_num} THEN "
                 f"{from_epoch(s)} WHEN {t} = 'VARCHAR' THEN {local} END")
        col = f'"{n}"'
        present = f"{t} IS NOT NULL AND {t} <> 'NULL'"
        self.checks.append((f"{present} AND NOT ({t} = 'VARCHAR' OR {t} IN ('BIGINT', 'DOUBLE'))", "wrong_type",
                            f"'{n} must be an RFC 3339 string or epoch number, got ' || lower({t})"))
        if not self.zone:
            self.checks.append((f"{col} IS NULL AND {t} = 'VARCHAR' AND NOT {is_num} AND NOT {has_offset(s)} "
                                f"AND {naive} IS NOT NULL", "naive_timestamp",
                                f"'{n}=' || {s} || ' has no UTC offset; add one (e.g. +09:00) or declare the "
                                f"source''s zone with --source-tz'"))
        self.checks.append((f"{present} AND ({col} IS NULL OR {out_of_range(col)})", "bad_timestamp",
                            f"'{n}=' || {s} || ' is not RFC 3339 or epoch seconds/milliseconds in 1990-2100'"))
        self.values.append(value)


# Expressions both lanes share (the full validator above and the fast lane in fastlane.py), so a
# value means the same whichever lane decided it.
def has_offset(s: str) -> str:
    """True when the timestamp text `s` ends in a UTC offset (or Z).

    Almost every timestamp ends in Z, which its last character tells: the pattern runs only for the
    others, at a sixth of its cost per record. A line break keeps a text on the pattern's side, since
    the pattern's `.` does not cross one."""
    return (f"CASE WHEN (suffix({s}, 'Z') OR suffix({s}, 'z')) AND NOT contains({s}, chr(10)) THEN true "
            f"ELSE regexp_full_match({s}, {_OFFSET}) END")


def with_offset(s: str) -> str:
    return f"CAST(TRY_CAST({s} AS TIMESTAMPTZ) AS TIMESTAMP)"


def from_epoch(s: str) -> str:
    """Epoch text to a timestamp. Seconds and milliseconds are told apart by magnitude: 1e11 seconds
    is the year 5138."""
    num = f"TRY_CAST(trim({s}) AS DOUBLE)"
    return (f"try(make_timestamp(TRY_CAST(CASE WHEN abs({num}) >= 1e11 THEN {num} * 1000 "
            f"ELSE {num} * 1000000 END AS BIGINT)))")


def out_of_range(col: str) -> str:
    return f"({col} < TIMESTAMP '1990-01-01' OR {col} >= TIMESTAMP '2100-01-01')"


def str_value(f: Field, s: str) -> str:
    """A string field's stored value from its string `s`: empty means absent; countries in upper case."""
    value = f"nullif({s}, '')"
    return f"upper({value})" if f.name == "src_country" else value


def value_checks() -> list[tuple[str, str, str]]:
    """Checks on the normalised values (condition true when bad, reason, detail SQL)."""
    checks = [(f"NOT (\"kind\" IN {_in(KINDS)})", "unknown_kind",
               f"'kind ' || \"kind\" || ' is not one of {', '.join(sorted(KINDS))}'")]
    for name, allowed in ENUM_FIELDS.items():
        checks.append((f"\"{name}\" IS NOT NULL AND \"{name}\" NOT IN {_in(allowed)}", "bad_value",
                       f"'{name} ' || \"{name}\" || ' is not one of {', '.join(sorted(allowed))}'"))
    checks.append(("\"src_country\" IS NOT NULL AND NOT regexp_full_match(\"src_country\", '[A-Z]{2}')",
                   "bad_value", "'src_country ' || \"src_country\" || ' is not an ISO 3166 alpha-2 code'"))
    return checks


_KNOWN = "[" + ", ".join(_q(f.name) for f in FIELDS) + "]"
_REMOVE_KNOWN = _q("{" + ", ".join(f'"{f.name}": null' for f in FIELDS) + "}")
_PATHS = "[" + ", ".join(_q(f"$.{f.name}") for f in FIELDS) + "]"


def extra_sql(keys: str, line: str) -> str:
    """The record's unknown keys as a JSON object (kept under `attributes`), or NULL when it has none."""
    return (f"CASE WHEN {keys} IS NOT NULL AND len(list_filter({keys}, lambda key: NOT list_contains({_KNOWN}, key))) "
            f"> 0 THEN json_merge_patch({line}, {_REMOVE_KNOWN})::VARCHAR END")


def blank_sql(column: str) -> str:
    """SQL true when a line holds only JSON whitespace: such a line is skipped, not quarantined. Lines keep
    their newline, and DuckDB's one-argument trim strips spaces only."""
    return f"(trim({column}, ' ' || chr(9) || chr(10) || chr(13)) = '')"


def normalize_sql(zone: SourceZone | None, lines: str = "_lines") -> tuple[str, str]:
    """SQL for one batch: (statement creating `_checked`, output column list).

    `lines` has columns `_src`, `_pos` and `line` (JSON text).
    """
    r = _Rules(zone)
    for i, f in enumerate(FIELDS, 1):
        r.add(f, i)
    pos = {f.name: i for i, f in enumerate(FIELDS, 1)}
    k, tm = pos["kind"], pos["time"]
    checks: list[tuple[str, str, str]] = [
        ("NOT _valid", "invalid_json", "'line is not valid JSON'"),
        ("NOT _is_object", "not_an_object", "'a record must be a JSON object'"),
    ]
    checks += [c for c in r.checks if c[1] == "wrong_type"]
    checks += [
        # An empty kind is no kind (it used to pass here and then break the NOT NULL column on insert).
        (f"_t{k} IS NULL OR _t{k} = 'NULL' OR \"kind\" IS NULL", "missing_field", "'kind is required'"),
        (f"_t{tm} IS NULL OR _t{tm} = 'NULL'", "missing_field", "'time is required'"),
    ]
    unknown_kind, *value_rest = value_checks()
    checks.append(unknown_kind)
    checks += [c for c in r.checks if c[1] != "wrong_type"]
    checks += value_rest
    reason = "CASE " + " ".join(f"WHEN {c} THEN '{rs}'" for c, rs, _ in checks) + " END"
    detail = "CASE " + " ".join(f"WHEN {c} THEN {d}" for c, _, d in checks) + " END"
    n = len(FIELDS)
    vs = ", ".join(f"_v[{i}] AS _v{i}" for i in range(1, n + 1))
    ts = ", ".join(f"{_type_of(f'_v{i}')} AS _t{i}" for i in range(1, n + 1))
    cols = ", ".join(f'{val} AS "{f.name}"' for f, val in zip(FIELDS, r.values))
    extra = f"{extra_sql('_keys', 'line')} AS _extra"
    names = ", ".join(f'"{f.name}"' for f in FIELDS)
    # Each stage is its own projection, so every value is computed once; the wide
    # intermediate columns (_v*, _t*) and the raw line are kept only for rejected rows.
    sql = f"""
CREATE OR REPLACE TEMP TABLE _checked AS
WITH p AS (
  SELECT _src, _pos, line, json_valid(line) AS _valid, left(ltrim(line), 1) = '{{' AS _is_object
  FROM {lines} WHERE NOT {blank_sql('line')}
), x AS (
  SELECT *, CASE WHEN _valid AND _is_object THEN json_extract(line, {_PATHS}) END AS _v,
         CASE WHEN _valid AND _is_object THEN json_keys(line) END AS _keys
  FROM p
), xv AS (SELECT * EXCLUDE (_v), {vs} FROM x),
xt AS (SELECT *, {ts} FROM xv),
xc AS (SELECT *, {cols}, {extra} FROM xt),
xr AS (SELECT *, {reason} AS _reason FROM xc)
SELECT _src, _pos, {names}, _extra, _reason,
       CASE WHEN _reason IS NOT NULL THEN {detail} END AS _detail,
       CASE WHEN _reason IS NOT NULL THEN line END AS _line,
       CASE WHEN _reason IS NOT NULL AND _valid AND _is_object THEN line->>'$.event_id' END AS _claimed_id
FROM xr"""
    return sql, names


def derived_id_sql() -> str:
    """A stable id for a record that came without one: a hash of its normalised content."""
    parts = ", ".join(f"'{f.name}': \"{f.name}\"" + ("::VARCHAR" if f.kind == "attrs" else "")
                      for f in FIELDS if f.name != "event_id")
    return f"'h-' || substr(sha256(to_json({{{parts}}})::VARCHAR), 1, 32)"


_SQL_CACHE: dict[tuple, tuple[str, str]] = {}


def cached_normalize_sql(zone: SourceZone | None, lines: str) -> tuple[str, str]:
    key = (zone, lines)
    if key not in _SQL_CACHE:
        _SQL_CACHE[key] = normalize_sql(zone, lines)
    return _SQL_CACHE[key]
