-- Deploy insights (relay/insights/): the commit time of a deployment (DORA lead time),
-- indexes for the DORA window queries, store-kept counters for /metrics that retention
-- never lowers, and secrets relay generates itself (the badge key secret).
ALTER TABLE deployments ADD COLUMN committed_at TEXT;

-- Deployments in a time window: of every component and stage (/metrics' DORA series), and
-- of a stage (GET /insights/dora). One component's window reads deployments_listing, and
-- the next success after a failure deployments_live.
CREATE INDEX deployments_window ON deployments (occurred_at) WHERE kind = 'deployment';
CREATE INDEX deployments_stage_window ON deployments (stage, occurred_at)
    WHERE kind = 'deployment';

-- Finished deployments by component, stage ('' for none) and terminal status, counted by
-- the triggers below when a row becomes terminal: a counter, not a COUNT(*), so that
-- pruning old rows never lowers relay_deployments_total. last_at: the latest finish.
CREATE TABLE deployment_totals (
    component TEXT NOT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    count INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (component, stage, status)
);

-- The duration histogram (started_at → finished_at) of finished deployments: the bucket
-- bounds, cumulative bucket counts, and count and sum per component and stage.
CREATE TABLE deployment_duration_bounds (
    le TEXT PRIMARY KEY,
    seconds REAL NOT NULL
);
INSERT INTO deployment_duration_bounds (le, seconds) VALUES
    ('10', 10), ('30', 30), ('60', 60), ('120', 120), ('300', 300), ('600', 600),
    ('1200', 1200), ('1800', 1800), ('3600', 3600), ('7200', 7200), ('+Inf', 1e308);
CREATE TABLE deployment_duration_buckets (
    component TEXT NOT NULL,
    stage TEXT NOT NULL,
    le TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (component, stage, le)
);
CREATE TABLE deployment_duration_sums (
    component TEXT NOT NULL,
    stage TEXT NOT NULL,
    count INTEGER NOT NULL,
    sum REAL NOT NULL,
    PRIMARY KEY (component, stage)
);

-- Secrets relay makes for itself on first use, shared by every process on this file.
CREATE TABLE relay_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- A deployment counts once, when it is first written terminal or when it becomes so.
CREATE TRIGGER deployments_count_insert AFTER INSERT ON deployments
WHEN NEW.kind = 'deployment'
    AND NEW.status IN ('success', 'build-error', 'crashed-error', 'timeout-error', 'aborted')
BEGIN
    INSERT INTO deployment_totals (component, stage, status, count, last_at)
    VALUES (NEW.component, coalesce(NEW.stage, ''), NEW.status, 1, NEW.occurred_at)
    ON CONFLICT (component, stage, status) DO UPDATE
    SET count = count + 1, last_at = max(last_at, excluded.last_at);
    INSERT INTO deployment_duration_buckets (component, stage, le, count)
    SELECT NEW.component, coalesce(NEW.stage, ''), b.le, 1 FROM deployment_duration_bounds b
    WHERE NEW.started_at IS NOT NULL
        AND max(0, (julianday(NEW.occurred_at) - julianday(NEW.started_at)) * 86400) <= b.seconds
    ON CONFLICT (component, stage, le) DO UPDATE SET count = count + 1;
    INSERT INTO deployment_duration_sums (component, stage, count, sum)
    SELECT NEW.component, coalesce(NEW.stage, ''), 1,
        max(0, (julianday(NEW.occurred_at) - julianday(NEW.started_at)) * 86400)
    WHERE NEW.started_at IS NOT NULL
    ON CONFLICT (component, stage) DO UPDATE
    SET count = count + 1, sum = sum + excluded.sum;
END;

CREATE TRIGGER deployments_count_update AFTER UPDATE OF status ON deployments
WHEN NEW.kind = 'deployment'
    AND NEW.status IN ('success', 'build-error', 'crashed-error', 'timeout-error', 'aborted')
    AND OLD.status NOT IN ('success', 'build-error', 'crashed-error', 'timeout-error', 'aborted')
BEGIN
    INSERT INTO deployment_totals (component, stage, status, count, last_at)
    VALUES (NEW.component, coalesce(NEW.stage, ''), NEW.status, 1, NEW.occurred_at)
    ON CONFLICT (component, stage, status) DO UPDATE
    SET count = count + 1, last_at = max(last_at, excluded.last_at);
    INSERT INTO deployment_duration_buckets (component, stage, le, count)
    SELECT NEW.component, coalesce(NEW.stage, ''), b.le, 1 FROM deployment_duration_bounds b
    WHERE NEW.started_at IS NOT NULL
        AND max(0, (julianday(NEW.occurred_at) - julianday(NEW.started_at)) * 86400) <= b.seconds
    ON CONFLICT (component, stage, le) DO UPDATE SET count = count + 1;
    INSERT INTO deployment_duration_sums (component, stage, count, sum)
    SELECT NEW.component, coalesce(NEW.stage, ''), 1,
        max(0, (julianday(NEW.occurred_at) - julianday(NEW.started_at)) * 86400)
    WHERE NEW.started_at IS NOT NULL
    ON CONFLICT (component, stage) DO UPDATE
    SET count = count + 1, sum = sum + excluded.sum;
END;

-- Deployments recorded before this migration count too.
INSERT INTO deployment_totals (component, stage, status, count, last_at)
SELECT component, coalesce(stage, ''), status, count(*), max(occurred_at) FROM deployments
WHERE kind = 'deployment'
    AND status IN ('success', 'build-error', 'crashed-error', 'timeout-error', 'aborted')
GROUP BY component, coalesce(stage, ''), status;
INSERT INTO deployment_duration_buckets (component, stage, le, count)
SELECT d.component, coalesce(d.stage, ''), b.le, count(*)
FROM deployments d JOIN deployment_duration_bounds b
    ON max(0, (julianday(d.occurred_at) - julianday(d.started_at)) * 86400) <= b.seconds
WHERE d.kind = 'deployment' AND d.started_at IS NOT NULL
    AND d.status IN ('success', 'build-error', 'crashed-error', 'timeout-error', 'aborted')
GROUP BY d.component, coalesce(d.stage, ''), b.le;
INSERT INTO deployment_duration_sums (component, stage, count, sum)
SELECT component, coalesce(stage, ''), count(*),
    sum(max(0, (julianday(occurred_at) - julianday(started_at)) * 86400))
FROM deployments
WHERE kind = 'deployment' AND started_at IS NOT NULL
    AND status IN ('success', 'build-error', 'crashed-error', 'timeout-error', 'aborted')
GROUP BY component, coalesce(stage, '');
