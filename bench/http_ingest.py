"""HTTP ingest against file ingest of the same events: sustained rate and acknowledgement latency.

A local load generator (loopback only, bounded in events and seconds) posts
NDJSON batches of 1, 100 and 10,000 events from several concurrent clients to
a fresh `breachwatch serve` (detection off, so only ingest is measured), and
file ingest loads the same events into another fresh store. A last run posts
batches of 100 to a server with continuous detection on, to show what the
detection passes in the same process cost the acknowledgements. Prints one
JSON document: per run the events/s, the ratio to file ingest, p50/p99 of the
time from sending a request to its 202 (its batch durably committed), and
where the mean time went, from the server's own metrics: validation in the
request's thread (`validate_ms`), waiting for the commit before
(`queue_wait_ms`), the store's commit (`commit_ms`: dedup, chain, anchor), the
server's own part (`server_ms`: HTTP, authentication, body parsing, and the
writer's bookkeeping, `of_which_writer_ms`), and the load
generator's side (`client_and_loopback_ms`: the Python client on the same
machine and the loopback transfer).

    .venv/bin/python bench/http_ingest.py [--events 200000] [--clients 4] [--seconds 60]
        [--batches 1,100,10000,detect] [--rates 20,40,60]

With --rates, batches of 100 are also sent open loop at each of those request
rates: latency at a given load, rather than at saturation (closed loop with
several clients measures mostly the queue behind their own requests).
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "server"))
from server_helpers import ServerProcess, event, make_store  # noqa: E402

from breachwatch.ingest.pipeline import ingest_paths  # noqa: E402
from breachwatch.store.db import connect  # noqa: E402


def _lines(n: int, prefix: str) -> list[bytes]:
    # Random-looking ids, as gateways send (UUIDs, hashes): sequential ones would let DuckDB's min/max
    # pruning skip most of the store in the dedup join, and hide what dedup costs in a grown store.
    return [orjson.dumps({**event(i, prefix), "event_id": hashlib.blake2b(f"{prefix}{i}".encode(),
                                                                         digest_size=16).hexdigest()}) + b"\n"
            for i in range(n)]


def file_rate(lines: list[bytes], tmp: Path) -> float:
    f = tmp / "events.ndjson"
    f.write_bytes(b"".join(lines))
    con = connect(tmp / "file.duckdb")
    started = time.perf_counter()
    summary = ingest_paths(con, str(tmp / "file.duckdb"), [str(f)])
    seconds = time.perf_counter() - started
    con.close()
    assert summary.loaded == len(lines)
    return len(lines) / seconds


class _Tally:
    """Answers of one run, from any number of client threads: latencies of 202s, records sent, errors."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.sent = 0
        self.lock = threading.Lock()
        self._local = threading.local()
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}

    def send(self, body: bytes, since: float | None = None, counted: bool = True) -> None:
        """Post one batch until it is taken (a 429 is waited out and retried)."""
        while not self.post(body, since, counted):
            pass

    def post(self, body: bytes, since: float | None = None, counted: bool = True) -> bool:
        """Post one batch; False if it was refused with 429 (to be retried). Its latency counts from
        `since` (an open-loop run's scheduled time), else from the moment it is sent; a warm-up batch
        (`counted` False) is stored but not counted."""
        c = getattr(self._local, "client", None)
        if c is None:  # http.client, not httpx: a third of the CPU per request, on the cores the server uses
            url = urllib.parse.urlsplit(self.url)
            c = self._local.client = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        t = time.perf_counter() if since is None else since
        c.request("POST", "/v1/events", body=body, headers=self._headers)
        r = c.getresponse()
        text = r.read()
        dt = time.perf_counter() - t
        if r.status == 429:
            time.sleep(float(r.getheader("retry-after", "1")))
            return False
        with self.lock:
            if r.status != 202:  # counted and shown, never silently dropped with its thread
                self.errors.append(f"{r.status} {text[:300]!r}")
            elif counted:
                self.latencies.append(dt)
                self.sent += orjson.loads(text)["records"]
        return True

    def row(self, batch: int, elapsed: float) -> dict:
        lat = sorted(self.latencies)

        def q(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else 0.0
        mean = round(sum(lat) / len(lat) * 1000, 1) if lat else 0.0
        return {"batch": batch, "events": self.sent, "requests": len(lat), "errors": len(self.errors),
                **({"first_error": self.errors[0]} if self.errors else {}), "seconds": round(elapsed, 2),
                "events_per_s": round(self.sent / elapsed), "p50_ms": q(0.50), "p99_ms": q(0.99), "mean_ms": mean}


def _batches(lines: list[bytes], batch: int) -> list[bytes]:
    return [b"".join(lines[i:i + batch]) for i in range(0, len(lines), batch)]


# Each client thread's first request opens its connection (and, in the server, a worker thread's first
# request opens its DuckDB cursor): the warm-up sends those, stored but not timed, as a client that keeps
# its connection open (a gateway, a log shipper) pays them once.
WARMUP_PER_CLIENT = 1


def http_run(url: str, key: str, lines: list[bytes], batch: int, clients: int, seconds: float,
             warm: Callable[[], None] = lambda: None) -> dict:
    """Closed loop: `clients` threads each post their next batch as soon as the last one is answered, so
    the server is saturated and the latency is mostly queueing behind the others' requests. `warm` is
    called once every thread's warm-up is answered, before the timed part."""
    batches = _batches(lines, batch)
    tally = _Tally(url, key)
    warmup = batches[:clients * WARMUP_PER_CLIENT]
    batches = batches[len(warmup):]
    warmed = threading.Barrier(clients, action=warm)
    deadline = [0.0]
    nxt = [0]

    def worker(k: int) -> None:
        for body in warmup[k::clients]:
            tally.send(body, counted=False)
        if warmed.wait() == 0:  # one thread sets the time bound, once all are warm
            deadline[0] = time.monotonic() + seconds
        warmed.wait()
        while time.monotonic() < deadline[0]:
            with tally.lock:
                if nxt[0] >= len(batches):
                    return
                body = batches[nxt[0]]
                nxt[0] += 1
            tally.send(body)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally.row(batch, time.monotonic() - (deadline[0] - seconds))


def open_loop_run(url: str, key: str, lines: list[bytes], batch: int, rate: float, seconds: float,
                  warm: Callable[[], None] = lambda: None) -> dict:
    """Open loop: batches are sent at a fixed `rate` per second whatever the answers, as independent
    producers send them, and each latency counts from its scheduled time, so a slow answer that delays
    the next send is counted, not hidden."""
    batches = _batches(lines, batch)[:max(1, int(rate * seconds))]
    tally = _Tally(url, key)
    workers = 32
    with ThreadPoolExecutor(max_workers=workers) as pool:
        warmup = batches[:workers * WARMUP_PER_CLIENT]
        list(pool.map(lambda b: tally.send(b, counted=False), warmup))  # the pool's threads open connections
        batches = batches[len(warmup):]
        warm()
        started = time.perf_counter()
        for i, body in enumerate(batches):
            due = started + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            pool.submit(tally.send, body, due)
    row = tally.row(batch, time.perf_counter() - started)
    row["offered_requests_per_s"] = rate
    return row


def _scrape(url: str, key: str) -> dict[str, float]:
    """The server's histogram sums and counts, to split the time between snapshots."""
    text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=30).text
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.endswith(("_sum", "_count")) or name == "breachwatch_ingest_commits_total":
            out[name] = float(value)
    return out


