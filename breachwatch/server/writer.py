"""The one writer of events: HTTP batches and watched files, through one `Ingestor`.

Each HTTP request's records are validated in the request's own thread, into
staging tables in memory (`stage`), at positions reserved for them in
the server's HTTP source; only dedup, chaining and the commit are serial.
Even most of dedup is not: a request looks its event ids up in the store as it
stands when validated, and the writer then checks them only against the
commits made since, which it remembers (`_Recent`). The lookup asks the keys of
every stored id, which the writer keeps in memory and hands out after each
commit, and reads the table only for the ids they name (usually none).
Requests then wait in a bounded queue. The writer thread takes everything that
has arrived while the previous commit ran and commits it as one atomic batch
(group commit), so many small requests cost one commit; each request's future
is answered only after that commit, and with that request's own counts. When
the queue is full a request is refused at once (429 with Retry-After), never
taken and dropped. A failed commit stores nothing and fails every request in it.
"""
from __future__ import annotations

import functools
import logging
import math
import threading
import time
import uuid
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from breachwatch.contract.catalog import Catalog
from breachwatch.ingest.pipeline import Ingestor, StagedBatch, stage_batch, validation_cursor
from breachwatch.store.chain import id_keys, stored_among, stored_ids
from breachwatch.server.bodies import ParsedBody, shift
from breachwatch.server.metrics import Metrics
from breachwatch.server.store import ServerStore

FEED_BATCH = 200_000  # watched files commit in batches of this many records, as file ingest does

log = logging.getLogger(__name__)


class Overloaded(RuntimeError):
    def __init__(self, retry_after: int, pending: int) -> None:
        super().__init__(f"the ingest queue holds {pending} records; retry in {retry_after} s")
        self.retry_after = retry_after


class WriterStopped(RuntimeError):
    """The server is shutting down; the request was not stored."""


@dataclass
class StagedRequest:
    """A request's records, validated, at positions `first_position`.. of the writer's HTTP source;
    `stored`: which of its event ids the store held after commit number `seen` (None: not looked up)."""
    body: ParsedBody
    batch: StagedBatch
    first_position: int
    stored: list[str] | None = None
    seen: int = 0

    @functools.cached_property
    def ids(self) -> list[str]:
        """Its event ids as stored (derived where a record stated none), read from its hashes once."""
        return self.batch.hashes.column("event_id").to_pylist()


class _Recent:
    """The event ids of the writer's last commits, by commit number, so that ids looked up before a
    commit need to be checked only against the commits since. A commit whose ids are not known (a watched
    file's batches) is remembered as unknown: ids looked up before it are looked up again."""

    def __init__(self, keep: int = 256) -> None:
        self.done = 0  # commits finished; read by request threads (an int: no lock needed)
        self._ids: deque[frozenset[str] | None] = deque(maxlen=keep)  # of commits done-len+1 .. done

    def add(self, ids: frozenset[str] | None) -> None:
        self._ids.append(ids)
        self.done += 1  # after the commit and its ids: a request that reads `done` sees both

    def since(self, seen: int) -> set[str] | None:
        """The ids of every commit after number `seen`, or None if one of them is unknown or forgotten."""
        behind = self.done - seen
        if behind > len(self._ids):
            return None
        out: set[str] = set()
        for ids in list(self._ids)[len(self._ids) - behind:]:
            if ids is None:
                return None
            out |= ids
        return out


@dataclass
class _Request:
    staged: StagedRequest
    label: str
    future: Future
    enqueued: float
    coalescible: bool = field(init=False)

    @property
    def body(self) -> ParsedBody:
        return self.staged.body

    def __post_init__(self) -> None:
        # Per-request counts in a shared commit are told apart by event_id, so only
        # requests whose every record states one can share a commit.
        ids = self.body.ids
        self.coalescible = ids is not None and all(i is not None for i in ids)


@dataclass
class _Job:
    fn: Callable[[Ingestor], Any]
    future: Future


def _receipt(records: int, loaded: int, duplicates: int, reasons: dict[str, int], source: str,
             first_position: int) -> dict[str, Any]:
    return {"records": records, "loaded": loaded, "duplicates": duplicates,
            "quarantined": sum(reasons.values()), "quarantined_by_reason": dict(sorted(reasons.items())),
            "source": source, "first_position": first_position}


