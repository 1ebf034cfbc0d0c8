"""Every SQL statement of the PostgreSQL backend (schema changes live in migrations/postgres/).

Many rows go in one statement: arrays of column values are expanded with `unnest`, so
that a batch of any size costs one round trip per statement, not one per row.
"""

from __future__ import annotations

# Wake-ups: a commit that adds due deliveries notifies this channel (one per schema, so
# that relays on different schemas of one database do not wake each other).
CHANNEL = "relay_due"


def channel_for(schema: str) -> str:
    """The notification channel of the relay tables in `schema`."""
    return CHANNEL if schema == "public" else f"{CHANNEL}.{schema}"[:63]


CURRENT_SCHEMA = "SELECT current_schema()"
MIGRATION_LOCK = "SELECT pg_advisory_lock(hashtext('relay.migrations.' || current_schema()))"
MIGRATION_UNLOCK = "SELECT pg_advisory_unlock(hashtext('relay.migrations.' || current_schema()))"
CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""
SELECT_MIGRATIONS = "SELECT version FROM schema_migrations ORDER BY version"
INSERT_MIGRATION = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
MAX_MIGRATION = "SELECT MAX(version) FROM schema_migrations"
# Planner statistics for an outbox that holds rows but has none (autovacuum's first pass
# can be a minute away): without them the claim query picks a plan that reads a
# forwarder's whole backlog for every row it claims. A role that does not own the table
# only gets a warning from ANALYZE, and the statistics come with autovacuum.
ANALYZE_YOUNG_OUTBOX = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM deliveries) AND NOT EXISTS (
        SELECT 1 FROM pg_stats
        WHERE schemaname = current_schema() AND tablename = 'deliveries'
    ) THEN
        ANALYZE deliveries;
    END IF;
END
$$
"""

# -- records ----------------------------------------------------------------------------
INSERT_COMPONENT = (
    "INSERT INTO components (slug, created_at) VALUES ($1, $2) ON CONFLICT (slug) DO NOTHING"
)
COMPONENT_EXISTS = "SELECT 1 FROM components WHERE slug = $1"

DEPLOYMENT_COLUMNS = (
    "id, kind, component, version, result, status, stage, host, code_name, started_at, "
    "finished_at, commit_sha, branch, tag, meta_data, triggered_by, created_at, updated_at, "
    "occurred_at, committed_at"
)
# The same columns as typed arrays, in the order of DEPLOYMENT_COLUMNS.
_DEPLOYMENT_ARRAYS = (
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "timestamptz[]",
    "timestamptz[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "text[]",
    "timestamptz[]",
    "timestamptz[]",
    "timestamptz[]",
    "timestamptz[]",
)


def _unnest(first: int, types: tuple[str, ...]) -> str:
    return ", ".join(f"${first + i}::{t}" for i, t in enumerate(types))


# Columns of a read: the written ones, then the rollback facts (migration 0002).
READ_COLUMNS = f"seq, {DEPLOYMENT_COLUMNS}, is_rollback, reverted_at, reverted_by"


def feed_lock(stream: str) -> str:
    """A CTE taking the transaction lock of one feed stream (events, attempts, outputs).

    The live feed reads each stream by its sequence number. Rows numbered by concurrent
    transactions may commit out of order, and a reader past a later number would never
    see the earlier one; holding this lock from numbering to commit keeps the order of
    numbers the order of commits, in every instance."""
    return (
        f"lock AS (SELECT pg_advisory_xact_lock(hashtext('relay.feed.{stream}.' "
        "|| current_schema())) AS locked)"
    )


# One batch of records: components (created on first use) and deployment rows, in the
# order the requests arrived (seq breaks ties of listings).
INSERT_RECORDS = f"""
WITH comp AS (
    INSERT INTO components (slug, created_at)
    SELECT * FROM unnest($1::text[], $2::timestamptz[])
    ON CONFLICT (slug) DO NOTHING
)
INSERT INTO deployments ({DEPLOYMENT_COLUMNS})
SELECT id, kind, component, version, result, status, stage, host, code_name, started_at,
       finished_at, commit_sha, branch, tag, meta_data::json, triggered_by, created_at,
       updated_at, occurred_at, committed_at
FROM unnest({_unnest(3, _DEPLOYMENT_ARRAYS)})
     WITH ORDINALITY AS u({DEPLOYMENT_COLUMNS}, ord)
