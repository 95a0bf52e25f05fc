"""The blast-radius manifest: one row per affected person, with exactly the fields that went out.

Built in DuckDB from the incident's events plus the accepted expansion steps
(replayed in the order they were proposed), so a campaign of millions of reads
is aggregated without rows passing through Python. The manifest holds ids only;
names and contact details join it later, from the company's own contact file,
in the mail-merge.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import orjson

from breachwatch.contract.catalog import Catalog, load_catalog
from breachwatch.scope.duck import temp_table_from_arrow
from breachwatch.scope.expansion import SCOPE_EXP, ScopeState, Step, reuse_proposal, sql_str
from breachwatch.scope.exposures import build_exposures
from breachwatch.scope.seed import register_seed, seed_where
from breachwatch.scope.shared import ensure_shared

# Display groups of the reports and notices: a masked entrance code is an entrance code.
GROUP_ORDER = ("name", "email", "phone", "address", "entrance_code", "order_history")
LEGAL_ORDER = ("unique_identifier", "sensitive", "credential", "personal")


def field_group(field_name: str) -> str:
    return field_name.removesuffix("_masked")


@dataclass
class Manifest:
    """A built manifest: its rows live in temp tables of `con`, named with the run id."""
    con: duckdb.DuckDBPyConnection
    catalog: Catalog
    incident: dict[str, Any]
    run_id: str
    table: str                  # one row per subject
    pairs_table: str            # one row per (subject, field)
    steps: list[Step]
    summary: dict[str, Any] = field(default_factory=dict)

    def pairs(self) -> set[tuple[str, str]]:
        """Every exposed (subject, field) pair: what Contract 4 scores recall and precision on."""
        return set(self.con.execute(f"SELECT subject_id, field FROM {self.pairs_table}").fetchall())

    def subjects(self) -> dict[str, dict[str, Any]]:
        rows = self.con.execute(f"SELECT subject_id, subject_type, fields, first_exposure, last_exposure, reads, "
                                f"endpoints FROM {self.table}").fetchall()
        return {r[0]: {"subject_type": r[1], "fields": r[2], "first_exposure": r[3], "last_exposure": r[4],
                       "reads": r[5], "endpoints": r[6]} for r in rows}

    @property
    def accepted(self) -> list[Step]:
        return [s for s in self.steps if s.decision == "accepted"]

    def release(self) -> None:
        """Drop this manifest's temp tables (a long-running process scopes many incidents)."""
        for t in (self.table, self.pairs_table):
            self.con.execute(f"DROP TABLE IF EXISTS {t}")


def _replay(state: ScopeState, accepted: list[Step]) -> None:
    state.add("seed", seed_where(state.con), count=False)
    for s in accepted:
        state.add(s.id, s.where, count=False)


def build_manifest(con: duckdb.DuckDBPyConnection, incident: dict[str, Any], accepted_steps: list[Step], *,
                   proposed: list[Step] | None = None, catalog: Catalog | None = None,
                   event_ids: list[str] | None = None) -> Manifest:
    """The manifest of the incident's events plus `accepted_steps` (in their proposal order).

    `proposed`, when given, is the full list of proposals with their decisions, so the
    manifest records the rejected steps too.
    """
    catalog = catalog or load_catalog(None)
    register_seed(con, incident, event_ids)
    accepted = list(accepted_steps)
    for s in accepted:
        s.decision = "accepted"
    steps = proposed if proposed is not None else accepted
    order = {s.id: i for i, s in enumerate(steps)}
    accepted.sort(key=lambda s: order.get(s.id, len(order)))
    run_id = uuid.uuid4().hex[:12]
    tbl, pairs = f"_scope_manifest_{run_id}", f"_scope_pairs_{run_id}"
    reused = reuse_proposal(con, catalog, [s.id for s in accepted])
    if reused:
        exp = SCOPE_EXP  # the proposal's exposures are exactly these events'
    else:
        _replay(ScopeState(con, catalog), accepted)
        con.execute("CREATE OR REPLACE TEMP VIEW _scope_all AS SELECT e.* FROM events e "
                    "SEMI JOIN _scope_ev s ON s.event_id = e.event_id")
        exp = f"_scope_exp_{run_id}"
        build_exposures(con, "_scope_all", catalog, exp)
    # Each (event, subject, field) row is unique, so count(*) is the number of reads.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {pairs} AS
        SELECT subject_id, field, min(time) AS first_exposure, max(time) AS last_exposure, count(*) AS reads
        FROM {exp} GROUP BY 1, 2""")
    pattern = (catalog.policy.get("scope") or {}).get("member_id_pattern")
    if pattern:
        member = f"regexp_full_match(a.subject_id, {sql_str(str(pattern))})"
        known = ""
    else:
        # Without an id convention: a member is anyone known as an account holder, or anyone
        # reached other than as an entry in someone else's address book.
        ensure_shared(con, "_scope_known_members")
        member = "(k.subject_id IS NOT NULL OR NOT a.only_book)"
        known = "LEFT JOIN _scope_known_members k ON k.subject_id = a.subject_id"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {tbl} AS
        WITH a AS (
            SELECT subject_id, min(time) AS first_exposure, max(time) AS last_exposure, count(*) AS reads,
                   list_sort(list_distinct(list(endpoint))) AS endpoints,
                   bool_and(recipient) AS only_book
            FROM {exp}_subjects GROUP BY 1),
        f AS (SELECT subject_id, list(field ORDER BY field) AS fields FROM {pairs} GROUP BY 1)
        SELECT a.subject_id, CASE WHEN {member} THEN 'member' ELSE 'non_member' END AS subject_type,
               f.fields, a.first_exposure, a.last_exposure, a.reads, coalesce(a.endpoints, []::VARCHAR[]) AS endpoints
        FROM a JOIN f ON f.subject_id = a.subject_id {known}""")
    if not reused:
        con.execute(f"DROP TABLE IF EXISTS {exp}_subjects")
        con.execute(f"DROP TABLE IF EXISTS {exp}")
    m = Manifest(con, catalog, incident, run_id, tbl, pairs, steps)
    m.summary = summarize(m)
    return m


