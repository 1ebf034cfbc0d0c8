-- Lifecycle: rollback facts on deployments, output logs, releases (as SQLite's 0003), and
-- the function that decides rollback facts inside the transaction that made deployments
-- `success` (the rule is in relay/store/lifecycle_base.py).
ALTER TABLE deployments ADD COLUMN is_rollback BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE deployments ADD COLUMN reverted_at TIMESTAMPTZ;
ALTER TABLE deployments ADD COLUMN reverted_by TEXT;
CREATE INDEX deployments_live ON deployments (component, stage, occurred_at, seq)
    WHERE kind = 'deployment' AND status = 'success';
CREATE INDEX deployments_by_version ON deployments (component, version, stage, seq);

CREATE TABLE outputs (
    seq BIGSERIAL PRIMARY KEY,
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    created_at TIMESTAMPTZ NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX outputs_by_deployment ON outputs (deployment_id, seq);
CREATE TABLE output_totals (
    deployment_id TEXT PRIMARY KEY REFERENCES deployments (id),
    lines INTEGER NOT NULL,
    bytes BIGINT NOT NULL
);

CREATE TABLE releases (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    code_name TEXT,
    notes TEXT,
    triggered_by TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE release_deployments (
    release_id TEXT NOT NULL REFERENCES releases (id),
    position INTEGER NOT NULL,
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    PRIMARY KEY (release_id, position)
);

-- For the deployments `ids` (in this order) that are successful deployments: mark those that
-- are rollbacks, mark the deployments they replaced reverted, return the rollbacks' ids.
-- Instances deciding for the same component and stage at once take turns (advisory locks,
-- taken in one order so that two batches never wait for each other).
CREATE FUNCTION relay_mark_rollbacks(ids TEXT[]) RETURNS SETOF TEXT
LANGUAGE plpgsql AS $$
DECLARE
    lock_key BIGINT;
    rid TEXT;
    d RECORD;
    top RECORD;
    live RECORD;
    replaced RECORD;
    n INTEGER;
BEGIN
    FOR lock_key IN
        SELECT DISTINCT hashtextextended(x.component || '/' || coalesce(x.stage, ''), 0)
        FROM deployments x
        WHERE x.id = ANY(ids) AND x.kind = 'deployment' AND x.status = 'success'
        ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(lock_key);
    END LOOP;
    FOREACH rid IN ARRAY ids LOOP
        SELECT x.* INTO d FROM deployments x WHERE x.id = rid;
        CONTINUE WHEN NOT FOUND;
        CONTINUE WHEN d.kind <> 'deployment' OR d.status <> 'success';
        n := 0;
        FOR top IN
            SELECT x.id, x.version, x.occurred_at, x.seq FROM deployments x
            WHERE x.kind = 'deployment' AND x.status = 'success' AND x.component = d.component
              AND (x.stage = d.stage OR (x.stage IS NULL AND d.stage IS NULL))
            ORDER BY x.occurred_at DESC, x.seq DESC LIMIT 2
        LOOP
            n := n + 1;
            IF n = 1 THEN live := top; ELSE replaced := top; END IF;
        END LOOP;
        -- One test per line: PL/pgSQL may evaluate both sides of an OR, and `replaced`
        -- has no value when fewer than two rows were found.
        CONTINUE WHEN n < 2;
        CONTINUE WHEN live.id <> rid OR replaced.version = d.version;
        PERFORM 1 FROM deployments x
        WHERE x.component = d.component AND x.version = d.version
          AND (x.stage = d.stage OR (x.stage IS NULL AND d.stage IS NULL))
          AND x.kind = 'deployment' AND x.status = 'success'
          AND (x.occurred_at, x.seq) < (replaced.occurred_at, replaced.seq)
        LIMIT 1;
        CONTINUE WHEN NOT FOUND;
        UPDATE deployments SET is_rollback = true WHERE id = rid;
        UPDATE deployments
        SET reverted_at = coalesce(d.finished_at, d.updated_at), reverted_by = d.triggered_by
        WHERE id = replaced.id;
        RETURN NEXT rid;
    END LOOP;
END
$$;
