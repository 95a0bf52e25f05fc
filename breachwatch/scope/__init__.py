"""Scope: the exact blast radius of an incident, the reports the law requires, and the breach lookup.

    steps = propose_expansions(con, incident)           # each widening step with evidence and +subjects
    manifest = build_manifest(con, incident, accepted)  # one row per person, exactly their fields
    manifest.pairs()                                    # {(subject_id, field)}: what the drill scores
"""
from breachwatch.scope.expansion import Step, decide, propose_expansions
from breachwatch.scope.manifest import (
    Manifest,
    build_manifest,
    record_run,
    write_manifest,
)

__all__ = ["Manifest", "Step", "build_manifest", "decide", "propose_expansions", "record_run", "write_manifest"]
