-- Retention (relay/store/postgres_retention.py): the pruner finds old rows by time, and
-- what goes with them by owner, through indexes rather than by scanning whole tables
-- (attempts_by_time and deliveries_event exist since 0001).
CREATE INDEX deliveries_finished ON deliveries (updated_at) WHERE status <> 'pending';
CREATE INDEX events_by_deployment ON events (deployment_id);
CREATE INDEX deployments_by_update ON deployments (updated_at);
CREATE INDEX release_links_by_deployment ON release_deployments (deployment_id);
CREATE INDEX idempotency_by_time ON idempotency_keys (created_at);
