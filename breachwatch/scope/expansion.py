"""Scope expansion: from the incident's own events to everything the same actor did.

A detector sees the part of a campaign it needed to decide; the blast radius is
the whole campaign. Starting from the incident's events, each step proposes one
precise widening, a SQL condition over the whole history tied to something the
scope already holds (a signing key's forged tokens, a token, a principal after
offboarding, a client fingerprint on the same networks), with its evidence and
the people it adds. Steps are found round by round until nothing new is tied to
the scope, so a step may rest on earlier ones (`basis`). The analyst accepts or
rejects each; the manifest is built from the incident's events plus the
accepted steps and records every decision.

"Same key" alone is not a step: a leaked key also signs every legitimate login's
token. The step generators in `steps.py` each pair an entity with the signal that
separates the actor from ordinary traffic sharing it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from breachwatch.contract.catalog import Catalog, load_catalog
from breachwatch.scope.duck import time_between
from breachwatch.scope.exposures import SUCCESS_SQL, build_exposures, exposure_rules_digest
from breachwatch.scope.seed import register_seed, seed_key, seed_where
from breachwatch.scope.shared import ensure_shared, store_stamp

MAX_ROUNDS = 6


@dataclass
class Step:
    id: str                       # stable across runs, so `--accept ID` works on a later call
    kind: str
    title: str                    # one line in plain words with the numbers
    where: str                    # SQL condition over `events e` selecting the step's events
    anchor: str = "TRUE"          # SQL over in-scope events `x`: those the step was drawn from
    basis: list[str] = field(default_factory=list)   # 'seed' and/or ids of the steps that led here
    evidence: list[str] = field(default_factory=list)
    events: int = 0               # readable access events it adds to the scope
    added_subjects: int = 0
    added_pairs: int = 0
    new_ips: int = 0
    since: datetime | None = None
    until: datetime | None = None
    decision: str = "proposed"    # proposed, accepted, rejected

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["since"] = self.since.isoformat() if self.since else None
        d["until"] = self.until.isoformat() if self.until else None
        return d


def sql_str(value: str) -> str:
    """A SQL string literal; step conditions are stored as text, so values are inlined safely."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: Any) -> str:
    return "[" + ", ".join(sql_str(v) for v in sorted(values)) + "]::VARCHAR[]"


