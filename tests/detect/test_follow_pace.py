"""Following (pace="auto"): the provenance tier commits on its own, and a model still being fitted
is waited for by a later pass instead of this one, with the same alerts as detecting every batch
at once."""
from __future__ import annotations

import threading
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

import detect_world as W
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.detectors import ml_outlier
from breachwatch.detect.engine import load_progress, run_detect
from breachwatch.detect.replay import _Store
from breachwatch.incidents.store import list_alerts
from breachwatch.store.db import connect
from test_detect_engine import _attack_world, _window


def _run(tmp_path, name: str, follow: bool, monkeypatch) -> tuple[dict, list]:
    path = str(tmp_path / f"{name}.duckdb")
    con = connect(path)
    cfg = load_detect_config(W.catalog())
    # A small world: a model is fitted from fewer vectors than a real history's.
    cfg.detectors["ml_outlier"].update(min_training_rows=20, min_requests=5)
    events = pa.concat_tables([t.filter(_window(t)) for t in _attack_world().tables()])
    cut = pc.cast(W.START + timedelta(days=1), events.schema.field("time").type)
    store = _Store(con, path, "test")
    store.put(events.filter(pc.less(events.column("time"), cut)))
    run_detect(con, cfg, backfill=True)
    backlog = events.filter(pc.greater_equal(events.column("time"), cut))
    seen = []
    if follow:
        # Every tier due on every call, and the model's fit held until the last few batches.
        cfg.engine["provenance_every"] = cfg.engine["behaviour_every"] = 0.0
        release = threading.Event()
        fit = ml_outlier._fit
        monkeypatch.setattr(ml_outlier, "_fit", lambda *a: (release.wait(60), fit(*a))[1])
        ml_outlier._MODELS.clear()
        ml_outlier._FITTING.clear()
    step = max(1, backlog.num_rows // 12)
    for i in range(0, backlog.num_rows, step):
        store.put(backlog.slice(i, step))
        if follow:
            if i + 3 * step >= backlog.num_rows and not release.is_set():
                release.set()
                for fitting in list(ml_outlier._FITTING.values()):
                    fitting.result()
            run_detect(con, cfg, pace="auto")
            seen.append((load_progress(con).ml_checkpoint, {a["detector"] for a in list_alerts(con)}))
        else:
            run_detect(con, cfg)
    alerts = {(a["detector"], a["rule"], a["entity"]): a["detected_at"] for a in list_alerts(con)}
    con.close()
    return alerts, seen


def test_a_model_still_fitting_defers_scoring_without_changing_any_alert(tmp_path, monkeypatch):
    ml_outlier._MODELS.clear()
    reference, _ = _run(tmp_path, "always", False, monkeypatch)
    followed, seen = _run(tmp_path, "follow", True, monkeypatch)
    assert any(k[0] == "ml_outlier" for k in reference)
    assert any(k[0] == "forged_token" for k in reference)
    # While the fit was held, provenance alerts were raised and committed, and no checkpoint was scored.
    held = seen[:-3]
    assert held and any("forged_token" in detectors for _, detectors in held)
    assert all("ml_outlier" not in detectors for _, detectors in held)
    assert len({cp for cp, _ in held}) == 1
    assert followed == reference
