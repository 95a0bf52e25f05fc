"""The writer's in-memory set of stored id keys (`StoredIds`) only narrows which ids a batch looks up in the
table: the fates of its records are the same with it, without it, when every key collides, and when another
writer committed in between."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from breachwatch.ingest.pipeline import Ingestor, ingest_records
from breachwatch.ingest.readers import chunk_records
from breachwatch.store import chain
from breachwatch.store.chain import verify
from breachwatch.store.db import connect

BIG = 2000  # more ids than one list parameter holds (`ID_KEYS_AS_LIST`): lookups register them as a table


def _rounds(make_event) -> list[list[dict]]:
    """Batches of new ids, then stored ids (duplicates), conflicts and repeats within a batch."""
    first = [make_event(i) for i in range(BIG)]
    mixed = ([make_event(i) for i in range(BIG - 30, BIG + BIG)]  # 30 stored, the rest new
             + [make_event(5, status=500), make_event(BIG + 7), make_event(BIG + 8, status=404)])
    few_new = [make_event(i) for i in range(BIG + BIG - 5, BIG * 3)]
    return [first, mixed, few_new, first]  # the last: every id stored (many candidates: the join)


def _ingest_all(tmp_path, name: str, make_event) -> tuple[list[tuple], list[tuple], list[tuple]]:
    db = str(tmp_path / f"{name}.duckdb")
    con = connect(db)
    ing = Ingestor(con, db, batch_size=1 << 30)  # one batch per round
    counts = []
    for k, records in enumerate(_rounds(make_event)):
        before = (ing.summary.loaded, ing.summary.duplicates, ing.summary.quarantined_total)
        ing.feed(f"round{k}", "records", chunk_records((i, None, r) for i, r in enumerate(records, 1)))
        after = (ing.summary.loaded, ing.summary.duplicates, ing.summary.quarantined_total)
        counts.append(tuple(a - b for a, b in zip(after, before)))
    events = con.execute("SELECT event_id, status, batch_id FROM events ORDER BY event_id").fetchall()
    quarantine = con.execute("SELECT source, position, reason, event_id FROM quarantine ORDER BY ALL").fetchall()
    assert verify(con, db).ok
    con.close()
    return counts, events, quarantine


def test_same_fates_with_and_without_the_key_set(tmp_path, make_event, monkeypatch):
    with_set = _ingest_all(tmp_path, "with", make_event)
    monkeypatch.setattr(chain, "STORED_IDS_MAX", -1)  # no keys kept: the join for every batch
    without = _ingest_all(tmp_path, "without", make_event)
    assert with_set == without
    counts = with_set[0]
    assert counts[0] == (BIG, 0, 0)
    assert counts[1] == (BIG, 30 + 1, 2)  # conflicts: e5 with a stored one, the repeated e{BIG + 8} in-batch
    assert counts[3] == (0, BIG, 0)


def test_colliding_keys_only_cost_lookups(tmp_path, make_event, monkeypatch):
    """Every id given one key: each stored key matches every id, and the look in the table still decides."""
    reference = _ingest_all(tmp_path, "ref", make_event)
    real = chain.id_keys

    def one_key(con, ids):
        k = real(con, ids)
        return chain.IdKeys(np.full_like(k.keys, 7), np.full_like(k.sorted, 7))
    monkeypatch.setattr(chain, "id_keys", one_key)
    assert _ingest_all(tmp_path, "collide", make_event) == reference


def test_a_commit_by_another_writer_is_not_missed(tmp_path, make_event):
    """A second writer on the same store commits ids the first writer's key set does not hold: the first
    notices (the chain moved on) and rebuilds it, so those ids are found stored."""
    db = str(tmp_path / "two.duckdb")
    con = connect(db)
    one = Ingestor(con, db, batch_size=1 << 30)
    one.feed("a", "records", chunk_records((i, None, make_event(i)) for i in range(BIG)))
    assert one.writer._ids is not None
    ingest_records(con, [make_event(i) for i in range(BIG, BIG + 50)], "other writer", db_path=db)
    # The first writer's chain head is stale too; only the id lookup is checked here.
    ids = [f"e{i}" for i in range(BIG - 10, BIG + 2 * BIG)]
    keys = chain.id_keys(con, pa.chunked_array([pa.array(ids)]))
    found = one.writer.lookup_stored(con, pa.chunked_array([pa.array(ids)]), keys)
    assert sorted(found) == sorted(f"e{i}" for i in range(BIG - 10, BIG + 50))
    con.close()


@pytest.mark.parametrize("sizes", [[5, 3, 8, 1, 1, 1, 20], [1] * 9, [100, 1, 50]])
def test_key_runs_merge_without_losing_keys(sizes):
    rng = np.random.default_rng(sum(sizes))
    runs = [np.sort(rng.integers(0, 1 << 63, n, dtype=np.uint64)) for n in sizes]
    ids = chain.StoredIds([runs[0]], 1)
    for k, run in enumerate(runs[1:], 2):
        ids.add(run, k)
    every = np.sort(np.concatenate(runs))
    assert len(ids.runs) <= len(sizes) and np.array_equal(np.sort(np.concatenate(ids.runs)), every)
    probe = np.sort(np.concatenate([every[::3], rng.integers(0, 1 << 63, 20, dtype=np.uint64)]))
    assert np.array_equal(np.unique(ids.stored_keys(probe)), np.unique(probe[np.isin(probe, every)]))


def test_id_keys_of_a_list_are_the_stored_keys(tmp_path, make_event):
    """A request's ids are hashed from a list parameter (few) or an Arrow table (many); either way their keys
    are those `StoredIds.build` reads from the stored column, or the set would miss stored ids."""
    db = str(tmp_path / "k.duckdb")
    con = connect(db)
    sent = [f"e{i}" for i in range(chain.ID_KEYS_AS_LIST + 50)] + ["é-ü-한", "it's", "a\\b", "x" * 300]
    ingest_records(con, [make_event(i, event_id=e) for i, e in enumerate(sent)], "k", db_path=db)
    ids = [i for (i,) in con.execute("SELECT event_id FROM events ORDER BY event_id DESC").fetchall()]
    assert len(ids) == len(sent)
    stored = chain.StoredIds.build(con, 1).runs[0]
    for some in (ids[:4] + ids[-3:], ids):  # the list parameter (odd ids first), then the Arrow table
        assert len(some) <= chain.ID_KEYS_AS_LIST or some is ids
        keys = chain.id_keys(con, pa.chunked_array([pa.array(some)]))
        assert np.isin(keys.keys, stored).all()
        assert np.array_equal(keys.sorted, np.sort(keys.keys))
    assert np.array_equal(np.sort(chain.id_keys(con, pa.array(ids)).keys), stored)
    con.close()


def test_runs_taken_before_an_add_stay_as_they_were():
    """Request threads read `runs` while the writer adds a commit's keys: the list they took is never changed."""
    ids = chain.StoredIds([np.array([1, 5], dtype=np.uint64)], 1)
    taken = ids.runs
    ids.add(np.array([2, 3], dtype=np.uint64), 2)  # merges into one run
    assert len(taken) == 1 and taken[0].tolist() == [1, 5]
    assert np.concatenate(ids.runs).tolist() == [1, 2, 3, 5]


