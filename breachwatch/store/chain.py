"""The tamper-evident batch chain: commit batches atomically, and verify them.

Each committed batch is one link. Its digest covers the batch's stored event
and quarantine records, and its head covers the digest and the previous head.
The head is also appended to the anchor file outside the store. Verify names the
first link that was altered, deleted, reordered or truncated, and catches a
full rewrite with a recomputed chain because the anchor disagrees.

A batch's events are digested one of two ways, each recomputed by verify from
the stored columns with the same helper the writer used:

- by record (small batches: an HTTP request's, hashed before its commit):
  SHA-256 of each event's canonical text (`sha256_each`), sorted and hashed;
- by column (every batch ingest validates itself): the batch's rows in stored
  order, read back as Arrow, each column's values, lengths and validity hashed
  as whole buffers (`column_bytes`). It covers every stored value as the record
  digest does, for a fraction of its cost: no text is rendered and no hash is
  started per record. Three versions, told apart by the digest's prefix:
  `c1:` (one SHA-256 over every column in turn), `c2:` (each column hashed on
  its own with BLAKE2b-256, two columns at a time on two threads, and SHA-256
  over the column hashes) and `c3:` (one BLAKE3 over every column in turn),
  which new batches use: BLAKE3 runs at 2.4-3 GB/s on one core here, against
  SHA-256's 0.36 GB/s without SHA instructions or 1.46 GB/s with them, and
  BLAKE2b's 0.5 GB/s. verify checks each link by the version it names, so
  stores written before `c3` still verify.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import blake3
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.contract.event import FIELD_NAMES, FIELDS, canonical_record_sql
from breachwatch.store.anchor import AnchorEntry, AnchorFile, default_anchor_path
from breachwatch.store.db import StoreError, arrow_views
from breachwatch.store.encryption import store_cursor

GENESIS = "0" * 64
# The prefixes of a link digest whose events are digested by column (`column_digests`), by version; record
# digests have none. It is part of the digest, so the head (and the anchor) covers which way a batch was
# digested. New batches are digested by the version `COLUMN_VERSION`.
COLUMNAR_PREFIX = {1: "c1:", 2: "c2:", 3: "c3:"}
COLUMN_VERSION = 3
_QUARANTINE_HASH = ("sha256(to_json({'quarantine_id': quarantine_id, 'source': source, 'position': position, "
                    "'reason': reason, 'detail': detail, 'raw': raw, 'event_id': event_id})::VARCHAR)")
_COLS = ", ".join(f'"{n}"' for n in FIELD_NAMES)
_S_COLS = ", ".join(f's."{n}"' for n in FIELD_NAMES)

QUARANTINE_SCHEMA = pa.schema([("quarantine_id", pa.string()), ("source", pa.string()), ("position", pa.int64()),
                               ("reason", pa.string()), ("detail", pa.string()), ("raw", pa.large_string()),
                               ("event_id", pa.string())])


def quarantine_id(source: str, position: int, text: str) -> str:
    """A quarantine row's id: the same record of the same source and position is quarantined once."""
    return hashlib.sha256(f"{source}|{position}|{text}".encode("utf-8", "backslashreplace")).hexdigest()[:32]


def quarantine_id_sql(text: str) -> str:
    """`quarantine_id` in SQL, of the row's `_src`, `_pos` and the SQL expression `text`."""
    return f"substr(sha256(_src || '|' || _pos || '|' || {text}), 1, 32)"


def link_head(prev_head: str, seq: int, batch_id: int, link_type: str, events: int, quarantined: int,
              digest: str) -> str:
    text = f"{prev_head}|{seq}|{batch_id}|{link_type}|{events}|{quarantined}|{digest}"
    return hashlib.sha256(text.encode()).hexdigest()


def combine_digests(events_digest: str, quarantine_digest: str, version: int | None = None) -> str:
    """A link's digest of its events' and quarantine rows' digests; `version`: the events were digested
    by column with this version of the column digest, which the digest's prefix records."""
    combined = hashlib.sha256(f"{events_digest}:{quarantine_digest}".encode()).hexdigest()
    return COLUMNAR_PREFIX[version] + combined if version else combined


def column_version(digest: str) -> int | None:
    """The version of the column digest a link's digest was made with (`column_digests`), or None when it
    digests its events by record."""
    return next((v for v, prefix in COLUMNAR_PREFIX.items() if digest.startswith(prefix)), None)


def is_columnar(digest: str) -> bool:
    """Whether a link's digest digests its events by column (`column_digests`) rather than by record."""
    return column_version(digest) is not None


_EMPTY = hashlib.sha256(b"").hexdigest()
_NO_REJECTS = ("(SELECT NULL::VARCHAR AS quarantine_id, NULL::VARCHAR AS source, NULL::BIGINT AS position, "
               "NULL::VARCHAR AS reason, NULL::VARCHAR AS detail, NULL::VARCHAR AS raw, NULL::VARCHAR AS event_id "
               "WHERE false)")


@dataclass
class LogUpdate:
    """The ingest-log row of one source, written in the same transaction as its batch."""
    run_id: str
    source: str
    last_position: int
    start: tuple[str, datetime] | None = None  # (format, started_at): the row is created with this batch
    finish: tuple[str, datetime] | None = None  # (status, finished_at): this is the source's last batch


@dataclass
class BatchResult:
    loaded: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: int = 0
    requarantined: int = 0  # rejects already in quarantine from an earlier run of the same input
    rejects: int = 0  # rows handed in as rejects
    reasons: dict[str, int] = field(default_factory=dict)
    seq: int | None = None


