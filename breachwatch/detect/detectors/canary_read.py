"""canary_read: any read of a honey (canary) subject listed in the catalog.

Canary subjects are records of people who do not exist, which no customer,
agent, service or partner has a reason to open; a read of one means someone
is going through records they were not sent to. There is no threshold and no
baseline: the first read is the alert.

Logic: access events whose subjects include a canary, unnested and filtered
to the canaries, grouped by who read them (principal, else source IP).
"""
from __future__ import annotations

from breachwatch.detect.alert import AlertCandidate, add_candidate_events, top_values
from breachwatch.detect.context import RunContext, allowlist_sql

NAME = "canary_read"


def run(ctx: RunContext) -> None:
    d = ctx.cfg.detectors[NAME]
    if not d["enabled"] or not ctx.cfg.canaries or not ctx.accesses:
        return
    con = ctx.con
    listed = "[" + ", ".join("'" + c.replace("'", "''") + "'" for c in sorted(ctx.cfg.canaries)) + "]"
    # Only the rare events that touch a canary are unnested.
    hits = f"""SELECT seq, event_id, time, subject, actor FROM (
            SELECT a.seq, a.event_id, a.time, unnest(a.subject_ids) AS subject,
                   coalesce('principal:' || a.principal_id, 'ip:' || a.src_ip, 'token:' || a.token_id) AS actor
            FROM _seg a WHERE a.kind = 'access' AND list_has_any(a.subject_ids, {listed})
              AND NOT {allowlist_sql(d['allowlist'], 'a')})
        WHERE list_contains({listed}, subject)"""
    rows = con.execute(f"""SELECT actor, min(time), max(time), count(DISTINCT subject), count(DISTINCT seq),
                                  list(DISTINCT subject ORDER BY subject)
                           FROM ({hits}) GROUP BY actor ORDER BY min(time)""").fetchall()
    if not rows:
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE _canary_hits AS {hits}")
    for actor, first, last, n_subjects, n_reads, subjects in rows:
        kind, _, who = actor.partition(":")
        add_candidate_events(con, NAME, "SELECT ?, event_id, time FROM _canary_hits WHERE actor = ?",
                             [f"canary:{actor}", actor])
        ents = top_values(con, "_seg", "seq IN (SELECT seq FROM _canary_hits WHERE actor = ?)", params=[actor])
        shown = ", ".join(subjects[:5]) + (" ..." if len(subjects) > 5 else "")
        ctx.add(AlertCandidate(
            detector=NAME, rule="canary_read", dedup_key=f"canary:{actor}", severity=d["severity"],
            first_seen=first, detected_at=first, last_seen=last,
            etype="principal" if kind == "principal" else ("ip" if kind == "ip" else None),
            entity=who,
            evidence=(f"{kind} {who} read {n_subjects:,} canary record(s) ({shown}) in {n_reads:,} request(s) "
                      f"from {first:%m-%d %H:%M:%S}; canaries are people who do not exist, so no legitimate "
                      "task opens them"),
            metrics={"canaries_read": n_subjects, "reads": n_reads, "canary_ids": subjects[:20]},
            entities=ents))
