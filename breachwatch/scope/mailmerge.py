"""Per-person notices: the manifest joined to the company's own contact file.

The manifest holds ids only. The company provides a contact file (id, name,
e-mail, phone); the mail-merge gives each person a notice listing exactly their
own exposed fields, taken from their manifest row and nobody else's, and marks
whether it is their first notice or an update (fields added since the last
run). Rows are built in DuckDB, so millions of notices take seconds.

The exposure table is the long form (one row per person and field) for loading
into the company's own member service.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from breachwatch.scope.duck import temp_table_from_arrow
from breachwatch.scope.manifest import Manifest

ID_COLUMNS = ("subject_id", "id", "member_id", "customer_id")


def _q(s: str) -> str:
    return s.replace("'", "''")


def _reader(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return f"read_parquet('{_q(str(path))}')"
    if name.endswith((".csv", ".csv.gz", ".tsv")):
        return f"read_csv('{_q(str(path))}', all_varchar = true, header = true)"
    raise ValueError(f"{path}: contact files must be .csv or .parquet. Fix: export id, name, email, phone as CSV.")


def load_contacts(con: duckdb.DuckDBPyConnection, path: str | Path) -> int:
    """Temp table `_scope_contacts(subject_id, name, email, phone)` from the company's file."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"contact file {p} does not exist. Fix: pass the file with id, name, email, phone columns.")
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_reader(p)}").fetchall()]
    lower = {c.lower(): c for c in cols}
    idc = next((lower[c] for c in ID_COLUMNS if c in lower), None)
    if idc is None:
        raise ValueError(f"{p}: no id column (looked for {', '.join(ID_COLUMNS)}; found {', '.join(cols)}). "
                         "Fix: name the column holding the member or recipient id 'subject_id'.")

    def col(name: str) -> str:
        return f'CAST("{lower[name]}" AS VARCHAR)' if name in lower else "NULL::VARCHAR"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _scope_contacts AS
        SELECT CAST("{idc}" AS VARCHAR) AS subject_id, any_value({col('name')}) AS name,
               any_value({col('email')}) AS email, any_value({col('phone')}) AS phone
        FROM {_reader(p)} GROUP BY 1""")
    return con.execute("SELECT count(*) FROM _scope_contacts").fetchone()[0]


def _labels(con: duckdb.DuckDBPyConnection, m: Manifest) -> None:
    cat = m.catalog
    fields = sorted({f for (f,) in con.execute(f"SELECT DISTINCT field FROM {m.pairs_table}").fetchall()})
    temp_table_from_arrow(con, "_scope_labels", pa.table({
        "field": pa.array(fields, pa.string()),
        "label": pa.array([cat.fields[f].label if f in cat.fields else f for f in fields], pa.string()),
        "label_ko": pa.array([cat.fields[f].label_ko if f in cat.fields else f for f in fields], pa.string())}))


def _template(lang: str, company: dict[str, Any]) -> str:
    text = resources.files("breachwatch.scope.reports").joinpath("templates", f"notice_mailmerge.{lang}.txt") \
        .read_text("utf-8")
    name = company.get("name_ko", company.get("name", "")) if lang == "ko" else company.get("name", "")
    return text.replace("{company}", str(name)).replace("{contact}", str(company.get("contact", "")))


def _fill_sql(template: str, name: str, fields: str, first: str, last: str) -> str:
    """SQL that fills one notice template per row."""
    return (f"replace(replace(replace(replace('{_q(template)}', '{{name}}', {name}), '{{fields}}', {fields}), "
            f"'{{first}}', {first}), '{{last}}', {last})")


def mail_merge(m: Manifest, contacts: str | Path, out_path: str | Path) -> dict[str, int]:
    """Write the per-person notice CSV; returns counts (rows, with_contact, first, update, unchanged).

    A person already told of some fields by any earlier run of the incident (also one of an incident
    since folded into it, scope/fold.py) gets an update naming only the new fields, or no new notice."""
    con = m.con
    load_contacts(con, contacts)
    _labels(con, m)
    prev = (f"SELECT subject_id, list_distinct(flatten(list(fields))) AS fields FROM scope_subjects "
            f"WHERE incident_id = '{_q(str(m.incident['id']))}' AND run_id <> '{_q(m.run_id)}' GROUP BY subject_id")
    # Korea has kept +9 h without daylight saving time since 1988.
    kst = "strftime(t.{col} + INTERVAL 9 HOUR, '%Y-%m-%d %H:%M KST')"
    utc = "strftime(t.{col}, '%Y-%m-%d %H:%M UTC')"
    tmpl_ko, tmpl_en = _template("ko", m.catalog.company), _template("en", m.catalog.company)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _scope_merge AS
        WITH lbl AS (
            SELECT p.subject_id, string_agg(l.label, ', ' ORDER BY p.field) AS fields_en,
                   string_agg(l.label_ko, ', ' ORDER BY p.field) AS fields_ko
            FROM {m.pairs_table} p JOIN _scope_labels l USING (field) GROUP BY 1),
        prev AS ({prev})
        SELECT t.subject_id, c.name, c.email, c.phone, t.subject_type,
               CASE WHEN prev.subject_id IS NULL THEN 'first'
                    WHEN len(list_filter(t.fields, lambda f: NOT list_contains(prev.fields, f))) > 0 THEN 'update'
                    ELSE 'unchanged' END AS notice,
               array_to_string(t.fields, '|') AS fields,
               array_to_string(CASE WHEN prev.subject_id IS NULL THEN []::VARCHAR[]
                                    ELSE list_filter(t.fields, lambda f: NOT list_contains(prev.fields, f)) END, '|') AS new_fields,
               lbl.fields_en, lbl.fields_ko,
               {kst.format(col='first_exposure')} AS first_exposure_kst, {kst.format(col='last_exposure')} AS last_exposure_kst,
               {_fill_sql(tmpl_ko, "coalesce(c.name || ' ', '')", 'lbl.fields_ko', kst.format(col='first_exposure'),
                          kst.format(col='last_exposure'))} AS notice_ko,
               {_fill_sql(tmpl_en, "coalesce(c.name, 'customer')", 'lbl.fields_en', utc.format(col='first_exposure'),
                          utc.format(col='last_exposure'))} AS notice_en
        FROM {m.table} t JOIN lbl USING (subject_id)
        LEFT JOIN _scope_contacts c ON c.subject_id = t.subject_id
        LEFT JOIN prev ON prev.subject_id = t.subject_id
        ORDER BY t.subject_id""")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY _scope_merge TO '{_q(str(out))}' (HEADER, DELIMITER ',')")
    rows, with_contact, first, update, unchanged = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE coalesce(email, phone) IS NOT NULL),
               count(*) FILTER (WHERE notice = 'first'), count(*) FILTER (WHERE notice = 'update'),
               count(*) FILTER (WHERE notice = 'unchanged') FROM _scope_merge""").fetchone()
    return {"rows": rows, "with_contact": with_contact, "without_contact": rows - with_contact, "first": first,
            "update": update, "unchanged": unchanged}


def export_exposures(m: Manifest, out_dir: str | Path) -> dict[str, str]:
    """One row per (person, field) for the company's member service, as CSV and Parquet."""
    con = m.con
    _labels(con, m)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sql = (f"SELECT '{_q(str(m.incident['id']))}' AS incident_id, p.subject_id, t.subject_type, p.field, l.label, "
           f"l.label_ko, p.first_exposure, p.last_exposure, p.reads FROM {m.pairs_table} p "
           f"JOIN {m.table} t USING (subject_id) JOIN _scope_labels l USING (field) ORDER BY p.subject_id, p.field")
    files = {}
    for fmt, opts in (("csv", "(HEADER, DELIMITER ',')"), ("parquet", "(FORMAT PARQUET)")):
        p = out / f"exposures.{fmt}"
        con.execute(f"COPY ({sql}) TO '{_q(str(p))}' {opts}")
        files[p.name] = str(p)
    return files