def summarize(m: Manifest) -> dict[str, Any]:
    con, cat = m.con, m.catalog
    total, members, first, last, reads = con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE subject_type = 'member'), min(first_exposure), max(last_exposure),
               sum(reads) FROM {m.table}""").fetchone()
    by_field = []
    for f, subj, mem in con.execute(f"""
            SELECT p.field, count(*), count(*) FILTER (WHERE t.subject_type = 'member')
            FROM {m.pairs_table} p JOIN {m.table} t USING (subject_id) GROUP BY 1 ORDER BY 2 DESC, 1""").fetchall():
        info = cat.fields.get(f)
        by_field.append({"field": f, "label": info.label if info else f, "label_ko": info.label_ko if info else f,
                         "category": cat.category(f), "group": field_group(f), "subjects": subj, "members": mem,
                         "non_members": subj - mem})
    groups: dict[str, set[str]] = {}
    legal: dict[str, set[str]] = {}
    for row in by_field:
        groups.setdefault(row["group"], set()).add(row["field"])
        legal.setdefault(row["category"], set()).add(row["field"])
    by_category = []
    for kind, table in (("group", groups), ("legal", legal)):
        for name, fields in table.items():
            n = con.execute(f"SELECT count(DISTINCT subject_id) FROM {m.pairs_table} WHERE list_contains(?, field)",
                            [sorted(fields)]).fetchone()[0]
            by_category.append({"kind": kind, "category": name, "fields": sorted(fields), "subjects": n,
                                "label": _group_label(cat, name, "en"), "label_ko": _group_label(cat, name, "ko")})
    rank = {g: i for i, g in enumerate(GROUP_ORDER + LEGAL_ORDER)}
    by_category.sort(key=lambda r: (r["kind"] != "group", rank.get(r["category"], 99), r["category"]))
    sensitive = any(f in cat.fields and cat.fields[f].gdpr_special for f in (r["field"] for r in by_field))
    ext = _external(con)
    return {
        "incident": m.incident.get("id"), "run_id": m.run_id, "subjects": total, "members": members,
        "non_members": total - members, "pairs": sum(r["subjects"] for r in by_field),
        "reads": int(reads or 0), "first_exposure": _iso(first), "last_exposure": _iso(last),
        "by_field": by_field, "by_category": by_category,
        "unique_identifiers": any(r["category"] == "unique_identifier" for r in by_field),
        "sensitive": sensitive or any(r["category"] == "sensitive" for r in by_field),
        "external": ext["external"], "access": ext,
        "steps": [s.as_dict() for s in m.steps],
    }


_GROUP_LABELS = {"entrance_code": ("entrance code", "공동현관 출입번호"),
                 "unique_identifier": ("unique identifiers", "고유식별정보"),
                 "sensitive": ("sensitive data", "민감정보"), "credential": ("credentials and payment data", "인증·결제정보"),
                 "personal": ("personal data (all categories above)", "일반 개인정보")}


def _group_label(cat: Catalog, name: str, lang: str) -> str:
    if name in _GROUP_LABELS:
        return _GROUP_LABELS[name][1 if lang == "ko" else 0]
    info = cat.fields.get(name)
    if info is None:
        return name
    return info.label_ko if lang == "ko" else info.label


def _external(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """How the data was reached: from outside (not staff, not internal services), and from where."""
    row = con.execute("""
        SELECT count(*) FILTER (WHERE coalesce(principal_type, 'anonymous') NOT IN ('employee', 'service')),
               count(*) FILTER (WHERE principal_type IN ('employee', 'service')),
               count(DISTINCT src_ip), list(DISTINCT src_country ORDER BY src_country) FILTER (WHERE src_country IS NOT NULL),
               list(DISTINCT principal_type ORDER BY principal_type) FILTER (WHERE principal_type IS NOT NULL),
               list(DISTINCT key_id ORDER BY key_id) FILTER (WHERE key_id IS NOT NULL),
               count(DISTINCT token_id)
        FROM _scope_ev WHERE kind = 'access'""").fetchone()
    outside, inside, ips, countries, ptypes, keys, tokens = row
    # An account used after its holder left is outside access too.
    ensure_shared(con, "_scope_offboarded")
    gone = con.execute("""
        SELECT count(*) FROM _scope_ev a JOIN _scope_offboarded o ON o.principal_id = a.principal_id
        WHERE a.kind = 'access' AND a.time >= o.gone""").fetchone()[0]
    return {"external": bool(outside or gone), "outside_reads": outside, "staff_reads": inside,
            "after_offboarding_reads": gone, "ips": ips, "countries": countries or [],
            "principal_types": ptypes or [], "signing_keys": keys or [], "tokens": tokens}


def _iso(t: datetime | None) -> str | None:
    return t.replace(tzinfo=timezone.utc).isoformat() if t else None


def write_manifest(m: Manifest, out_dir: str | Path) -> dict[str, str]:
    """Manifest, counts by field and by category, and the steps, as CSV, Parquet and JSON."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    con = m.con
    files: dict[str, str] = {}

    def copy(sql: str, name: str, list_cols: tuple[str, ...] = ()) -> None:
        for fmt, opts in (("csv", "(HEADER, DELIMITER ',')"), ("parquet", "(FORMAT PARQUET)")):
            p = out / f"{name}.{fmt}"
            query = sql if fmt == "parquet" else _csv_lists(sql, list_cols)
            con.execute(f"COPY ({query}) TO '{_q(p)}' {opts}")
            files[f"{name}.{fmt}"] = str(p)

    copy(f"SELECT subject_id, subject_type, fields, first_exposure, last_exposure, reads, endpoints "
         f"FROM {m.table} ORDER BY subject_id", "manifest", ("fields", "endpoints"))
    _rows_table(con, "_scope_by_field", m.summary["by_field"])
    copy("SELECT field, label, label_ko, category, subjects, members, non_members FROM _scope_by_field", "counts_by_field")
    _rows_table(con, "_scope_by_cat", m.summary["by_category"])
    copy("SELECT kind, category, label, label_ko, subjects, fields FROM _scope_by_cat", "counts_by_category",
         ("fields",))
    p = out / "steps.json"
    p.write_bytes(orjson.dumps([s.as_dict() for s in m.steps], option=orjson.OPT_INDENT_2))
    files["steps.json"] = str(p)
    p = out / "manifest.json"
    p.write_bytes(orjson.dumps({k: v for k, v in m.summary.items()}, option=orjson.OPT_INDENT_2, default=str))
    files["manifest.json"] = str(p)
    return files


