-- Scope: address-book snapshots, manifests (one run per `breachwatch scope`),
-- the awareness time and its recorded changes, duties done, and the breach lookup audit.

-- What each member's address book held, and when. Plain gateway logs name only the
-- member whose book was read; these rows let scope add the recipients it held then.
CREATE TABLE IF NOT EXISTS address_book_snapshots (
    member_id VARCHAR NOT NULL,
    recipient_id VARCHAR NOT NULL,
    entry_id VARCHAR,                 -- the address-book entry; matched against the route's entry parameter
    fields VARCHAR[],                 -- fields the entry holds; NULL: every field the endpoint returns
    valid_from TIMESTAMP NOT NULL,
    valid_to TIMESTAMP,               -- NULL: still held
    source VARCHAR,
    loaded_at TIMESTAMP NOT NULL
);

-- One row per scope run; a later run of the same incident is a staged update.
CREATE TABLE IF NOT EXISTS scope_runs (
    run_id VARCHAR NOT NULL,
    incident_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,         -- 1 = first notice, 2.. = updates as scope grows
    created_at TIMESTAMP NOT NULL,
    created_by VARCHAR,
    steps JSON,                       -- every proposed step with its decision and evidence
    subjects BIGINT,
    members BIGINT,
    non_members BIGINT,
    pairs BIGINT,                     -- (subject, field) pairs
    out_dir VARCHAR
);

-- The manifest rows of each run: ids only, never names or contact details.
CREATE TABLE IF NOT EXISTS scope_subjects (
    run_id VARCHAR NOT NULL,
    incident_id VARCHAR NOT NULL,
    subject_id VARCHAR NOT NULL,
    subject_type VARCHAR NOT NULL,    -- member, non_member
    fields VARCHAR[] NOT NULL,
    first_exposure TIMESTAMP,
    last_exposure TIMESTAMP,
    reads BIGINT,
    endpoints VARCHAR[]
);

-- Changes to when the company became aware; append-only, each with its reason.
CREATE TABLE IF NOT EXISTS scope_aware_at (
    incident_id VARCHAR NOT NULL,
    aware_at TIMESTAMP NOT NULL,
    previous TIMESTAMP,
    reason VARCHAR NOT NULL,
    changed_by VARCHAR NOT NULL,
    changed_at TIMESTAMP NOT NULL
);

-- Duties carried out (regulator report sent, notices sent), so reports can say on time or late.
CREATE TABLE IF NOT EXISTS scope_duties (
    incident_id VARCHAR NOT NULL,
    duty VARCHAR NOT NULL,
    done_at TIMESTAMP NOT NULL,
    recorded_by VARCHAR NOT NULL,
    note VARCHAR,
    recorded_at TIMESTAMP NOT NULL
);

-- Every breach lookup, hash-chained row to row so a deleted or edited row shows.
CREATE TABLE IF NOT EXISTS lookup_audit (
    seq BIGINT NOT NULL,
    looked_up_at TIMESTAMP NOT NULL,
    client VARCHAR,                   -- caller address or name, for rate limits
    outcome VARCHAR NOT NULL,         -- ok, denied, rate_limited
    subject_id VARCHAR,               -- the verified subject (ok only)
    claimed_subject VARCHAR,          -- what an unverified token claimed, for investigating abuse
    token_sha256 VARCHAR,
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL
);
