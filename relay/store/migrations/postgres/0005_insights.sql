-- Deploy insights (relay/insights/), as SQLite's 0007: the commit time of a deployment,
-- indexes for the DORA window queries, store-kept counters for /metrics that retention
-- never lowers (kept by a trigger, so every instance and every write path counts alike),
-- and secrets relay generates itself (the badge key secret).
ALTER TABLE deployments ADD COLUMN committed_at TIMESTAMPTZ;

-- Deployments in a time window: of every component and stage (/metrics' DORA series), and
-- of a stage (GET /insights/dora). One component's window reads deployments_listing, and
-- the next success after a failure deployments_live.
CREATE INDEX deployments_window ON deployments (occurred_at) WHERE kind = 'deployment';
CREATE INDEX deployments_stage_window ON deployments (stage, occurred_at)
    WHERE kind = 'deployment';

CREATE TABLE deployment_totals (
    component TEXT NOT NULL,
    stage TEXT NOT NULL,
    status TEXT NOT NULL,
    count BIGINT NOT NULL,
    last_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (component, stage, status)
);

CREATE TABLE deployment_duration_bounds (
    le TEXT PRIMARY KEY,
    seconds DOUBLE PRECISION NOT NULL
);
INSERT INTO deployment_duration_bounds (le, seconds) VALUES
    ('10', 10), ('30', 30), ('60', 60), ('120', 120), ('300', 300), ('600', 600),
    ('1200', 1200), ('1800', 1800), ('3600', 3600), ('7200', 7200), ('+Inf', 'Infinity');
CREATE TABLE deployment_duration_buckets (
    component TEXT NOT NULL,
    stage TEXT NOT NULL,
    le TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (component, stage, le)
);
CREATE TABLE deployment_duration_sums (
    component TEXT NOT NULL,
    stage TEXT NOT NULL,
    count BIGINT NOT NULL,
    sum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (component, stage)
);

CREATE TABLE relay_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- A deployment counts once: when it is first written terminal, or when it becomes so.
CREATE FUNCTION relay_count_deployment() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    terminal CONSTANT TEXT[] :=
        ARRAY['success', 'build-error', 'crashed-error', 'timeout-error', 'aborted'];
    st TEXT := coalesce(NEW.stage, '');
    took DOUBLE PRECISION;
BEGIN
    IF NEW.kind <> 'deployment' OR NOT (NEW.status = ANY(terminal)) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF OLD.status = ANY(terminal) THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO deployment_totals (component, stage, status, count, last_at)
    VALUES (NEW.component, st, NEW.status, 1, NEW.occurred_at)
    ON CONFLICT (component, stage, status) DO UPDATE
    SET count = deployment_totals.count + 1,
        last_at = greatest(deployment_totals.last_at, excluded.last_at);
    IF NEW.started_at IS NOT NULL THEN
        took := greatest(0, extract(epoch FROM NEW.occurred_at - NEW.started_at));
        INSERT INTO deployment_duration_buckets (component, stage, le, count)
        SELECT NEW.component, st, b.le, 1 FROM deployment_duration_bounds b
        WHERE took <= b.seconds
        ON CONFLICT (component, stage, le) DO UPDATE
        SET count = deployment_duration_buckets.count + 1;
        INSERT INTO deployment_duration_sums (component, stage, count, sum)
        VALUES (NEW.component, st, 1, took)
        ON CONFLICT (component, stage) DO UPDATE
        SET count = deployment_duration_sums.count + 1,
            sum = deployment_duration_sums.sum + excluded.sum;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER deployments_count_insert AFTER INSERT ON deployments
    FOR EACH ROW EXECUTE FUNCTION relay_count_deployment();
CREATE TRIGGER deployments_count_update AFTER UPDATE OF status ON deployments
    FOR EACH ROW EXECUTE FUNCTION relay_count_deployment();

-- Deployments recorded before this migration count too.
INSERT INTO deployment_totals (component, stage, status, count, last_at)
SELECT component, coalesce(stage, ''), status, count(*), max(occurred_at) FROM deployments
WHERE kind = 'deployment'
    AND status IN ('success', 'build-error', 'crashed-error', 'timeout-error', 'aborted')
GROUP BY component, coalesce(stage, ''), status;
INSERT INTO deployment_duration_buckets (component, stage, le, count)
SELECT d.component, coalesce(d.stage, ''), b.le, count(*)
FROM deployments d JOIN deployment_duration_bounds b
    ON greatest(0, extract(epoch FROM d.occurred_at - d.started_at)) <= b.seconds
WHERE d.kind = 'deployment' AND d.started_at IS NOT NULL
    AND d.status IN ('success', 'build-error', 'crashed-error', 'timeout-error', 'aborted')
GROUP BY d.component, coalesce(d.stage, ''), b.le;
INSERT INTO deployment_duration_sums (component, stage, count, sum)
SELECT component, coalesce(stage, ''), count(*),
    sum(greatest(0, extract(epoch FROM occurred_at - started_at)))
FROM deployments
WHERE kind = 'deployment' AND started_at IS NOT NULL
    AND status IN ('success', 'build-error', 'crashed-error', 'timeout-error', 'aborted')
GROUP BY component, coalesce(stage, '');