class ChainWriter:
    """Commits batches to the store, one atomic transaction and one chain link each."""

    def __init__(self, con: duckdb.DuckDBPyConnection, db_path: str | os.PathLike[str],
                 anchor_path: str | os.PathLike[str] | None = None) -> None:
        self.con = con
        self.anchor = AnchorFile(anchor_path or default_anchor_path(db_path))
        row = con.execute("SELECT seq, batch_id, head FROM batches ORDER BY seq DESC LIMIT 1").fetchone()
        self.seq, self.batch_id, self.head = (row if row else (0, 0, GENESIS))
        self.batch_id, self.stored_events = con.execute(
            f"SELECT greatest(coalesce(max(batch_id), 0), {int(self.batch_id)}), count(*) FROM events").fetchone()
        self._reconcile_anchor()
        self._ids: StoredIds | None = None  # built by the first lookup (see `lookup_stored`)

    def _reconcile_anchor(self) -> None:
        """Bring the anchor up to the store after a crash between commit and anchor write.

        The reverse (anchor ahead of the store) means the store lost committed
        batches; writing on top of that would bury the evidence, so refuse.
        """
        last = self.anchor.last()
        last_seq = last.seq if last else 0
        if last_seq > self.seq:
            raise StoreError(
                f"{self.anchor.path} records chain link {last_seq} but the store ends at link {self.seq}: "
                "the store has lost committed batches. Fix: run 'breachwatch verify' and restore the store "
                "from a backup before writing to it again.")
        if last is not None:
            mine = self.con.execute("SELECT head FROM batches WHERE seq = ?", [last_seq]).fetchone()
            if not mine or mine[0] != last.head:
                raise StoreError(
                    f"the store's chain link {last_seq} differs from {self.anchor.path}: the store was "
                    "rewritten. Fix: run 'breachwatch verify' and restore the store from a backup.")
        if last_seq < self.seq:
            rows = self.con.execute("SELECT seq, batch_id, head, committed_at FROM batches WHERE seq > ? "
                                    "ORDER BY seq", [last_seq]).fetchall()
            self.anchor.append([AnchorEntry(s, b, h, str(c), late=True) for s, b, h, c in rows])

    def commit(self, staged: str | None, rejects: str | None, source: str, log_update: LogUpdate | None = None, *,
               hashes: pa.Table | None = None, stored: list[str] | None = None,
               direct: "DirectInsert | None" = None) -> BatchResult:
        """Insert one batch atomically: new events, conflicts and rejects to quarantine, one chain link.

        `staged` names a table with the Contract 1 columns plus `_src` and `_pos`; `rejects` one with
        the QUARANTINE_SCHEMA columns, or None when there are none. `log_update` is recorded in the ingest
        log in the same transaction. `hashes` (`record_hashes` of `staged`, already computed where the
        batch was validated) spares the writer that work and makes the link a record digest (without
        it, the batch is digested by column after its insert), and `stored` (every event_id of the batch that is
        already stored, when the caller knows them all) the lookup of its ids. `hashes` may also carry each
        id's key (`_key`, as `id_keys` gives it), worked out where the batch was validated.

        `direct` (with `staged` and `rejects` None): a batch known to hold only new, distinct ids, inserted
        straight from its source (see `DirectInsert`).
        """
        con = self.con
        res = BatchResult()
        batch_id = self.batch_id + 1
        classified: str | None = None  # the staged rows with their fate, when some needed classifying
        con.execute("BEGIN")
        try:
            # A batch hashed before its commit keeps the record digest; one this writer reads itself is
            # digested by column after its insert, so only its ids are read here.
            columnar = hashes is None
            if direct is not None:
                keys = direct.keys
                res.loaded = _insert_new(con, direct.rows, batch_id)
                if res.loaded < direct.records:  # records the direct insert left: validated now, all new too
                    staged, rejects = direct.rest()
                    res.loaded += _insert_new(con, staged, batch_id)
            else:
                keys, classified, hashes = self._insert_staged(staged, hashes, stored, batch_id, res)
            res.rejects = con.execute(f"SELECT count(*) FROM {rejects}").fetchall()[0][0] if rejects else 0
            if res.rejects or res.conflicts:  # most batches quarantine nothing: two statements saved
                conflicts = f"""
                        UNION ALL
                        SELECT {quarantine_id_sql(canonical_record_sql('s'))},
                               _src, _pos, 'conflict',
                               'event_id ' || event_id || ' is already stored with different content' ||
                               coalesce(' (batch ' || _prev_batch || ')', ' (earlier in this batch)'),
                               {canonical_record_sql('s')}, event_id
                        FROM {classified} s WHERE _status = 'conflict'""" if res.conflicts else ""
                con.execute(f"""
                    INSERT INTO quarantine
                    SELECT r.*, {batch_id} FROM (
                        SELECT * FROM {rejects or _NO_REJECTS}{conflicts}
                    ) r ANTI JOIN quarantine q ON q.quarantine_id = r.quarantine_id""")
                res.reasons = dict(con.execute("SELECT reason, count(*) FROM quarantine WHERE batch_id = ? "
                                               "GROUP BY 1", [batch_id]).fetchall())
            res.quarantined = sum(res.reasons.values())
            res.requarantined = res.rejects - (res.quarantined - res.conflicts)
            if log_update:
                _record_log(con, log_update, res)
            entry = None
            if res.loaded or res.quarantined:
                if columnar:  # read back from the rows just inserted, as verify will read them
                    digest = batch_digest(con, batch_id, has_quarantine=res.quarantined > 0,
                                          columnar=COLUMN_VERSION)
                else:
                    # The staged hashes are the stored rows' hashes (SHA-256 of the same canonical text of
                    # the same values); verify recomputes them from the stored columns with the same helper.
                    # When every staged row is new (the common case) their hashes are already at hand.
                    new_hashes = (hashes.column("_rh") if classified is None
                                  else f"SELECT _rh AS h FROM {classified} WHERE _status = 'new'")
                    digest = batch_digest(con, batch_id, new_hashes, has_quarantine=res.quarantined > 0)
                seq = self.seq + 1
                head = link_head(self.head, seq, batch_id, "ingest", res.loaded, res.quarantined, digest)
                now = datetime.now(timezone.utc).replace(tzinfo=None)
                con.execute("INSERT INTO batches VALUES (?, ?, ?, 'ingest', ?, ?, ?, ?, ?, ?)",
                            [seq, batch_id, now, source, res.loaded, res.quarantined, digest, self.head, head])
                entry = AnchorEntry(seq, batch_id, head, now.isoformat())
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.complete()
            if classified is not None:  # `_insert_staged` registered the batch's record hashes to classify it
                con.unregister("_hashes")
        if entry is not None:
            self.seq, self.batch_id, self.head = entry.seq, batch_id, entry.head
            self.stored_events += res.loaded  # only steers the dedup lookup: it need not be exact
            res.seq = entry.seq
            # Commit first, anchor second: a crash in between leaves the anchor one link
            # behind, which the next writer repairs (`_reconcile_anchor`) and marks late.
            self.anchor.append([entry])
        if self._ids is not None:
            # Every id of a committed batch is stored now (new ones inserted, the rest were already).
            self._ids.add(keys.sorted, self.seq)
        return res

    def _insert_staged(self, staged: str, hashes: pa.Table | None, stored: list[str] | None, batch_id: int,
                       res: BatchResult) -> tuple["IdKeys", str | None, pa.Table]:
        """Insert the new rows of `staged` (see `commit`), counting them and the duplicates and conflicts in
        `res`. Returns the batch's id keys, the classified relation when some rows needed classifying (else
        None: all were new), and the hashes (or ids) the commit read."""
        con = self.con
        if hashes is None:
            hashes = con.sql(f"SELECT event_id FROM {staged}").to_arrow_table()
        ids = hashes.column("event_id")
        # The batch's id keys (`id_keys`); given when worked out where the batch was validated.
        keys = (IdKeys.of(hashes.column("_key").to_numpy()) if "_key" in hashes.column_names
                else id_keys(con, ids))
        repeats = keys.repeats(ids)  # rare: only then is a window needed
        if stored is None:
            stored = self.lookup_stored(con, ids, keys)
        stored_rows = _find_stored(con, staged, stored)
        if not stored_rows and not repeats:
            # The common case: every staged row is new, so nothing needs classifying.
            res.loaded = _insert_new(con, staged, batch_id) if hashes.num_rows else 0
            return keys, None, hashes
        if "_rh" not in hashes.column_names:  # duplicate or conflict: record hashes tell
            hashes = record_hashes(con, staged)
        con.register("_hashes", hashes)  # the commit unregisters it once it has the classified relation
        try:
            classified = _classify(con, staged, stored_rows, repeats)
            counts = dict(con.execute(f"SELECT _status, count(*) FROM {classified} GROUP BY 1").fetchall())
            res.loaded, res.duplicates, res.conflicts = (counts.get("new", 0), counts.get("duplicate", 0),
                                                         counts.get("conflict", 0))
            _insert_new(con, f"(SELECT {_S_COLS} FROM {classified} s WHERE _status = 'new')", batch_id)
        except BaseException:
            con.complete()
            con.unregister("_hashes")
            raise
        return keys, classified, hashes

    @property
    def keeps_stored_ids(self) -> bool:
        """Whether this writer keeps the stored ids' keys (see `StoredIds`): not above STORED_IDS_MAX stored
        events, where each commit joins its ids against the stored ones instead."""
        return self.stored_events <= STORED_IDS_MAX

    def keep_stored_ids(self) -> None:
        """Have the stored ids' keys (see `StoredIds`) now rather than at the next commit, so that
        `stored_id_runs` has them, and keep each merge short; nothing when it keeps none."""
        if self._ids is None and self.keeps_stored_ids:
            self.con.complete()  # a result left unread (fetchone) would refuse the scan
            self._ids = StoredIds.build(self.con, self.seq)
        if self._ids is not None:
            # Merges run on the commit's serial path: bounded, so that no acknowledgement waits long for one.
            self._ids.merge_max = KEPT_MERGE_MAX

    def stored_id_runs(self) -> list[np.ndarray] | None:
        """The sorted key runs of every event_id stored up to this writer's last commit, or None when it
        keeps none or they lag (a commit failed after the store's COMMIT). The list and its arrays are
        never changed afterwards, so other threads may read them while this writer goes on."""
        return self._ids.runs if self._ids is not None and self._ids.seq == self.seq else None

    def lookup_stored(self, con: duckdb.DuckDBPyConnection, ids: pa.ChunkedArray, keys: "IdKeys") -> list[str] | None:
        """Which of a batch's `ids` (with their `keys`) are stored, through the writer's `StoredIds` (built by
        its first lookup, rebuilt when another writer committed meanwhile); None when the store is too big
        to keep them, and the commit joins the batch against every stored id instead."""
        if not len(ids):
            return []
        if self._ids is None or not self._ids.current(con):
            merge_max = self._ids.merge_max if self._ids is not None else None
            self._ids = None
            if not self.keeps_stored_ids:
                return None
            self._ids = StoredIds.build(con, self.seq)
            self._ids.merge_max = merge_max
        return stored_among(con, self._ids.runs, ids, keys)


