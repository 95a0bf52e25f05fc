"""A link to an incident that detection later folded into another still leads to the incident it is part of."""
from __future__ import annotations

import re
from datetime import datetime

from fastapi.testclient import TestClient

from breachwatch.server.app import create_app
from breachwatch.server.config import ServerConfig
from breachwatch.store.db import connect
from server_helpers import PASSWORD, make_store


def _fold(db: str) -> None:
    """INC-000001 folded into INC-000002, which was later folded into INC-000004 (the one that stays)."""
    con = connect(db)
    t = datetime(2025, 4, 14, 2, 10)
    for inc, seq in (("INC-000003", 3), ("INC-000004", 4)):
        con.execute("INSERT INTO incidents VALUES (?, ?, 'high', 'open', ?, ?, ?, ?, ['enumeration'], 10, 20, ?, ?)",
                    [inc, seq, t, t, t, t, t, t])
    con.execute("INSERT INTO incident_log VALUES ('INC-000002', ?, 'merged', 'breachwatch', "
                "'INC-000001 merged in: key k-1 is about the same actor')", [t])
    con.execute("UPDATE incident_log SET incident_id = 'INC-000004' WHERE incident_id = 'INC-000002'")
    con.execute("INSERT INTO incident_log VALUES ('INC-000004', ?, 'merged', 'breachwatch', "
                "'INC-000002 merged in: ip 203.0.113.9 is about the same actor')", [t])
    con.close()


def test_folded_incident_points_to_the_one_it_is_part_of(tmp_path):
    db, keys = make_store(tmp_path)
    _fold(db)
    with TestClient(create_app(ServerConfig(db=db, detect_interval_s=0))) as c:
        h = {"Authorization": f"Bearer {keys['analyst']}"}
        for folded in ("INC-000001", "INC-000002"):
            r = c.get(f"/v1/incidents/{folded}", headers=h)
            assert r.status_code == 404 and r.json()["error"] == "merged", r.text
            assert r.headers["location"] == "/v1/incidents/INC-000004"
        assert c.get("/v1/incidents/INC-000004", headers=h).status_code == 200
        r = c.get("/v1/incidents/INC-000003x", headers=h)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        # The dashboard shows the incident it is part of.
        form = c.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        c.post("/login", data={"username": "analyst-user", "password": PASSWORD, "csrf": csrf, "next": "/"})
        r = c.get("/incidents/INC-000001", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/incidents/INC-000004"
        assert c.get("/incidents/INC-000003x").status_code == 404