def test_stored_id_runs_only_while_complete(tmp_path, make_event, monkeypatch):
    """A writer hands out its key runs only while they hold every batch it committed: not after a commit that
    failed at the anchor (stored, but its keys not added), and again once rebuilt by a new writer."""
    db = str(tmp_path / "r.duckdb")
    con = connect(db)
    ing = Ingestor(con, db, batch_size=1 << 30)
    assert ing.writer.stored_id_runs() is None  # not built until the first lookup or asked for
    ing.writer.keep_stored_ids()
    assert ing.writer._ids.merge_max == chain.KEPT_MERGE_MAX  # merges on the serial path stay short
    ing.feed("a", "records", chunk_records((i, None, make_event(i)) for i in range(3)))
    assert sorted(np.concatenate(ing.writer.stored_id_runs()).tolist()) == sorted(
        chain.id_keys(con, pa.array([f"e{i}" for i in range(3)])).keys.tolist())

    def broken(self, entries):
        raise OSError("anchor disk gone")
    monkeypatch.setattr(chain.AnchorFile, "append", broken)
    with pytest.raises(OSError):
        ing.feed("b", "records", chunk_records([(1, None, make_event(7))]))
    assert ing.writer.stored_id_runs() is None
    monkeypatch.undo()
    again = Ingestor(con, db, batch_size=1 << 30)
    again.writer.keep_stored_ids()
    assert len(np.concatenate(again.writer.stored_id_runs())) == 4
    con.close()


def test_merges_stop_at_merge_max_and_keep_every_key():
    """The server's set merges runs only up to `merge_max` keys (a merge runs on the commit's serial path)."""
    rng = np.random.default_rng(3)
    ids = chain.StoredIds([np.sort(rng.integers(0, 1 << 63, 50, dtype=np.uint64))], 1, merge_max=40)
    added = [ids.runs[0]]
    for k in range(2, 40):
        run = np.sort(rng.integers(0, 1 << 63, 7, dtype=np.uint64))
        added.append(run)
        before = [len(r) for r in ids.runs]
        ids.add(run, k)
        # a run is merged only into one no longer than merge_max; the built run (50) is never merged again
        assert all(len(r) <= 40 for r in ids.runs[1:]) and len(ids.runs[0]) == 50
        assert sum(len(r) for r in ids.runs) == sum(before) + 7
    every = np.sort(np.concatenate(added))
    assert np.array_equal(np.sort(np.concatenate(ids.runs)), every)
    assert np.array_equal(np.unique(ids.stored_keys(every[::5])), np.unique(every[::5]))
    assert len(ids.runs) > 2  # runs are kept apart rather than merged past the bound
