"""Prometheus metrics in the text exposition format, without a client library.

Counters and histograms only; label sets are small and fixed (status codes,
reasons), so nothing here grows with the data.
"""
from __future__ import annotations

import bisect
import threading
from typing import Callable


class Counter:
    def __init__(self, name: str, help_text: str, label: str | None = None) -> None:
        self.name, self.help, self.label = name, help_text, label
        self.values: dict[str, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, label: str = "") -> None:
        with self._lock:
            self.values[label] = self.values.get(label, 0.0) + amount

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        if not self.values and self.label is None:
            out.append(f"{self.name} 0")
        for lab, v in sorted(self.values.items()):
            sel = f'{{{self.label}="{lab}"}}' if self.label else ""
            out.append(f"{self.name}{sel} {v:g}")
        return out


class Histogram:
    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.counts = [0] * (len(self.BUCKETS) + 1)
        self.total = 0.0
        self.n = 0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self.counts[bisect.bisect_left(self.BUCKETS, seconds)] += 1
            self.total += seconds
            self.n += 1

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        running = 0
        for b, c in zip(self.BUCKETS, self.counts):
            running += c
            out.append(f'{self.name}_bucket{{le="{b:g}"}} {running}')
        out.append(f'{self.name}_bucket{{le="+Inf"}} {self.n}')
        out += [f"{self.name}_sum {self.total:.6f}", f"{self.name}_count {self.n}"]
        return out


class Gauge:
    def __init__(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.name, self.help, self.read = name, help_text, read

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge", f"{self.name} {self.read():g}"]


class Metrics:
    def __init__(self) -> None:
        self.requests = Counter("breachwatch_http_requests_total", "HTTP requests answered, by status code.",
                                "code")
        self.events_loaded = Counter("breachwatch_ingest_events_loaded_total", "Events newly stored.")
        self.events_duplicate = Counter("breachwatch_ingest_events_duplicate_total",
                                        "Events already in the store.")
        self.events_quarantined = Counter("breachwatch_ingest_events_quarantined_total",
                                          "Records quarantined, by reason.", "reason")
        self.commits = Counter("breachwatch_ingest_commits_total", "Atomic ingest commits.")
        self.rejected = Counter("breachwatch_ingest_requests_refused_total",
                                "Ingest requests refused before storing, by reason.", "reason")
        # ack = queue wait + the store's commit + the writer's own bookkeeping; kept apart so a slow
        # acknowledgement can be told to be the commit path's or the server's.
        self.ack_latency = Histogram("breachwatch_ingest_ack_seconds",
                                     "From the request's parsed body entering the queue to its answer.")
        self.ingest_request_latency = Histogram("breachwatch_ingest_request_seconds",
                                                "From an ingest request's arrival to its 202 answer.")
        self.queue_wait = Histogram("breachwatch_ingest_queue_wait_seconds",
                                    "From a request entering the queue to the start of the commit holding it.")
        self.validate_latency = Histogram("breachwatch_ingest_validate_seconds",
                                          "Validation of one HTTP request's records, in its own thread.")
        self.commit_latency = Histogram("breachwatch_ingest_commit_seconds",
                                        "Time of one ingest commit in the store (dedup, chain, anchor; for "
                                        "watched files also validation), without the server's bookkeeping.")
        self.detect_runs = Counter("breachwatch_detect_runs_total", "Detection runs, by outcome.", "outcome")
        self.detect_seconds = Histogram("breachwatch_detect_run_seconds", "Time of one detection run.")
        self.watched_files = Counter("breachwatch_watched_files_ingested_total", "Files taken from watched folders.")
        self.logins = Counter("breachwatch_logins_total", "Dashboard logins, by outcome.", "outcome")
        self.gauges: list[Gauge] = []

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges.append(Gauge(name, help_text, read))

    def render(self) -> str:
        lines: list[str] = []
        for m in (self.requests, self.events_loaded, self.events_duplicate, self.events_quarantined, self.commits,
                  self.rejected, self.ingest_request_latency, self.ack_latency, self.queue_wait,
                  self.validate_latency, self.commit_latency,
                  self.detect_runs, self.detect_seconds, self.watched_files, self.logins, *self.gauges):
            lines += m.render()
        return "\n".join(lines) + "\n"
