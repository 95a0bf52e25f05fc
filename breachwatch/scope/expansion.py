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
from breachwatch.scope.exposures import SUCCESS_SQL, build_exposures
from breachwatch.scope.seed import register_seed

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


class ScopeState:
    """The events and (subject, field) pairs in scope so far, as temp tables of `con`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
        self.con = con
        self.catalog = catalog
        con.execute(f"CREATE OR REPLACE TEMP TABLE _scope_ev AS SELECT {_COLS}, ''::VARCHAR AS origin "
                    "FROM events e LIMIT 0")
        con.execute("CREATE OR REPLACE TEMP TABLE _scope_pairs (subject_id VARCHAR, field VARCHAR)")
        # Tokens a login issued: the line between a legitimate token and a forged one.
        con.execute("CREATE OR REPLACE TEMP TABLE _scope_issued AS SELECT DISTINCT token_id FROM events "
                    "WHERE kind = 'token_issued' AND token_id IS NOT NULL")

    def add(self, origin: str, where: str, *, count: bool = True) -> tuple[int, int, int, int, Any, Any]:
        """Add the events matching `where` (over `events e`) that are not yet in scope; return
        (access events, added subjects, added pairs, new ips, since, until). With count=False
        (replaying decided steps) only the events are added."""
        con = self.con
        cols = "e.*" if count else _COLS
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _scope_new AS
            SELECT {cols} FROM events e WHERE ({where}) AND e.event_id NOT IN (SELECT event_id FROM _scope_ev)""")
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
    state = ScopeState(con, catalog)
    state.add("seed", "e.event_id IN (SELECT event_id FROM _scope_seed)")
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
    return steps


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
