"""The dashboard in headless Chromium, on the store a real `breachwatch drill` left behind.

The drill (forged_token and canary_read, a few hundred customers) builds the
store and writes its report next to it, where `serve` finds it without a flag.
An analyst logs in, opens the drill's forged_token incident, sees its chart
drawn with data, acknowledges it and looks at the drill page; an admin then
finds the analyst's read in the audit trail page. Debian's chromium, driven by
Playwright; screenshots go to test-artifacts/.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from server_helpers import PASSWORD, ServerProcess, add_people

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed "
                                "(make setup installs it)")


@pytest.fixture(scope="module")
def drilled(tmp_path_factory):
    """A store built by `breachwatch drill`, its report beside it, served with no --drill-report flag."""
    tmp = tmp_path_factory.mktemp("browser")
    db = str(tmp / "drill.duckdb")
    cli = str(Path(sys.executable).parent / "breachwatch")
    run = subprocess.run([cli, "drill", "--customers", "500", "--days", "0.5", "--warmup-days", "0.1", "--seed", "3",
                          "--scenarios", "forged_token,canary_read", "--db", db, "--report", f"{db}.drill.json",
                          "--json"], capture_output=True, timeout=600)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    result = orjson.loads(run.stdout)
    forged = next(s for s in result["scenarios"] if s["name"] == "forged_token")
    assert forged["detected"] and forged["incidents"], forged
    keys = add_people(db)
    server = ServerProcess(db)
    try:
        yield server, keys, forged["incidents"][0], result
    finally:
        server.stop()


def _log_in(page, url: str, user: str, target: str) -> None:
    page.goto(url + target)
    assert "/login" in page.url
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(url + target)


def test_analyst_walks_the_drill_incident_and_admin_sees_the_read(drilled):
    from playwright.sync_api import sync_playwright
    server, keys, incident_id, result = drilled
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _log_in(page, server.url, "analyst-user", "/")
        page.wait_for_selector("#fig-ptype-div[data-rendered=true]", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

        page.goto(server.url + "/incidents")
        page.click(f"a[href='/incidents/{incident_id}']")
        chart = page.wait_for_selector("#fig-timeline-div[data-rendered=true]", timeout=30_000)
        assert int(chart.get_attribute("data-points")) > 0
        assert page.locator("#fig-timeline-div .scatterlayer .trace").count() >= 1  # plotly drew the lines
        assert "forged" in page.content().lower()
        assert page.locator("#evidence li").count() >= 1
        assert page.locator("#blast-radius tr").count() >= 2
        page.screenshot(path=str(ARTIFACTS / "incident-forged-token.png"), full_page=True)
        page.click("#ack")
        page.wait_for_selector("#status[data-status=acknowledged]", timeout=30_000)
        page.click("#lang-ko")
        page.wait_for_selector("#fig-timeline-div[data-rendered=true]", timeout=30_000)
        assert "KST" in page.content() and "확인됨" in page.content()
        page.screenshot(path=str(ARTIFACTS / "incident-forged-token-ko.png"), full_page=True)

        page.goto(server.url + "/drill?lang=en")
        rows = page.locator("#drill tr")
        assert rows.count() == 1 + len(result["scenarios"])
        drill_text = page.locator("#drill").inner_text()
        assert "forged_token" in drill_text and "canary_read" in drill_text and "No" not in drill_text
        page.screenshot(path=str(ARTIFACTS / "drill.png"), full_page=True)

        admin = browser.new_context(viewport={"width": 1280, "height": 1600}).new_page()
        admin.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _log_in(admin, server.url, "admin-user", "/audit")
        trail_rows = [r.inner_text() for r in admin.locator("#audit tr").all()]
        assert any("user:analyst-user" in r and "incident.view" in r and f"incident/{incident_id}" in r
                   for r in trail_rows), trail_rows
        assert any("incident.acknowledge" in r for r in trail_rows)
        admin.screenshot(path=str(ARTIFACTS / "audit-trail.png"), full_page=True)
        browser.close()
    assert not [e for e in errors if "Content Security Policy" in e], errors
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {keys['admin']}"}) as c:
        trail = c.get("/v1/admin/audit", params={"actor": "user:analyst-user", "limit": 5000}).json()
        assert c.get("/v1/admin/audit/verify").json()["intact"]
        assert c.get("/v1/drill", headers={"Authorization": f"Bearer {keys['analyst']}"}).json()["available"]
    actions = [(r["action"], r["resource"]) for r in trail]
    assert ("login", None) in actions
    assert ("incident.view", f"incident/{incident_id}") in actions
    assert ("incident.acknowledge", f"incident/{incident_id}") in actions
