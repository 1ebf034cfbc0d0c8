-- Lifecycle: rollback facts on deployments, output logs, releases.
-- is_rollback / reverted_* are decided when a deployment becomes `success` (see
-- relay/store/sqlite_lifecycle.py); is_live is not stored: it is read from this index.
ALTER TABLE deployments ADD COLUMN is_rollback INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deployments ADD COLUMN reverted_at TEXT;
ALTER TABLE deployments ADD COLUMN reverted_by TEXT;
CREATE INDEX deployments_live ON deployments (component, stage, occurred_at, seq)
    WHERE kind = 'deployment' AND status = 'success';
CREATE INDEX deployments_by_version ON deployments (component, version, stage, seq);

-- One row per appended line; seq orders a deployment's log (and the live feed).
CREATE TABLE outputs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    created_at TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX outputs_by_deployment ON outputs (deployment_id, seq);
CREATE TABLE output_totals (
    deployment_id TEXT PRIMARY KEY REFERENCES deployments (id),
    lines INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);

CREATE TABLE releases (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    code_name TEXT,
    notes TEXT,
    triggered_by TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE release_deployments (
    release_id TEXT NOT NULL REFERENCES releases (id),
    position INTEGER NOT NULL,
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    PRIMARY KEY (release_id, position)
);