class StoreWriter:
    def __init__(self, store: ServerStore, catalog: Catalog | None, *, anchor_path: str | None = None,
                 max_pending_records: int = 500_000, max_group_records: int = 20_000,
                 metrics: Metrics | None = None) -> None:
        self.store = store
        self.catalog = catalog
        self.anchor_path = anchor_path
        self.max_pending = max_pending_records
        self.max_group = max_group_records
        self.metrics = metrics or Metrics()
        self._cur = store.cursor()
        self._ing = self._new_ingestor()
        self._queue: deque[_Request | _Job] = deque()
        self._pending = 0
        self._cv = threading.Condition()
        self._stop = False
        self._rate = 10_000.0  # records per second, smoothed; for Retry-After
        self.commits = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="breachwatch-writer", daemon=True)
        # HTTP records are filed under one source per writer, numbered in order of arrival like a file's
        # lines, so a request's quarantined records are found by source and position.
        self.source = f"http:{uuid.uuid4().hex[:12]}"
        self._next_position = 1
        self._local = threading.local()  # each request thread's validation cursor
        self._recent = _Recent()
        # (commit number, sorted key runs of every id stored up to it), see `_publish`; None: not kept
        self._keys: tuple[int, list[np.ndarray]] | None = None
        self._keys_wanted = True  # the ingestor's writer should build its stored ids' keys (writer thread)

    def _new_ingestor(self) -> Ingestor:
        self._keys_wanted = True
        return Ingestor(self._cur, self.store.path, catalog=self.catalog, anchor_path=self.anchor_path,
                        batch_size=1 << 62)

    def _publish(self) -> None:
        """Hand request threads the keys of every stored id as of the last commit (writer thread; call after
        `_recent.add`, so that a request checks the ids of later commits against `_recent`)."""
        w = self._ing.writer
        if self._keys_wanted:  # once per ingestor: a scan of every stored id
            self._keys_wanted = False
            try:
                w.keep_stored_ids()
            except Exception as e:  # noqa: BLE001 - only a shortcut is lost: each commit looks its ids up
                log.warning("stored ids' keys not kept (%s); each commit looks its ids up in the table", e)
        runs = w.stored_id_runs()
        self._keys = (self._recent.done, runs) if runs is not None else None

    # -- callers ---------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout)
        self._cur.close()

    @property
    def pending(self) -> int:
        return self._pending

    def _admit(self, records: int) -> None:
        """Raise unless `records` more fit the queue (call holding `_cv`)."""
        if self._stop:
            raise WriterStopped("the server is shutting down. Fix: retry against the next server.")
        if self._pending and self._pending + records > self.max_pending:
            wait = max(1, math.ceil(self._pending / max(self._rate, 1.0)))
            raise Overloaded(wait, self._pending)

    def stage(self, body: ParsedBody) -> StagedRequest:
        """Validate one request's records in the calling thread (not the event loop's): what can be done
        before the commit is done while the writer commits the requests before it."""
        with self._cv:
            self._admit(body.records)  # refuse early, before any work, when the queue is full
            first = self._next_position
            self._next_position += body.records
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = validation_cursor(self.store.con)
        started = time.perf_counter()
        batch = stage_batch(cur, "http", [(self.source, shift(c, first - 1)) for c in body.chunks],
                            catalog=self.catalog)
        staged = StagedRequest(body, batch, first)
        ids = batch.hashes.column("event_id")
        keys = id_keys(cur, ids)
        # The commit needs the keys too (the writer's stored ids): worked out here, off its serial path.
        batch.hashes = batch.hashes.append_column("_key", pa.array(keys.keys))
        known = self._keys  # read once: its commit number and keys belong together
        if known is not None:
            staged.seen, runs = known  # later commits are checked against `_recent` by the writer
            staged.stored = stored_among(cur, runs, ids, keys)
        elif self._ing.writer.keeps_stored_ids:
            # No keys handed out yet (the server's first requests): one scan of the stored ids, here rather
            # than on the serial path. (A store too big for keys leaves it to the commit, which scans once
            # for every request it groups.)
            staged.seen = self._recent.done  # read before the lookup: later commits are checked again
            staged.stored = stored_ids(cur, ids)
        self.metrics.validate_latency.observe(time.perf_counter() - started)
        return staged

    def submit(self, staged: StagedRequest, label: str) -> Future:
        """Queue one request's validated records; the future gives its receipt once they are committed."""
        fut: Future = Future()
        with self._cv:
            try:
                self._admit(staged.body.records)
            except (Overloaded, WriterStopped):
                with self.store.reading() as cur:  # refused: its staged rows go, nothing else happened
                    staged.batch.drop(cur)
                raise
            self._queue.append(_Request(staged, label, fut, time.perf_counter()))
            self._pending += staged.body.records
            self._cv.notify()
        return fut

    def run_job(self, fn: Callable[[Ingestor], Any]) -> Future:
        """Run `fn(ingestor)` on the writer thread, between commits (watched-folder files)."""
        fut: Future = Future()
        with self._cv:
            if self._stop:
                raise WriterStopped("the server is shutting down.")
            self._queue.append(_Job(fn, fut))
            self._cv.notify()
        return fut

    # -- the writer thread -------------------------------------------------------
    def _take(self) -> list[_Request] | _Job | None:
        with self._cv:
            while not self._queue and not self._stop:
                self._cv.wait()
            if not self._queue:
                return None
            first = self._queue.popleft()
            if isinstance(first, _Job):
                return first
            group, total = [first], first.body.records
            while first.coalescible and self._queue:
                nxt = self._queue[0]
                if isinstance(nxt, _Job) or not nxt.coalescible or total + nxt.body.records > self.max_group:
                    break
                self._queue.popleft()
                group.append(nxt)
                total += nxt.body.records
            return group

    def _run(self) -> None:
        self._publish()
        while True:
            item = self._take()
            if item is None:
                return
            if isinstance(item, _Job):
                self._run_job(item)
                continue
            n = sum(r.body.records for r in item)
            try:
                self._commit(item)
            except BaseException as e:  # noqa: BLE001 - no request may be left waiting forever
                self.last_error = f"{type(e).__name__}: {e}"
                for r in item:
                    if not r.future.done():
                        r.future.set_exception(e)
            finally:
                with self._cv:
                    self._pending -= n

    def _run_job(self, job: _Job) -> None:
        try:
            self._ing.batch_size = FEED_BATCH
            job.future.set_result(job.fn(self._ing))
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            self._ing = self._new_ingestor()
            job.future.set_exception(e)
        finally:
            self._ing.batch_size = 1 << 62
            # Its batches' ids are not kept: requests looked up before it ends look again. Counted only
            # once it has ended, so that a request looking up while it runs is one of those.
            self._recent.add(None)
            self._publish()

    def _commit(self, group: list[_Request]) -> None:
        started = time.perf_counter()
        source = self.source
        s = self._ing.summary
        before = (s.records, s.loaded, s.duplicates, Counter(s.quarantined))
        m = self.metrics
        for r in group:
            m.queue_wait.observe(started - r.enqueued)
        n = sum(r.body.records for r in group)
        batch_id = None  # the batch this commit stored, if it stored anything (a chain link)
        try:
            if n:
                res = self._ing.commit_staged(source, [r.staged.batch for r in group], self._stored(group))
                batch_id = self._ing.writer.batch_id if res.seq is not None else None
                self._recent.add(frozenset().union(*(r.staged.ids for r in group)))
                self._publish()
            m.commit_latency.observe(time.perf_counter() - started)
        except BaseException as e:  # noqa: BLE001 - every request in the group learns it was not stored
            # Stored or not (a failure after the store's commit, at the anchor, leaves it stored), its ids
            # are not vouched for: requests looked up before look again.
            self._recent.add(None)
            self.last_error = f"{type(e).__name__}: {e}"
            self._ing = self._new_ingestor()  # its state may hold the failed batch
            for r in group:
                r.future.set_exception(e)
            self._publish()
            return
        s = self._ing.summary
        reasons = s.quarantined - before[3]
        if s.loaded - before[1] == n:  # every record new (the usual case): each request loaded all of its own
            receipts = [_receipt(r.body.records, r.body.records, 0, {}, source, r.staged.first_position)
                        for r in group]
        elif len(group) == 1:
            receipts = [_receipt(s.records - before[0], s.loaded - before[1], s.duplicates - before[2],
                                 dict(reasons), source, group[0].staged.first_position)]
        else:
            receipts = self._attribute(group, source, batch_id)
        elapsed = time.perf_counter() - started
        self.commits += 1
        m.commits.inc()
        m.events_loaded.inc(s.loaded - before[1])
        m.events_duplicate.inc(s.duplicates - before[2])
        for reason, k in reasons.items():
            m.events_quarantined.inc(k, reason)
        if n and elapsed > 0:
            self._rate = 0.8 * self._rate + 0.2 * (n / elapsed)
        done = time.perf_counter()
        for r, rec in zip(group, receipts):
            m.ack_latency.observe(done - r.enqueued)
            r.future.set_result(rec)

    def _stored(self, group: list[_Request]) -> list[str] | None:
        """Every event id of the group already stored, from the requests' own lookups and the ids committed
        since them; None when a request was not looked up or a commit since is not known."""
        found: set[str] = set()
        for r in group:
            since = self._recent.since(r.staged.seen) if r.staged.stored is not None else None
            if since is None:
                return None
            found.update(r.staged.stored or ())
            found.update(i for i in r.staged.ids if i in since)
        return sorted(found)

    def _attribute(self, group: list[_Request], source: str, batch_id: int | None) -> list[dict[str, Any]]:
        """Each request's own counts in a shared commit (stored as `batch_id`, None when it stored nothing):
        quarantine by position, new or duplicate by id."""
        cur = self._cur
        quarantined: dict[int, str] = {}
        new_ids: set[str] = set()
        if batch_id is not None:  # no link: nothing new and nothing newly quarantined, all duplicates
            quarantined = dict(cur.execute("SELECT position, reason FROM quarantine WHERE batch_id = ? AND "
                                           "source = ?", [batch_id, source]).fetchall())
            new_ids = {r[0] for r in cur.execute("SELECT event_id FROM events WHERE batch_id = ?",
                                                 [batch_id]).fetchall()}
        out = []
        for r in group:
            first = r.staged.first_position
            reasons: Counter = Counter()
            loaded = dups = 0
            for pos, eid in enumerate(r.body.ids or [], first):
                reason = quarantined.get(pos)
                if reason is not None:
                    reasons[reason] += 1
                elif eid in new_ids:
                    new_ids.discard(eid)  # the first of repeated ids in the commit is the one stored
                    loaded += 1
                else:
                    dups += 1
            out.append(_receipt(loaded + dups + sum(reasons.values()), loaded, dups, dict(reasons), source, first))
        return out
