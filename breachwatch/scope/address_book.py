"""Address-book snapshots: which recipients each member's book held, and when.

Plain gateway logs of the address-book page name only the member whose book was
read. A company that exports its address-book table (or its change history)
loads it here; scope then adds, for each such read, the recipients the book held
at that moment with the fields their entry holds.

Input: CSV or Parquet with columns `member_id`, `recipient_id`, `valid_from`,
and optionally `valid_to` (empty: still held), `entry_id` (the address id the
detail page's route names) and `fields` (`|`-separated in CSV; empty: every field
the page returns). Times carry a UTC offset, or the zone is given with `tz`.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import duckdb

REQUIRED = ("member_id", "recipient_id", "valid_from")
_OFFSET = r"(Z|[+-][0-9]{2}:?[0-9]{2})$"


def _q(s: str) -> str:
    return s.replace("'", "''")


def snapshot_format(path: Path) -> str:
    """"parquet" or "csv" (gzip or not), from a snapshot file's name."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    raise ValueError(f"{path}: address-book snapshots must be .csv or .parquet. Fix: export member_id, "
                     "recipient_id, valid_from[, valid_to, entry_id, fields] as CSV.")


def _reader(path: Path) -> str:
    if snapshot_format(path) == "parquet":
        return f"read_parquet('{_q(str(path))}')"
    return f"read_csv('{_q(str(path))}', all_varchar = true, header = true)"


def _time_sql(col: str, tz: str | None) -> str:
    # Text times need an offset (or a declared zone); typed timestamps are taken as UTC.
    text = f"CAST({col} AS VARCHAR)"
    if tz:
        zoned = f"timezone('UTC', timezone('{_q(tz)}', CAST({text} AS TIMESTAMP)))"
        return (f"CASE WHEN regexp_matches(trim({text}), '{_OFFSET}') "
                f"THEN timezone('UTC', CAST(trim({text}) AS TIMESTAMPTZ)) ELSE {zoned} END")
    return f"timezone('UTC', CAST(trim({text}) AS TIMESTAMPTZ))"


def load_snapshots(con: duckdb.DuckDBPyConnection, path: str | Path, *, tz: str | None = None,
                   replace: bool = False, source: str | None = None) -> int:
    """Load one snapshot file into `address_book_snapshots`; returns the rows added. Its rows are filed under
    `source` (default: the path), which --replace matches."""
    p = Path(path)
    label = source or str(p)
    if not p.exists():
        raise ValueError(f"{label}: no such file. Fix: pass the address-book export.")
    src = _reader(p)
    cols = {r[0].lower(): (r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise ValueError(f"{label}: missing column(s) {', '.join(missing)} (found {', '.join(cols)}). Fix: provide "
                         "member_id, recipient_id and valid_from (and optionally valid_to, entry_id, fields).")

    def c(name: str) -> str:
        return f'"{cols[name][0]}"'
    for tcol in ("valid_from", "valid_to"):
        if tcol in cols and "VARCHAR" in cols[tcol][1] and not tz:
            bad = con.execute(f"SELECT count(*), any_value({c(tcol)}) FROM {src} WHERE nullif(trim({c(tcol)}), '') "
                              f"IS NOT NULL AND NOT regexp_matches(trim({c(tcol)}), '{_OFFSET}')").fetchone()
            if bad[0]:
                raise ValueError(f"{label}: {bad[0]:,} {tcol} value(s) have no UTC offset (e.g. '{bad[1]}'). Fix: write "
                                 "times like 2025-04-01T09:00:00+09:00, or pass the zone (--tz Asia/Seoul).")
    if "fields" in cols:
        f = c("fields")
        fields = (f"CASE WHEN nullif(trim(CAST({f} AS VARCHAR)), '') IS NULL THEN NULL "
                  f"ELSE string_split(trim(CAST({f} AS VARCHAR)), '|') END"
                  if "VARCHAR" in cols["fields"][1] and "[]" not in cols["fields"][1] else f"CAST({f} AS VARCHAR[])")
    else:
        fields = "NULL::VARCHAR[]"
    valid_to = (f"CASE WHEN nullif(trim(CAST({c('valid_to')} AS VARCHAR)), '') IS NULL THEN NULL "
                f"ELSE {_time_sql(c('valid_to'), tz)} END") if "valid_to" in cols else "NULL::TIMESTAMP"
    entry = f"nullif(CAST({c('entry_id')} AS VARCHAR), '')" if "entry_id" in cols else "NULL::VARCHAR"
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute("BEGIN")
    try:
        if replace:
            con.execute("DELETE FROM address_book_snapshots WHERE source = ?", [label])
        n = con.execute(f"""INSERT INTO address_book_snapshots
            SELECT CAST({c('member_id')} AS VARCHAR), CAST({c('recipient_id')} AS VARCHAR), {entry}, {fields},
                   {_time_sql(c('valid_from'), tz)}, {valid_to}, ?, ?
            FROM {src}""", [label, loaded_at]).fetchone()[0]
        con.execute("COMMIT")
    except duckdb.ConversionException as e:
        con.execute("ROLLBACK")
        raise ValueError(f"{label}: a time could not be read ({e}). Fix: use RFC 3339 times with an offset.") from e
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(n)

