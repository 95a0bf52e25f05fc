"""Notifications to real local receivers started here: JSON webhook, Slack-compatible webhook, SMTP, syslog."""
from __future__ import annotations

import json
import socket
import socketserver
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from breachwatch.contract.catalog import parse_catalog
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.engine import run_detect
from breachwatch.incidents.notify import Deliverer, deliver, validate_notify
from breachwatch.incidents.notify.config import NotifyConfigError
from breachwatch.ingest.pipeline import ingest_records

T0 = datetime(2025, 5, 1, 9, 0, 0)


class _Hooks(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        if cls.fail_first > 0:
            cls.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        cls.received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_receiver():
    handler = type("Hooks", (_Hooks,), {"received": [], "fail_first": 0})
    server = HTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _SMTP(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept one message."""
    messages: list = []

    def handle(self):
        w = self.wfile.write
        w(b"220 test ESMTP\r\n")
        data, in_data = [], False
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            if in_data:
                if line == ".":
                    type(self).messages.append("\n".join(data))
                    in_data = False
                    w(b"250 queued\r\n")
                else:
                    data.append(line)
                continue
            cmd = line[:4].upper()
            if cmd in ("EHLO", "HELO"):
                w(b"250 test\r\n")
            elif cmd == "DATA":
                in_data = True
                w(b"354 go on\r\n")
            elif cmd == "QUIT":
                w(b"221 bye\r\n")
                return
            else:
                w(b"250 ok\r\n")


@pytest.fixture
def smtp_receiver():
    handler = type("SMTP", (_SMTP,), {"messages": []})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, server.server_address[1]
    server.shutdown()


@pytest.fixture
def syslog_receiver():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    yield s
    s.close()


def _incident(con, path):
    cfg = load_detect_config(parse_catalog('canaries: ["honey-9"]', "<t>"))
    ingest_records(con, [{"event_id": "x1", "time": T0.isoformat() + "Z", "kind": "access", "principal_id": "u-77",
                          "principal_type": "customer", "src_ip": "198.51.100.23", "src_country": "KR",
                          "endpoint": "GET /api/members/{memberId}/profile", "subject_ids": ["honey-9"],
                          "fields": ["name", "email"], "status": 200}], "test", db_path=path)
    return cfg


def test_all_channels_receive_counts_and_a_link_but_no_personal_data(store, http_receiver, smtp_receiver,
                                                                   syslog_receiver):
    con, path = store
    hooks, base = http_receiver
    mails, smtp_port = smtp_receiver
    notify = validate_notify({
        "link": "https://bw.example/incidents/{id}",
        "webhooks": [{"url": f"{base}/siem"}], "slack": [{"url": f"{base}/slack"}],
        "email": [{"host": "127.0.0.1", "port": smtp_port, "from": "bw@example.test", "to": ["soc@example.test"]}],
        "syslog": [{"address": f"127.0.0.1:{syslog_receiver.getsockname()[1]}", "protocol": "udp"}]})
    res = run_detect(con, _incident(con, path), notify=notify)
    assert len(res.incidents_opened) == 1
    assert deliver(con, notify) == {"sent": 4, "retry": 0, "failed": 0}
    by_path = {p: body for p, _, body in hooks.received}
    hook = by_path["/siem"]
    assert hook["trigger"] == "new" and hook["severity"] == "critical" and hook["counts"]["people"] == 1
    assert hook["link"] == f"https://bw.example/incidents/{res.incidents_opened[0]}"
    assert "ips" in hook["entity_types"] and "summary" not in hook
    assert "text" in by_path["/slack"] and res.incidents_opened[0] in by_path["/slack"]["text"]
    line = syslog_receiver.recv(4096).decode()
    assert line.startswith("<") and "breachwatch" in line
    assert len(mails.messages) == 1 and "Subject: [breachwatch] critical incident" in mails.messages[0]
    # Personal data (the reader's IP, the account ids) is in none of them.
    everything = json.dumps([h[2] for h in hooks.received]) + line + mails.messages[0]
    assert "198.51.100.23" not in everything and "u-77" not in everything and "honey-9" not in everything
    assert deliver(con, notify) == {"sent": 0, "retry": 0, "failed": 0}


def test_failures_retry_with_backoff_and_give_up(store, http_receiver):
    con, path = store
    hooks, base = http_receiver
    hooks.fail_first = 1
    notify = validate_notify({"webhooks": [{"url": f"{base}/flaky", "backoff": "1s", "max_attempts": 3},
                                           {"url": "http://127.0.0.1:9/nothing-listens", "backoff": "1s",
                                            "max_attempts": 2, "timeout": "1s"}]})
    run_detect(con, _incident(con, path), notify=notify)
    assert deliver(con, notify) == {"sent": 0, "retry": 2, "failed": 0}
    # Not due yet: backoff holds both back.
    assert deliver(con, notify) == {"sent": 0, "retry": 0, "failed": 0}
    later = datetime.utcnow() + timedelta(seconds=5)
    assert deliver(con, notify, now=later) == {"sent": 1, "retry": 0, "failed": 1}
    rows = con.execute("SELECT status, attempts, last_error IS NOT NULL FROM notify_outbox ORDER BY channel").fetchall()
    assert rows == [("sent", 2, True), ("failed", 2, True)]


def test_personal_data_only_when_configured(store, http_receiver):
    con, path = store
    hooks, base = http_receiver
    notify = validate_notify({"include_personal_data": True, "webhooks": [{"url": f"{base}/x"}]})
    run_detect(con, _incident(con, path), notify=notify)
    deliver(con, notify)
    body = hooks.received[0][2]
    assert "canary" in body["summary"] and body["entities"]["ips"] == ["198.51.100.23"]


def test_background_deliverer_sends_without_blocking(store, http_receiver):
    con, path = store
    hooks, base = http_receiver
    notify = validate_notify({"webhooks": [{"url": f"{base}/bg"}]})
    d = Deliverer(con, notify, interval=0.05).start()
    try:
        run_detect(con, _incident(con, path), notify=notify)
        for _ in range(100):
            if hooks.received:
                break
            threading.Event().wait(0.05)
    finally:
        d.stop()
    assert hooks.received and hooks.received[0][0] == "/bg"


@pytest.mark.parametrize("raw, key", [
    ({"webhook": []}, "notify.webhook"),
    ({"webhooks": [{"url": "ftp://x"}]}, "notify.webhooks[0].url"),
    ({"email": [{"host": "h", "to": ["a@b"]}]}, "notify.email[0].from"),
    ({"syslog": [{"address": "nohostport"}]}, "notify.syslog[0].address"),
    ({"min_severity": "urgent"}, "notify.min_severity"),
    ({"link": "https://x/incidents"}, "notify.link"),
])
def test_bad_settings_name_the_key(raw, key):
    with pytest.raises(NotifyConfigError) as e:
        validate_notify(raw)
    assert key in str(e.value) and "Fix:" in str(e.value)
