"""A Korean online retailer's traffic with injected breach scenarios and their ground truth.

`simulate(SimConfig(...))` returns a `Simulation` whose `iter_batches()`
yields time-ordered Contract 1 events as Arrow tables, `truth()` the ground
truth, and `write(dir, fmt)` the files `breachwatch simulate` writes.
"""
from breachwatch.simulate.config import FORMATS, SimConfig
from breachwatch.simulate.scenarios import NAMES as SCENARIO_NAMES
from breachwatch.simulate.simulation import Simulation, simulate

__all__ = ["FORMATS", "SCENARIO_NAMES", "SimConfig", "Simulation", "simulate"]
