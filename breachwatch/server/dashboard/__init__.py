"""The analyst dashboard: server-rendered pages in English and Korean, charts drawn by local plotly.js."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def plotly_js() -> Path:
    """plotly.min.js from the installed plotly package: the product works offline, no CDN."""
    import plotly
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise RuntimeError(f"{path}: plotly.min.js is missing from the plotly package. Fix: reinstall plotly.")
    return path


def mount(app: FastAPI) -> None:
    from breachwatch.server.dashboard import pages
    js = plotly_js()

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_file() -> FileResponse:
        return FileResponse(js, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
