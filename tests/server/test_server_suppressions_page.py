"""The dashboard shows every suppression, who set it and why, and lifts one with a reason."""
from __future__ import annotations

import re

from fastapi.testclient import TestClient
from server_helpers import PASSWORD, make_store
from test_server_cli_changes import _canary_incident

from breachwatch.server.app import create_app
from breachwatch.server.config import ServerConfig


def _login(c: TestClient, user: str) -> str:
    form = c.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    c.post("/login", data={"username": user, "password": PASSWORD, "csrf": csrf, "next": "/"})
    return re.search(r'name="csrf" value="([^"]+)"', c.get("/incidents").text).group(1)


def test_a_suppression_is_shown_and_lifted_in_the_dashboard(tmp_path):
    db, keys = make_store(tmp_path)
    inc = _canary_incident(db)
    with TestClient(create_app(ServerConfig(db=db, detect_interval_s=0))) as c:
        r = c.post(f"/v1/incidents/{inc}/false-positive", json={"scope": "pattern", "expires": "7d",
                                                                 "reason": "QA account"},
                   headers={"Authorization": f"Bearer {keys['analyst']}"})
        assert r.status_code == 200, r.text
        csrf = _login(c, "analyst-user")
        page = c.get("/suppressions")
        sup = re.search(r'id="sup-([^"]+)"', page.text).group(1)
        assert "QA account" in page.text and inc in page.text and "/lift" in page.text
        refused = c.post(f"/suppressions/{sup}/lift", data={"csrf": csrf, "reason": ""}, follow_redirects=False)
        assert refused.status_code == 400
        done = c.post(f"/suppressions/{sup}/lift", data={"csrf": csrf, "reason": "QA over"}, follow_redirects=False)
        assert done.status_code == 303
        after = c.get("/suppressions?lang=ko").text
        assert "해제" in after and f'action="/suppressions/{sup}/lift"' not in after
        forged = c.post(f"/suppressions/{sup}/lift", data={"csrf": "x", "reason": "again"}, follow_redirects=False)
        assert forged.status_code == 403
