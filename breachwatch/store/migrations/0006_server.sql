-- The server: machine API keys, dashboard accounts and their sessions, the
-- append-only audit trail of who read or changed what, and the files taken in
-- from watched folders.

-- API keys: only a SHA-256 of the secret is kept; the secret is shown once.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id VARCHAR NOT NULL,          -- public id, also the visible prefix of the secret
    name VARCHAR NOT NULL,            -- what the key is for, e.g. 'gateway-eu-1'
    roles VARCHAR[] NOT NULL,         -- ingest, analyst, dpo, admin
    secret_sha256 VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by VARCHAR NOT NULL,
    expires_at TIMESTAMP,             -- NULL: until revoked
    revoked_at TIMESTAMP,
    revoked_by VARCHAR,
    last_used_at TIMESTAMP
);

-- Dashboard accounts: passwords hashed with a memory-hard function (argon2id).
CREATE TABLE IF NOT EXISTS users (
    username VARCHAR NOT NULL,
    roles VARCHAR[] NOT NULL,
    password_hash VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by VARCHAR NOT NULL,
    disabled_at TIMESTAMP,
    disabled_by VARCHAR,
    last_login_at TIMESTAMP
);

-- Dashboard sessions: only a SHA-256 of the cookie value is kept.
CREATE TABLE IF NOT EXISTS sessions (
    session_sha256 VARCHAR NOT NULL,
    username VARCHAR NOT NULL,
    csrf_token VARCHAR NOT NULL,      -- echoed by every form the session submits
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,    -- absolute end, whatever the activity
    last_seen_at TIMESTAMP NOT NULL,  -- idle timeout runs from here
    ended_at TIMESTAMP,
    client VARCHAR
);

-- Every read of subject-level data and every privileged change, one row each,
-- hash-chained row to row so an edited, deleted or reordered row shows.
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    actor VARCHAR NOT NULL,           -- 'key:<key_id>', 'user:<name>' or 'anonymous'
    roles VARCHAR[],
    action VARCHAR NOT NULL,          -- e.g. incident.view, manifest.download, apikey.create, login.failed
    resource VARCHAR,                 -- e.g. 'incident/INC-0001'
    outcome VARCHAR NOT NULL,         -- ok, denied, failed
    client VARCHAR,                   -- caller address
    detail JSON,
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL
);

-- Files taken in from watched folders, so none is read twice.
CREATE TABLE IF NOT EXISTS watched_files (
    path VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    ingested_at TIMESTAMP NOT NULL,
    records BIGINT,
    loaded BIGINT,
    duplicates BIGINT,
    quarantined BIGINT
);
