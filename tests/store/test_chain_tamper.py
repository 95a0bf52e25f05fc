"""verify catches every way of tampering with stored evidence and names the first bad batch."""
from __future__ import annotations

import shutil

import duckdb
import pytest

from breachwatch.ingest.pipeline import ingest_records, ingest_tables
from breachwatch.store.chain import GENESIS, batch_digest, column_version, link_head, verify
from breachwatch.store.db import connect


@pytest.fixture(params=["record", "column", "column-v2", "column-v1"])
def chained(request, tmp_path, monkeypatch, make_event, make_typed_table):
    """A store with 5 chain links of 20 events each (link k holds events 20(k-1) .. 20k-1), digested by
    record (small batches, as HTTP requests are) or by column (as ingest digests the batches it validates),
    with the current column digest or with an earlier version, as stores written before it hold them."""
    from breachwatch.store import chain
    version = {"record": None, "column": chain.COLUMN_VERSION, "column-v2": 2, "column-v1": 1}[request.param]
    path = str(tmp_path / "s.duckdb")
    con = connect(path)
    with monkeypatch.context() as m:
        m.setattr(chain, "COLUMN_VERSION", version or chain.COLUMN_VERSION)
        for b in range(5):
            rows = [make_event(i) for i in range(b * 20, b * 20 + 20)]
            if request.param == "record":
                ingest_records(con, rows, f"part{b}", db_path=path)
            else:
                ingest_tables(con, [make_typed_table(rows)], f"part{b}", db_path=path)
    digests = [d for (d,) in con.execute("SELECT digest FROM batches ORDER BY seq").fetchall()]
    assert len(digests) == 5 and {column_version(d) for d in digests} == {version}
    con.close()
    return path


def check(path: str) -> object:
    con = connect(path, read_only=True)
    try:
        return verify(con, path)
    finally:
        con.close()


def tamper(path: str, *sql: str) -> None:
    con = duckdb.connect(path)
    for s in sql:
        con.execute(s)
    con.close()


def test_untouched_store_verifies(chained):
    rep = check(chained)
    assert rep.ok and rep.links == 5 and rep.events == 100 and rep.anchor_links == 5


def test_altered_record_names_its_batch(chained):
    tamper(chained, "UPDATE events SET src_ip = '10.0.0.1' WHERE event_id = 'e47'")
    rep = check(chained)
    assert not rep.ok and rep.problem == "altered" and rep.first_bad_seq == 3
    assert rep.first_bad_batch["source"] == "part2"


def test_deleted_record_names_its_batch(chained):
    tamper(chained, "DELETE FROM events WHERE event_id = 'e65'")
    rep = check(chained)
    assert (rep.ok, rep.problem, rep.first_bad_seq) == (False, "altered", 4)


def test_deleted_batch_is_named(chained):
    tamper(chained, "DELETE FROM events WHERE batch_id = 2", "DELETE FROM batches WHERE seq = 2")
    rep = check(chained)
    assert (rep.ok, rep.problem, rep.first_bad_seq) == (False, "deleted", 2)


def test_reordered_batches_are_named(chained):
    tamper(chained, "UPDATE batches SET seq = CASE seq WHEN 2 THEN 3 WHEN 3 THEN 2 ELSE seq END")
    rep = check(chained)
    assert (rep.ok, rep.problem, rep.first_bad_seq) == (False, "reordered", 2)


def test_truncated_store_is_named(chained):
    tamper(chained, "DELETE FROM events WHERE batch_id >= 4", "DELETE FROM batches WHERE seq >= 4")
    rep = check(chained)
    assert (rep.ok, rep.problem, rep.first_bad_seq) == (False, "truncated", 4)