# The dedup lookup of a batch's event_ids. The writer keeps the 64-bit keys of every stored id in memory
# (`StoredIds`: DuckDB's hash() of the id, 8 bytes per stored event), built by its first commit from one
# scan of the id column. An id whose key is not among them is new: that is almost every id of almost
# every batch, so no statement reads the table for them. Only candidates (an id sent again, or the rare
# id sharing a key with a stored one) are looked up in the table. There is no index on event_id: it cost
# a fifth of a big file's ingest rate (migration 0009, docs/BENCHMARKS.md). Above STORED_IDS_MAX stored
# events (about 400 MB of keys) the writer joins each batch against the stored ids instead.
STORED_IDS_MAX = 50_000_000
# The server keeps the set for every request (`ChainWriter.keep_stored_ids`) and merges its runs only up to
# this many keys: merging runs of 20 and 10 million keys took 1.6 s, 4 and 2 million 0.2 s (loaded
# machine), while a lookup only gains a binary search per run (at 50 million stored, some 25 runs).
KEPT_MERGE_MAX = 1 << 22


@dataclass
class IdKeys:
    """A batch's id keys: `keys` in the ids' order, `sorted` the same keys sorted."""
    keys: np.ndarray
    sorted: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray) -> "IdKeys":
        keys = np.asarray(keys, dtype=np.uint64)
        return cls(keys, np.sort(keys))

    def maybe_repeats(self) -> bool:
        """False when no two ids of the batch can be equal (no two keys are)."""
        return bool(np.any(self.sorted[1:] == self.sorted[:-1]))

    def repeats(self, ids: pa.Array | pa.ChunkedArray) -> bool:
        """Whether `ids` (whose keys these are) hold an id twice. Repeated ids are rare: equal ids have equal
        keys, so distinct keys rule repeats out without counting distinct strings."""
        return self.maybe_repeats() and pc.count_distinct(ids).as_py() < len(ids)


# Up to this many ids go to a statement as one list parameter (an HTTP request's: 0.4 ms to hash 100 ids
# where registering them as an Arrow table costs 1.1 ms); more, as an Arrow table (3.8 against 1.0 ms at
# 10,000).
ID_KEYS_AS_LIST = 1000


