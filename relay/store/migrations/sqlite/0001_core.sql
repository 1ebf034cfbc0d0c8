-- Core schema: components, deployments/builds, the event outbox, tokens, idempotency keys.
CREATE TABLE components (
    slug TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

CREATE TABLE deployments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    component TEXT NOT NULL REFERENCES components (slug),
    version TEXT NOT NULL,
    result TEXT,
    status TEXT NOT NULL,
    stage TEXT,
    host TEXT,
    code_name TEXT,
    started_at TEXT,
    finished_at TEXT,
    commit_sha TEXT,
    branch TEXT,
    tag TEXT,
    meta_data TEXT NOT NULL DEFAULT '{}',
    triggered_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- the time listings sort and filter on: finished_at, else started_at, else created_at
    occurred_at TEXT NOT NULL
);
CREATE INDEX deployments_listing ON deployments (component, kind, occurred_at, seq);

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    deployment_id TEXT,
    component TEXT NOT NULL,
    created_at TEXT NOT NULL,
    payload TEXT NOT NULL
);

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES events (id),
    event_seq INTEGER NOT NULL,
    deployment_id TEXT,
    forwarder TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    locked_until TEXT,
    locked_by TEXT,
    state TEXT NOT NULL DEFAULT '{}',
    last_error TEXT,
    last_status_code INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_deployment ON deliveries (deployment_id, forwarder, event_seq);

CREATE TABLE attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    number INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    status_code INTEGER,
    outcome TEXT NOT NULL,
    error TEXT,
    response_excerpt TEXT
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    components TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE UNIQUE INDEX tokens_active_name ON tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    location TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
