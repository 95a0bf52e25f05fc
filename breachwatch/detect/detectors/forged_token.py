"""forged_token: an access carrying a token that no login issued, or whose claims contradict its issuance.

Whoever holds a copy of a signing key can mint tokens the gateway accepts for
any account; each request is valid, so only provenance gives it away: the
issuance log never recorded the token, or its key is unknown or retired, or
its claims disagree with the issuance (another subject, issued before the key
existed, a lifetime no policy grants).

Logic, per segment:
  uses      = access events with a token
  judged    = uses left-join forged_tokens (already judged: attach to their alert),
                   left-join issued_tokens (subject and claim checks against the record),
                   left-join the key inventory (unknown, retired, pre-key, expired, lifetime)
  pending  += uses with no issuance record and no other rule, inside the issuance log's coverage
  confirmed = pending where the issuance feed's watermark (progress - allowed lateness) has
              passed the first use; detected at the first issuance event that moved it there.
              While the feed is silent they wait, as held alerts.
"""
from __future__ import annotations

from breachwatch.detect.alert import AlertCandidate, add_candidate_events, top_values
from breachwatch.detect.context import RunContext, allowlist_sql

NAME = "forged_token"

RULE_TEXT = {
    "never_issued": "tokens that no login issued",
    "subject_mismatch": "tokens used for a different principal than the one they were issued to",
    "claims_mismatch": "tokens whose claimed issue time differs from their issuance record",
    "unknown_key": "tokens signed by a key that is not in the key inventory",
    "retired_key": "tokens signed by a key already retired or revoked",
    "issued_before_key": "tokens claiming an issue time before their signing key existed",
    "lifetime": "tokens whose lifetime exceeds what the issuer grants",
    "expired": "tokens used after their own expiry",
}


def run(ctx: RunContext) -> None:
    d = ctx.cfg.detectors[NAME]
    if not d["enabled"]:
        return
    if ctx.accesses:
        _judge(ctx, d)
    if ctx.stats.get("ft_pending", True):
        _confirm_pending(ctx)


