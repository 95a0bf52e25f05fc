"""schemathesis against the served OpenAPI spec: every answer is documented and matches its schema."""
from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from server_helpers import make_store

from breachwatch.server.app import create_app
from breachwatch.server.config import ServerConfig

_state: dict = {}


@asynccontextmanager
async def _no_lifespan(app):
    yield


def _app():
    if "app" not in _state:
        import tempfile
        from pathlib import Path
        import os
        os.environ.setdefault("BREACHWATCH_LOOKUP_KEY", "ab" * 32)  # the lookup is configured, as in production
        db, keys = make_store(Path(tempfile.mkdtemp(prefix="bw-openapi-")))
        app = create_app(ServerConfig(db=db, detect_interval_s=0))
        # schemathesis enters the app's lifespan around each call; the server runs once for the module
        app.state.ctx.start()
        app.router.lifespan_context = _no_lifespan
        _state.update(app=app, keys=keys)
    return _state["app"]


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@pytest.fixture(scope="module", autouse=True)
def _close():
    yield
    if "app" in _state:
        _state["app"].state.ctx.stop()


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_spec(case):
    given = (case.headers or {}).get("Authorization")
    if given is not None and not str(given).startswith("Bearer "):
        # a deliberately malformed credential (negative test): send it as generated; it must get 401
        case.call_and_validate()
    else:
        case.call_and_validate(headers={"Authorization": f"Bearer {_state['keys']['all']}"})