@contextlib.contextmanager
def _id_list(con: duckdb.DuckDBPyConnection, ids: pa.Array | pa.ChunkedArray | list[str]
             ) -> Iterator[tuple[str, list]]:
    """(a relation of `ids` as column `event_id`, in their order, and its statement parameters): a list
    parameter for up to ID_KEYS_AS_LIST ids, else a registered Arrow table."""
    if len(ids) <= ID_KEYS_AS_LIST:
        yield "(SELECT unnest(?::VARCHAR[]) AS event_id)", [ids if isinstance(ids, list) else ids.to_pylist()]
        return
    with arrow_views(con, _id_list_in=pa.table({"event_id": ids})):
        yield "_id_list_in", []


def id_keys(con: duckdb.DuckDBPyConnection, ids: pa.Array | pa.ChunkedArray) -> IdKeys:
    """The 64-bit keys (DuckDB's hash()) of `ids`, in their order."""
    # hash() of a VARCHAR value is the same whether it comes from a parameter or a column
    # (tests/store: test_id_keys_of_a_list_are_the_stored_keys).
    with _id_list(con, ids) as (rel, params):
        return IdKeys.of(con.sql(f"SELECT hash(event_id) AS k FROM {rel}", params=params).fetchnumpy()["k"])


class StoredIds:
    """The sorted keys of every stored event_id, as sorted runs (a new batch's keys are one more run;
    runs of similar size are merged, so there are few and each key is merged a few times)."""

    def __init__(self, runs: list[np.ndarray], seq: int, merge_max: int | None = None) -> None:
        self.runs = runs
        self.seq = seq  # the chain link the keys are complete up to
        self.merge_max = merge_max  # no merge makes a run longer than this (None: any length)

    @classmethod
    def build(cls, con: duckdb.DuckDBPyConnection, seq: int) -> "StoredIds":
        keys = con.sql("SELECT hash(event_id) AS k FROM events").fetchnumpy()["k"]
        return cls([np.sort(np.asarray(keys, dtype=np.uint64))], seq)

    def current(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Whether no batch was committed since the keys were last complete (by another writer, which
        this one would otherwise not know of)."""
        return con.execute("SELECT coalesce(max(seq), 0) FROM batches").fetchall()[0][0] == self.seq

    def add(self, sorted_keys: np.ndarray, seq: int) -> None:
        # A new list, not the old one changed: another thread may be reading the old (`stored_id_runs`).
        runs = [*self.runs, sorted_keys]
        while len(runs) > 1 and len(runs[-2]) <= 2 * len(runs[-1]) and (
                self.merge_max is None or len(runs[-2]) + len(runs[-1]) <= self.merge_max):
            last = runs.pop()
            # A stable sort of two sorted runs is a merge (timsort finds the runs).
            runs[-1] = np.sort(np.concatenate([runs[-1], last]), kind="stable")
        self.runs = runs
        self.seq = seq

    def stored_keys(self, sorted_keys: np.ndarray) -> np.ndarray:
        return keys_in(self.runs, sorted_keys)


def keys_in(runs: list[np.ndarray], sorted_keys: np.ndarray) -> np.ndarray:
    """Those of `sorted_keys` (sorted: a binary search is much faster for sorted queries) that are in one of
    the sorted `runs` of stored ids' keys: the ids with these keys may be stored (or, rarely, share a key
    with a stored id)."""
    hits = [np.zeros(0, dtype=np.uint64)]
    for run in runs:
        if len(run):
            at = np.minimum(np.searchsorted(run, sorted_keys), len(run) - 1)
            hits.append(sorted_keys[run[at] == sorted_keys])
    return np.concatenate(hits)


def stored_among(con: duckdb.DuckDBPyConnection, runs: list[np.ndarray], ids: pa.Array | pa.ChunkedArray,
                 keys: IdKeys) -> list[str]:
    """Which of `ids` (whose keys are `keys`) are stored, given the sorted key `runs` of every stored id: only
    the ids whose key a run holds are looked up in the table (usually none)."""
    hits = keys_in(runs, keys.sorted)
    if not len(hits):
        return []
    return stored_ids(con, ids.filter(pa.array(np.isin(keys.keys, hits))))


def stored_ids(con: duckdb.DuckDBPyConnection, ids: pa.Array | pa.ChunkedArray) -> list[str]:
    """Which of `ids` are stored: one scan of the stored ids (for candidates only, see `stored_among`)."""
    wanted = pc.unique(ids)
    if not len(wanted):
        return []
    with _id_list(con, wanted) as (rel, params):
        return [i for (i,) in con.execute(f"SELECT event_id FROM events SEMI JOIN {rel} w USING (event_id)",
                                          params).fetchall()]


def _find_stored(con: duckdb.DuckDBPyConnection, staged: str, found: list[str] | None) -> bool:
    """Whether any event_id of `staged` is stored; if so, create `_existing` (event_id, _rh, batch_id): the
    stored events sharing an event_id with `staged`.

    `found` names the batch's stored ids (`ChainWriter.lookup_stored`); None (no keys kept) finds them by a join
    that reads only the id column. The record hash of a stored event needs all its columns, so those are
    read only for the ids found.
    """
    if found is None:
        found = [i for (i,) in con.execute(f"SELECT e.event_id FROM events e SEMI JOIN {staged} s "
                                           "ON e.event_id = s.event_id").fetchall()]
    if not found:
        return False
    # Stored records are hashed by the same helper as staged ones (`sha256_each` of the canonical text).
    with _id_list(con, found) as (rel, params):
        rows = con.sql(f"SELECT e.event_id, e.batch_id, {canonical_record_sql('e')} AS t FROM events e "
                       f"SEMI JOIN {rel} f ON e.event_id = f.event_id", params=params).to_arrow_table()
    existing = pa.table({"event_id": rows.column(0), "_rh": sha256_each(rows.column(2)), "batch_id": rows.column(1)})
    with arrow_views(con, _existing_in=existing):
        con.execute("CREATE OR REPLACE TEMP TABLE _existing AS SELECT * FROM _existing_in")
    return True


def _classify(con: duckdb.DuckDBPyConnection, staged: str, stored: bool, repeats: bool) -> str:
    """A relation of the staged rows with their fate (`_status`: new, duplicate or conflict) and, for
    those already stored, the batch holding them (`_prev_batch`); `_hashes` holds their record hashes.

    It is recomputed by each statement that reads it rather than copied once: scanning the staged rows
    again is cheaper than materialising all their columns."""
    # Each staged row with its record hash, joined by the record's source and position, which name it
    # uniquely. (Not by row order: two scans of a UNION ALL, e.g. several requests' staging tables or the
    # fast lane's rows plus the full validator's, need not return their rows in the same order.)
    hashed = (f"(SELECT s.*, h._rh FROM {staged} s JOIN (SELECT _src, _pos, _rh FROM _hashes) h "
              "ON h._src = s._src AND h._pos = s._pos)")
    in_batch = (f"SELECT *, row_number() OVER w AS _rn, first(_rh) OVER w AS _first_rh FROM {hashed} "
                "WINDOW w AS (PARTITION BY event_id ORDER BY _pos, _src "
                "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)") if repeats else \
        f"SELECT *, 1 AS _rn, _rh AS _first_rh FROM {hashed}"
    existing = "_existing" if stored else "(SELECT NULL::VARCHAR AS event_id, NULL::VARCHAR AS _rh, " \
        "NULL::BIGINT AS batch_id WHERE false)"
    return f"""(
        SELECT s.*,
          CASE WHEN x.event_id IS NOT NULL THEN (CASE WHEN x._rh = s._rh THEN 'duplicate' ELSE 'conflict' END)
               WHEN s._rn > 1 THEN (CASE WHEN s._rh = s._first_rh THEN 'duplicate' ELSE 'conflict' END)
               ELSE 'new' END AS _status,
          x.batch_id AS _prev_batch
        FROM ({in_batch}) s
        LEFT JOIN {existing} x ON x.event_id = s.event_id)"""


@dataclass
class DirectInsert:
    """A batch whose every event_id is known, before its commit, to be new and distinct (none empty, none
    repeated, none stored), so its records need no classifying: the commit inserts those validation vouches
    for straight from their source (`rows`, a relation of Contract 1 columns read and checked by the insert
    itself), and only when that leaves some of its `records` calls `rest()` for the relations of the other
    valid records (all new as well) and of its quarantine rows. Staging the whole batch first cost as much
    as the insert's own reading (docs/BENCHMARKS.md)."""
    rows: str
    records: int
    keys: "IdKeys"  # of every id of the batch, quarantined ones too: a stored key only ever costs a lookup
    rest: Callable[[], tuple[str | None, str | None]]


