"""`breachwatch scope INCIDENT --out DIR` as a library call: propose, decide, build, record, write, report."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import orjson

from breachwatch.contract.catalog import Catalog, load_catalog
from breachwatch.scope.deadlines import awareness, duties, duty_status
from breachwatch.scope.expansion import Step, decide, propose_expansions
from breachwatch.scope.mailmerge import export_exposures, mail_merge
from breachwatch.scope.manifest import (
    Manifest,
    build_manifest,
    record_run,
    write_manifest,
)
from breachwatch.scope.reports import render_documents, report_context
from breachwatch.scope.seed import load_incident


@dataclass
class ScopeResult:
    manifest: Manifest
    version: int
    files: dict[str, str] = field(default_factory=dict)
    duties: list[dict[str, Any]] = field(default_factory=list)
    mail_merge: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        s = self.manifest.summary
        return {"incident": s["incident"], "run_id": s["run_id"], "version": self.version,
                "subjects": s["subjects"], "members": s["members"], "non_members": s["non_members"],
                "pairs": s["pairs"], "reads": s["reads"], "by_field": s["by_field"], "by_category": s["by_category"],
                "steps": [{k: st[k] for k in ("id", "title", "decision", "added_subjects", "events")}
                          for st in s["steps"]],
                "duties": self.duties, "missed_deadlines": [d["id"] for d in self.duties if d["missed"]],
                "mail_merge": self.mail_merge, "files": self.files}


def _previous_run(con: duckdb.DuckDBPyConnection, incident_id: str) -> dict[str, Any] | None:
    # Runs of an incident folded into this one keep their versions, so the latest is by time too.
    row = con.execute("SELECT run_id, subjects FROM scope_runs WHERE incident_id = ? "
                      "ORDER BY version DESC, created_at DESC LIMIT 1", [incident_id]).fetchone()
    return {"run_id": row[0], "subjects": row[1]} if row else None


def run_scope(con: duckdb.DuckDBPyConnection, incident: str | dict[str, Any], out_dir: str | Path, *,
              catalog: Catalog | None = None, accept: list[str] | None = None, reject: list[str] | None = None,
              accept_all: bool = False, contacts: str | Path | None = None, created_by: str | None = None,
              event_ids: list[str] | None = None, pdf: bool = True, now: datetime | None = None,
              steps: list[Step] | None = None) -> ScopeResult:
    """Scope one incident and write everything to `out_dir`; the run is recorded as a staged version."""
    catalog = catalog or load_catalog(None)
    inc = load_incident(con, incident) if isinstance(incident, str) else incident
    now = now or datetime.now(timezone.utc)
    proposed = steps if steps is not None else propose_expansions(con, inc, catalog=catalog, event_ids=event_ids)
    decide(proposed, accept, reject, accept_all)
    m = build_manifest(con, inc, [s for s in proposed if s.decision == "accepted"], proposed=proposed,
                       catalog=catalog, event_ids=event_ids)
    previous = _previous_run(con, str(inc["id"]))
    out = Path(out_dir)
    version = record_run(m, created_by=created_by, out_dir=str(out), now=now)
    files = write_manifest(m, out)
    files.update(export_exposures(m, out))
    merged = None
    if contacts is not None:
        merged = mail_merge(m, contacts, out / "mail_merge.csv")
        files["mail_merge.csv"] = str(out / "mail_merge.csv")
    aware = awareness(con, inc)
    statuses = duty_status(con, str(inc["id"]), aware, duties(m.summary, catalog), now)
    ctx = report_context(m.summary, inc, catalog, aware, statuses, version=version, previous=previous, now=now)
    files.update(render_documents(ctx, out / "reports", pdf=pdf))
    duty_rows = [s.as_dict() for s in statuses]
    (out / "deadlines.json").write_bytes(orjson.dumps({"aware_at": ctx["aware_at"], "aware_source": aware.source,
                                                       "history": aware.history, "duties": duty_rows},
                                                      option=orjson.OPT_INDENT_2))
    files["deadlines.json"] = str(out / "deadlines.json")
    return ScopeResult(m, version, files, duty_rows, merged)
