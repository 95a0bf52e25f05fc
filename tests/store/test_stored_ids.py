"""The writer's in-memory set of stored id keys (`StoredIds`) only narrows which ids a big batch probes:
the fates of its records are the same with it, without it, when every key collides, and when another
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

BIG = 2000  # above the probe limit of these small stores, so each batch takes the big-batch lookup


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
    monkeypatch.setattr(chain, "STORED_IDS_MAX", -1)  # the join for every big batch, as before
    without = _ingest_all(tmp_path, "without", make_event)
    assert with_set == without
    counts = with_set[0]
    assert counts[0] == (BIG, 0, 0)
    assert counts[1] == (BIG, 30 + 1, 2)  # conflicts: e5 with a stored one, the repeated e{BIG + 8} in-batch
    assert counts[3] == (0, BIG, 0)


def test_colliding_keys_only_cost_probes(tmp_path, make_event, monkeypatch):
    """Every id given one key: each stored key matches every id, and the probes still decide."""
    reference = _ingest_all(tmp_path, "ref", make_event)
    real = chain.id_keys

    def one_key(con, ids):
        k = real(con, ids)
        return chain.IdKeys(np.full_like(k.keys, 7), np.full_like(k.sorted, 7))
    monkeypatch.setattr(chain, "id_keys", one_key)
    monkeypatch.setattr(chain, "PROBE_MAX_IDS", 1 << 20)  # so even all-candidate batches probe
    monkeypatch.setattr(chain, "STORED_EVENTS_PER_PROBE", 1)
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
    found = one.writer._stored_by_filter(con, pa.chunked_array([pa.array(ids)]), keys, limit=1000)
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