def test_full_rewrite_with_recomputed_chain_is_caught_by_the_anchor(chained):
    """The attacker edits a record and recomputes every digest and head: only the anchor disagrees."""
    con = duckdb.connect(chained)
    con.execute("DELETE FROM events WHERE event_id = 'e50'")
    prev = GENESIS
    for seq, batch_id, link_type, old in con.execute("SELECT seq, batch_id, link_type, digest FROM batches "
                                                     "ORDER BY seq").fetchall():
        n_ev = con.execute("SELECT count(*) FROM events WHERE batch_id = ?", [batch_id]).fetchone()[0]
        digest = batch_digest(con, batch_id, columnar=column_version(old))
        head = link_head(prev, seq, batch_id, link_type, n_ev, 0, digest)
        con.execute("UPDATE batches SET events = ?, digest = ?, prev_head = ?, head = ? WHERE seq = ?",
                    [n_ev, digest, prev, head, seq])
        prev = head
    con.close()
    rep = check(chained)
    assert (rep.ok, rep.problem, rep.first_bad_seq) == (False, "rewritten", 3)


def test_records_inserted_outside_ingest_are_caught(chained, make_event):
    tamper(chained, "INSERT INTO events (event_id, time, kind, batch_id) VALUES ('evil', now(), 'login', 99)")
    rep = check(chained)
    assert not rep.ok and rep.problem == "orphaned"


def test_writer_refuses_a_store_behind_its_anchor(chained, make_event):
    """Writing on top of a truncated store would bury the evidence; the writer stops instead."""
    tamper(chained, "DELETE FROM events WHERE batch_id = 5", "DELETE FROM batches WHERE seq = 5")
    con = connect(chained)
    with pytest.raises(Exception, match="lost committed batches"):
        ingest_records(con, [make_event(999)], "late", db_path=chained)
    con.close()


def test_missing_anchor_links_after_a_crash_are_repaired_and_marked_late(chained, make_event, tmp_path):
    anchor = chained + ".anchor"
    lines = open(anchor).read().splitlines()
    open(anchor, "w").write("\n".join(lines[:4]) + "\n")  # the crash hit between commit and anchor write
    assert check(chained).ok  # a lagging anchor is a warning, not tampering
    con = connect(chained)
    ingest_records(con, [make_event(500)], "next", db_path=chained)
    con.close()
    text = open(anchor).read().splitlines()
    assert len(text) == 6 and '"late":true' in text[4]
    assert check(chained).ok


def test_verify_cli_exit_codes(chained, tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    BIN = Path(sys.executable).parent / "breachwatch"
    ok = subprocess.run([str(BIN), "verify", "--db", chained, "--json"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    tamper(chained, "UPDATE events SET kind = 'login' WHERE event_id = 'e3'")
    bad = subprocess.run([str(BIN), "verify", "--db", chained, "--json"], capture_output=True, text=True)
    assert bad.returncode == 1
    import json
    rep = json.loads(bad.stdout)
    assert rep["problem"] == "altered" and rep["first_bad_seq"] == 1


def test_the_anchor_variable_names_the_users_anchor_but_never_a_scratch_stores(tmp_path, make_event):
    """BREACHWATCH_ANCHOR reaches ingest and verify (their --anchor), while a store written without a named
    anchor, as the drill and the demo write theirs, keeps its anchor next to it."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    BIN = Path(sys.executable).parent / "breachwatch"
    prod = tmp_path / "prod.anchor"
    env = {**os.environ, "BREACHWATCH_ANCHOR": str(prod)}
    (tmp_path / "in.ndjson").write_text(json.dumps(make_event(1)) + "\n")
    store = str(tmp_path / "user.duckdb")
    done = subprocess.run([str(BIN), "ingest", "--db", store, str(tmp_path / "in.ndjson"), "--json"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert prod.exists() and not Path(store + ".anchor").exists()
    assert subprocess.run([str(BIN), "verify", "--db", store], capture_output=True, env=env).returncode == 0
    before = prod.read_bytes()
    os.environ["BREACHWATCH_ANCHOR"] = str(prod)  # as a drill run in the same shell would see it
    try:
        scratch = str(tmp_path / "scratch.duckdb")
        con = connect(scratch)
        ingest_records(con, [make_event(2)], "drill", db_path=scratch)
        con.close()
    finally:
        del os.environ["BREACHWATCH_ANCHOR"]
    assert prod.read_bytes() == before and Path(scratch + ".anchor").exists()
