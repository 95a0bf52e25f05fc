"""The detectors, one file each, in the order the engine runs them.

Provenance first (their state, e.g. tokens judged forged, is read by the
orphaned-key check), then the behavioural counters, then the outlier model,
which reads their per-entity tables.
"""
from __future__ import annotations

from breachwatch.detect.detectors import (canary_read, enumeration, forged_token, ml_outlier, novel_source,
                                          offboarded_principal, volume_anomaly)

# Provenance: cheap, decided per event from facts, run on every call (the 2 s alert path).
PROVENANCE = (forged_token, offboarded_principal, canary_read)
# Behavioural: counts against baselines; may run less often, always per event in event time.
BEHAVIOURAL = (enumeration, novel_source, volume_anomaly, ml_outlier)
DETECTORS = PROVENANCE + BEHAVIOURAL
