"""Notification settings: the catalog's `notify:` section, validated with errors that name the key.

    notify:
      link: https://breachwatch.example.com/incidents/{id}
      min_severity: medium            # incidents below this are not sent
      include_personal_data: false    # true adds the summary and evidence (IPs, ids) to messages
      webhooks: [{url: https://siem.example.com/hook, timeout: 5s, max_attempts: 6, backoff: 2s,
                  headers: {Authorization-Env: SIEM_TOKEN}}]
      slack: [{url: https://hooks.slack.com/services/...}]
      email: [{host: smtp.example.com, port: 587, starttls: true, from: breachwatch@example.com,
               to: [soc@example.com], username: bw, password_env: SMTP_PASSWORD}]
      syslog: [{address: "127.0.0.1:514", protocol: udp, facility: local0}]
"""
from __future__ import annotations

from typing import Any

from breachwatch.detect.config import SEVERITIES, parse_duration

CHANNELS = ("webhooks", "slack", "email", "syslog")
_TOP = ("link", "min_severity", "include_personal_data", *CHANNELS)
_KEYS = {
    "webhooks": {"url", "timeout", "max_attempts", "backoff", "headers"},
    "slack": {"url", "timeout", "max_attempts", "backoff"},
    "email": {"host", "port", "starttls", "from", "to", "username", "password_env", "timeout", "max_attempts",
              "backoff"},
    "syslog": {"address", "protocol", "facility", "timeout", "max_attempts", "backoff"},
}
FACILITIES = {"kern": 0, "user": 1, "daemon": 3, "auth": 4, "syslog": 5, "authpriv": 10,
              **{f"local{i}": 16 + i for i in range(8)}}


class NotifyConfigError(ValueError):
    """A `notify:` setting that cannot be used; the message names the key and the fix."""


def _fail(key: str, problem: str, fix: str) -> NotifyConfigError:
    return NotifyConfigError(f"notify.{key}: {problem}. Fix: {fix}.")


def validate_notify(raw: dict[str, Any] | None) -> dict[str, Any]:
    raw = dict(raw or {})
    for k in raw:
        if k not in _TOP:
            raise _fail(str(k), "unknown setting", f"use one of {', '.join(_TOP)}")
    sev = raw.get("min_severity", "low")
    if sev not in SEVERITIES:
        raise _fail("min_severity", f"'{sev}' is not a severity", f"use one of {', '.join(SEVERITIES)}")
    pd = raw.get("include_personal_data", False)
    if not isinstance(pd, bool):
        raise _fail("include_personal_data", f"{pd!r} is not true or false", "write true or false")
    link = raw.get("link")
    if link is not None and "{id}" not in str(link):
        raise _fail("link", "has no {id} placeholder", "write e.g. https://breachwatch.example.com/incidents/{id}")
    out: dict[str, Any] = {"link": link, "min_severity": sev, "include_personal_data": pd}
    for ch in CHANNELS:
        items = raw.get(ch) or []
        if not isinstance(items, list):
            raise _fail(ch, "must be a list of targets", f"write '{ch}: [{{...}}]'")
        targets = []
        for i, t in enumerate(items):
            key = f"{ch}[{i}]"
            if not isinstance(t, dict):
                raise _fail(key, "must be a mapping", "write e.g. {url: https://...}")
            for k in t:
                if k not in _KEYS[ch]:
                    raise _fail(f"{key}.{k}", "unknown setting", f"use one of {', '.join(sorted(_KEYS[ch]))}")
            targets.append(_target(ch, key, t))
        out[ch] = targets
    return out


def _target(ch: str, key: str, t: dict[str, Any]) -> dict[str, Any]:
    d: dict[str, Any] = {"timeout": parse_duration(t.get("timeout", "5s"), f"notify.{key}.timeout"),
                         "max_attempts": int(t.get("max_attempts", 6)),
                         "backoff": parse_duration(t.get("backoff", "2s"), f"notify.{key}.backoff")}
    if d["max_attempts"] < 1:
        raise _fail(f"{key}.max_attempts", "must be at least 1", "write e.g. 6")
    if ch in ("webhooks", "slack"):
        url = str(t.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise _fail(f"{key}.url", f"'{url}' is not an http(s) URL", "write e.g. https://hooks.example.com/abc")
        d["url"] = url
        d["headers"] = {str(k): str(v) for k, v in (t.get("headers") or {}).items()}
    elif ch == "email":
        for k in ("host", "from", "to"):
            if not t.get(k):
                raise _fail(f"{key}.{k}", "is missing", f"add '{k}:'")
        to = t["to"] if isinstance(t["to"], list) else [t["to"]]
        d.update(host=str(t["host"]), port=int(t.get("port", 25)), starttls=bool(t.get("starttls", False)),
                 sender=str(t["from"]), to=[str(x) for x in to], username=t.get("username"),
                 password_env=t.get("password_env"))
    elif ch == "syslog":
        addr = str(t.get("address") or "")
        proto = t.get("protocol", "udp")
        if proto not in ("udp", "tcp", "unix"):
            raise _fail(f"{key}.protocol", f"'{proto}' is not udp, tcp or unix", "write protocol: udp")
        if proto != "unix" and ":" not in addr:
            raise _fail(f"{key}.address", f"'{addr}' is not host:port", "write e.g. 127.0.0.1:514")
        fac = t.get("facility", "local0")
        if fac not in FACILITIES:
            raise _fail(f"{key}.facility", f"'{fac}' is not a syslog facility", f"use one of {', '.join(FACILITIES)}")
        d.update(address=addr, protocol=proto, facility=FACILITIES[fac])
    return d