def compact(n: int) -> str:
    """33,600,000 -> '33.6 M': how a report says a count at a glance."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} M"
    if n >= 10_000:
        return f"{n / 1_000:.1f} k"
    return f"{n:,}"


# The columns of in-scope events that steps and reports look at, kept in temp table
# `_scope_ev` with the origin (seed or step id) that brought each event in.
SCOPE_EV_COLS = ("event_id", "time", "kind", "principal_id", "principal_type", "session_id", "token_id", "key_id",
                 "src_ip", "src_asn", "src_country", "client_fingerprint", "reason_ref", "status", "subject_ids")
_COLS = ", ".join(f"e.{c}" for c in SCOPE_EV_COLS)
# The exposures of the events in `_scope_ev` (only while counting: a replay does not fill it).
SCOPE_EXP = "_scope_ev_exp"


class ScopeState:
    """The events and (subject, field) pairs in scope so far, as temp tables of `con`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
        self.con = con
        self.catalog = catalog
        con.execute(f"CREATE OR REPLACE TEMP TABLE _scope_ev AS SELECT {_COLS}, ''::VARCHAR AS origin "
                    "FROM events e LIMIT 0")
        con.execute("CREATE OR REPLACE TEMP TABLE _scope_pairs (subject_id VARCHAR, field VARCHAR)")
        # The exposures of the events in scope, kept as they are counted so the manifest need not
        # read the same events again (`build_exposures`' two tables, with their origin).
        con.execute(f"CREATE OR REPLACE TEMP TABLE {SCOPE_EXP} (event_id VARCHAR, time TIMESTAMP, "
                    "subject_id VARCHAR, field VARCHAR, origin VARCHAR)")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {SCOPE_EXP}_subjects (event_id VARCHAR, time TIMESTAMP, "
                    "endpoint VARCHAR, subject_id VARCHAR, recipient BOOLEAN, origin VARCHAR)")
        # `_scope_ev` starts empty, so no proposal describes it any more.
        con.execute("DROP TABLE IF EXISTS _scope_proposal")
        # Tokens a login issued (`_scope_issued`): the line between a legitimate token and a forged one.
        ensure_shared(con, "_scope_issued")

    def add(self, origin: str, where: str, *, count: bool = True) -> tuple[int, int, int, int, Any, Any]:
        """Add the events matching `where` (over `events e`) that are not yet in scope; return
        (access events, added subjects, added pairs, new ips, since, until). With count=False
        (replaying decided steps) only the events are added."""
        con = self.con
        cols = "e.*" if count else _COLS
        # Two passes: the condition reads only its own columns of the whole history; the full rows
        # are then read only within the time span of what it found (the store is appended in time
        # order, so the scan skips the row groups outside it), and not at all when it found nothing.
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _scope_hits AS
            SELECT e.event_id, e.time FROM events e
            WHERE ({where}) AND e.event_id NOT IN (SELECT event_id FROM _scope_ev)""")
        lo, hi = con.execute("SELECT min(time), max(time) FROM _scope_hits").fetchone()
        span = time_between(lo, hi) if lo is not None else "FALSE"
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _scope_new AS
            SELECT {cols} FROM events e WHERE {span} AND e.event_id IN (SELECT event_id FROM _scope_hits)""")
        if count:
            n, since, until, ips = con.execute(f"""
                SELECT count(*) FILTER (WHERE kind = 'access' AND {SUCCESS_SQL}),
                       min(time) FILTER (WHERE kind = 'access'), max(time) FILTER (WHERE kind = 'access'),
                       count(DISTINCT src_ip) FILTER (WHERE src_ip NOT IN (SELECT src_ip FROM _scope_ev
                                                                          WHERE src_ip IS NOT NULL))
                FROM _scope_new""").fetchone()
        con.execute(f"INSERT INTO _scope_ev SELECT {', '.join(SCOPE_EV_COLS)}, ? FROM _scope_new", [origin])
        if not count or not n:
            return 0, 0, 0, 0, None, None
        build_exposures(con, "_scope_new", self.catalog, "_scope_new_exp")
        con.execute(f"INSERT INTO {SCOPE_EXP} SELECT event_id, time, subject_id, field, ? FROM _scope_new_exp",
                    [origin])
        con.execute(f"INSERT INTO {SCOPE_EXP}_subjects SELECT event_id, time, endpoint, subject_id, recipient, ? "
                    "FROM _scope_new_exp_subjects", [origin])
        subj, pairs = con.execute("""
            WITH p AS (SELECT DISTINCT subject_id, field FROM _scope_new_exp)
            SELECT count(DISTINCT p.subject_id) FILTER (WHERE p.subject_id NOT IN (SELECT subject_id FROM _scope_pairs)),
                   count(*) FILTER (WHERE NOT EXISTS
                       (SELECT 1 FROM _scope_pairs q WHERE q.subject_id = p.subject_id AND q.field = p.field))
            FROM p""").fetchone()
        con.execute("INSERT INTO _scope_pairs SELECT DISTINCT p.subject_id, p.field FROM _scope_new_exp p "
                    "ANTI JOIN _scope_pairs q ON q.subject_id = p.subject_id AND q.field = p.field")
        con.execute("DROP TABLE IF EXISTS _scope_new_exp")
        con.execute("DROP TABLE IF EXISTS _scope_new_exp_subjects")
        return n, subj, pairs, ips, since, until


def _fill(title: str, **values: str) -> str:
    # Plain replacement, not str.format: titles may quote route templates with braces.
    for k, v in values.items():
        title = title.replace("{" + k + "}", v)
    return title


