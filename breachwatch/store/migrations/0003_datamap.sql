-- The data map: where personal data lives, as found by `breachwatch discover`,
-- with the scan runs and their per-table progress (what makes a scan resumable).
CREATE TABLE discover_runs (
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,          -- database URL without its password, file or folder, or 'store:<path>'
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status VARCHAR NOT NULL,          -- running, complete, incomplete (a budget ran out), failed (unreachable)
    sample_size BIGINT,
    tables_total BIGINT DEFAULT 0,
    tables_done BIGINT DEFAULT 0,
    tables_skipped BIGINT DEFAULT 0,
    rows_sampled BIGINT DEFAULT 0,
    message VARCHAR
);

CREATE TABLE discover_progress (
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    status VARCHAR NOT NULL,          -- done, skipped
    reason VARCHAR,                   -- why it was skipped
    estimated_rows BIGINT,
    sampled_rows BIGINT,
    sample_method VARCHAR,
    columns_scanned BIGINT,
    findings BIGINT,
    finished_at TIMESTAMP NOT NULL
);

-- One row per (source, table, column, entity): the latest scan of that table.
CREATE TABLE datamap (
    source VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    column_name VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,          -- KR_RRN, PHONE, EMAIL, ...
    field VARCHAR NOT NULL,           -- the catalog field it maps to (Contract 2)
    category VARCHAR NOT NULL,        -- personal, unique_identifier, sensitive, credential
    confidence DOUBLE NOT NULL,
    hits BIGINT NOT NULL,             -- sampled values with a hit
    sampled BIGINT NOT NULL,          -- non-empty values sampled
    estimated_rows BIGINT,            -- rows estimated to hold it
    signals VARCHAR[],                -- the evidence, in words
    run_id VARCHAR NOT NULL,
    scanned_at TIMESTAMP NOT NULL
);