def _insert_new(con: duckdb.DuckDBPyConnection, rows: str | None, batch_id: int) -> int:
    """Insert `rows` (Contract 1 columns, all new) as events of `batch_id`; returns how many."""
    if rows is None:
        return 0
    return int(con.execute(f"INSERT INTO events ({_COLS}, batch_id) SELECT {_COLS}, {batch_id} FROM {rows}")
               .fetchall()[0][0])


def _record_log(con: duckdb.DuckDBPyConnection, log: LogUpdate, res: BatchResult) -> None:
    done_at, status = (log.finish[1], log.finish[0]) if log.finish else (None, "running")
    records = log.last_position if log.finish else 0
    if log.start:  # the source's first batch: its row is written whole (for an HTTP request, also its last)
        fmt, started = log.start
        con.execute("INSERT INTO ingest_log (run_id, source, format, started_at, finished_at, status, records, "
                    "loaded, duplicates, quarantined, last_position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [log.run_id, log.source, fmt, started, done_at, status, records, res.loaded, res.duplicates,
                     res.quarantined, log.last_position])
        return
    finish = ", finished_at = ?, status = ?, records = ?" if log.finish else ""
    params = [log.last_position, res.loaded, res.duplicates, res.quarantined]
    if log.finish:
        params += [done_at, status, records]
    con.execute("UPDATE ingest_log SET last_position = ?, loaded = loaded + ?, duplicates = duplicates + ?, "
                f"quarantined = quarantined + ?{finish} WHERE run_id = ? AND source = ?",
                params + [log.run_id, log.source])


def sha256_each(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """SHA-256 (hex) of each string, read straight from the Arrow buffers.

    hashlib is several times faster per record than DuckDB's sha256(). Ingest, the
    dedup lookup (stored records sharing an id) and verify all hash through this one
    function.
    """
    out: list[str] = []
    sha = hashlib.sha256
    for arr in (texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]):
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.large_string())
        if arr.null_count:
            raise ValueError("a canonical record text is NULL; every stored record has one")
        width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
        offsets = np.frombuffer(arr.buffers()[1], dtype=width)[arr.offset:arr.offset + len(arr) + 1].tolist()
        data = memoryview(arr.buffers()[2] or b"")
        out += [sha(data[a:b]).hexdigest() for a, b in zip(offsets, offsets[1:])]
    return pa.array(out, pa.string())


def record_hashes(con: duckdb.DuckDBPyConnection, staged: str) -> pa.Table:
    """Each staged row's `_src`, `_pos`, `event_id` and record hash (`_rh`: SHA-256 of its canonical text)."""
    rows = con.sql(f"SELECT _src, _pos, event_id, {canonical_record_sql()} AS t FROM {staged}").to_arrow_table()
    return pa.table({"_src": rows.column(0), "_pos": rows.column(1), "event_id": rows.column(2),
                     "_rh": sha256_each(rows.column(3))})


def _sorted_hex(hashes: pa.Array | pa.ChunkedArray) -> bytes:
    """Hex digests (`sha256_each`) sorted and concatenated, as string_agg(h, '' ORDER BY h) gives them: each
    is 64 ASCII bytes, so numpy sorts them as fixed-width bytes without a Python string per record."""
    arr = hashes.combine_chunks() if isinstance(hashes, pa.ChunkedArray) else hashes
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    if not len(arr):
        return b""
    offsets = np.frombuffer(arr.buffers()[1], dtype=width)[arr.offset:arr.offset + len(arr) + 1]
    if arr.null_count or not (np.diff(offsets) == 64).all():
        raise ValueError("record hashes must be 64-character hex digests (sha256_each)")
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return np.sort(data.view("S64")).tobytes()