def _judge(ctx: RunContext, d: dict) -> None:
    con = ctx.con
    ctx.need("_acc")
    skew = int(d["clock_skew"])
    lifetime = _max_lifetime(ctx, d)
    lifetime_sql = f"epoch(u.token_expires_at) - epoch(u.token_issued_at) > {lifetime}" if lifetime else "FALSE"
    since = ctx.issuance_since
    coverage = "FALSE" if since is None else (
        f"(u.token_issued_at >= TIMESTAMP '{since}' OR (u.token_issued_at IS NULL AND "
        f"u.time >= TIMESTAMP '{since}' + INTERVAL {int(lifetime or 0)} SECOND))")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _ft AS
        WITH u AS (SELECT seq, event_id, time, token_id, key_id, principal_id, token_issued_at, token_expires_at,
                          status FROM _acc WHERE token_id IS NOT NULL AND NOT {allowlist_sql(d['allowlist'])}),
             keys AS (SELECT key_id, min(at_time) FILTER (WHERE kind = 'key_created') AS created_at,
                             min(at_time) FILTER (WHERE kind IN ('key_retired', 'key_revoked')) AS retired_at
                      FROM key_lifecycle GROUP BY key_id),
             inventory AS (SELECT count(*) AS n FROM keys),
             iss AS (SELECT token_id, any_value(principal_id) AS principal_id, min(issued_at) AS issued_at,
                            min(seen_at) AS seen_at FROM issued_tokens
                     WHERE token_id IN (SELECT token_id FROM u) GROUP BY token_id),
             issued_keys AS (SELECT DISTINCT key_id FROM issued_tokens WHERE key_id IN (SELECT key_id FROM u))
        SELECT u.*, f.alert_key AS known, i.token_id IS NOT NULL AS issued, greatest(u.time, i.seen_at) AS decided,
          CASE
            WHEN f.alert_key IS NOT NULL THEN NULL
            WHEN u.key_id IS NOT NULL AND (SELECT n FROM inventory) > 0 AND k.key_id IS NULL
                 AND u.key_id NOT IN (SELECT key_id FROM issued_keys) THEN 'unknown_key'
            WHEN k.retired_at IS NOT NULL AND u.time > k.retired_at + INTERVAL {skew} SECOND THEN 'retired_key'
            WHEN k.created_at IS NOT NULL AND u.token_issued_at < k.created_at - INTERVAL {skew} SECOND
                 THEN 'issued_before_key'
            WHEN u.token_expires_at IS NOT NULL AND u.time > u.token_expires_at + INTERVAL {skew} SECOND
                 AND coalesce(u.status, 200) < 400 THEN 'expired'
            WHEN u.token_issued_at IS NOT NULL AND {lifetime_sql} THEN 'lifetime'
            WHEN i.principal_id IS NOT NULL AND u.principal_id IS NOT NULL AND u.principal_id <> i.principal_id
                 THEN 'subject_mismatch'
            WHEN i.issued_at IS NOT NULL AND u.token_issued_at IS NOT NULL
                 AND abs(epoch(u.token_issued_at) - epoch(i.issued_at)) > {skew} THEN 'claims_mismatch'
          END AS rule,
          f.alert_key IS NULL AND i.token_id IS NULL AND {coverage} AS unverified
        FROM u LEFT JOIN forged_tokens f ON f.token_id = u.token_id
        LEFT JOIN iss i ON i.token_id = u.token_id
        LEFT JOIN keys k ON k.key_id = u.key_id""")
    summary = con.execute("""SELECT count(*) FILTER (WHERE known IS NOT NULL), count(*) FILTER (WHERE rule IS NOT NULL),
                                    count(*) FILTER (WHERE rule IS NULL AND unverified) FROM _ft""").fetchall()[0]
    known, flagged, unverified = summary
    if flagged:
        # The first rule a token broke names it; its later uses attach to the same alert.
        con.execute("""INSERT INTO forged_tokens
            SELECT token_id, any_value(key_id), arg_min(rule || ':' || coalesce(key_id, '?'), decided), min(decided)
            FROM _ft WHERE rule IS NOT NULL GROUP BY token_id""")
    if known or flagged:
        con.execute("""UPDATE _ft SET known = f.alert_key FROM forged_tokens f
                       WHERE _ft.token_id = f.token_id AND _ft.known IS NULL AND _ft.rule IS NOT NULL""")
        _raise(ctx, "SELECT * FROM _ft WHERE known IS NOT NULL", "CASE WHEN rule IS NOT NULL THEN decided ELSE time END")
    if unverified:
        con.execute("""INSERT INTO token_pending
            SELECT token_id, min(time) OVER (PARTITION BY token_id), event_id, key_id, principal_id, NULL
            FROM _ft WHERE rule IS NULL AND unverified""")
        ctx.stats["ft_pending"] = True


def _raise(ctx: RunContext, rows_sql: str, decided: str, extra: str = "") -> None:
    """One candidate per alert key over the given judged uses (columns of `_ft`, `known` = alert key)."""
    con = ctx.con
    con.execute(f"CREATE OR REPLACE TEMP TABLE _ft_hit AS SELECT known AS alert_key, event_id, time, token_id, "
                f"{decided} AS decided FROM ({rows_sql})")
    add_candidate_events(con, NAME, "SELECT alert_key, event_id, time FROM _ft_hit")
    rows = con.execute("""SELECT alert_key, min(time), min(decided), max(time), count(*), count(DISTINCT token_id)
        FROM _ft_hit GROUP BY alert_key ORDER BY 3""").fetchall()
    for key, first, detected, last, n, tokens in rows:
        rule, _, key_id = key.partition(":")
        ctx.add(_candidate(ctx, rule, key_id, first, detected, last, n, tokens, extra))


def _confirm_pending(ctx: RunContext) -> None:
    con = ctx.con
    if not con.execute("SELECT count(*) FROM token_pending").fetchall()[0][0]:
        ctx.stats["ft_pending"] = False
        return
    # A record that arrived since (late issuance, or issued in this very segment) clears the token.
    con.execute("DELETE FROM token_pending WHERE token_id IN (SELECT token_id FROM issued_tokens "
                "WHERE token_id IN (SELECT DISTINCT token_id FROM token_pending))")
    feed = ctx.feeds.get(ctx.cfg.issuance_feed())
    if feed is None or feed.progress is None:
        return
    lateness = int(feed.allowed_lateness)
    prior = ctx.stats.get("issuance_progress_before")
    kinds = ", ".join(f"'{k}'" for k in feed.kinds)
    # The decision time is the first issuance-feed event that pushed the watermark past the first use.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _ft_confirm AS
        WITH firsts AS (SELECT token_id, min(first_use) AS first_use FROM token_pending GROUP BY token_id),
             ticks AS (SELECT time FROM _seg WHERE kind IN ({kinds}))
        SELECT * FROM (
            SELECT f.token_id, f.first_use,
                   CASE WHEN ?::TIMESTAMP IS NOT NULL AND ?::TIMESTAMP >= f.first_use + INTERVAL {lateness} SECOND
                        THEN f.first_use + INTERVAL {lateness} SECOND
                        ELSE (SELECT min(t.time) FROM ticks t WHERE t.time >= f.first_use + INTERVAL {lateness} SECOND)
                   END AS decided
            FROM firsts f) WHERE decided IS NOT NULL""", [prior, prior])
    confirmed = con.execute("SELECT count(*) FROM _ft_confirm").fetchall()[0][0]
    if not feed.healthy:
        con.execute("UPDATE token_pending SET held_since = coalesce(held_since, ?) "
                    "WHERE token_id NOT IN (SELECT token_id FROM _ft_confirm)", [feed.unhealthy_since])
        _held(ctx, feed)
    if not confirmed:
        return
    con.execute("""CREATE OR REPLACE TEMP TABLE _ft_done AS
        SELECT p.token_id, p.event_id, p.key_id, p.first_use, c.decided,
               'never_issued:' || coalesce(p.key_id, '?') AS known
        FROM token_pending p JOIN _ft_confirm c ON c.token_id = p.token_id""")
    con.execute("""INSERT INTO forged_tokens
        SELECT token_id, any_value(key_id), any_value(known), min(decided) FROM _ft_done GROUP BY token_id""")
    con.execute("DELETE FROM token_pending WHERE token_id IN (SELECT token_id FROM _ft_confirm)")
    # Each pending use keeps its own time; uses in this segment after the first are already in _ft_done.
    _raise(ctx, "SELECT known, event_id, first_use AS time, token_id, decided FROM _ft_done", "decided",
           extra=f"the issuance log, complete to {feed.watermark:%m-%d %H:%M:%S}, has no record of them")


