-- Detection: progress over the events table, per-feed watermarks and health,
-- detector state, alerts (raised, shadow, held, suppressed), incidents with the
-- events and subjects they hold, suppressions, the lifecycle audit and the
-- notification outbox.

-- One row: the last events batch the detectors have processed, and when
-- baselines were last learned (event time).
CREATE TABLE IF NOT EXISTS detect_progress (
    last_batch_id BIGINT NOT NULL,
    events_processed BIGINT NOT NULL,
    runs BIGINT NOT NULL,
    last_run_at TIMESTAMP,
    baseline_at TIMESTAMP,            -- event time up to which baselines were learned
    backfill_until TIMESTAMP,         -- event time covered by the last --backfill
    issuance_since TIMESTAMP,         -- first token_issued record: provenance is checkable from here on
    principals_seen BIGINT NOT NULL,  -- principals with any history, for population shares
    ml_checkpoint TIMESTAMP,          -- last event-time checkpoint the outlier model scored
    issued_lifetime_max DOUBLE,       -- longest lifetime the issuance log has granted (seconds)
    behaviour_batch_id BIGINT NOT NULL, -- the last batch the behavioural detectors have processed
    behaviour_ran_at DOUBLE,          -- wall clock (epoch seconds) of their last pass
    provenance_ran_at DOUBLE          -- wall clock of the provenance detectors' last pass
);

-- How many distinct principals have used each source value (country, ASN, fingerprint, ...):
-- appended per run, summed on read.
CREATE TABLE IF NOT EXISTS source_popularity (
    dim VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    principals BIGINT NOT NULL
);

-- Each feed (a group of event kinds arriving through one pipe): how far it has
-- progressed in event time, and whether it is healthy.
CREATE TABLE IF NOT EXISTS feed_progress (
    feed VARCHAR NOT NULL,
    first_time TIMESTAMP,
    progress TIMESTAMP,               -- latest event time seen
    events BIGINT NOT NULL,
    healthy BOOLEAN NOT NULL,
    unhealthy_since TIMESTAMP,        -- event time (of the other feeds) when it went silent
    updated_at TIMESTAMP
);

-- Health alerts: a feed went silent or recovered.
CREATE TABLE IF NOT EXISTS feed_health (
    feed VARCHAR NOT NULL,
    state VARCHAR NOT NULL,           -- silent, recovered
    at_time TIMESTAMP NOT NULL,            -- event time of the decision
    lag_s DOUBLE,
    message VARCHAR NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);

-- Known entities (principal, key, ip, prefix, asn, country, fingerprint, user agent),
-- each per principal type, so peers are compared with peers.
CREATE TABLE IF NOT EXISTS entity_registry (
    ek UBIGINT NOT NULL,              -- hash(etype, ptype, entity)
    etype VARCHAR NOT NULL,
    ptype VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    first_seen TIMESTAMP NOT NULL
);