def batch_digest(con: duckdb.DuckDBPyConnection, batch_id: int,
                 event_hashes: str | list[str] | pa.Array | pa.ChunkedArray | None = None,
                 *, has_quarantine: bool = True, columnar: int | None = None) -> str:
    """Digest of one batch's stored events and quarantine rows.

    `columnar` (a version of the column digest): the events are digested by column (`column_digests`,
    read from the stored rows, also those of the caller's own uncommitted transaction), and the digest
    carries that version's prefix.

    `event_hashes` may give the events' hashes already computed: a query (column h), or the hashes as a
    list or an Arrow array; without it they are recomputed from the stored columns exactly as verify
    does. `has_quarantine=False` (the committer knows the batch quarantined nothing) spares the query for
    its quarantine rows.
    """
    if columnar:
        if event_hashes is not None:
            raise ValueError("a column digest is read from the stored rows; pass no event_hashes with it")
        ev_digest = column_digests(con, [batch_id], version=columnar).get(batch_id, (0, _EMPTY))[1]
    elif event_hashes is None:
        ev_digest = event_digests(con, [batch_id]).get(batch_id, (0, _EMPTY))[1]
    elif isinstance(event_hashes, (pa.Array, pa.ChunkedArray)):
        ev_digest = hashlib.sha256(_sorted_hex(event_hashes)).hexdigest()
    elif isinstance(event_hashes, list):
        # The same order as string_agg(... ORDER BY h): byte order of ASCII hex.
        ev_digest = hashlib.sha256("".join(sorted(event_hashes)).encode()).hexdigest()
    else:
        ev = con.execute(f"SELECT string_agg(h, '' ORDER BY h) FROM ({event_hashes})").fetchall()[0][0]
        ev_digest = hashlib.sha256((ev or "").encode()).hexdigest()
    q = con.execute(f"SELECT string_agg(h, '' ORDER BY h) FROM (SELECT {_QUARANTINE_HASH} AS h FROM quarantine "
                    "WHERE batch_id = ?)", [batch_id]).fetchall()[0][0] if has_quarantine else None
    return combine_digests(ev_digest, hashlib.sha256((q or "").encode()).hexdigest(), columnar)


# verify reads the events in windows of whole batches of about this many records, so its memory is
# bounded by the window (or by one batch, if a batch is larger), not by the store.
VERIFY_WINDOW_ROWS = 250_000

Digests = dict[int, tuple[int, str]]  # per batch_id: its number of events and its events' digest


def _windows(counts: list[tuple[int, int]], window_rows: int) -> list[tuple[int, int]]:
    """(first, last) batch ids of consecutive batches adding up to about `window_rows` events each, from
    (batch_id, events) in batch order; a batch larger than that is a window of its own."""
    windows = []
    start = 0
    while start < len(counts):
        end, rows = start + 1, counts[start][1]
        while end < len(counts) and rows + counts[end][1] <= window_rows:
            rows += counts[end][1]
            end += 1
        windows.append((counts[start][0], counts[end - 1][0]))
        start = end
    return windows


def _scan_windows(con: duckdb.DuckDBPyConnection, batch_ids: list[int] | None, window_rows: int,
                  select: str, digest_window: Callable[[pa.Table, Digests], None],
                  exclude: set[int] | frozenset[int] = frozenset()) -> Digests:
    """Read the events of every batch (or those in `batch_ids`) in windows of whole batches, `select` (the
    columns after `batch_id`) in stored order, and let `digest_window` digest each window. Batches in
    `exclude` are left out.

    Over several windows, DuckDB reads the next window on its own cursor (committed data) while this
    thread digests the current one: the overlap is what puts both cores to work. A single window is read
    on `con` itself, so a writer can digest a batch of its own transaction before committing it."""
    if batch_ids is not None and not batch_ids:
        return {}
    only = f"batch_id IN ({', '.join(str(int(b)) for b in batch_ids)})" if batch_ids else "true"
    if exclude:
        only += f" AND batch_id NOT IN ({', '.join(str(int(b)) for b in sorted(exclude))})"
    if batch_ids is not None and len(batch_ids) == 1:
        # One batch (a writer digesting its own) is one window whatever its size: no count query on the commit.
        windows = [(int(batch_ids[0]), int(batch_ids[0]))]
        con.complete()  # a result left unread (fetchone) would refuse the read, as the count query would not
    else:
        windows = _windows(con.execute(f"SELECT batch_id, count(*) FROM events WHERE {only} GROUP BY 1 "
                                       "ORDER BY 1").fetchall(), window_rows)

    def read(c: duckdb.DuckDBPyConnection, lo: int, hi: int) -> pa.Table:
        # Events are stored in commit order, so min/max pruning on batch_id reads just this window.
        return c.sql(f"SELECT batch_id, {select} FROM events WHERE batch_id BETWEEN {int(lo)} AND {int(hi)} "
                     f"AND {only}").to_arrow_table()

    def on_cursor(lo: int, hi: int) -> pa.Table:
        cur = store_cursor(con)
        try:
            return read(cur, lo, hi)
        finally:
            cur.close()

    out: Digests = {}
    if not windows:
        return out
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        window = read(con, *windows[0])
        for i in range(len(windows)):
            if i + 1 < len(windows):
                pending = pool.submit(on_cursor, *windows[i + 1])
            digest_window(window, out)
            del window
            if pending is not None:
                window, pending = pending.result(), None
    return out


def _batch_spans(batch_ids: np.ndarray) -> list[tuple[int, int]]:
    """(first, end) row spans of each batch in a window sorted by batch_id."""
    if not len(batch_ids):
        return []
    cuts = (np.flatnonzero(np.diff(batch_ids)) + 1).tolist()
    return list(zip([0, *cuts], [*cuts, len(batch_ids)]))


def event_digests(con: duckdb.DuckDBPyConnection, batch_ids: list[int] | None = None,
                  window_rows: int = VERIFY_WINDOW_ROWS,
                  exclude: set[int] | frozenset[int] = frozenset()) -> Digests:
    """Per stored batch (all but `exclude`, or those in `batch_ids`): its number of events and its events'
    record digest.

    The digest is SHA-256 over the batch's record hashes, sorted and concatenated, so it does not
    depend on row order on disk. Record hashes come from `sha256_each`, the helper ingest hashes with.
    """
    return _scan_windows(con, batch_ids, window_rows, f"{canonical_record_sql()} AS t", _digest_window,
                         exclude=exclude)


