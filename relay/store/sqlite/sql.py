"""Every SQL statement of the SQLite backend (schema changes live in migrations/sqlite/)."""

from __future__ import annotations

# The WAL file keeps the size of its longest run (overwriting is faster than appending);
# when it starts over it is cut back to this, so that a burst does not hold disk forever.
WAL_SIZE_LIMIT = 4 * 1024 * 1024

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}",
    # FULL while migrating; then NORMAL, the engine syncing the WAL itself (sqlite/sync.py).
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    # Checkpoints run on their own thread (sqlite/checkpoint.py), never inside a commit.
    "PRAGMA wal_autocheckpoint=0",
)

READER_PRAGMAS = ("PRAGMA query_only=ON", "PRAGMA busy_timeout=5000")

CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""
SELECT_MIGRATIONS = "SELECT version FROM schema_migrations ORDER BY version"
INSERT_MIGRATION = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
MAX_MIGRATION = "SELECT MAX(version) FROM schema_migrations"

INSERT_COMPONENT = "INSERT OR IGNORE INTO components (slug, created_at) VALUES (?, ?)"
COMPONENT_EXISTS = "SELECT 1 FROM components WHERE slug = ?"

DEPLOYMENT_COLUMNS = (
    "id, kind, component, version, result, status, stage, host, code_name, started_at, "
    "finished_at, commit_sha, branch, tag, meta_data, triggered_by, created_at, updated_at, "
    "occurred_at, committed_at"
)
INSERT_DEPLOYMENT = (
    f"INSERT INTO deployments ({DEPLOYMENT_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Columns of a read: the written ones, then the rollback facts (migration 0003).
READ_COLUMNS = f"seq, {DEPLOYMENT_COLUMNS}, is_rollback, reverted_at, reverted_by"
SELECT_DEPLOYMENT = (
    f"SELECT {READ_COLUMNS} FROM deployments WHERE id = ? AND kind = ? AND component = ?"
)
LIST_DEPLOYMENTS = f"SELECT {READ_COLUMNS} FROM deployments WHERE kind = ? AND component = ?"
LATEST_PER_STAGE = f"""
SELECT {READ_COLUMNS} FROM (
    SELECT *, ROW_NUMBER() OVER (
        PARTITION BY component, stage ORDER BY occurred_at DESC, seq DESC
    ) AS rn
    FROM deployments WHERE kind = 'deployment'
) WHERE rn = 1 ORDER BY component, stage
"""
LIST_COMPONENTS = "SELECT slug, created_at FROM components ORDER BY slug"

# Events and deliveries keep their ids, times and links compact (migration 0010,
# sqlite/compact.py); the deployment's text id comes from a join where a query answers it.
INSERT_EVENT = (
    "INSERT INTO events (id, type, deployment_seq, component, created_at, payload) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_EVENT_WITH_SEQ = (
    "INSERT INTO events (seq, id, type, deployment_seq, component, created_at, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# The highest seq ever given (AUTOINCREMENT keeps it even when that event is pruned).
LAST_EVENT_SEQ = "SELECT seq FROM sqlite_sequence WHERE name = 'events'"
SELECT_DEPLOYMENT_SEQ = "SELECT seq FROM deployments WHERE id = ?"
DEPLOYMENT_SEQ = f"({SELECT_DEPLOYMENT_SEQ})"
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, event_seq, deployment_seq, forwarder, next_attempt_at, "
    "created_at, updated_at) VALUES (?, ?, {deployment}, ?, ?, ?, ?)"
)
INSERT_DELIVERY = _INSERT_DELIVERY.format(deployment="?")
# A replay knows the event's deployment by its id only.
INSERT_REPLAY_DELIVERY = _INSERT_DELIVERY.format(deployment=DEPLOYMENT_SEQ)
DELIVERY_SUMMARY = f"""
SELECT forwarder, status, attempts FROM deliveries
WHERE deployment_seq = {DEPLOYMENT_SEQ} ORDER BY event_seq, forwarder
"""

SELECT_IDEMPOTENCY = (
    "SELECT fingerprint, status, body, location FROM idempotency_keys WHERE scope = ? AND key = ?"
)
INSERT_IDEMPOTENCY = (
    "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, location, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)

TOKEN_COLUMNS = "id, name, token_hash, scopes, components, created_at, revoked_at"
INSERT_TOKEN = f"INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
FIND_TOKEN = f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = ? AND revoked_at IS NULL"
LIST_TOKENS = f"SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, name"
REVOKE_TOKEN = "UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL"

# -- outbox -----------------------------------------------------------------
# Ids and payload come as stored (see SqliteOutbox.claim): converting them in SQL would
# call back into Python, and take the GIL, in the middle of the writer's query.
CLAIM_CANDIDATES = """
SELECT d.seq, d.id, d.forwarder, d.attempts, p.id AS deployment_id,
       COALESCE(d.state, '{}') AS state,
       e.id AS event_id, e.type AS event_type, e.created_at AS event_created_at, e.payload,
       s.state AS shared
FROM deliveries d
JOIN events e ON e.seq = d.event_seq
LEFT JOIN deployments p ON p.seq = d.deployment_seq
LEFT JOIN delivery_shared s ON s.deployment_id = p.id AND s.forwarder = d.forwarder
WHERE d.forwarder = ? AND d.status = 'pending' AND d.next_attempt_at <= ?
  AND (d.locked_until IS NULL OR d.locked_until < ?)
  AND NOT EXISTS (
      SELECT 1 FROM deliveries q
      WHERE q.deployment_seq = d.deployment_seq AND q.forwarder = d.forwarder
        AND q.status = 'pending' AND q.event_seq < d.event_seq
  )
ORDER BY d.next_attempt_at, d.seq
LIMIT ?
"""
LEASE = "UPDATE deliveries SET locked_until = ?, locked_by = ? WHERE seq = ?"
LEASE_OWNERS = "SELECT DISTINCT locked_by FROM deliveries WHERE locked_by IS NOT NULL"
RELEASE_OWNER = "UPDATE deliveries SET locked_until = NULL, locked_by = NULL WHERE locked_by = ?"
# A loose scan of deliveries_pending: one seek for each forwarder with waiting deliveries,
# then one for its earliest time, instead of reading every waiting delivery.
_NEXT_DUE = """
WITH RECURSIVE f(name) AS (
    SELECT MIN(forwarder) FROM deliveries WHERE status = 'pending'
    UNION ALL
    SELECT (SELECT MIN(forwarder) FROM deliveries WHERE status = 'pending' AND forwarder > f.name)
    FROM f WHERE f.name IS NOT NULL
)
SELECT MIN((SELECT MIN(next_attempt_at) FROM deliveries
             WHERE status = 'pending' AND forwarder = f.name{after}))
FROM f WHERE f.name IS NOT NULL
"""
NEXT_DUE = _NEXT_DUE.format(after="")
NEXT_DUE_AFTER = _NEXT_DUE.format(after=" AND next_attempt_at > ?")

INSERT_ATTEMPT = """
INSERT INTO attempts (delivery_seq, number, started_at, duration_ms, status_code, outcome,
                      error, response_excerpt)
VALUES ((SELECT seq FROM deliveries WHERE id = ?), ?, ?, ?, ?, ?, ?, ?)
"""
COMPLETE_DELIVERY = """
UPDATE deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?,
    locked_until = NULL, locked_by = NULL, state = ?, last_error = ?, last_status_code = ?,
    updated_at = ?, delivered_at = ?
WHERE id = ?
"""
UPSERT_SHARED = """
INSERT INTO delivery_shared (deployment_id, forwarder, state) VALUES (?, ?, ?)
ON CONFLICT (deployment_id, forwarder) DO UPDATE SET state = excluded.state
"""

DELIVERY_COLUMNS = """
d.seq, relay_id_text(d.id) AS id, relay_id_text(e.id) AS event_id, e.type AS event_type,
p.id AS deployment_id, e.component, d.forwarder, d.status, d.attempts, d.next_attempt_at,
d.last_error, d.last_status_code, d.created_at, d.updated_at, d.delivered_at
"""
SELECT_DELIVERIES = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq "
    "LEFT JOIN deployments p ON p.seq = d.deployment_seq WHERE 1 = 1"
)
SELECT_ATTEMPTS = """
SELECT number, started_at, duration_ms, status_code, outcome, error, response_excerpt
FROM attempts WHERE delivery_seq = ? ORDER BY number, id
"""
# The lease stays: a delivery whose send is in flight must not be claimed a second time.
RETRY_NOW = """
UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?
WHERE id = ?
"""

# Uses deliveries_pending (forwarder, next_attempt_at): only the rows waiting.
RESUME_DUE = """
UPDATE deliveries SET next_attempt_at = ?, updated_at = ?
WHERE forwarder = ? AND status = 'pending' AND next_attempt_at > ?
"""

EVENTS_BETWEEN = """
SELECT relay_id_text(e.id) AS id, e.seq, e.type, p.id AS deployment_id, e.created_at,
       relay_payload(e.payload) AS payload
FROM events e LEFT JOIN deployments p ON p.seq = e.deployment_seq
WHERE e.created_at >= ? AND e.created_at < ? ORDER BY e.seq
"""

COUNT_BY_STATUS = """
SELECT forwarder, status, COUNT(*) AS n,
       MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest
FROM deliveries GROUP BY forwarder, status
"""
ATTEMPT_OUTCOMES = """
SELECT d.forwarder, a.outcome, COUNT(*) AS n FROM attempts a
JOIN deliveries d ON d.seq = a.delivery_seq
WHERE a.started_at >= ? GROUP BY d.forwarder, a.outcome
"""
LAST_ERRORS = """
SELECT forwarder, last_error, MAX(updated_at) AS at FROM deliveries
WHERE last_error IS NOT NULL AND status <> 'skipped' GROUP BY forwarder
"""

UPSERT_FORWARDER_STATE = """
INSERT INTO forwarder_states (name, disabled_reason, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET disabled_reason = excluded.disabled_reason,
    updated_at = excluded.updated_at
"""
DISABLED_FORWARDERS = (
    "SELECT name, disabled_reason FROM forwarder_states WHERE disabled_reason IS NOT NULL"
)

# -- live feed (relay/store/sqlite/feed.py) ------------------------------------
BEGIN_READ = "BEGIN"  # a reader's snapshot (WAL): the feed's queries see one commit state
END_READ = "COMMIT"
FEED_POSITION = """
SELECT (SELECT COALESCE(MAX(seq), 0) FROM events) AS events,
       (SELECT COALESCE(MAX(id), 0) FROM attempts) AS attempts,
       (SELECT COALESCE(MAX(seq), 0) FROM outputs) AS outputs
"""
FEED_EVENTS = """
SELECT e.seq, relay_id_text(e.id) AS id, e.type, p.id AS deployment_id, e.component,
       e.created_at, relay_payload(e.payload) AS payload
FROM events e LEFT JOIN deployments p ON p.seq = e.deployment_seq
WHERE e.seq > ? ORDER BY e.seq LIMIT ?
"""
FEED_ATTEMPTS = """
SELECT a.id AS seq, a.number, a.started_at, a.duration_ms, a.status_code, a.outcome, a.error,
       relay_id_text(d.id) AS delivery_id, d.forwarder, p.id AS deployment_id,
       relay_id_text(e.id) AS event_id, e.type AS event_type, e.component,
       p.stage
FROM attempts a
JOIN deliveries d ON d.seq = a.delivery_seq
JOIN events e ON e.seq = d.event_seq
LEFT JOIN deployments p ON p.seq = d.deployment_seq
WHERE a.id > ? ORDER BY a.id LIMIT ?
"""

# -- lifecycle (relay/store/sqlite/lifecycle.py) --------------------------------
UPDATE_TRANSITION = """
UPDATE deployments SET result = ?, status = ?, host = ?, code_name = ?, started_at = ?,
    finished_at = ?, commit_sha = ?, branch = ?, tag = ?, meta_data = ?, updated_at = ?,
    occurred_at = ?, committed_at = ?
WHERE id = ? AND status = ?
"""
SELECT_DEPLOYMENT_BY_ID = f"SELECT {READ_COLUMNS} FROM deployments WHERE id = ?"
LATEST_OF_VERSION = f"""
SELECT {READ_COLUMNS} FROM deployments
WHERE kind = 'deployment' AND component = ? AND version = ? AND stage IS ?
ORDER BY seq DESC LIMIT 1
"""
# The two latest successful deployments of a component and stage: the live one first.
LIVE_TOP_TWO = """
SELECT id, version, occurred_at, seq FROM deployments
WHERE kind = 'deployment' AND status = 'success' AND component = ? AND stage IS ?
ORDER BY occurred_at DESC, seq DESC LIMIT 2
"""
# INDEXED BY: left to itself the planner walks the whole success history by time.
VERSION_LIVE_BEFORE = """
SELECT 1 FROM deployments INDEXED BY deployments_by_version
WHERE component = ? AND version = ? AND stage IS ? AND kind = 'deployment'
  AND status = 'success' AND (occurred_at, seq) < (?, ?)
LIMIT 1
"""
MARK_ROLLBACK = "UPDATE deployments SET is_rollback = 1 WHERE id = ?"
MARK_REVERTED = "UPDATE deployments SET reverted_at = ?, reverted_by = ? WHERE id = ?"
LIVE_ID = """
SELECT id FROM deployments
WHERE kind = 'deployment' AND status = 'success' AND component = ? AND stage IS ?
ORDER BY occurred_at DESC, seq DESC LIMIT 1
"""

INSERT_OUTPUT = "INSERT INTO outputs (deployment_id, created_at, text) VALUES (?, ?, ?)"
SELECT_OUTPUT = "SELECT text FROM outputs WHERE deployment_id = ? ORDER BY seq"
SELECT_OUTPUT_TOTALS = "SELECT lines, bytes FROM output_totals WHERE deployment_id = ?"
UPSERT_OUTPUT_TOTALS = """
INSERT INTO output_totals (deployment_id, lines, bytes) VALUES (?, ?, ?)
ON CONFLICT (deployment_id) DO UPDATE SET lines = excluded.lines, bytes = excluded.bytes
"""

INSERT_RELEASE = """
INSERT INTO releases (id, name, code_name, notes, triggered_by, created_at)
VALUES (?, ?, ?, ?, ?, ?)
"""
INSERT_RELEASE_DEPLOYMENT = (
    "INSERT INTO release_deployments (release_id, position, deployment_id) VALUES (?, ?, ?)"
)
RELEASE_COLUMNS = "seq, id, name, code_name, notes, triggered_by, created_at"
SELECT_RELEASE = f"SELECT {RELEASE_COLUMNS} FROM releases WHERE id = ?"
LIST_RELEASES = f"SELECT {RELEASE_COLUMNS} FROM releases WHERE 1 = 1"
# Column names are unique across both tables, so READ_COLUMNS needs no prefix.
RELEASE_DEPLOYMENTS = f"""
SELECT {READ_COLUMNS} FROM release_deployments r
JOIN deployments d ON d.id = r.deployment_id
WHERE r.release_id = ? ORDER BY r.position
"""
FEED_OUTPUTS = """
SELECT o.seq, o.deployment_id, d.component, d.stage, o.created_at, o.text
FROM outputs o JOIN deployments d ON d.id = o.deployment_id
WHERE o.seq > ? ORDER BY o.seq LIMIT ?
"""

# -- several instances' concerns (relay/store/sqlite/cluster.py) ---------------
RENEW_LEASE = (
    "UPDATE deliveries SET locked_until = ? WHERE id = ? AND locked_by = ? AND status = 'pending'"
)
SELECT_CIRCUIT = "SELECT failures, opened_until, cooldown_ms FROM forwarder_states WHERE name = ?"
SELECT_CIRCUITS = "SELECT name, failures, opened_until, cooldown_ms FROM forwarder_states"
UPSERT_CIRCUIT = """
INSERT INTO forwarder_states (name, failures, opened_until, cooldown_ms, updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET failures = excluded.failures,
    opened_until = excluded.opened_until, cooldown_ms = excluded.cooldown_ms,
    updated_at = excluded.updated_at
"""

# -- retention (relay/store/sqlite/retention.py) -----------------------------------
# Each rule picks at most one batch of its own rows (the indexes of migration 0005 find
# them by time), then deletes them and what goes with them, one id at a time.
OLD_ATTEMPTS = """
SELECT a.id FROM attempts a JOIN deliveries d ON d.seq = a.delivery_seq
WHERE a.started_at < ? AND d.status <> 'pending'
LIMIT ?
"""
DELETE_ATTEMPT = "DELETE FROM attempts WHERE id = ?"
# `status <> 'pending'` exactly as in the partial index deliveries_finished.
OLD_DELIVERIES = """
SELECT seq FROM deliveries WHERE status <> 'pending' AND updated_at < ?
LIMIT ?
"""
DELETE_DELIVERY_ATTEMPTS = "DELETE FROM attempts WHERE delivery_seq = ?"
DELETE_DELIVERY = "DELETE FROM deliveries WHERE seq = ?"
OLD_EVENTS = """
SELECT e.seq FROM events e
WHERE e.created_at < ?
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.status = 'pending')
LIMIT ?
"""
DELETE_EVENT_ATTEMPTS = """
DELETE FROM attempts WHERE delivery_seq IN (SELECT seq FROM deliveries WHERE event_seq = ?)
"""
DELETE_EVENT_DELIVERIES = "DELETE FROM deliveries WHERE event_seq = ?"
DELETE_EVENT = "DELETE FROM events WHERE seq = ?"
# Never the latest record of its component, kind and stage, nor the live deployment.
OLD_DEPLOYMENTS = """
SELECT d.id FROM deployments d
WHERE d.updated_at < ?
  AND NOT EXISTS (
      SELECT 1 FROM deliveries p WHERE p.deployment_seq = d.seq AND p.status = 'pending'
  )
  AND EXISTS (
      SELECT 1 FROM deployments n
      WHERE n.component = d.component AND n.kind = d.kind AND n.stage IS d.stage
        AND (n.occurred_at, n.seq) > (d.occurred_at, d.seq)
  )
  AND (d.kind <> 'deployment' OR d.status <> 'success' OR EXISTS (
      SELECT 1 FROM deployments n
      WHERE n.component = d.component AND n.kind = 'deployment' AND n.status = 'success'
        AND n.stage IS d.stage AND (n.occurred_at, n.seq) > (d.occurred_at, d.seq)
  ))
LIMIT ?
"""
# A delivery has its event's deployment (insert_event, add_deliveries).
DELETE_DEPLOYMENT_ATTEMPTS = f"""
DELETE FROM attempts WHERE delivery_seq IN (
    SELECT seq FROM deliveries WHERE deployment_seq = {DEPLOYMENT_SEQ}
)
"""
DELETE_DEPLOYMENT_DELIVERIES = f"DELETE FROM deliveries WHERE deployment_seq = {DEPLOYMENT_SEQ}"
DELETE_DEPLOYMENT_EVENTS = f"DELETE FROM events WHERE deployment_seq = {DEPLOYMENT_SEQ}"
DELETE_DEPLOYMENT_SHARED = "DELETE FROM delivery_shared WHERE deployment_id = ?"
DELETE_DEPLOYMENT_OUTPUTS = "DELETE FROM outputs WHERE deployment_id = ?"
DELETE_DEPLOYMENT_OUTPUT_TOTALS = "DELETE FROM output_totals WHERE deployment_id = ?"
DELETE_DEPLOYMENT_LINKS = "DELETE FROM release_deployments WHERE deployment_id = ?"
DELETE_DEPLOYMENT = "DELETE FROM deployments WHERE id = ?"
OLD_IDEMPOTENCY_KEYS = "SELECT rowid FROM idempotency_keys WHERE created_at < ? LIMIT ?"
DELETE_IDEMPOTENCY_KEY = "DELETE FROM idempotency_keys WHERE rowid = ?"