ORDER BY ord
RETURNING id, seq
"""

# Events with their outbox rows (delivery rows need the event's seq), then a wake-up for
# the other instances when deliveries were added: sent by PostgreSQL at commit.
INSERT_EVENTS = f"""
WITH {feed_lock("events")}, ev AS (
    INSERT INTO events (id, type, deployment_id, component, created_at, payload)
    SELECT id, type, deployment_id, component, created_at, payload::json
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
         WITH ORDINALITY AS u(id, type, deployment_id, component, created_at, payload, ord),
         lock
    ORDER BY ord
    RETURNING id, seq
), dl AS (
    INSERT INTO deliveries (id, event_id, event_seq, deployment_id, forwarder, next_attempt_at,
                            created_at, updated_at)
    SELECT d.id, d.event_id, ev.seq, d.deployment_id, d.forwarder, d.next_attempt_at,
           d.created_at, d.created_at
    FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[],
                $12::timestamptz[])
         AS d(id, event_id, deployment_id, forwarder, next_attempt_at, created_at)
    JOIN ev ON ev.id = d.event_id
    RETURNING 1
)
SELECT pg_notify($13, $14) WHERE EXISTS (SELECT 1 FROM dl)
"""

INSERT_IDEMPOTENCY = """
INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, location, created_at)
SELECT scope, key, fingerprint, status, body::json, location, created_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[],
            $7::timestamptz[]) AS u(scope, key, fingerprint, status, body, location, created_at)
ON CONFLICT (scope, key) DO NOTHING
RETURNING scope, key
"""
SELECT_IDEMPOTENCY = """
SELECT i.scope, i.key, i.fingerprint, i.status, i.body, i.location
FROM idempotency_keys i
JOIN unnest($1::text[], $2::text[]) AS u(scope, key) ON i.scope = u.scope AND i.key = u.key
"""

SELECT_DEPLOYMENT = (
    f"SELECT {READ_COLUMNS} FROM deployments WHERE id = $1 AND kind = $2 AND component = $3"
)
DELIVERY_SUMMARY = """
SELECT forwarder, status, attempts FROM deliveries
WHERE deployment_id = $1 ORDER BY event_seq, forwarder
"""
LIST_DEPLOYMENTS = f"SELECT {READ_COLUMNS} FROM deployments WHERE kind = $1 AND component = $2"
LATEST_PER_STAGE = f"""
SELECT DISTINCT ON (component, stage) {READ_COLUMNS}
FROM deployments WHERE kind = 'deployment'
ORDER BY component, stage, occurred_at DESC, seq DESC
"""
LIST_COMPONENTS = "SELECT slug, created_at FROM components ORDER BY slug"

TOKEN_COLUMNS = "id, name, token_hash, scopes, components, created_at, revoked_at"
INSERT_TOKEN = f"INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
FIND_TOKEN = f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL"
LIST_TOKENS = f"SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, name"
REVOKE_TOKEN = "UPDATE tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL"

# -- outbox -----------------------------------------------------------------------------
# Lease due deliveries of one forwarder, oldest first, heads of their deployment's queue
# only. SKIP LOCKED: instances claiming at the same moment get different rows, never wait.
CLAIM = """
WITH cand AS (
    SELECT d.id FROM deliveries d
    WHERE d.forwarder = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2
      AND (d.locked_until IS NULL OR d.locked_until < $2)
      AND NOT EXISTS (
          SELECT 1 FROM deliveries p
          WHERE p.deployment_id = d.deployment_id AND p.forwarder = d.forwarder
            AND p.status = 'pending' AND p.event_seq < d.event_seq
      )
    ORDER BY d.next_attempt_at, d.event_seq
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE deliveries d SET locked_until = $4, locked_by = $5
    FROM cand WHERE d.id = cand.id
    RETURNING d.id, d.forwarder, d.attempts, d.deployment_id, d.state, d.event_id,
              d.next_attempt_at, d.event_seq
)
SELECT l.id, l.forwarder, l.attempts, l.deployment_id, l.state,
       e.id AS event_id, e.type AS event_type, e.created_at AS event_created_at, e.payload,
       s.state AS shared
