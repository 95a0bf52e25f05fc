"""Senders, one per channel: generic JSON webhook, Slack-compatible webhook, SMTP e-mail, syslog.

Each takes the message and its target and raises on failure; retries and
backoff are the outbox's job.
"""
from __future__ import annotations

import os
import smtplib
import socket
import urllib.request
from datetime import datetime, timezone
from email.message import EmailMessage
from typing import Any

import orjson

from breachwatch.incidents.notify.payload import text

_SEVERITY_TO_SYSLOG = {"low": 6, "medium": 5, "high": 4, "critical": 2}


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    hdrs = {"Content-Type": "application/json", "User-Agent": "breachwatch"}
    for k, v in headers.items():
        # "X-Env" headers take their value from the environment, so secrets stay out of the catalog.
        if k.endswith("-Env"):
            hdrs[k[:-4]] = os.environ.get(v, "")
        else:
            hdrs[k] = v
    req = urllib.request.Request(url, data=body, headers=hdrs, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the URL is the user's own target
        if resp.status >= 300:
            raise RuntimeError(f"HTTP {resp.status}")


def webhook(p: dict[str, Any], t: dict[str, Any]) -> None:
    _post(t["url"], orjson.dumps(p), t.get("headers", {}), t["timeout"])


def slack(p: dict[str, Any], t: dict[str, Any]) -> None:
    _post(t["url"], orjson.dumps({"text": text(p)}), t.get("headers", {}), t["timeout"])


def email(p: dict[str, Any], t: dict[str, Any]) -> None:
    msg = EmailMessage()
    msg["Subject"] = f"[breachwatch] {p['severity']} incident {p['id']} ({p['trigger']})"
    msg["From"] = t["sender"]
    msg["To"] = ", ".join(t["to"])
    msg.set_content(text(p) + "\n\n" + orjson.dumps(p, option=orjson.OPT_INDENT_2).decode())
    with smtplib.SMTP(t["host"], t["port"], timeout=t["timeout"]) as s:
        if t.get("starttls"):
            s.starttls()
        if t.get("username"):
            s.login(t["username"], os.environ.get(t.get("password_env") or "", ""))
        s.send_message(msg)


def syslog(p: dict[str, Any], t: dict[str, Any]) -> None:
    pri = t["facility"] * 8 + _SEVERITY_TO_SYSLOG.get(p["severity"], 5)
    stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    line = f"<{pri}>1 {stamp} {socket.gethostname()} breachwatch - incident - {text(p)}".encode()
    if t["protocol"] == "unix":
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.settimeout(t["timeout"])
            s.connect(t["address"])
            s.send(line)
        return
    host, _, port = t["address"].rpartition(":")
    if t["protocol"] == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(line, (host, int(port)))
    else:
        with socket.create_connection((host, int(port)), timeout=t["timeout"]) as s:
            s.sendall(f"{len(line)} ".encode() + line)  # RFC 6587 octet counting


SENDERS = {"webhooks": webhook, "slack": slack, "email": email, "syslog": syslog}
