"""A request looks its ids up in the stored ids' keys the writer hands out after each commit, and looks in the
store only for the ids they name; ids stored after the keys it read are still found at its commit."""
from __future__ import annotations

import time

import orjson
import pytest
from server_helpers import event, make_store

from breachwatch.server.bodies import parse_body
from breachwatch.server.store import ServerStore
from breachwatch.server.writer import StoreWriter
from breachwatch.store import chain


def _body(prefix: str, ids: range):
    return parse_body(b"".join(orjson.dumps(event(i, prefix)) + b"\n" for i in ids), limit=1 << 20,
                      max_line=1 << 20, ids_up_to=100)


def _started(store: ServerStore, **kw) -> StoreWriter:
    """A running writer that has handed out its keys (it does so first thing in its thread)."""
    w = StoreWriter(store, None, **kw)
    w.start()
    deadline = time.monotonic() + 10
    while w._keys is None:
        assert time.monotonic() < deadline, "the writer never handed out its keys"
        time.sleep(0.01)
    return w


def _each_id_once(store: ServerStore, n: int) -> None:
    with store.reading() as cur:
        assert cur.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (n, n)


@pytest.fixture()
def store(tmp_path):
    db, _ = make_store(tmp_path)
    s = ServerStore(db)
    yield s
    s.close()


def test_only_the_ids_the_keys_name_are_looked_up(store, monkeypatch):
    w = _started(store)
    w.submit(w.stage(_body("k", range(5))), "a").result(30)
    probed: list[list[str]] = []
    real = chain.stored_ids

    def spy(cur, ids):
        probed.append(sorted(ids.to_pylist()))
        return real(cur, ids)
    monkeypatch.setattr(chain, "stored_ids", spy)  # the look at the candidates (chain.stored_among)
    new = w.stage(_body("n", range(4)))  # no id stored: no look in the table at all
    again = w.stage(_body("k", range(3, 8)))  # k3, k4 stored
    assert probed == [["k3", "k4"]]
    assert new.stored == [] and sorted(again.stored) == ["k3", "k4"]
    r_new, r_again = w.submit(new, "n").result(30), w.submit(again, "b").result(30)
    w.stop()
    assert (r_new["loaded"], r_new["duplicates"]) == (4, 0)
    assert (r_again["loaded"], r_again["duplicates"]) == (3, 2)
    _each_id_once(store, 12)


def test_ids_stored_after_the_keys_were_read_are_duplicates(store):
    w = _started(store, max_group_records=5)  # no two of these requests share a commit
    first, second = w.stage(_body("d", range(5))), w.stage(_body("d", range(5)))  # both before either is stored
    assert first.stored == [] and second.stored == [] and first.seen == second.seen
    r1, r2 = w.submit(first, "1").result(30), w.submit(second, "2").result(30)
    w.stop()
    assert (r1["loaded"], r1["duplicates"]) == (5, 0)
    assert (r2["loaded"], r2["duplicates"]) == (0, 5)
    _each_id_once(store, 5)


def test_a_commit_that_failed_at_the_anchor_is_not_missed(store, monkeypatch):
    """The store committed, the anchor write failed (the request got an error, its events are stored): the
    keys handed out before do not hold them, so the next request must not trust those keys."""
    w = _started(store)
    real = chain.AnchorFile.append
    calls = []

    def fail_once(self, entries):
        calls.append(entries)
        if len(calls) == 1:
            raise OSError("anchor disk gone")
        return real(self, entries)
    monkeypatch.setattr(chain.AnchorFile, "append", fail_once)
    with pytest.raises(OSError):
        w.submit(w.stage(_body("f", range(3))), "1").result(30)
    r = w.submit(w.stage(_body("f", range(4))), "2").result(30)
    w.stop()
    assert (r["loaded"], r["duplicates"]) == (1, 3)
    _each_id_once(store, 4)


def test_a_store_too_big_for_keys_leaves_the_lookup_to_the_commit(store, monkeypatch):
    """Above STORED_IDS_MAX the writer keeps no keys: a request looks nothing up (a scan per request would
    cost more than the commit's one scan for every request it groups), and the commit still dedups."""
    monkeypatch.setattr(chain, "STORED_IDS_MAX", -1)
    w = StoreWriter(store, None)
    w.start()
    first = w.stage(_body("t", range(5)))
    assert first.stored is None
    r1 = w.submit(first, "1").result(30)
    again = w.stage(_body("t", range(3, 8)))  # t3, t4 stored
    assert again.stored is None and w._keys is None
    r2 = w.submit(again, "2").result(30)
    w.stop()
    assert (r1["loaded"], r1["duplicates"]) == (5, 0)
    assert (r2["loaded"], r2["duplicates"]) == (3, 2)
    _each_id_once(store, 8)
