"""The dashboard in headless Chromium: log in, open the forged_token incident, see its chart, acknowledge it.

Debian's chromium, driven by Playwright; screenshots go to test-artifacts/.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import orjson
import pytest
from server_helpers import PASSWORD, ServerProcess, make_store

from breachwatch.server.client import ServerClient
from breachwatch.simulate import SimConfig, simulate

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed "
                                "(make setup installs it)")


@pytest.fixture(scope="module")
def forged_incident(tmp_path_factory):
    """A server holding a simulated forged-token campaign, sent over HTTP and detected by the server itself."""
    tmp = tmp_path_factory.mktemp("browser")
    db, keys = make_store(tmp)
    server = ServerProcess(db, "--detect-interval", "2")
    try:
        sim = simulate(SimConfig(customers=500, days=0.5, warmup_days=0.1, scenarios="forged_token", seed=3))
        with ServerClient(server.url, keys["ingest"]) as sc:
            sc.ingest_lines((orjson.dumps(r) for r in sim.iter_records()), batch=5000)
        incident = None
        deadline = time.monotonic() + 240
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys['analyst']}"}) as c:
            while time.monotonic() < deadline and incident is None:
                found = [i for i in c.get("/v1/incidents").json() if "forged_token" in i["detectors"]]
                incident = found[0] if found else None
                if incident is None:
                    time.sleep(2)
        assert incident is not None, "the server's detection opened no forged_token incident"
        yield server, keys, incident
    finally:
        server.stop()


def test_analyst_opens_and_acknowledges_the_forged_token_incident(forged_incident):
    from playwright.sync_api import sync_playwright
    server, keys, incident = forged_incident
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server.url + "/")
        assert "/login" in page.url
        page.fill("#username", "analyst-user")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_selector("#fig-ptype-div[data-rendered=true]", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)
        page.goto(server.url + "/incidents")
        page.click(f"a[href='/incidents/{incident['id']}']")
        chart = page.wait_for_selector("#fig-timeline-div[data-rendered=true]", timeout=30_000)
        assert int(chart.get_attribute("data-points")) > 0
        assert page.locator("#fig-timeline-div .scatterlayer .trace").count() >= 1  # plotly drew the lines
        assert page.locator("#evidence li").count() >= 1
        assert page.locator("#blast-radius tr").count() >= 2
        page.screenshot(path=str(ARTIFACTS / "incident-forged-token.png"), full_page=True)
        page.click("#ack")
        page.wait_for_selector("#status[data-status=acknowledged]", timeout=30_000)
        page.click("#lang-ko")
        page.wait_for_selector("#fig-timeline-div[data-rendered=true]", timeout=30_000)
        assert "KST" in page.content() and "확인됨" in page.content()
        page.screenshot(path=str(ARTIFACTS / "incident-forged-token-ko.png"), full_page=True)
        browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys['admin']}"}) as c:
        trail = c.get("/v1/admin/audit", params={"actor": "user:analyst-user", "limit": 5000}).json()
        assert c.get("/v1/admin/audit/verify").json()["intact"]
    actions = [(r["action"], r["resource"]) for r in trail]
    assert ("login", None) in actions
    assert ("incident.view", f"incident/{incident['id']}") in actions
    assert ("incident.acknowledge", f"incident/{incident['id']}") in actions
