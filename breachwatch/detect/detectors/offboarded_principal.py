"""offboarded_principal: activity by someone who has left, or tokens from a key whose owner has left.

A departed employee's account that was never disabled, or a signing key they
could copy that was never rotated, keeps working after they are gone; every
request made with it is valid, and every one is misuse. The departure is a
fact in the directory feed (principal_offboarded), so the first request after
it is enough.

Logic, per segment:
  gone     = departures (kept from principal_lifecycle: latest offboarding, no re-creation since)
  activity = segment events (any kind but lifecycle records) join departures on principal,
             where event time > offboarded_at + grace
  orphaned = access events join orphan_keys: keys whose owner is gone and the key not rotated since, with a
             token judged forged (or, with no issuance log, minted after the departure)
"""
from __future__ import annotations

from breachwatch.detect.alert import AlertCandidate, add_candidate_events, top_values
from breachwatch.detect.context import RunContext, allowlist_sql

NAME = "offboarded_principal"
_LIFECYCLE = "('principal_created', 'principal_offboarded', 'key_created', 'key_rotated', 'key_retired', " \
             "'key_revoked', 'subject_status')"


def run(ctx: RunContext) -> None:
    d = ctx.cfg.detectors[NAME]
    if not d["enabled"]:
        return
    _activity(ctx, d)
    if d["orphaned_keys"] and ctx.accesses:
        _orphaned_keys(ctx, d)


def _activity(ctx: RunContext, d: dict) -> None:
    con = ctx.con
    hits = con.execute(f"""SELECT count(*) FROM _seg s JOIN departures g ON g.principal_id = s.principal_id
        WHERE s.kind NOT IN {_LIFECYCLE} AND s.time > g.left_at + INTERVAL {int(d['grace'])} SECOND
          AND NOT {allowlist_sql(d['allowlist'], 's')}""").fetchall()[0][0]
    if not hits:
        return
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _ob_hits AS
        SELECT s.seq, s.event_id, s.time, s.kind, s.principal_id, coalesce(s.principal_type, 'anonymous') AS ptype,
               s.subject_ids, g.left_at
        FROM _seg s JOIN departures g ON g.principal_id = s.principal_id
        WHERE s.kind NOT IN {_LIFECYCLE} AND s.time > g.left_at + INTERVAL {int(d['grace'])} SECOND
          AND NOT {allowlist_sql(d['allowlist'], 's')}""")
    rows = con.execute("""SELECT principal_id, any_value(ptype), any_value(left_at), min(time), max(time), count(*),
               count(*) FILTER (WHERE kind = 'access'),
               count(DISTINCT u.subject) FILTER (WHERE u.subject IS NOT NULL),
               list(DISTINCT kind)
        FROM _ob_hits LEFT JOIN (SELECT seq, unnest(subject_ids) AS subject FROM _ob_hits) u USING (seq)
        GROUP BY principal_id ORDER BY min(time)""").fetchall()
    for principal, ptype, left_at, first, last, n, reads, subjects, kinds in rows:
        key = f"offboarded:{principal}"
        add_candidate_events(con, NAME, "SELECT ?, event_id, time FROM _ob_hits WHERE principal_id = ?",
                             [key, principal])
        ek = con.execute("SELECT hash('principal', ?, ?)", [ptype, principal]).fetchall()[0][0]
        ents = top_values(con, "_seg", "seq IN (SELECT seq FROM _ob_hits WHERE principal_id = ?)", params=[principal])
        ctx.add(AlertCandidate(
            detector=NAME, rule="offboarded_activity", dedup_key=key, severity=d["severity"],
            first_seen=first, detected_at=first, last_seen=last, etype="principal", ptype=ptype, entity=principal,
            evidence=(f"{ptype} {principal} left on {left_at:%Y-%m-%d %H:%M} but made {n:,} request(s) "
                      f"({', '.join(sorted(kinds))}) from {first:%m-%d %H:%M:%S}, reading {subjects:,} people's data "
                      f"in {reads:,} access(es)"),
            metrics={"requests": n, "reads": reads, "subjects": subjects, "left_at": str(left_at)},
            entities=ents, track_eks=[int(ek)]))


def _orphaned_keys(ctx: RunContext, d: dict) -> None:
    con = ctx.con
    ctx.need("_acc")
    covered = ctx.issuance_since is not None
    # With an issuance log, the tokens that matter are those confirmed never issued (forged_token
    # decides that once the log's watermark has passed); without one, every token minted after
    # the departure is suspect, and the most that can be said is a finding: rotate the key.
    provenance = ("EXISTS (SELECT 1 FROM forged_tokens f WHERE f.token_id = a.token_id)" if covered
                  else "a.token_issued_at > o.left_at")
    keyhits = f"""SELECT a.seq, a.event_id, a.time, a.token_id, o.key_id, o.owner_id, o.left_at
        FROM _acc a JOIN orphan_keys o ON o.key_id = a.key_id
        WHERE a.token_id IS NOT NULL AND a.time > o.left_at AND {provenance}"""
    rows = con.execute(f"""SELECT key_id, any_value(owner_id), any_value(left_at), min(time), max(time), count(*),
                                  count(DISTINCT token_id) FROM ({keyhits}) GROUP BY key_id""").fetchall()
    if not rows:
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE _ob_keyhits AS {keyhits}")
    for key_id, owner, left_at, first, last, n, tokens in rows:
        key = f"orphaned_key:{key_id}"
        add_candidate_events(con, NAME, "SELECT ?, event_id, time FROM _ob_keyhits WHERE key_id = ?", [key, key_id])
        if covered:
            text = (f"key {key_id}, whose owner {owner} left on {left_at:%Y-%m-%d %H:%M} and which was never "
                    f"rotated, signed {tokens:,} forged token(s) ({n:,} requests since {first:%m-%d %H:%M:%S})")
        else:
            text = (f"key {key_id} still signs tokens ({tokens:,} since {first:%m-%d %H:%M:%S}) although its owner "
                    f"{owner} left on {left_at:%Y-%m-%d %H:%M} and it was never rotated; without an issuance log "
                    "they cannot be told from forgeries: rotate the key")
        ctx.add(AlertCandidate(
            detector=NAME, rule="orphaned_key", dedup_key=key, severity=d["severity"] if covered else "low",
            first_seen=first, detected_at=first, last_seen=last, etype="key", entity=key_id, evidence=text,
            metrics={"tokens": tokens, "requests": n, "owner": owner, "owner_left_at": str(left_at)},
            entities=lambda k=key_id: top_values(con, "_acc", "seq IN (SELECT seq FROM _ob_keyhits WHERE key_id = ?)",
                                                 params=[k]),
            finding=not covered))
