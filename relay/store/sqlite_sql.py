"""Every SQL statement of the SQLite backend (schema changes live in migrations/sqlite/)."""

from __future__ import annotations

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # FULL: every commit fsyncs the WAL, so an acknowledged write survives power loss.
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
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
    "occurred_at"
)
INSERT_DEPLOYMENT = (
    f"INSERT INTO deployments ({DEPLOYMENT_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_DEPLOYMENT = (
    f"SELECT seq, {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ? AND kind = ? AND component = ?"
)
LIST_DEPLOYMENTS = (
    f"SELECT seq, {DEPLOYMENT_COLUMNS} FROM deployments WHERE kind = ? AND component = ?"
)
LATEST_PER_STAGE = f"""
SELECT seq, {DEPLOYMENT_COLUMNS} FROM (
    SELECT *, ROW_NUMBER() OVER (
        PARTITION BY component, stage ORDER BY occurred_at DESC, seq DESC
    ) AS rn
    FROM deployments WHERE kind = 'deployment'
) WHERE rn = 1 ORDER BY component, stage
"""
LIST_COMPONENTS = "SELECT slug, created_at FROM components ORDER BY slug"

INSERT_EVENT = (
    "INSERT INTO events (id, type, deployment_id, component, created_at, payload) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_DELIVERY = (
    "INSERT INTO deliveries (id, event_id, event_seq, deployment_id, forwarder, "
    "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
DELIVERY_SUMMARY = """
SELECT forwarder, status, attempts FROM deliveries
WHERE deployment_id = ? ORDER BY event_seq, forwarder
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
