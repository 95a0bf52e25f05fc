-- An ART index on events.event_id, so that a commit finds the already stored ids of a
-- small batch by index probes instead of scanning every stored id (dedup cost that grew
-- with the store). Costs disk and memory (about 70 bytes per stored event) and slows
-- large inserts; see docs/BENCHMARKS.md, "Ingest".
CREATE INDEX IF NOT EXISTS events_event_id ON events (event_id);