def _held(ctx: RunContext, feed) -> None:
    rows = ctx.con.execute("""SELECT coalesce(key_id, '?'), min(first_use), max(first_use), count(*),
               count(DISTINCT token_id) FROM token_pending WHERE held_since IS NOT NULL GROUP BY 1""").fetchall()
    for key_id, first, last, n, tokens in rows:
        c = _candidate(ctx, "never_issued", key_id, first, last, last, n, tokens)
        c.held_reason = (f"issuance feed '{feed.name}' silent since {feed.unhealthy_since:%Y-%m-%d %H:%M:%S}: "
                         f"{tokens:,} token(s) wait for it to confirm they were never issued")
        ctx.add(c)


def _max_lifetime(ctx: RunContext, d: dict) -> float | None:
    """The longest token lifetime the issuer grants: configured, or learned from issuance records
    (else from tokens seen while baselines were learned), with slack."""
    if d["max_token_lifetime"] != "auto":
        return float(d["max_token_lifetime"])
    issued = ctx.stats.get("issued_lifetime_max")
    if issued is not None:
        return float(issued) * d["lifetime_slack"]
    if "ft_policy" not in ctx.stats:
        ctx.stats["ft_policy"] = ctx.con.execute(
            "SELECT max(value) FROM baselines WHERE scope = 'policy' AND metric = 'token_lifetime'").fetchall()[0][0]
    learned = ctx.stats["ft_policy"]
    return None if learned is None else float(learned) * d["lifetime_slack"]


def _candidate(ctx: RunContext, rule: str, key_id: str, first, detected, last, n: int, tokens: int,
               extra: str = "") -> AlertCandidate:
    d = ctx.cfg.detectors[NAME]
    con = ctx.con
    key = f"{rule}:{key_id}"

    def evidence() -> str:
        owner = con.execute("""SELECT k.owner_id, p.at_time FROM key_lifecycle k JOIN principal_lifecycle p
            ON p.principal_id = k.owner_id AND p.kind = 'principal_offboarded'
            WHERE k.key_id = ? AND k.kind = 'key_created' ORDER BY p.at_time LIMIT 1""", [key_id]).fetchall()
        text = (f"key {key_id} signed {tokens:,} {RULE_TEXT.get(rule, rule)} ({n:,} requests) "
                f"since {first:%m-%d %H:%M:%S}")
        if extra:
            text += f"; {extra}"
        if owner:
            text += f"; the key's owner {owner[0][0]} left on {owner[0][1]:%Y-%m-%d} and the key was not rotated"
        return text

    return AlertCandidate(
        detector=NAME, rule=rule, dedup_key=key, severity=d["severity"], first_seen=first,
        detected_at=detected, last_seen=last, etype="key", ptype=None, entity=key_id, evidence=evidence,
        metrics={"tokens": tokens, "requests": n, "rule": rule},
        entities=lambda: top_values(con, "_seg", "event_id IN (SELECT event_id FROM _cand_events "
                                    "WHERE detector = ? AND dedup_key = ?)", params=[NAME, key]))


def lifetime_policy(con, since, until) -> None:
    """Learn the token lifetime from access claims (used only when no issuance log exists).

    Learned once and then kept: a campaign of forged long-lived tokens must not teach the
    policy that long lifetimes are normal.
    """
    if con.execute("SELECT count(*) FROM baselines WHERE scope = 'policy'").fetchall()[0][0]:
        return
    con.execute("""INSERT INTO baselines (scope, metric, window_s, value, samples, slot)
        SELECT 'policy', 'token_lifetime', 0, max(l), count(*), -1 FROM (
            SELECT DISTINCT token_id, epoch(token_expires_at) - epoch(token_issued_at) AS l FROM events
            WHERE kind = 'access' AND time >= ? AND time < ? AND token_expires_at IS NOT NULL
              AND token_issued_at IS NOT NULL)
        HAVING count(*) > 0""", [since, until])
