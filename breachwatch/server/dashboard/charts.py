"""Plotly figures as JSON for the pages; the browser draws them with the locally served plotly.js."""
from __future__ import annotations

from typing import Any

from breachwatch.server.dashboard.i18n import chart_time, word


def _layout(title: str, lang: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title, "font": {"size": 14}}, "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
            "height": 300, "xaxis": {"title": {"text": word("time_zone", lang)}}, "legend": {"orientation": "h"},
            **extra}


def lines(series: list[dict[str, Any]], title: str, lang: str, *, bars: bool = False,
          baseline: float | None = None, names: dict[str, str] | None = None) -> dict[str, Any]:
    data = []
    for s in series:
        xs = [chart_time(p["t"], lang) for p in s["points"]]
        ys = [p["n"] for p in s["points"]]
        name = (names or {}).get(s["name"], s["name"])
        data.append({"type": "bar" if bars else "scatter", "mode": "lines+markers", "name": name, "x": xs, "y": ys})
    if baseline is not None and series and series[0]["points"]:
        xs = [chart_time(series[0]["points"][0]["t"], lang), chart_time(series[0]["points"][-1]["t"], lang)]
        data.append({"type": "scatter", "mode": "lines", "name": word("baseline", lang), "x": xs,
                     "y": [baseline, baseline], "line": {"dash": "dash", "color": "#d62728"}})
    return {"data": data, "layout": _layout(title, lang), "points": sum(len(s["points"]) for s in series)}


def field_bars(by_field: list[dict[str, Any]], title: str, lang: str) -> dict[str, Any]:
    return {"data": [{"type": "bar", "orientation": "h", "x": [f["subjects"] for f in by_field],
                      "y": [f["field"] for f in by_field], "name": word("subjects", lang)}],
            "layout": {**_layout(title, lang), "xaxis": {"title": {"text": word("subjects", lang)}},
                       "yaxis": {"automargin": True}},
            "points": len(by_field)}
