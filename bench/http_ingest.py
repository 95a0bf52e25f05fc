"""HTTP ingest against file ingest of the same events: sustained rate and acknowledgement latency.

A local load generator (loopback only, bounded in events and seconds) posts
NDJSON batches of 1, 100 and 10,000 events from several concurrent clients to
a fresh `breachwatch serve` (detection off, so only ingest is measured), and
file ingest loads the same events into another fresh store. Prints one JSON
document: per batch size the events/s, the ratio to file ingest, and p50/p99
of the time from sending a request to its 202 (its batch durably committed).

    .venv/bin/python bench/http_ingest.py [--events 200000] [--clients 4] [--seconds 60]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "server"))
from server_helpers import ServerProcess, event, make_store  # noqa: E402

from breachwatch.ingest.pipeline import ingest_paths  # noqa: E402
from breachwatch.store.db import connect  # noqa: E402


def _lines(n: int, prefix: str) -> list[bytes]:
    return [orjson.dumps(event(i, prefix)) + b"\n" for i in range(n)]


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


def http_run(url: str, key: str, lines: list[bytes], batch: int, clients: int, seconds: float) -> dict:
    batches = [b"".join(lines[i:i + batch]) for i in range(0, len(lines), batch)]
    latencies: list[float] = []
    sent = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    nxt = [0]

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {key}",
                                                              "Content-Type": "application/x-ndjson"}) as c:
            while time.monotonic() < deadline:
                with lock:
                    if nxt[0] >= len(batches):
                        return
                    body = batches[nxt[0]]
                    nxt[0] += 1
                t = time.perf_counter()
                r = c.post("/v1/events", content=body)
                dt = time.perf_counter() - t
                if r.status_code == 429:
                    time.sleep(float(r.headers.get("retry-after", "1")))
                    continue
                r.raise_for_status()
                with lock:
                    latencies.append(dt)
                    sent[0] += r.json()["records"]

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def q(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else 0.0
    return {"batch": batch, "events": sent[0], "requests": len(latencies), "seconds": round(elapsed, 2),
            "events_per_s": round(sent[0] / elapsed), "p50_ms": q(0.50), "p99_ms": q(0.99)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="events per run at batch 10,000 (fewer at 1, 100)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60.0, help="time bound of each run")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bw-bench-http-"))
    base = file_rate(_lines(a.events, "f"), tmp)
    db, keys = make_store(tmp)
    server = ServerProcess(db, "--detect-interval", "0")
    rows = []
    try:
        for batch, n in ((1, min(a.events, 3_000)), (100, min(a.events, 50_000)), (10_000, a.events)):
            r = http_run(server.url, keys["ingest"], _lines(n, f"h{batch}-"), batch, a.clients, a.seconds)
            r["ratio_to_file_ingest"] = round(r["events_per_s"] / base, 3)
            rows.append(r)
    finally:
        server.stop()
    print(orjson.dumps({"file_ingest_events_per_s": round(base), "clients": a.clients, "http": rows,
                        "goals": {"batch_10000_ratio_at_least": 0.5, "batch_100_p99_ms_below": 50}},
                       option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
