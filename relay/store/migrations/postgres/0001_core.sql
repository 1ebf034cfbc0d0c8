-- Core schema on PostgreSQL: the same tables as SQLite's 0001 + 0002, with native types
-- (timestamptz, json kept as written so that key order survives, text[] for token lists).
CREATE TABLE components (
    slug TEXT PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE deployments (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    component TEXT NOT NULL REFERENCES components (slug),
    version TEXT NOT NULL,
    result TEXT,
    status TEXT NOT NULL,
    stage TEXT,
    host TEXT,
    code_name TEXT,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    commit_sha TEXT,
    branch TEXT,
    tag TEXT,
    meta_data JSON NOT NULL DEFAULT '{}',
    triggered_by TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- the time listings sort and filter on: finished_at, else started_at, else created_at
    occurred_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX deployments_listing ON deployments (component, kind, occurred_at, seq);

CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    deployment_id TEXT,
    component TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    payload JSON NOT NULL
);
CREATE INDEX events_by_time ON events (created_at);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES events (id),
    event_seq BIGINT NOT NULL,
    deployment_id TEXT,
    forwarder TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ,
    locked_by TEXT,
    state JSON NOT NULL DEFAULT '{}',
    last_error TEXT,
    last_status_code INTEGER,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_claim ON deliveries (forwarder, status, next_attempt_at);
CREATE INDEX deliveries_by_deployment ON deliveries (deployment_id, forwarder, event_seq);
-- Only pending rows matter to claims: a partial index stays small however many are done.
CREATE INDEX deliveries_pending ON deliveries (forwarder, next_attempt_at, event_seq)
    WHERE status = 'pending';
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE attempts (
    id BIGSERIAL PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    number INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    status_code INTEGER,
    outcome TEXT NOT NULL,
    error TEXT,
    response_excerpt TEXT
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id);
CREATE INDEX attempts_by_time ON attempts (started_at);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT[] NOT NULL,
    components TEXT[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body JSON NOT NULL,
    location TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE delivery_shared (
    deployment_id TEXT NOT NULL,
    forwarder TEXT NOT NULL,
    state JSON NOT NULL,
    PRIMARY KEY (deployment_id, forwarder)
);

-- Per forwarder, shared by every instance: the durable disabled switch and the circuit
-- breaker (consecutive failures, open until, length of the current open period).
CREATE TABLE forwarder_states (
    name TEXT PRIMARY KEY,
    disabled_reason TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    opened_until TIMESTAMPTZ,
    cooldown_ms BIGINT,
    updated_at TIMESTAMPTZ NOT NULL
);