FROM leased l
JOIN events e ON e.id = l.event_id
LEFT JOIN delivery_shared s ON s.deployment_id = l.deployment_id AND s.forwarder = l.forwarder
ORDER BY l.next_attempt_at, l.event_seq
"""
RELEASE_OWNER = """
WITH freed AS (
    UPDATE deliveries SET locked_until = NULL, locked_by = NULL
    WHERE locked_by = $3 RETURNING 1
)
SELECT count(*) AS n, pg_notify($1, $2) FROM freed HAVING count(*) > 0
"""
RENEW = """
UPDATE deliveries SET locked_until = $3
WHERE id = ANY($2::text[]) AND locked_by = $1 AND status = 'pending'
"""
# A loose scan of deliveries_pending: one seek for each forwarder with waiting deliveries,
# then one for its earliest time, instead of reading every waiting delivery.
_NEXT_DUE = """
WITH RECURSIVE f(name) AS (
    SELECT MIN(forwarder) FROM deliveries WHERE status = 'pending'
    UNION ALL
    SELECT (SELECT MIN(d.forwarder) FROM deliveries d
            WHERE d.status = 'pending' AND d.forwarder > f.name)
    FROM f WHERE f.name IS NOT NULL
)
SELECT MIN((SELECT MIN(d.next_attempt_at) FROM deliveries d
            WHERE d.status = 'pending' AND d.forwarder = f.name{after}))
FROM f WHERE f.name IS NOT NULL
"""
NEXT_DUE = _NEXT_DUE.format(after="")
NEXT_DUE_AFTER = _NEXT_DUE.format(after=" AND d.next_attempt_at > $1")

# One batch of completions: attempts, new delivery states, state shared per deployment.
COMPLETE = f"""
WITH {feed_lock("attempts")}, c AS (
    SELECT * FROM unnest(
        $1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::int[],
        $7::timestamptz[], $8::int[], $9::timestamptz[], $10::float8[], $11::int[],
        $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[]
    ) AS c(id, status, next_at, state, error, status_code, finished_at, number, started_at,
           duration_ms, attempt_code, outcome, attempt_error, excerpt, deployment_id,
           forwarder, shared), lock
), a AS (
    INSERT INTO attempts (delivery_id, number, started_at, duration_ms, status_code, outcome,
                          error, response_excerpt)
    SELECT id, number, started_at, duration_ms, attempt_code, outcome, attempt_error, excerpt
    FROM c
), s AS (
    INSERT INTO delivery_shared (deployment_id, forwarder, state)
    SELECT deployment_id, forwarder, shared::json FROM c WHERE shared IS NOT NULL
    ON CONFLICT (deployment_id, forwarder) DO UPDATE SET state = excluded.state
)
UPDATE deliveries d SET status = c.status, attempts = d.attempts + 1,
    next_attempt_at = c.next_at, locked_until = NULL, locked_by = NULL,
    state = c.state::json, last_error = c.error, last_status_code = c.status_code,
    updated_at = c.finished_at,
    delivered_at = CASE WHEN c.status = 'delivered' THEN c.finished_at END
FROM c WHERE d.id = c.id
"""

DELIVERY_COLUMNS = """
d.id, d.event_id, e.type AS event_type, d.deployment_id, e.component, d.forwarder, d.status,
d.attempts, d.next_attempt_at, d.last_error, d.last_status_code, d.created_at, d.updated_at,
d.delivered_at
"""
SELECT_DELIVERIES = (
    f"SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id WHERE true"
)
SELECT_ATTEMPTS = """
SELECT delivery_id, number, started_at, duration_ms, status_code, outcome, error,
       response_excerpt