-- Set memberships, one table per kind of pair, each row a 64-bit hash of the pair:
-- (entity, subject) touched, (principal, source value) seen, principal seen,
-- (source entity, principal) reached from a new source, (entity, account) tried.
CREATE TABLE IF NOT EXISTS seen_subj (h UBIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_src (h UBIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_ph (h UBIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_novel (h UBIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_authfail (h UBIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS seen_rare (h UBIGINT NOT NULL);

-- The last numeric subject each entity touched, to see id walks across runs.
CREATE TABLE IF NOT EXISTS walk_last (
    ek UBIGINT NOT NULL,
    num HUGEINT NOT NULL
);

-- Windowed counters: per metric and entity, counts per minute and per hour
-- bucket (appended per run; sums over duplicates are the totals).
CREATE TABLE IF NOT EXISTS counter_buckets (
    metric VARCHAR NOT NULL,
    gran VARCHAR NOT NULL,            -- m (minute) or h (hour)
    ek UBIGINT NOT NULL,
    bucket TIMESTAMP NOT NULL,
    n DOUBLE NOT NULL
);

-- Counter windows that have crossed and keep crossing: while `seen_at` is within merge_gap
-- of the present, the first crossing stands and later points only keep it alive.
CREATE TABLE IF NOT EXISTS counter_alerted (
    metric VARCHAR NOT NULL,
    ek UBIGINT NOT NULL,
    window_s DOUBLE NOT NULL,
    alerted_at TIMESTAMP NOT NULL,
    seen_at TIMESTAMP NOT NULL
);

-- Per entity and hour: volumes used by volume_anomaly, ml_outlier and baselines.
CREATE TABLE IF NOT EXISTS entity_hours (
    ek UBIGINT NOT NULL,
    hour TIMESTAMP NOT NULL,
    requests DOUBLE NOT NULL,
    bytes DOUBLE NOT NULL,
    subject_reads DOUBLE NOT NULL,
    errors DOUBLE NOT NULL,
    endpoints DOUBLE NOT NULL         -- distinct endpoints in this run's slice (max over slices kept)
);

-- Per entity and step (5 minutes by default): the outlier model's raw features. All are
-- sums, so rows written by different runs for the same step add up exactly.
CREATE TABLE IF NOT EXISTS entity_steps (
    ek UBIGINT NOT NULL,
    bucket TIMESTAMP NOT NULL,
    last_time TIMESTAMP NOT NULL,
    requests DOUBLE NOT NULL,
    bytes DOUBLE NOT NULL,
    subject_reads DOUBLE NOT NULL,
    errors DOUBLE NOT NULL,
    new_subjects DOUBLE NOT NULL,     -- people this entity touched for the first time
    novel DOUBLE NOT NULL             -- requests from a source new to their principal, or by a new principal
);

-- Feature vectors the outlier model was trained on, per entity type (sampled history).
CREATE TABLE IF NOT EXISTS ml_training (
    etype VARCHAR NOT NULL,
    features DOUBLE[] NOT NULL
);

-- Learned thresholds, replaced at each baseline refresh.
CREATE TABLE IF NOT EXISTS baselines (
    scope VARCHAR NOT NULL,           -- own (per entity) or peer (per etype and principal type)
    metric VARCHAR NOT NULL,
    window_s BIGINT NOT NULL,         -- 0 for hour-of-week volume baselines
    ek UBIGINT,                       -- own
    etype VARCHAR,                    -- peer
    ptype VARCHAR,                    -- peer
    slot INTEGER,                     -- hour of week (0..167) for volume; -1 otherwise
    value DOUBLE NOT NULL,            -- the level seen (max or quantile)
    spread DOUBLE,
    samples BIGINT
);

-- Each entity's busiest hour per volume metric, and for entities big enough to come near
-- the floors, its level per hour of the week (168 slots, gaps filled from the same hour of
-- the day, then from its busiest hour).
CREATE TABLE IF NOT EXISTS volume_levels (
    ek UBIGINT NOT NULL,
    metric VARCHAR NOT NULL,          -- requests, bytes, subject_reads
    top DOUBLE NOT NULL,
    levels DOUBLE[]
);

-- Provenance state: issued tokens, signing keys and principals' lifecycle.
CREATE TABLE IF NOT EXISTS issued_tokens (
    token_id VARCHAR NOT NULL,
    principal_id VARCHAR,
    key_id VARCHAR,
    issued_at TIMESTAMP,
    expires_at TIMESTAMP,
    seen_at TIMESTAMP NOT NULL        -- event time of the token_issued record
);

CREATE TABLE IF NOT EXISTS key_lifecycle (
    key_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,            -- key_created, key_rotated, key_retired, key_revoked
    owner_id VARCHAR,
    at_time TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS principal_lifecycle (
    principal_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,            -- principal_created, principal_offboarded
    at_time TIMESTAMP NOT NULL
);

-- Derived from the two above whenever they change: who has left (and not come back),
-- and the keys they owned that nobody rotated since.
CREATE TABLE IF NOT EXISTS departures (
    principal_id VARCHAR NOT NULL,
    left_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS orphan_keys (
    key_id VARCHAR NOT NULL,
    owner_id VARCHAR NOT NULL,
    left_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS subject_status_state (
    subject_id VARCHAR NOT NULL,
    status_value VARCHAR NOT NULL,
    at_time TIMESTAMP NOT NULL
);

-- Accesses with a token no issuance record has produced yet; decided once the
-- issuance feed's watermark passes their first use.
CREATE TABLE IF NOT EXISTS token_pending (
    token_id VARCHAR NOT NULL,
    first_use TIMESTAMP NOT NULL,
    event_id VARCHAR NOT NULL,
    key_id VARCHAR,
    principal_id VARCHAR,
    held_since TIMESTAMP              -- set while the issuance feed is unhealthy
);

-- Tokens confirmed never issued; later uses attach to their alert.
CREATE TABLE IF NOT EXISTS forged_tokens (
    token_id VARCHAR NOT NULL,
    key_id VARCHAR,
    alert_key VARCHAR NOT NULL,
    confirmed_at TIMESTAMP NOT NULL
);

-- Detector outputs. status: raised (opened or updated an incident), shadow
-- (detector in shadow mode), held (waiting on an unhealthy feed), suppressed.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id VARCHAR NOT NULL,
    detector VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    dedup_key VARCHAR NOT NULL,
    generation INTEGER NOT NULL,
    severity VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    etype VARCHAR,
    ptype VARCHAR,
    entity VARCHAR,
    first_seen TIMESTAMP NOT NULL,
    detected_at TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL,
    metrics JSON,
    evidence VARCHAR NOT NULL,
    entities JSON,
    links BOOLEAN NOT NULL,           -- its entities may link it to other incidents (one actor, not a crowd)
    sample_event_ids VARCHAR[],
    incident_id VARCHAR,
    suppression_id VARCHAR,
    held_reason VARCHAR,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Entities whose later events keep attaching to an alert while its incident is open.
CREATE TABLE IF NOT EXISTS alert_tracks (
    alert_id VARCHAR NOT NULL,
    ek UBIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS alert_events (
    alert_id VARCHAR NOT NULL,
    event_id VARCHAR NOT NULL,
    time TIMESTAMP NOT NULL
);

-- Incidents. Counts are kept as events arrive; the summary, evidence and entity
-- lists are written from these tables when an incident is read.
CREATE TABLE IF NOT EXISTS incidents (
    incident_id VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    severity VARCHAR NOT NULL,
    status VARCHAR NOT NULL,          -- open, acknowledged, resolved, false_positive
    first_seen TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL,
    detected_at TIMESTAMP NOT NULL,
    aware_at TIMESTAMP,
    detectors VARCHAR[] NOT NULL,
    subjects BIGINT NOT NULL,
    events BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- The events each incident holds: those of its raised alerts.
CREATE VIEW IF NOT EXISTS incident_events AS
    SELECT a.incident_id, e.event_id, e.time, e.alert_id
    FROM alert_events e JOIN alerts a ON a.alert_id = e.alert_id
    WHERE a.incident_id IS NOT NULL;

-- The running blast radius: distinct subjects (and the fields each gave up) so far.
CREATE TABLE IF NOT EXISTS incident_subjects (
    incident_id VARCHAR NOT NULL,
    subject_id VARCHAR NOT NULL,
    first_time TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS incident_fields (
    incident_id VARCHAR NOT NULL,
    field VARCHAR NOT NULL
);

-- Principals, tokens, keys, IPs, ... seen in each incident's events; `lead` marks the
-- entities its alerts were about (with the principal type of the traffic), `linkable`
-- those seen in events of one actor rather than of a crowd. Merging and the summary read them.
CREATE TABLE IF NOT EXISTS incident_entities (
    incident_id VARCHAR NOT NULL,
    etype VARCHAR NOT NULL,           -- principal, token, key, ip, asn, country, fingerprint, user_agent, prefix
    value VARCHAR NOT NULL,
    lead BOOLEAN NOT NULL,
    ptype VARCHAR,
    linkable BOOLEAN NOT NULL
);

-- Who did what to an incident, when and why: the lifecycle audit.
CREATE TABLE IF NOT EXISTS incident_log (
    incident_id VARCHAR NOT NULL,
    at_time TIMESTAMP NOT NULL,
    action VARCHAR NOT NULL,          -- opened, escalated, acknowledged, resolved, false_positive, reopened, suppressed, unsuppressed
    actor VARCHAR NOT NULL,
    detail VARCHAR
);

CREATE TABLE IF NOT EXISTS suppressions (
    suppression_id VARCHAR NOT NULL,
    detector VARCHAR NOT NULL,        -- a detector name, or * for any
    etype VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    scope VARCHAR NOT NULL,           -- pattern (this detector on this entity) or entity (any detector)
    reason VARCHAR NOT NULL,
    created_by VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    incident_id VARCHAR,
    hits BIGINT NOT NULL,
    revoked_at TIMESTAMP,
    revoked_by VARCHAR,
    revoke_reason VARCHAR
);

-- Notifications waiting to be sent, sent, or given up on; detection only appends here.
CREATE TABLE IF NOT EXISTS notify_outbox (
    notification_id VARCHAR NOT NULL,
    incident_id VARCHAR NOT NULL,
    trigger VARCHAR NOT NULL,         -- new, escalated
    channel VARCHAR NOT NULL,
    payload JSON NOT NULL,
    status VARCHAR NOT NULL,          -- pending, sent, failed
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error VARCHAR,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
