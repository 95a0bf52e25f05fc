"""A Korean online retailer's traffic with injected breach scenarios and their ground truth.

Benign surprises (a sale day, an app release, ...) can be switched on with
`SimConfig(surprises=...)`. `simulate(SimConfig(...))` returns a `Simulation` whose `iter_batches()`
yields time-ordered Contract 1 events as Arrow tables, `truth()` the ground
truth, and `write(dir, fmt)` the files `breachwatch simulate` writes.
"""
from breachwatch.simulate.config import FORMATS, SimConfig
from breachwatch.simulate.scenarios import NAMES as SCENARIO_NAMES
from breachwatch.simulate.simulation import Simulation, simulate
from breachwatch.simulate.surprises import NAMES as SURPRISE_NAMES

__all__ = ["FORMATS", "SCENARIO_NAMES", "SURPRISE_NAMES", "SimConfig", "Simulation", "simulate"]
