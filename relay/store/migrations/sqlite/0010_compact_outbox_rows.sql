-- Compact outbox rows: deliveries and events hold integers where they held text. A
-- delivery's own seq is the key its attempts point at; deliveries and events name their
-- event and deployment by seq instead of by text id; their times are microseconds since
-- the epoch; their ids are the 16 bytes of the UUID (any other id stays text). The API
-- shows the same ids and times (relay/store/sqlite/compact.py, whose functions the engine
-- registers for this migration). Payloads are left as they are: text is still read, and
-- new ones are written deflated (payload format 1).
CREATE TABLE events_compact (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id NOT NULL UNIQUE,
    type TEXT NOT NULL,
    deployment_seq INTEGER,
    component TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    payload NOT NULL
);
INSERT INTO events_compact (seq, id, type, deployment_seq, component, created_at, payload)
SELECT e.seq, relay_id_key(e.id), e.type, p.seq, e.component, relay_micros(e.created_at),
       e.payload
FROM events e LEFT JOIN deployments p ON p.id = e.deployment_id
ORDER BY e.seq;
-- Event seqs are never given twice: the live feed's cursor relies on it.
DELETE FROM sqlite_sequence WHERE name = 'events_compact';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'events_compact', seq FROM sqlite_sequence WHERE name = 'events';

CREATE TABLE deliveries_compact (
    seq INTEGER PRIMARY KEY,
    id NOT NULL UNIQUE,
    event_seq INTEGER NOT NULL REFERENCES events_compact (seq),
    deployment_seq INTEGER,
    forwarder TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    locked_until INTEGER,
    locked_by TEXT,
    -- NULL for an empty state, the usual case
    state TEXT,
    last_error TEXT,
    last_status_code INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    delivered_at INTEGER
);
INSERT INTO deliveries_compact (
    seq, id, event_seq, deployment_seq, forwarder, status, attempts, next_attempt_at,
    locked_until, locked_by, state, last_error, last_status_code, created_at, updated_at,
    delivered_at
)
SELECT d.rowid, relay_id_key(d.id), d.event_seq, p.seq, d.forwarder, d.status,
       d.attempts, relay_micros(d.next_attempt_at), relay_micros(d.locked_until),
       d.locked_by, NULLIF(d.state, '{}'), d.last_error, d.last_status_code,
       relay_micros(d.created_at), relay_micros(d.updated_at), relay_micros(d.delivered_at)
FROM deliveries d LEFT JOIN deployments p ON p.id = d.deployment_id
ORDER BY d.rowid;

CREATE TABLE attempts_compact (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_seq INTEGER NOT NULL REFERENCES deliveries_compact (seq),
    number INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    status_code INTEGER,
    outcome TEXT NOT NULL,
    error TEXT,
    response_excerpt TEXT
);
INSERT INTO attempts_compact (
    id, delivery_seq, number, started_at, duration_ms, status_code, outcome, error,
    response_excerpt
)
SELECT a.id, d.rowid, a.number, a.started_at, a.duration_ms, a.status_code, a.outcome,
       a.error, a.response_excerpt
FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
ORDER BY a.id;
-- The live feed's cursor is the attempt id: ids of pruned attempts are never given again.
DELETE FROM sqlite_sequence WHERE name = 'attempts_compact';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'attempts_compact', seq FROM sqlite_sequence WHERE name = 'attempts';

DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE events;
ALTER TABLE events_compact RENAME TO events;
ALTER TABLE deliveries_compact RENAME TO deliveries;
ALTER TABLE attempts_compact RENAME TO attempts;

CREATE INDEX events_by_deployment ON events (deployment_seq);
CREATE INDEX events_by_time ON events (created_at);

-- Ties of the claim's order go by seq, which every index entry ends with anyway.
CREATE INDEX deliveries_pending ON deliveries (forwarder, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX deliveries_by_deployment ON deliveries (deployment_seq, forwarder, event_seq);
CREATE INDEX deliveries_by_event ON deliveries (event_seq);
CREATE INDEX deliveries_finished ON deliveries (updated_at) WHERE status <> 'pending';
CREATE INDEX attempts_by_delivery ON attempts (delivery_seq);
CREATE INDEX attempts_by_time ON attempts (started_at);