def _split(before: dict[str, float], after: dict[str, float], row: dict) -> dict:
    """Mean milliseconds per request: queue wait and store commit (the commit path), and the server's rest."""
    def mean(h: str) -> float:
        n = after[f"{h}_count"] - before.get(f"{h}_count", 0.0)
        return (after[f"{h}_sum"] - before.get(f"{h}_sum", 0.0)) / n * 1000 if n else 0.0
    commits = after["breachwatch_ingest_commits_total"] - before.get("breachwatch_ingest_commits_total", 0.0)
    wait, commit = mean("breachwatch_ingest_queue_wait_seconds"), mean("breachwatch_ingest_commit_seconds")
    served, acked = mean("breachwatch_ingest_request_seconds"), mean("breachwatch_ingest_ack_seconds")
    validate = mean("breachwatch_ingest_validate_seconds")
    return {"commits": int(commits), "requests_per_commit": round(row["requests"] / commits, 2) if commits else None,
            "mean_ms": row["mean_ms"], "validate_ms": round(validate, 1), "queue_wait_ms": round(wait, 1),
            "commit_ms": round(commit, 1), "server_ms": round(served - validate - wait - commit, 1),
            "of_which_writer_ms": round(acked - wait - commit, 1),
            "client_and_loopback_ms": round(row["mean_ms"] - served, 1),
            "detect_runs": int(after.get("breachwatch_detect_run_seconds_count", 0)
                               - before.get("breachwatch_detect_run_seconds_count", 0)),
            "detect_mean_ms": round(mean("breachwatch_detect_run_seconds"), 1)}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(server: ServerProcess, key: str, lines: list[bytes], batch: int, clients: int, seconds: float,
             base: float, rate: float | None = None) -> dict:
    """One run (closed loop with `clients`, or open loop at `rate` requests/s) with the server's split,
    from the server's metrics and CPU time after the warm-up."""
    start: dict = {}

    def warm() -> None:
        start.update(metrics=_scrape(server.url, key), cpu=_cpu_seconds(server.proc.pid))
    r = (open_loop_run(server.url, key, lines, batch, rate, seconds, warm) if rate else
         http_run(server.url, key, lines, batch, clients, seconds, warm))
    # The server's CPU per request: with the load generator on the same two cores, latency under
    # several clients is mostly queueing for CPU, so this is what bounds it.
    cpu = _cpu_seconds(server.proc.pid) - start["cpu"]
    r["server_cpu_ms_per_request"] = round(cpu / max(r["requests"], 1) * 1000, 1)
    r["ratio_to_file_ingest"] = round(r["events_per_s"] / base, 3)
    r["split"] = _split(start["metrics"], _scrape(server.url, key), r)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="events per run at batch 10,000 (fewer at 1, 100)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0, help="time bound of each run")
    ap.add_argument("--detect-interval", type=float, default=5.0, help="detection interval of the last run")
    ap.add_argument("--detect-events", type=int, default=50_000, help="events posted in the last run")
    ap.add_argument("--rates", default="", help="comma-separated request rates (per second) at which batches of "
                    "100 are also sent open loop, e.g. 20,40,60")
    ap.add_argument("--batches", default="1,100,10000,detect",
                    help="comma-separated batch sizes to run (of 1, 100, 10000); 'detect' adds the last run")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bw-bench-http-"))
    try:
        rows, base = _runs(a, tmp)
    finally:
        for log in tmp.rglob("*.log"):  # the servers' logs outlive the run when a request failed
            if "Traceback" in log.read_text(errors="replace"):
                kept = Path(tempfile.gettempdir()) / f"bw-bench-http-{log.parent.name}-{int(time.time())}.log"
                shutil.copy(log, kept)
                print(f"server errors logged: {kept}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    print(orjson.dumps({"file_ingest_events_per_s": round(base), "clients": a.clients, "http": rows,
                        "goals": {"batch_10000_ratio_at_least": 0.5, "batch_100_p99_ms_below": 50}},
                       option=orjson.OPT_INDENT_2).decode())


