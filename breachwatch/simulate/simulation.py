"""The simulator's API: `simulate(SimConfig) -> Simulation`.

    >>> sim = simulate(SimConfig(customers=2_000, days=1, warmup_days=0.5, seed=7))
    >>> for batch in sim.iter_batches():      # time-ordered pyarrow Tables in ARROW_SCHEMA
    ...     pass
    >>> sim.truth()["scenarios"][0]["name"]
    'forged_token'

`iter_batches` regenerates the run each time it is called (the world is built
once); `truth()` is the ground truth of the events a full pass emits, running
a pass first if none has finished. `write(dir, fmt)` writes the events file
and truth.json.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch import __version__
from breachwatch.contract.catalog import load_catalog
from breachwatch.simulate import frames, ndjson, people
from breachwatch.simulate.benign.partners import BUYER_ROUTE, PartnerReads
from breachwatch.simulate.benign.services import MarketingMailer, ShippingLabels
from breachwatch.simulate.benign.sessions import CustomerSessions
from breachwatch.simulate.benign.snapshot import Snapshot
from breachwatch.simulate.benign.staff import CUSTOMER_ROUTE, ORDERS_ROUTE, CustomerService
from breachwatch.simulate.config import SimConfig
from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.effects import SessionEffects
from breachwatch.simulate.engine import Engine, EngineStats
from breachwatch.simulate.orders import OrderBook
from breachwatch.simulate.pages import LOGIN_ROUTE, ROUTES, check_catalog
from breachwatch.simulate.scenarios import NAMES, SCENARIOS, code_of, label_of
from breachwatch.simulate.scenarios.base import Scenario
from breachwatch.simulate.surprises import NAMES as SURPRISE_NAMES
from breachwatch.simulate.surprises import SURPRISES
from breachwatch.simulate.surprises import code_of as surprise_code
from breachwatch.simulate.surprises.base import Surprise
from breachwatch.simulate.timebase import DAY, rfc3339
from breachwatch.simulate.truth import TruthRecorder, value_counts
from breachwatch.simulate.world import STATUS_NAMES, build_world
from breachwatch.simulate.writers import EVENT_FILES, TableWriter, check_format, event_writer

TRUTH_FILE = "truth.json"
WORLD_DIR = "world"
TRUTH_FORMAT = "breachwatch-simulate-truth/1"
ROUTES_USED = [*ROUTES.values(), LOGIN_ROUTE, CUSTOMER_ROUTE, ORDERS_ROUTE, BUYER_ROUTE,
               "GET /internal/shipping/labels", "GET /internal/marketing/recipients"]


def simulate(config: SimConfig) -> "Simulation":
    return Simulation(config)


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        config.validate()
        self.config = config
        self.catalog = load_catalog(config.catalog)
        check_catalog(self.catalog, ROUTES_USED)
        self.scenario_names = config.scenario_names(NAMES)
        self.surprise_names = config.surprise_names(SURPRISE_NAMES)
        if self.surprise_names and not config.benign:
            raise ValueError(f"--surprises {','.join(self.surprise_names)}: surprises change the retailer's own "
                             "traffic, which a run without benign traffic leaves out. Fix: drop --surprises, or "
                             "simulate the benign traffic too.")
        for name in config.params:
            if name in NAMES:
                if name not in self.scenario_names:
                    raise ValueError(f"--param {name}.*: scenario '{name}' is not selected. "
                                     "Fix: add it to --scenarios.")
            elif name in SURPRISE_NAMES:
                if name not in self.surprise_names:
                    raise ValueError(f"--param {name}.*: surprise '{name}' is not selected. "
                                     "Fix: add it to --surprises.")
            else:
                raise ValueError(f"--param {name}.*: no scenario or surprise '{name}'. Fix: use one of "
                                 f"{', '.join(NAMES + SURPRISE_NAMES)}.")
        for name in self.scenario_names:
            SCENARIOS[name].parse(dict(config.params.get(name, {})))  # fail early on bad parameters
        for name in self.surprise_names:
            SURPRISES[name].parse(dict(config.params.get(name, {})))
        self.start = config.start_us
        self.attack_start = self.start + int(config.warmup_days * DAY)
        self.end = self.attack_start + int(config.days * DAY)
        self.world = build_world(config.customers, config.seed, self.start, self.catalog.canaries)
        self.stats: EngineStats | None = None
        self._truth: dict[str, Any] | None = None

    # -- one pass ------------------------------------------------------------
    def _build(self) -> tuple[Engine, list[Scenario], list[Surprise]]:
        ctx = SimContext(config=self.config, catalog=self.catalog, world=self.world, orders=OrderBook(self.world),
                         start=self.start, attack_start=self.attack_start, end=self.end)
        scenarios = [SCENARIOS[n](ctx, dict(self.config.params.get(n, {})), label_of(n), code_of(n))
                     for n in self.scenario_names]
        surprises = [SURPRISES[n](ctx, dict(self.config.params.get(n, {})), surprise_code(n))
                     for n in self.surprise_names]
        ctx.effects = SessionEffects(surprises)
        # Scenarios first decide departures (stale credential, the key owner), then staff read them.
        benign = [CustomerSessions(ctx), CustomerService(ctx), ShippingLabels(ctx), MarketingMailer(ctx),
                  PartnerReads(ctx)] if self.config.benign else []
        engine = Engine(ctx, Snapshot(ctx), [*benign, *surprises, *scenarios])
        return engine, scenarios, surprises

    def window_count(self) -> int:
        return self._build()[0].stats.windows

    def iter_batches(self, on_window: Callable[[Window], None] | None = None) -> Iterator[pa.Table]:
        """Every event, in time order, as tables in ARROW_SCHEMA of at most `batch_rows` rows."""
        engine, scenarios, surprises = self._build()
        self.stats = engine.stats
        recorder = TruthRecorder({s.label: s.name for s in scenarios})
        for table in engine.run(on_window):
            if not self.config.issuance_log:
                table = table.filter(pc.not_equal(table.column("kind"), frames.lit("token_issued")))
            if table.num_rows == 0:
                continue
            recorder.observe(table)
            yield table.drop_columns([frames.LABEL])
        self._truth = self._truth_document(recorder, scenarios, surprises)

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """Every event as a Contract 1 dict, exactly as the NDJSON file holds it (times as RFC 3339 text)."""
        for table in self.iter_batches():
            for line in bytes(ndjson.to_bytes(table)).splitlines():
                yield orjson.loads(line)

    def truth(self) -> dict[str, Any]:
        if self._truth is None:
            for _ in self.iter_batches():
                pass
        assert self._truth is not None
        return self._truth

    # -- files ---------------------------------------------------------------
    def write(self, out_dir: str | Path, fmt: str = "ndjson", *, overwrite: bool = False, world_files: bool = False,
              on_window: Callable[[Window], None] | None = None) -> dict[str, Any]:
        """Write the events file and truth.json (and, with world_files, the people behind the ids)."""
        check_format(fmt)
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out}: is a file. Fix: give a directory.")
        out.mkdir(parents=True, exist_ok=True)
        ours = [out / n for n in (*EVENT_FILES.values(), TRUTH_FILE)] + [out / WORLD_DIR]
        present = [p.name for p in ours if p.exists()]
        if present and not overwrite:
            raise ValueError(f"--out {out}: already holds {', '.join(present)} from an earlier run. "
                             "Fix: choose an empty directory or pass --overwrite.")
        for p in ours:
            if p.is_dir():
                for f in p.iterdir():
                    f.unlink()
                p.rmdir()
            elif p.exists():
                p.unlink()
        began = time.perf_counter()
        path = out / EVENT_FILES[fmt]
        writer = event_writer(path, fmt)
        try:
            for table in self.iter_batches(on_window):
                writer.write(table)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        truth = self.truth()
        (out / TRUTH_FILE).write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2) + b"\n")
        files = [str(path), str(out / TRUTH_FILE)]
        if world_files:
            files += self.write_world(out / WORLD_DIR, fmt)
        seconds = time.perf_counter() - began
        assert self.stats is not None
        summary = {
            "out_dir": str(out), "format": fmt, "files": files, "events": truth["events"],
            "seconds": round(seconds, 3), "events_per_s": round(truth["events"] / seconds) if seconds else None,
            "bytes": path.stat().st_size, "events_by_kind": truth["events_by_kind"],
            "period": truth["period"], "window_seconds": self.stats.window_seconds, "windows": self.stats.windows,
            "max_window_rows": self.stats.max_window_rows,
            "scenarios": [{k: s[k] for k in ("name", "start", "end", "malicious_events", "subjects_exposed",
                                             "members_exposed", "non_members_exposed")}
                          for s in truth["scenarios"]],
        }
        if "benign_surprises" in truth:
            summary["benign_surprises"] = [{k: s[k] for k in ("name", "start", "end")}
                                           for s in truth["benign_surprises"]]
        return summary

    def write_world(self, out: Path, fmt: str) -> list[str]:
        """customers, recipients (address-book entries of non-members) and principals.json."""
        out.mkdir(parents=True, exist_ok=True)
        files = []
        for name, blocks in (("customers", people.customer_blocks(self.world)),
                             ("recipients", people.recipient_blocks(self.world))):
            first = next(blocks, None)
            if first is None:
                continue
            path = out / f"{name}.{fmt}"
            w = TableWriter(path, fmt, first.schema, self.config.batch_rows)
            w.write(first)
            for t in blocks:
                w.write(t)
            w.close()
            files.append(str(path))
        principals = [{"principal_id": p.principal_id, "principal_type": p.principal_type, "role": p.role,
                       "created_at": rfc3339(p.created_us), "src_ip": p.ip}
                      for p in self.world.agents + self.world.engineers + self.world.partners + self.world.services]
        (out / "principals.json").write_bytes(orjson.dumps(principals, option=orjson.OPT_INDENT_2) + b"\n")
        files.append(str(out / "principals.json"))
        return files

    # -- truth.json ----------------------------------------------------------
    def _truth_document(self, recorder: TruthRecorder, scenarios: list[Scenario],
                        surprises: list[Surprise]) -> dict[str, Any]:
        w, cfg = self.world, self.config
        status = value_counts(pa.array(w.status.astype("int64")))
        out_scenarios = []
        for s in scenarios:
            result = recorder.scenarios[s.label].result()
            entry = {"name": s.name, "summary": s.summary, "start": result.pop("start"), "end": result.pop("end"),
                     "params": s.p.__dict__ | {"rate_scale": cfg.rate_scale}, "context": s.context()}
            entry.update(result)
            out_scenarios.append(entry)
        doc = {
            "format": TRUTH_FORMAT,
            "generator": f"breachwatch {__version__}",
            "seed": cfg.seed,
            "config": cfg.as_dict(),
            "period": {"start": rfc3339(self.start), "warmup_end": rfc3339(self.attack_start),
                       "end": rfc3339(self.end)},
            "warmup_days": cfg.warmup_days,
            "benign_days": cfg.days,
            "issuance_log": cfg.issuance_log,
            "events": recorder.events,
            "events_by_kind": dict(sorted(recorder.kinds.items())),
            "world": {
                "members": w.size,
                "first_member_id": str(w.member_id[0]),
                "max_member_id": str(w.max_member_id),
                "member_status": {STATUS_NAMES[int(k)]: int(v) for k, v in sorted(status.items())},
                "recipients": w.n_recipients,
                "canaries": [str(x) for x in w.member_id[w.canary]],
                "agents": len(w.agents), "engineers": len(w.engineers), "partners": len(w.partners),
                "services": [p.principal_id for p in w.services],
                "signing_keys": [{"key_id": k.key_id, "owner_id": k.owner_id, "created_at": rfc3339(k.created_us),
                                  "purpose": k.purpose} for k in w.keys],
            },
            "scenarios": out_scenarios,
        }
        if surprises:  # left out when none is selected, so such runs' truth.json is as it always was
            doc["benign_surprises"] = [s.truth() for s in surprises]
        return doc