def _csv_lists(sql: str, list_cols: tuple[str, ...]) -> str:
    """Lists as '|'-joined text in CSV, as Contract 1 writes them."""
    if not list_cols:
        return sql
    repl = ", ".join(f"array_to_string({c}, '|') AS {c}" for c in list_cols)
    return f"SELECT * REPLACE ({repl}) FROM ({sql})"


def _rows_table(con: duckdb.DuckDBPyConnection, name: str, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    if rows:
        tbl = pa.Table.from_pylist(rows)
    else:
        tbl = pa.table({"kind": pa.array([], pa.string())})
    temp_table_from_arrow(con, name, tbl)


def _q(p: Path) -> str:
    return str(p).replace("'", "''")


def record_run(m: Manifest, *, created_by: str | None = None, out_dir: str | None = None,
               now: datetime | None = None) -> int:
    """Store the run and its rows (ids only) so later runs are staged updates and the lookup can answer.

    Returns the run's version: 1 for the first notice, 2.. for updates.
    """
    con = m.con
    inc = str(m.incident["id"])
    version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM scope_runs WHERE incident_id = ?",
                          [inc]).fetchone()[0]
    s = m.summary
    at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(tzinfo=None)
    con.execute("BEGIN")
    try:
        con.execute("INSERT INTO scope_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [m.run_id, inc, version, at, created_by, orjson.dumps(s["steps"]).decode(), s["subjects"],
                     s["members"], s["non_members"], s["pairs"], out_dir])
        con.execute(f"INSERT INTO scope_subjects SELECT ?, ?, subject_id, subject_type, fields, first_exposure, "
                    f"last_exposure, reads, endpoints FROM {m.table}", [m.run_id, inc])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    s["version"] = version
    return version