def _digest_window(window: pa.Table, out: Digests) -> None:
    """Hash a window's (batch_id, text) rows and add each batch's (count, digest) to `out`."""
    hashed = pa.table({"b": window.column(0), "h": sha256_each(window.column(1))})
    ordered = hashed.sort_by([("b", "ascending"), ("h", "ascending")])
    b = ordered.column("b").to_numpy()
    h = ordered.column("h").combine_chunks().cast(pa.large_string())
    offsets = np.frombuffer(h.buffers()[1], dtype=np.int64)[h.offset:h.offset + len(h) + 1]
    data = memoryview(h.buffers()[2] or b"")
    # Each batch's sorted hashes lie next to each other in the data buffer: hash that span.
    for first, last in _batch_spans(b):
        out[int(b[first])] = (last - first, hashlib.sha256(data[offsets[first]:offsets[last]]).hexdigest())


# Every event column in Contract 1 order, as stored; JSON read as its text, like the record digest does.
DIGEST_COLUMNS = ", ".join(f'"{f.name}"' + ("::VARCHAR" if f.kind == "attrs" else "") for f in FIELDS)


def column_bytes(h: "hashlib._Hash", arr: pa.Array) -> None:
    """Feed one Arrow array's values to `h`, independent of its chunking, offsets and string or list
    layout: a flag (0: no nulls; 1: some, then the validity as packed bits; 2: all null, and nothing
    more), then for strings and lists each value's length (int32) and the value bytes or children, for
    fixed-width types the values (nulls as 0). The row count is fixed by the link, so the bytes read
    back one way only."""
    ty = arr.type
    if arr.null_count == len(arr):
        h.update(b"\x02")  # common: most columns of a given feed are never filled
        return
    if pa.types.is_string_view(ty) or pa.types.is_large_string(ty):
        arr, ty = arr.cast(pa.string()), pa.string()
    elif pa.types.is_large_list(ty) or pa.types.is_list_view(ty):
        arr = arr.cast(pa.list_(ty.value_type))
        ty = arr.type
    valid = None
    if arr.null_count:
        valid = np.asarray(arr.is_valid())
        h.update(b"\x01")
        h.update(np.packbits(valid).tobytes())
    else:
        h.update(b"\x00")
    if pa.types.is_string(ty) or pa.types.is_list(ty) or pa.types.is_map(ty):
        offs = np.frombuffer(arr.buffers()[1], np.int32)[arr.offset:arr.offset + len(arr) + 1]
        h.update(np.diff(offs).tobytes())  # a null's length is 0
        if pa.types.is_string(ty):
            h.update(memoryview(arr.buffers()[2] or b"")[offs[0]:offs[-1]])
            return
        values = arr.values.slice(offs[0], offs[-1] - offs[0])  # `values` ignores the array's own offset
        for child in ([values] if pa.types.is_list(ty) else values.flatten()):
            column_bytes(h, child)
    elif pa.types.is_integer(ty) or pa.types.is_timestamp(ty):
        width = ty.bit_width // 8
        vals = np.frombuffer(arr.buffers()[1], dtype=f"<i{width}")[arr.offset:arr.offset + len(arr)]
        h.update((vals if valid is None else np.where(valid, vals, 0)).tobytes())
    else:
        raise TypeError(f"column_bytes: no digest defined for Arrow type {ty}")


def columns_bytes(h: "hashlib._Hash", columns: Iterable[pa.Array | pa.ChunkedArray]) -> None:
    """`column_bytes` of each column in turn (a chunked column as one array): a batch's column digest."""
    for col in columns:
        column_bytes(h, col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)


_HASH_THREADS = 2
_hash_pool: ThreadPoolExecutor | None = None


def _forget_hash_pool() -> None:
    global _hash_pool
    _hash_pool = None  # a forked child has none of the parent's threads: it starts its own pool


os.register_at_fork(after_in_child=_forget_hash_pool)


def _column_hash(col: pa.Array | pa.ChunkedArray) -> bytes:
    h = hashlib.blake2b(digest_size=32)
    columns_bytes(h, [col])
    return h.digest()


def columns_digest_v2(columns: list[pa.Array | pa.ChunkedArray]) -> str:
    """The `c2` events digest: SHA-256 over each column's own BLAKE2b-256 of its `column_bytes`, in column
    order. The columns are hashed two at a time: hashlib and NumPy let go of the interpreter while they
    work on whole buffers, and nothing else runs on the second core while a writer digests its batch."""
    global _hash_pool
    if _hash_pool is None:
        _hash_pool = ThreadPoolExecutor(max_workers=_HASH_THREADS, thread_name_prefix="bw-digest")
    return hashlib.sha256(b"".join(_hash_pool.map(_column_hash, columns))).hexdigest()


def _columns_in_turn(new_hash: Callable[[], Any], columns: list[pa.Array | pa.ChunkedArray]) -> str:
    """One hash (`new_hash()`) over every column's `column_bytes` in turn: the `c1` and `c3` events digests."""
    h = new_hash()
    columns_bytes(h, columns)
    return h.hexdigest()


# Each version's events digest: `c1` with SHA-256; `c2` per column; `c3` with BLAKE3 (256-bit), on one thread:
# BLAKE3's own threads measured no faster (0.064-0.081 s against 0.056-0.074 s per 245,760-row batch).
_COLUMNS_DIGEST: dict[int, Callable[[list[pa.Array | pa.ChunkedArray]], str]] = {
    1: functools.partial(_columns_in_turn, hashlib.sha256),
    2: columns_digest_v2,
    3: functools.partial(_columns_in_turn, blake3.blake3),
}


def _columns_window(window: pa.Table, out: Digests, version: int) -> None:
    """Digest each batch of a window of (batch_id, event columns) rows in stored order."""
    b = window.column(0).to_numpy()
    if len(b) > 1 and bool(np.any(b[1:] < b[:-1])):
        # Batches are appended in commit order, so this only happens to a store written outside
        # breachwatch; group each batch's rows, keeping their stored order, rather than split one.
        order = np.argsort(b, kind="stable")
        window, b = window.take(pa.array(order)), b[order]
    digest = _COLUMNS_DIGEST[version]
    for first, last in _batch_spans(b):
        out[int(b[first])] = (last - first, digest(window.slice(first, last - first).columns[1:]))