def _runs(a: argparse.Namespace, tmp: Path) -> tuple[list[dict], float]:
    base = file_rate(_lines(a.events, "f"), tmp)
    db, keys = make_store(tmp)
    server = ServerProcess(db, "--detect-interval", "0")
    rows = []
    wanted = set(a.batches.split(","))
    try:
        for batch, n in ((1, min(a.events, 3_000)), (100, min(a.events, 50_000)), (10_000, a.events)):
            if str(batch) not in wanted:
                continue
            rows.append(measured(server, keys["ingest"], _lines(n, f"h{batch}-"), batch, a.clients, a.seconds, base))
        for rate in [float(x) for x in a.rates.split(",") if x]:
            n = min(a.events, int(rate * a.seconds) * 100)
            rows.append(measured(server, keys["ingest"], _lines(n, f"o{rate:g}-"), 100, a.clients, a.seconds, base,
                                 rate))
    finally:
        server.stop()
    if "detect" not in wanted:
        return rows, base
    (tmp / "detect").mkdir()
    db, keys = make_store(tmp / "detect")
    server = ServerProcess(db, "--detect-interval", str(a.detect_interval))
    try:
        r = measured(server, keys["ingest"], _lines(a.detect_events, "d100-"), 100, a.clients, a.seconds, base)
        r["detect_interval_s"] = a.detect_interval
        rows.append(r)
    finally:
        server.stop()
    return rows, base


if __name__ == "__main__":
    main()