FROM attempts WHERE delivery_id = ANY($1::text[]) ORDER BY number, id
"""
# The lease stays: a delivery whose send is in flight must not be claimed a second time.
RESUME_DUE = """
WITH r AS (
    UPDATE deliveries SET next_attempt_at = $1, updated_at = $1
    WHERE forwarder = $2 AND status = 'pending' AND next_attempt_at > $1
    RETURNING 1
)
SELECT count(*) AS n, pg_notify($3, $4) FROM r HAVING count(*) > 0
"""
RETRY_NOW = """
WITH r AS (
    UPDATE deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1
    WHERE id = $2 RETURNING id
)
SELECT r.id, pg_notify($3, $4) FROM r
"""

EVENTS_BETWEEN = """
SELECT id, seq, type, deployment_id, created_at, payload FROM events
WHERE created_at >= $1 AND created_at < $2 ORDER BY seq
"""
ADD_DELIVERIES = """
WITH dl AS (
    INSERT INTO deliveries (id, event_id, event_seq, deployment_id, forwarder, next_attempt_at,
                            created_at, updated_at)
    SELECT id, event_id, event_seq, deployment_id, forwarder, at, at, at
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                $6::timestamptz[]) AS u(id, event_id, event_seq, deployment_id, forwarder, at)
    RETURNING 1
)
SELECT count(*) AS n, pg_notify($7, $8) FROM dl
"""

COUNT_BY_STATUS = """
SELECT forwarder, status, COUNT(*) AS n,
       MIN(CASE WHEN status = 'pending' THEN created_at END) AS oldest