def column_digests(con: duckdb.DuckDBPyConnection, batch_ids: list[int] | None = None,
                   window_rows: int = VERIFY_WINDOW_ROWS, version: int = COLUMN_VERSION) -> Digests:
    """Per stored batch (all, or those in `batch_ids`): its number of events and its events' column digest
    (of `version`, see the module's docstring), column by column, of its rows in stored order.

    Stored order is the order the batch was inserted in: DuckDB returns a scan's rows in insertion
    order (`preserve_insertion_order`, on by default and never turned off here), checkpoints keep it, and
    the writer reads its batch back the same way before committing. Sorting by event_id instead cost
    more than the hashing itself (0.41 against 0.15 s to read 200,000 rows back). Rows reordered within
    a batch therefore count as altered."""
    return _scan_windows(con, batch_ids, window_rows, DIGEST_COLUMNS,
                         functools.partial(_columns_window, version=version))


@dataclass
class VerifyReport:
    ok: bool
    links: int
    events: int
    anchor_path: str
    anchor_links: int
    problem: str | None = None  # altered, deleted, reordered, truncated, rewritten, unanchored, orphaned
    first_bad_seq: int | None = None
    first_bad_batch: dict[str, Any] | None = None
    message: str = ""
    warnings: list[str] = field(default_factory=list)


def _digests_by_batch(con: duckdb.DuckDBPyConnection, columnar: dict[int, int]) -> dict[int, tuple[int, int, str]]:
    """Recompute every batch's digest: events streamed window by window (those of the `columnar` batches by
    column, with the version each link names; every other batch, whether or not a link names it, by
    record), quarantine in one grouped scan."""
    ev = event_digests(con, exclude=set(columnar))
    for version in sorted(set(columnar.values())):
        ev.update(column_digests(con, sorted(b for b, v in columnar.items() if v == version), version=version))
    q = {b: (n, d) for b, n, d in con.execute(f"""
        SELECT batch_id, count(*), sha256(string_agg(h, '' ORDER BY h))
        FROM (SELECT batch_id, {_QUARANTINE_HASH} AS h FROM quarantine) GROUP BY batch_id""").fetchall()}
    out = {}
    for b in set(ev) | set(q):
        ne, de = ev.get(b, (0, _EMPTY))
        nq, dq = q.get(b, (0, _EMPTY))
        out[b] = (ne, nq, combine_digests(de, dq, columnar.get(b)))
    return out


def verify(con: duckdb.DuckDBPyConnection, db_path: str | os.PathLike[str],
           anchor_path: str | os.PathLike[str] | None = None) -> VerifyReport:
    anchor = AnchorFile(anchor_path or default_anchor_path(db_path))
    links = con.execute("SELECT seq, batch_id, committed_at, link_type, source, events, quarantined, digest, "
                        "prev_head, head FROM batches ORDER BY seq").fetchall()
    total = con.execute("SELECT count(*) FROM events").fetchone()[0]
    anchored = anchor.read()
    rep = VerifyReport(ok=True, links=len(links), events=total, anchor_path=str(anchor.path),
                       anchor_links=len(anchored))
    if not anchor.exists() and links:
        rep.warnings.append(f"no anchor file at {anchor.path}: a rewrite of the whole store cannot be ruled out")
    recomputed = _digests_by_batch(con, {r[1]: v for r in links if (v := column_version(r[7]))})
    by_anchor = {a.seq: a for a in anchored}

    def bad(problem: str, seq: int, row: tuple | None, message: str) -> VerifyReport:
        rep.ok, rep.problem, rep.first_bad_seq, rep.message = False, problem, seq, message
        if row is not None:
            rep.first_bad_batch = {"seq": row[0], "batch_id": row[1], "committed_at": str(row[2]),
                                   "link_type": row[3], "source": row[4], "events": row[5], "quarantined": row[6]}
        return rep

    prev = GENESIS
    seen_batches = set()
    for i, row in enumerate(links, 1):
        seq, batch_id, _, link_type, source, n_ev, n_q, digest, prev_head, head = row
        seen_batches.add(batch_id)
        where = f"batch {batch_id} (link {seq}, from {source}, committed {row[2]})"
        if seq != i:
            return bad("deleted", i, row, f"chain link {i} is missing: the store goes from link {i - 1} "
                       f"to link {seq}; {seq - i} batch(es) were deleted before {where}")
        if prev_head != prev:
            return bad("reordered", seq, row, f"{where} does not follow the link before it: batches were "
                       "reordered, or one before it was deleted or replaced")
        got_ev, got_q, got_digest = recomputed.get(batch_id, (0, 0, combine_digests(_EMPTY, _EMPTY,
                                                                                     column_version(digest))))
        if link_type == "ingest" and (got_digest != digest or got_ev != n_ev or got_q != n_q):
            return bad("altered", seq, row, f"{where} was altered: it should hold {n_ev} events and {n_q} "
                       f"quarantined records, it holds {got_ev} and {got_q}, and their digest differs")
        expect = link_head(prev, seq, batch_id, link_type, n_ev, n_q, digest)
        if head != expect:
            return bad("altered", seq, row, f"{where}: its stored chain head does not match its contents")
        a = by_anchor.get(seq)
        if a is not None and a.head != head:
            return bad("rewritten", seq, row, f"{where} differs from the anchor file {anchor.path}: the store "
                       "and its chain were rewritten after this link was anchored")
        if a is None and anchored and seq <= anchored[-1].seq:
            return bad("rewritten", seq, row, f"{where} is not in the anchor file {anchor.path}")
        prev = head
    if anchored and anchored[-1].seq > len(links):
        lost = anchored[len(links)] if len(anchored) > len(links) else anchored[-1]
        return bad("truncated", len(links) + 1, None,
                   f"the store ends at link {len(links)} but the anchor records {anchored[-1].seq} links: "
                   f"the store was truncated; batch {lost.batch_id} (link {lost.seq}, committed "
                   f"{lost.committed_at}) and everything after it is gone")
    orphans = set(recomputed) - seen_batches
    if orphans:
        b = min(orphans)
        return bad("orphaned", 0, None, f"records of batch {b} are in the store but in no chain link: they "
                   "were inserted outside breachwatch ingest")
    unanchored = [r[0] for r in links if r[0] not in by_anchor]
    if unanchored and anchor.exists():
        rep.warnings.append(f"links {unanchored[0]}..{unanchored[-1]} are not yet in the anchor file (a writer "
                            "stopped between commit and anchoring); the next ingest anchors them")
    rep.message = (f"chain intact: {len(links)} links, {total} events, "
                   f"{'all anchored' if not unanchored else f'{len(links) - len(unanchored)} anchored'}")
    return rep

