-- The event_id index of migration 0007 goes: a writer now finds a batch's stored ids
-- through the keys of every stored id that it keeps in memory (store/chain.py,
-- StoredIds), and reads the table only for the rare candidates. The index cost a
-- fifth of a big file's ingest rate at 10 million events and about 73 bytes of disk
-- per event (docs/BENCHMARKS.md, "Dedup without the event_id index").
DROP INDEX IF EXISTS events_event_id;
