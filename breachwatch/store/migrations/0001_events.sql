-- Contract 1 events, the quarantine for input that breaks the contract,
-- the ingest log, and the tamper-evident batch chain.
CREATE TABLE events (
    event_id VARCHAR NOT NULL,
    time TIMESTAMP NOT NULL,
    kind VARCHAR NOT NULL,
    principal_id VARCHAR,
    principal_type VARCHAR,
    session_id VARCHAR,
    token_id VARCHAR,
    key_id VARCHAR,
    token_issued_at TIMESTAMP,
    token_expires_at TIMESTAMP,
    owner_id VARCHAR,
    src_ip VARCHAR,
    src_asn VARCHAR,
    src_country VARCHAR,
    user_agent VARCHAR,
    client_fingerprint VARCHAR,
    service VARCHAR,
    endpoint VARCHAR,
    action VARCHAR,
    reason_ref VARCHAR,
    status BIGINT,
    bytes_out BIGINT,
    subject_ids VARCHAR[],
    fields VARCHAR[],
    subject_fields MAP(VARCHAR, VARCHAR[]),
    record_count BIGINT,
    status_value VARCHAR,
    attributes JSON,
    batch_id BIGINT NOT NULL
);

CREATE TABLE quarantine (
    quarantine_id VARCHAR NOT NULL,   -- hash of source, position and raw text: re-ingest adds nothing
    source VARCHAR NOT NULL,
    position BIGINT,                  -- line (NDJSON, CSV) or row (Parquet), 1-based
    reason VARCHAR NOT NULL,
    detail VARCHAR,
    raw VARCHAR,
    event_id VARCHAR,
    batch_id BIGINT NOT NULL
);

CREATE TABLE ingest_log (
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    format VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    status VARCHAR,                   -- running, complete, failed
    records BIGINT DEFAULT 0,
    loaded BIGINT DEFAULT 0,
    duplicates BIGINT DEFAULT 0,
    quarantined BIGINT DEFAULT 0,
    last_position BIGINT DEFAULT 0
);

CREATE TABLE batches (
    seq BIGINT NOT NULL,              -- position in the chain, 1-based
    batch_id BIGINT NOT NULL,
    committed_at TIMESTAMP NOT NULL,
    link_type VARCHAR NOT NULL,       -- 'ingest' now; 'expiry' for retention deletions
    source VARCHAR,
    events BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    digest VARCHAR NOT NULL,          -- over the batch's records
    prev_head VARCHAR NOT NULL,
    head VARCHAR NOT NULL             -- sha256(prev_head, link fields, digest)
);
