"""The one writer of events: HTTP batches and watched files, through one `Ingestor`.

Requests wait in a bounded queue. The writer thread takes everything that has
arrived while the previous commit ran and commits it as one atomic batch
(group commit), so many small requests cost one commit; each request's future
is answered only after that commit, and with that request's own counts. When
the queue is full a request is refused at once (429 with Retry-After), never
taken and dropped. A failed commit stores nothing and fails every request in it.
"""
from __future__ import annotations

import math
import threading
import time
import uuid
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from breachwatch.contract.catalog import Catalog
from breachwatch.ingest.pipeline import Ingestor, IngestSummary
from breachwatch.server.bodies import ParsedBody, shift
from breachwatch.server.metrics import Metrics
from breachwatch.server.store import ServerStore

FEED_BATCH = 200_000  # watched files commit in batches of this many records, as file ingest does


class Overloaded(RuntimeError):
    def __init__(self, retry_after: int, pending: int) -> None:
        super().__init__(f"the ingest queue holds {pending} records; retry in {retry_after} s")
        self.retry_after = retry_after


class WriterStopped(RuntimeError):
    """The server is shutting down; the request was not stored."""


@dataclass
class _Request:
    body: ParsedBody
    label: str
    future: Future
    enqueued: float
    coalescible: bool = field(init=False)

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

    def _new_ingestor(self) -> Ingestor:
        return Ingestor(self._cur, self.store.path, catalog=self.catalog, anchor_path=self.anchor_path,
                        batch_size=1 << 62)

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

    def submit(self, body: ParsedBody, label: str) -> Future:
        """Queue one request's records; the future gives its receipt once they are committed."""
        fut: Future = Future()
        with self._cv:
            if self._stop:
                raise WriterStopped("the server is shutting down. Fix: retry against the next server.")
            if self._pending and self._pending + body.records > self.max_pending:
                wait = max(1, math.ceil(self._pending / max(self._rate, 1.0)))
                raise Overloaded(wait, self._pending)
            self._queue.append(_Request(body, label, fut, time.perf_counter()))
            self._pending += body.records
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

    def _commit(self, group: list[_Request]) -> None:
        started = time.perf_counter()
        commit_id = uuid.uuid4().hex[:12]
        source = f"http:{group[0].label}:{commit_id}" if len(group) == 1 else f"http:{commit_id}"
        offsets, chunks, off = [], [], 0
        for r in group:
            offsets.append(off)
            chunks += [shift(c, off) for c in r.body.chunks]
            off += r.body.records
        s = self._ing.summary
        before = (s.records, s.loaded, s.duplicates, Counter(s.quarantined))
        m = self.metrics
        for r in group:
            m.queue_wait.observe(started - r.enqueued)
        # The chain's length before this commit, so attribution finds this commit's link by the
        # ever-growing seq (pruned by min/max) rather than by scanning every link's source text.
        prev_seq = self._cur.execute("SELECT coalesce(max(seq), 0) FROM batches").fetchone()[0] \
            if len(group) > 1 else 0
        try:
            if off:
                self._ing.feed(source, "http", chunks)
            m.commit_latency.observe(time.perf_counter() - started)
        except BaseException as e:  # noqa: BLE001 - every request in the group learns it was not stored
            self.last_error = f"{type(e).__name__}: {e}"
            self._ing = self._new_ingestor()  # its buffers may hold the failed batch
            for r in group:
                r.future.set_exception(e)
            return
        s = self._ing.summary
        reasons = s.quarantined - before[3]
        if len(group) == 1:
            receipts = [_receipt(s.records - before[0], s.loaded - before[1], s.duplicates - before[2],
                                 dict(reasons), source, 1)]
        else:
            receipts = self._attribute(group, offsets, source, prev_seq)
        elapsed = time.perf_counter() - started
        self.commits += 1
        m.commits.inc()
        m.events_loaded.inc(s.loaded - before[1])
        m.events_duplicate.inc(s.duplicates - before[2])
        for reason, k in reasons.items():
            m.events_quarantined.inc(k, reason)
        if off and elapsed > 0:
            self._rate = 0.8 * self._rate + 0.2 * (off / elapsed)
        done = time.perf_counter()
        for r, rec in zip(group, receipts):
            m.ack_latency.observe(done - r.enqueued)
            r.future.set_result(rec)

    def _attribute(self, group: list[_Request], offsets: list[int], source: str,
                   prev_seq: int) -> list[dict[str, Any]]:
        """Each request's own counts in a shared commit: quarantine by position, new or duplicate by id."""
        cur = self._cur
        row = cur.execute("SELECT batch_id FROM batches WHERE seq > ? AND source = ?", [prev_seq, source]).fetchone()
        quarantined: dict[int, str] = {}
        new_ids: set[str] = set()
        if row is not None:  # no link: nothing new and nothing newly quarantined, all duplicates
            quarantined = dict(cur.execute("SELECT position, reason FROM quarantine WHERE batch_id = ? AND "
                                           "source = ?", [row[0], source]).fetchall())
            new_ids = {r[0] for r in cur.execute("SELECT event_id FROM events WHERE batch_id = ?",
                                                 [row[0]]).fetchall()}
        out = []
        for r, off in zip(group, offsets):
            reasons: Counter = Counter()
            loaded = dups = 0
            for i, eid in enumerate(r.body.ids or [], 1):
                reason = quarantined.get(off + i)
                if reason is not None:
                    reasons[reason] += 1
                elif eid in new_ids:
                    new_ids.discard(eid)  # the first of repeated ids in the commit is the one stored
                    loaded += 1
                else:
                    dups += 1
            out.append(_receipt(loaded + dups + sum(reasons.values()), loaded, dups, dict(reasons), source, off + 1))
        return out
