"""A second writer is told which process holds the store and what to do instead."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "breachwatch"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120)


def test_a_store_held_by_detect_follow_points_at_serve(tmp_path):
    db = str(tmp_path / "s.duckdb")
    first, second = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    for i, f in enumerate((first, second)):
        f.write_text(f'{{"event_id": "x{i}", "time": "2025-06-01T00:00:0{i}Z", "kind": "login", "principal_id": "c1"}}\n')
    assert _run("ingest", str(first), "--db", db).returncode == 0
    follow = subprocess.Popen([str(BIN), "detect", "--follow", "--db", db], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        # Its first line reports the stored event: from then on it holds the store.
        assert "1 events" in follow.stderr.readline()
        r = _run("ingest", str(second), "--db", db)
        assert r.returncode == 2, r.stderr
        assert f"held by process {follow.pid}: breachwatch detect --follow" in r.stderr
        assert "run 'breachwatch serve' instead" in r.stderr
    finally:
        follow.terminate()
        follow.wait(30)
    assert _run("ingest", str(second), "--db", db).returncode == 0