FROM deliveries GROUP BY forwarder, status
"""
ATTEMPT_OUTCOMES = """
SELECT d.forwarder, a.outcome, COUNT(*) AS n FROM attempts a
JOIN deliveries d ON d.id = a.delivery_id
WHERE a.started_at >= $1 GROUP BY d.forwarder, a.outcome
"""
LAST_ERRORS = """
SELECT DISTINCT ON (forwarder) forwarder, last_error, updated_at AS at FROM deliveries
WHERE last_error IS NOT NULL AND status <> 'skipped' ORDER BY forwarder, updated_at DESC
"""

UPSERT_FORWARDER_STATE = """
INSERT INTO forwarder_states (name, disabled_reason, updated_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE SET disabled_reason = excluded.disabled_reason,
    updated_at = excluded.updated_at
"""
DISABLED_FORWARDERS = (
    "SELECT name, disabled_reason FROM forwarder_states WHERE disabled_reason IS NOT NULL"
)

# -- several instances ------------------------------------------------------------------
ENSURE_FORWARDER_STATE = """
INSERT INTO forwarder_states (name, updated_at) VALUES ($1, now())
ON CONFLICT (name) DO NOTHING
"""
LOCK_CIRCUIT = (
    "SELECT failures, opened_until, cooldown_ms FROM forwarder_states WHERE name = $1 FOR UPDATE"
)
UPDATE_CIRCUIT = """
UPDATE forwarder_states SET failures = $2, opened_until = $3, cooldown_ms = $4, updated_at = now()
WHERE name = $1
"""
SELECT_CIRCUITS = "SELECT name, failures, opened_until, cooldown_ms FROM forwarder_states"

# -- lifecycle --------------------------------------------------------------------------
# Rollback facts of the successful deployments among $1 (ids, in order); the rollbacks.
MARK_ROLLBACKS = "SELECT relay_mark_rollbacks($1::text[]) AS id"
UPDATE_TRANSITION = """
UPDATE deployments SET result = $1, status = $2, host = $3, code_name = $4, started_at = $5,
    finished_at = $6, commit_sha = $7, branch = $8, tag = $9, meta_data = $10::json,
    updated_at = $11, occurred_at = $12, committed_at = $13
WHERE id = $14 AND status = $15
"""
SELECT_DEPLOYMENT_BY_ID = f"SELECT {READ_COLUMNS} FROM deployments WHERE id = $1"
SELECT_DEPLOYMENTS_BY_IDS = (
    f"SELECT {READ_COLUMNS} FROM deployments WHERE id = ANY($1::text[]) AND kind = 'deployment'"
)
LATEST_OF_VERSION = f"""
SELECT {READ_COLUMNS} FROM deployments
WHERE kind = 'deployment' AND component = $1 AND version = $2 AND stage IS NOT DISTINCT FROM $3
ORDER BY seq DESC LIMIT 1
"""
# One probe per (component, stage) asked for, not a pass over the whole history.
LIVE_IDS = """
SELECT k.component, k.stage, l.id
FROM unnest($1::text[], $2::text[]) AS k (component, stage)
CROSS JOIN LATERAL (
    SELECT id FROM deployments d
    WHERE d.kind = 'deployment' AND d.status = 'success' AND d.component = k.component
      AND d.stage IS NOT DISTINCT FROM k.stage
    ORDER BY d.occurred_at DESC, d.seq DESC LIMIT 1
) AS l
"""

ENSURE_OUTPUT_TOTALS = """
INSERT INTO output_totals (deployment_id, lines, bytes) VALUES ($1, 0, 0)
ON CONFLICT (deployment_id) DO NOTHING
"""
LOCK_OUTPUT_TOTALS = "SELECT lines, bytes FROM output_totals WHERE deployment_id = $1 FOR UPDATE"
APPEND_OUTPUT = f"""
WITH {feed_lock("outputs")}, lines AS (
    INSERT INTO outputs (deployment_id, created_at, text)
    SELECT $1, $2, text FROM unnest($3::text[]) WITH ORDINALITY AS u(text, ord), lock
    ORDER BY ord
)
UPDATE output_totals SET lines = $4, bytes = $5 WHERE deployment_id = $1
"""
SELECT_OUTPUT = "SELECT text FROM outputs WHERE deployment_id = $1 ORDER BY seq"

INSERT_RELEASE = """
WITH r AS (
    INSERT INTO releases (id, name, code_name, notes, triggered_by, created_at)
    VALUES ($1, $2, $3, $4, $5, $6)
)
INSERT INTO release_deployments (release_id, position, deployment_id)
SELECT $1, ord - 1, deployment_id FROM unnest($7::text[]) WITH ORDINALITY AS u(deployment_id, ord)
"""
RELEASE_COLUMNS = "seq, id, name, code_name, notes, triggered_by, created_at"
SELECT_RELEASE = f"SELECT {RELEASE_COLUMNS} FROM releases WHERE id = $1"
LIST_RELEASES = f"SELECT {RELEASE_COLUMNS} FROM releases WHERE true"
RELEASE_DEPLOYMENTS = f"""
SELECT r.release_id, {", ".join("d." + c.strip() for c in READ_COLUMNS.split(","))}
FROM release_deployments r JOIN deployments d ON d.id = r.deployment_id
WHERE r.release_id = ANY($1::text[]) ORDER BY r.release_id, r.position
"""

# -- live feed --------------------------------------------------------------------------
FEED_POSITION = """
SELECT (SELECT COALESCE(MAX(seq), 0) FROM events) AS events,
       (SELECT COALESCE(MAX(id), 0) FROM attempts) AS attempts,
       (SELECT COALESCE(MAX(seq), 0) FROM outputs) AS outputs
"""
FEED_EVENTS = """
SELECT seq, id, type, deployment_id, component, created_at, payload FROM events
WHERE seq > $1 ORDER BY seq LIMIT $2
"""
FEED_ATTEMPTS = """
SELECT a.id AS seq, a.number, a.started_at, a.duration_ms, a.status_code, a.outcome, a.error,
       d.id AS delivery_id, d.forwarder, d.deployment_id,
       e.id AS event_id, e.type AS event_type, e.component, e.payload ->> 'stage' AS stage
FROM attempts a
JOIN deliveries d ON d.id = a.delivery_id
JOIN events e ON e.id = d.event_id
WHERE a.id > $1 ORDER BY a.id LIMIT $2
"""
FEED_OUTPUTS = """
SELECT o.seq, o.deployment_id, d.component, d.stage, o.created_at, o.text
FROM outputs o JOIN deployments d ON d.id = o.deployment_id
WHERE o.seq > $1 ORDER BY o.seq LIMIT $2
"""

# -- retention (relay/store/postgres/retention.py) ----------------------------------------
# Instances prune one batch at a time: rules of different instances running at once could
# lock the same rows in opposite orders (an event, then its deliveries; a deployment's
# deliveries, then its events). Held until the end of the batch's transaction.
RETENTION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('relay.retention.' || current_schema()))"
# One statement per rule: pick at most $2 rows older than $1 (SKIP LOCKED: rows a send or a
# retry is changing are left for the next batch), delete them and what goes with them
# (foreign keys are checked at the end of the statement), count. A row that became pending
# meanwhile is re-checked under its lock and left alone.
PRUNE_ATTEMPTS = """
WITH doomed AS (
    SELECT a.id FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
    WHERE a.started_at < $1 AND d.status <> 'pending'
    LIMIT $2 FOR UPDATE OF a SKIP LOCKED
), a AS (
    DELETE FROM attempts WHERE id IN (SELECT id FROM doomed) RETURNING 1
)
SELECT (SELECT count(*) FROM a) AS attempts
"""
PRUNE_DELIVERIES = """
WITH doomed AS (
    SELECT id FROM deliveries WHERE status <> 'pending' AND updated_at < $1
    LIMIT $2 FOR UPDATE SKIP LOCKED
), a AS (
    DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM doomed) RETURNING 1
), d AS (
    DELETE FROM deliveries WHERE id IN (SELECT id FROM doomed) RETURNING 1
)
SELECT (SELECT count(*) FROM a) AS attempts, (SELECT count(*) FROM d) AS deliveries
"""
PRUNE_EVENTS = """
WITH doomed AS (
    SELECT e.id FROM events e
    WHERE e.created_at < $1
      AND NOT EXISTS (
          SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'pending'
      )
    LIMIT $2 FOR UPDATE SKIP LOCKED
), dl AS (
    SELECT id FROM deliveries
    WHERE event_id IN (SELECT id FROM doomed) AND status <> 'pending'
    FOR UPDATE
), a AS (
    DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM dl) RETURNING 1
), d AS (
    DELETE FROM deliveries WHERE id IN (SELECT id FROM dl) RETURNING 1
), e AS (
    DELETE FROM events WHERE id IN (SELECT id FROM doomed) RETURNING 1
)
SELECT (SELECT count(*) FROM a) AS attempts, (SELECT count(*) FROM d) AS deliveries,
       (SELECT count(*) FROM e) AS events
