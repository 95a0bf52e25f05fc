"""The widening steps: each ties an entity the scope holds to the rest of its activity, precisely.

Every generator reads the scope so far (temp table `_scope_ev`: the events in
scope, each with the origin that brought it in) and returns candidate steps whose
`where` selects, over the whole history, the activity tied to it, and whose
`anchor` names the events in scope it was drawn from (so the step's basis, the
earlier steps it rests on, can be told). A step's condition may refer to
`_scope_ev`, so it means the same when the manifest replays the accepted steps
in order.
Each pairs an entity with what separates the actor from ordinary traffic that
shares it:

- tokens and login sessions already in scope: a token is one holder's (a staff read
  under a ticket is left out: it had a stated purpose; reads after offboarding are
  caught by their own step);
- a signing key's tokens that no login issued: forged with a leaked key, while the
  same key's issued tokens are real customers';
- a principal after it was offboarded: nobody should be using it;
- a customer account reading other people's records: its own reads are not a leak;
- an account created for the campaign, from its creation on;
- a client fingerprint on the networks (the IP cluster) it used in scope, when that
  pairing was not in ordinary use before the campaign: a tool, not an app build
  thousands of customers share. Single addresses are not a step: proxy exits and
  carrier NAT put strangers on the same address.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable

import duckdb

from breachwatch.contract.catalog import Catalog
from breachwatch.scope.expansion import Step, sql_list, sql_str

MAX_LITERALS = 5000


def _digest(values: list[str]) -> str:
    return hashlib.sha256("\x1f".join(sorted(values)).encode()).hexdigest()[:10]


def _ts(t: object) -> str:
    return f"TIMESTAMP {sql_str(str(t))}"


_ACTORS = ("SELECT principal_id FROM _scope_ev WHERE kind = 'access' AND principal_type = 'customer' "
           "AND len(coalesce(subject_ids, []::VARCHAR[])) > 0 AND NOT list_contains(subject_ids, principal_id)")


# Steps that already take every read of the tokens they bring in: their tokens need no second look.
_TOKEN_CLOSED = ("tokens@", "unissued-key:")


def tokens_and_sessions(con: duckdb.DuckDBPyConnection, catalog: Catalog, rnd: int) -> list[Step]:
    # Logins and issuances in scope count too: a detected login's token leads to the reads made with it.
    closed = " AND ".join(f"origin NOT LIKE '{p}%'" for p in _TOKEN_CLOSED)
    origins = [r[0] for r in con.execute(f"SELECT DISTINCT origin FROM _scope_ev WHERE {closed} AND "
                                         "(token_id IS NOT NULL OR session_id IS NOT NULL) ORDER BY 1").fetchall()]
    if not origins:
        return []
    n_tok, n_sess = con.execute(f"SELECT count(DISTINCT token_id), count(DISTINCT session_id) FROM _scope_ev "
                                f"WHERE origin IN (SELECT unnest({sql_list(origins)}))").fetchone()
    mine = f"FROM _scope_ev WHERE origin IN (SELECT unnest({sql_list(origins)}))"
    # A customer who reads other people's records with their own token is the actor, not a victim:
    # their reads of their own account are not a leak.
    where = (f"e.kind = 'access' AND (e.token_id IN (SELECT DISTINCT token_id {mine} AND token_id IS NOT NULL) "
             f"OR e.session_id IN (SELECT DISTINCT session_id {mine} AND session_id IS NOT NULL)) "
             f"AND NOT (list_contains(coalesce(e.subject_ids, []::VARCHAR[]), e.principal_id) "
             f"AND e.principal_id IN ({_ACTORS})) "
             "AND NOT (e.principal_type = 'employee' AND coalesce(e.reason_ref, '') <> '')")
    # Named by the origins it draws on: a later round with no new ones proposes nothing new.
    return [Step(id=f"tokens@{_digest(origins)}", kind="token_family", where=where,
                 anchor=f"(x.token_id IS NOT NULL OR x.session_id IS NOT NULL) AND x.origin IN "
                        f"(SELECT unnest({sql_list(origins)}))",
                 title="the same tokens and login sessions ({events} more reads, {ips} more IPs since {since}): "
                       "+{subjects} subjects",
                 evidence=[f"{n_tok:,} tokens and {n_sess:,} login sessions in scope; a token or session belongs "
                           "to whoever holds it, so its other reads are the same actor's"])]


def unissued_key_tokens(con: duckdb.DuckDBPyConnection, catalog: Catalog, rnd: int) -> list[Step]:
    # Only keys whose issued tokens the log shows: without that, "no login issued it" means nothing.
    rows = con.execute("""
        WITH k AS (
            SELECT key_id, count(DISTINCT token_id) FILTER (WHERE token_id NOT IN (SELECT token_id FROM _scope_issued)) AS forged
            FROM _scope_ev WHERE kind = 'access' AND key_id IS NOT NULL AND token_id IS NOT NULL
              AND origin NOT LIKE 'unissued-key:%' GROUP BY 1)
        SELECT k.key_id, k.forged, coalesce(i.issued, 0) AS issued
        FROM k LEFT JOIN _scope_issued_by_key i ON i.key_id = k.key_id WHERE k.forged > 0 ORDER BY 1""").fetchall()
    out = []
    for key, forged, issued in rows:
        if not issued:
            issued = con.execute("SELECT count(DISTINCT e.token_id) FROM events e SEMI JOIN _scope_issued i "
                                 "ON i.token_id = e.token_id WHERE e.kind = 'access' AND e.key_id = ?",
                                 [key]).fetchone()[0]
        if not issued:
            continue
        out.append(Step(
            id=f"unissued-key:{key}", kind="signing_key",
            anchor=f"x.key_id = {sql_str(key)} AND x.token_id NOT IN (SELECT token_id FROM _scope_issued)",
            where=(f"e.kind = 'access' AND e.key_id = {sql_str(key)} AND e.token_id IS NOT NULL "
                   "AND e.token_id NOT IN (SELECT token_id FROM _scope_issued)"),
            title=f"same key {key} also signed tokens that no login issued, used from {{ips}} more IPs since "
                  "{since}: +{subjects} subjects",
            evidence=[f"{forged:,} tokens in scope were signed with {key} but never issued by a login",
                      f"{key} also signed {issued:,} tokens that logins did issue: those are customers' own "
                      "sessions and are left out"]))
    return out


def after_offboarding(con: duckdb.DuckDBPyConnection, catalog: Catalog, rnd: int) -> list[Step]:
    rows = con.execute("""
        SELECT o.principal_id, o.gone FROM _scope_offboarded o
        WHERE o.principal_id IN (SELECT DISTINCT principal_id FROM _scope_ev WHERE kind = 'access')
        ORDER BY 1""").fetchall()
    out = []
    for principal, gone in rows:
        after = con.execute("SELECT count(*) FROM _scope_ev WHERE kind = 'access' AND principal_id = ? AND time >= ?",
                            [principal, gone]).fetchone()[0]
        if not after:
            continue
        out.append(Step(
            id=f"offboarded:{principal}", kind="principal", anchor=f"x.principal_id = {sql_str(principal)}",
            where=f"e.kind = 'access' AND e.principal_id = {sql_str(principal)} AND e.time >= {_ts(gone)}",
            title=f"principal {principal}, offboarded {gone:%Y-%m-%d %H:%M} UTC, made {{events}} more reads "
                  "after leaving: +{subjects} subjects",
            evidence=[f"{principal} was offboarded at {gone:%Y-%m-%d %H:%M} UTC; {after:,} of its reads in scope "
                      "came after that, so every read after it is unauthorised"]))
    return out


def reads_of_others(con: duckdb.DuckDBPyConnection, catalog: Catalog, rnd: int) -> list[Step]:
    principals = [r[0] for r in con.execute("""
        SELECT DISTINCT principal_id FROM _scope_ev
        WHERE kind = 'access' AND principal_type = 'customer' AND principal_id IS NOT NULL
          AND len(coalesce(subject_ids, []::VARCHAR[])) > 0 AND NOT list_contains(subject_ids, principal_id)
        ORDER BY 1""").fetchall()]
    if not principals or len(principals) > MAX_LITERALS:
        return []
    who = principals[0] if len(principals) == 1 else f"{len(principals):,} customer accounts"
    return [Step(
        id=f"reads-of-others:{_digest(principals)}", kind="principal",
        anchor=f"x.principal_id IN (SELECT unnest({sql_list(principals)}))",
        where=(f"e.kind = 'access' AND e.principal_id IN (SELECT unnest({sql_list(principals)})) "
               "AND len(coalesce(e.subject_ids, []::VARCHAR[])) > 0 AND NOT list_contains(e.subject_ids, e.principal_id)"),
        title=f"{who} read other people's records {{events}} more times since {{since}}: +{{subjects}} subjects",
        evidence=[f"customer account(s) {', '.join(principals[:5])}{' …' if len(principals) > 5 else ''} read "
                  "records of people other than themselves; their reads of their own data are left out"])]


def new_principal(con: duckdb.DuckDBPyConnection, catalog: Catalog, rnd: int) -> list[Step]:
    # Only an account that did nothing before its part in the campaign: every account was
    # created once, and an old one with a working history is not the campaign's own.
    # No read before the campaign: the principal's first read in the whole history is its first in scope.
    rows = con.execute("""
        WITH s AS (SELECT principal_id, min(time) AS first FROM _scope_ev WHERE kind = 'access' GROUP BY 1)
        SELECT c.principal_id, c.created, s.first
        FROM _scope_created c JOIN s ON s.principal_id = c.principal_id
        JOIN _scope_first_access f ON f.principal_id = c.principal_id
        WHERE f.first_access >= s.first
        ORDER BY 1""").fetchall()
    out = []
    for principal, created, first in rows:
        out.append(Step(
            id=f"new-principal:{principal}", kind="principal", anchor=f"x.principal_id = {sql_str(principal)}",
            where=f"e.kind = 'access' AND e.principal_id = {sql_str(principal)} AND e.time >= {_ts(created)}",
            title=f"{principal}, created {created:%Y-%m-%d %H:%M} UTC, made {{events}} more reads: "
                  "+{subjects} subjects",
            evidence=[f"{principal} was created at {created:%Y-%m-%d %H:%M} UTC and read nothing until the campaign "
                      f"began at {first:%Y-%m-%d %H:%M} UTC; an account made for the campaign has no other use"]))
    return out


# A client seen before the campaign only this often is the actor's own earlier use (a test run),
# not an app build customers share: those come with thousands of accounts.
EARLY_PRINCIPALS = 10
EARLY_SHARE = 0.01


def client_on_networks(con: duckdb.DuckDBPyConnection, catalog: Catalog, rnd: int) -> list[Step]:
    # Failed logins count: a stuffing tool's fingerprint and proxies show there before any read.
    rows = con.execute("""
        SELECT client_fingerprint, list(DISTINCT coalesce(src_asn, '') ORDER BY coalesce(src_asn, '')) AS asns,
               list(DISTINCT src_country ORDER BY src_country) FILTER (WHERE src_country IS NOT NULL) AS countries,
               min(time) AS first
        FROM _scope_ev WHERE client_fingerprint IS NOT NULL
        GROUP BY 1 ORDER BY 1""").fetchall()
    out = []
    for fp, asns, countries, first in rows:
        if len(asns) > MAX_LITERALS:
            continue
        match = f"e.client_fingerprint = {sql_str(fp)} AND coalesce(e.src_asn, '') IN (SELECT unnest({sql_list(asns)}))"
        # One query per fingerprint: its constant is pushed into the scan, which a join of all of them is not.
        before, early_principals, total = con.execute(f"""
            SELECT count(*) FILTER (WHERE e.time < ?), count(DISTINCT e.principal_id) FILTER (WHERE e.time < ?),
                   count(*)
            FROM events e WHERE {match}""", [first, first]).fetchone()
        if before and (early_principals > EARLY_PRINCIPALS or before > EARLY_SHARE * total):
            continue  # the pairing is ordinary traffic, shared with customers before the campaign
        nets = ", ".join(a or "(no ASN)" for a in asns[:6]) + (" …" if len(asns) > 6 else "")
        seen = (f"was never seen before the campaign's first event on {first:%Y-%m-%d %H:%M} UTC" if not before else
                f"was seen before {first:%Y-%m-%d %H:%M} UTC only {before:,} times by {early_principals:,} "
                "accounts (a test run, not a customer app)")
        out.append(Step(
            id=f"client:{fp}@{_digest(asns)}", kind="client_fingerprint", anchor=f"x.client_fingerprint = {sql_str(fp)}",
            where=f"e.kind = 'access' AND {match}",
            title=f"same client {fp} on networks {nets} made {{events}} more reads from {{ips}} more IPs since "
                  "{since}: +{subjects} subjects",
            evidence=[f"client fingerprint {fp} from {len(asns)} network(s) ({', '.join(countries or [])}) {seen}, "
                      "so it is the actor's tool, not an app build customers share"]))
    return out


GENERATORS: tuple[Callable[[duckdb.DuckDBPyConnection, Catalog, int], list[Step]], ...] = (
    tokens_and_sessions,
    unissued_key_tokens,
    after_offboarding,
    reads_of_others,
    new_principal,
    client_on_networks,
)
