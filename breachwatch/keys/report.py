"""The audit as Markdown: a summary a manager reads, then each finding with its
evidence and fix, then the key inventory as the audit saw it."""
from __future__ import annotations

from breachwatch.keys.audit import AuditReport

_BADGE = {"critical": "CRITICAL", "high": "HIGH", "medium": "MEDIUM", "low": "LOW"}


def _cell(v: object) -> str:
    text = "" if v is None else str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: AuditReport) -> str:
    d = report.as_dict()
    counts = d["summary"]["by_severity"]
    lines = ["# Signing-key and token hygiene audit", "",
             f"Generated {d['generated_at']}. Policy: keys rotated every {report.policy.max_key_age_days} days, "
             f"tokens live at most {report.policy.max_token_lifetime_s} s, keys rotated within "
             f"{report.policy.rotation_grace_days:g} day(s) of a holder leaving.", ""]
    total = len(report.findings)
    if total == 0:
        lines += ["**No findings.**", ""]
    else:
        summary = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n)
        lines += [f"**{total} findings**: {summary}.", ""]
        lines += ["| # | severity | key | finding |", "|---|---|---|---|"]
        for i, f in enumerate(report.findings, 1):
            lines.append(f"| {i} | {_BADGE[f.severity]} | {_cell(f.key_id or '-')} | {_cell(f.title)} |")
        lines.append("")
    for note in report.notes:
        lines.append(f"> Note: {note}")
    if report.notes:
        lines.append("")
    for i, f in enumerate(report.findings, 1):
        lines += [f"## {i}. {_BADGE[f.severity]}: {f.title}", "",
                  f"Finding `{f.code}`" + (f" on key `{f.key_id}`." if f.key_id else "."), "", "Evidence:", ""]
        lines += [f"- {e}" for e in f.evidence]
        lines += ["", f"**Fix:** {f.fix}", ""]
    lines += ["## Keys", "",
              "| kid | status | owner | holders | age (days) | in JWKS | issued | used | findings |",
              "|---|---|---|---|---|---|---|---|---|"]
    for k in d["keys"]:
        lines.append("| " + " | ".join(_cell(v) for v in (
            k["kid"], k["status"], k["owner"] or "-", ", ".join(k["holders"]) or "-", k["age_days"],
            "yes" if k["in_jwks"] else "no", k["tokens_issued"], k["tokens_used"],
            f"{k['findings']} ({k['worst_severity']})" if k["findings"] else "0")) + " |")
    inputs = d["inputs"]
    lines += ["", "## Inputs", "",
              f"- JWKS: {', '.join(inputs['jwks']) or 'none'}",
              f"- key inventory: {', '.join(inputs['inventory']) or 'none'}",
              f"- HR departures: {', '.join(inputs['hr']) or 'none'}; departures known: {inputs['departures']}",
              f"- store: {inputs['store'] or 'none'}; issuance log from {inputs['issuance_log_start'] or '-'}",
              f"- scanned: {', '.join(inputs['scanned'] + inputs['git_history']) or 'nothing'} "
              f"({inputs['files_scanned']} files)", ""]
    return "\n".join(lines)