def propose_expansions(con: duckdb.DuckDBPyConnection, incident: dict[str, Any], *,
                       catalog: Catalog | None = None, event_ids: list[str] | None = None,
                       max_rounds: int = MAX_ROUNDS) -> list[Step]:
    """Every widening step tied to the incident, each with its evidence and the people it adds.

    Counts are cumulative in the order given: a step's added subjects are those that
    neither the incident's events nor an earlier step already reached. Generators run in
    order and each sees what the ones before it added, so a guard such as "this client
    was never seen before the campaign" is judged on the campaign found so far.
    """
    from breachwatch.scope.steps import GENERATORS
    catalog = catalog or load_catalog(None)
    register_seed(con, incident, event_ids)
    ensure_shared(con, "_scope_issued", "_scope_issued_by_key", "_scope_offboarded", "_scope_created",
                  "_scope_first_access")
    state = ScopeState(con, catalog)
    state.add("seed", seed_where(con))
    steps: list[Step] = []
    seen: set[str] = set()
    for rnd in range(1, max_rounds + 1):
        grew = False
        for gen in GENERATORS:
            for c in gen(con, catalog, rnd):
                if c.id in seen:
                    continue
                c.basis = [r[0] for r in con.execute(
                    f"SELECT DISTINCT origin FROM _scope_ev x WHERE {c.anchor} ORDER BY 1").fetchall()]
                n, subj, pairs, ips, since, until = state.add(c.id, c.where)
                if not n:
                    # Nothing readable came with it (failed requests only): not a step, so not in scope either.
                    con.execute("DELETE FROM _scope_ev WHERE origin = ?", [c.id])
                    continue
                seen.add(c.id)
                c.events, c.added_subjects, c.added_pairs, c.new_ips = n, subj, pairs, ips
                c.since, c.until = since, until
                c.title = _fill(c.title, events=f"{n:,}", ips=f"{ips:,}", since=since.strftime("%m-%d"),
                                subjects=compact(subj), pairs=f"{pairs:,}")
                steps.append(c)
                grew = True
        if not grew:
            break
    _record_proposal(con, catalog, [c.id for c in steps])
    return steps


def _record_proposal(con: duckdb.DuckDBPyConnection, catalog: Catalog, step_ids: list[str]) -> None:
    """Note what `_scope_ev` and SCOPE_EXP now hold: this seed plus these steps, in order, found in
    this store state and exposed under this catalog."""
    con.execute("CREATE OR REPLACE TEMP TABLE _scope_proposal (seed VARCHAR, stamp VARCHAR, catalog VARCHAR, "
                "steps VARCHAR[])")
    con.execute("INSERT INTO _scope_proposal VALUES (?, ?, ?, ?)",
                [seed_key(con), store_stamp(con), exposure_rules_digest(catalog), step_ids])


def reuse_proposal(con: duckdb.DuckDBPyConnection, catalog: Catalog, accepted_ids: list[str]) -> bool:
    """Keep the scope the last proposal found, when it is what replaying `accepted_ids` would build.

    A step's events depend on the steps before it (its condition may read `_scope_ev`, and an
    event belongs to the first step that selects it), so the proposal's events are the replay's
    only when the accepted steps are the first proposals in order (all of them, under
    --accept-all), for the same seed (`_scope_seed`), an unchanged store and the same catalog
    rules for exposures. Then the later proposals' events and exposures are dropped, and
    neither the steps' search nor the exposures are done again.
    """
    got = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = '_scope_proposal'"
                      ).fetchone()[0]
    if not got:
        return False
    seed, stamp, rules, steps = con.execute("SELECT seed, stamp, catalog, steps FROM _scope_proposal").fetchone()
    if (steps[:len(accepted_ids)] != accepted_ids or seed != seed_key(con) or stamp != store_stamp(con)
            or rules != exposure_rules_digest(catalog)):
        return False
    if len(accepted_ids) < len(steps):
        keep = ["seed", *accepted_ids]
        for table in ("_scope_ev", SCOPE_EXP, f"{SCOPE_EXP}_subjects"):
            con.execute(f"DELETE FROM {table} WHERE origin NOT IN (SELECT unnest(?))", [keep])
        _record_proposal(con, catalog, accepted_ids)
    return True


def decide(steps: list[Step], accept: list[str] | None = None, reject: list[str] | None = None,
           accept_all: bool = False) -> list[Step]:
    """Mark each step accepted or rejected; unknown ids are an error naming the known ones."""
    ids = {s.id for s in steps}
    for given in (accept or []) + (reject or []):
        if given not in ids:
            raise ValueError(f"step '{given}' was not proposed for this incident. Fix: use one of "
                             f"{sorted(ids) or 'none (no expansion was proposed)'}; list them with --propose.")
    both = set(accept or []) & set(reject or [])
    if both:
        raise ValueError(f"steps {sorted(both)} are both accepted and rejected. Fix: pick one for each.")
    for s in steps:
        if s.id in (reject or []):
            s.decision = "rejected"
        elif accept_all or s.id in (accept or []):
            s.decision = "accepted"
        else:
            s.decision = "proposed"
    return steps
