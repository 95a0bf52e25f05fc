"""Kill the server with SIGKILL during sustained posting: every acknowledged event is in the store afterwards."""
from __future__ import annotations

import threading
import time

import httpx
import orjson
from server_helpers import ServerProcess, event, make_store

from breachwatch.store.chain import verify
from breachwatch.store.db import connect


def test_every_acknowledged_event_survives_sigkill(tmp_path):
    db, keys = make_store(tmp_path)
    server = ServerProcess(db, "--detect-interval", "0")
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def poster(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10,
                          headers={"Authorization": f"Bearer {keys['ingest']}"}) as c:
            n = 0
            while not stop.is_set():
                ids = [event(n + i, f"w{worker}-") for i in range(50)]
                n += 50
                try:
                    r = c.post("/v1/events", content=b"".join(orjson.dumps(e) + b"\n" for e in ids))
                except httpx.TransportError:
                    return  # the server is gone: this batch was never acknowledged
                if r.status_code == 202:
                    with lock:
                        acked.extend(e["event_id"] for e in ids)

    threads = [threading.Thread(target=poster, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(acked) < 2000:
        time.sleep(0.05)
    server.kill()
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 500, "too few batches were acknowledged before the kill to test anything"
    con = connect(db)  # a writer: it also reconciles the anchor after the crash
    stored = {r[0] for r in con.execute("SELECT event_id FROM events").fetchall()}
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged events are not in the store, e.g. {sorted(missing)[:3]}"
    report = verify(con, db)
    assert report.ok, report.message
    con.close()