"""
# Never the latest record of its component, kind and stage, nor the live deployment. A
# delivery has its event's deployment_id (INSERT_EVENTS, ADD_DELIVERIES).
PRUNE_DEPLOYMENTS = """
WITH doomed AS (
    SELECT d.id FROM deployments d
    WHERE d.updated_at < $1
      AND NOT EXISTS (
          SELECT 1 FROM deliveries p WHERE p.deployment_id = d.id AND p.status = 'pending'
      )
      AND EXISTS (
          SELECT 1 FROM deployments n
          WHERE n.component = d.component AND n.kind = d.kind
            AND n.stage IS NOT DISTINCT FROM d.stage
            AND (n.occurred_at, n.seq) > (d.occurred_at, d.seq)
      )
      AND (d.kind <> 'deployment' OR d.status <> 'success' OR EXISTS (
          SELECT 1 FROM deployments n
          WHERE n.component = d.component AND n.kind = 'deployment' AND n.status = 'success'
            AND n.stage IS NOT DISTINCT FROM d.stage
            AND (n.occurred_at, n.seq) > (d.occurred_at, d.seq)
      ))
    LIMIT $2 FOR UPDATE SKIP LOCKED
), dl AS (
    SELECT id FROM deliveries
    WHERE deployment_id IN (SELECT id FROM doomed) AND status <> 'pending'
    FOR UPDATE
), a AS (
    DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM dl) RETURNING 1
), d AS (
    DELETE FROM deliveries WHERE id IN (SELECT id FROM dl) RETURNING 1
), e AS (
    DELETE FROM events WHERE deployment_id IN (SELECT id FROM doomed) RETURNING 1
), s AS (
    DELETE FROM delivery_shared WHERE deployment_id IN (SELECT id FROM doomed)
), o AS (
    DELETE FROM outputs WHERE deployment_id IN (SELECT id FROM doomed) RETURNING 1
), t AS (
    DELETE FROM output_totals WHERE deployment_id IN (SELECT id FROM doomed)
), l AS (
    DELETE FROM release_deployments WHERE deployment_id IN (SELECT id FROM doomed)
), x AS (
    DELETE FROM deployments WHERE id IN (SELECT id FROM doomed) RETURNING 1
)
SELECT (SELECT count(*) FROM a) AS attempts, (SELECT count(*) FROM d) AS deliveries,
       (SELECT count(*) FROM e) AS events, (SELECT count(*) FROM o) AS outputs,
       (SELECT count(*) FROM x) AS deployments
"""
PRUNE_IDEMPOTENCY_KEYS = """
WITH doomed AS (
    SELECT scope, key FROM idempotency_keys WHERE created_at < $1
    LIMIT $2 FOR UPDATE SKIP LOCKED
), k AS (
    DELETE FROM idempotency_keys i USING doomed
    WHERE i.scope = doomed.scope AND i.key = doomed.key RETURNING 1
)
SELECT (SELECT count(*) FROM k) AS idempotency_keys
"""
